/**
 * Issue 17's first measure: on the real captures with assistants, the per-assistant endpoint table
 * (the privacy ledger, as /api/v1/privacy and the status page show it) names the organisation for at
 * least 95 % of each capture set's assistant bytes. Each capture is replayed in this process through
 * the run earshot assembles (buildRuntime), and the shares are read from the ledger; the figures per set
 * are printed (docs/privacy.md quotes them).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { buildRuntime } from '../collector/runtime.js';
import { describeShared, PROJECT_ROOT, REAL_CAPTURES, SHARED, VCFP_CAPTURES } from './helpers/shared.js';
import { isHomeAddress, tsharkSentByMac } from './helpers/tshark.js';

/** The real captures of ../shared with an assistant on the LAN (captures/README.md). */
const SETS: Record<string, string[]> = {
  real: ['amazon-echo_alexa-time-query-0_xray.pcap', 'amazon-echo_alexa-time-query-1_xray.pcap', 'amazon-echo_alexa-timed2_xray.pcap',
    'amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap', 'amazon-echodot2_normal-use_jhautry.pcap', 'amazon-echodot3_activation_neu.pcapng',
    'nest_logsink-dns-cname_ndpi.pcap', 'sonos_local-tls_ndpi.pcapng'].map((f) => join(REAL_CAPTURES, f)),
  'vcfp-haipeng': readdirSync(VCFP_CAPTURES).filter((f) => f.endsWith('.pcap')).sort().map((f) => join(VCFP_CAPTURES, f)),
  'cic-iot-2022-rebuilt': ['echodot2', 'echospot', 'nestmini'].flatMap((d) => {
    const dir = join(SHARED, 'captures', 'cic-iot-2022-rebuilt', d);
    return readdirSync(dir).filter((f) => f.endsWith('.pcap')).sort().map((f) => join(dir, f));
  }),
};

/** Bytes of the capture's assistants, and those whose endpoint has an organisation (the ledger's). */
async function assistantBytes(file: string): Promise<{ total: number; named: number; assistants: number }> {
  const runtime = buildRuntime(loadConfig({}), { clock: 'packet', activity: false }, { log: pino({ level: 'silent' }) });
  await runtime.run(buildSource({ kind: 'file', path: file }, {}));
  let total = 0;
  let named = 0;
  const devices = runtime.privacy?.devices({ assistantsOnly: true }) ?? [];
  for (const d of devices) {
    for (const e of d.endpoints) {
      total += e.bytesUp + e.bytesDown;
      if (e.org !== null) named += e.bytesUp + e.bytesDown;
    }
  }
  return { total, named, assistants: devices.length };
}

describeShared('organisations in the per-assistant endpoint table (real captures)', () => {
  for (const [set, files] of Object.entries(SETS)) {
    it(`${set}: at least 95 % of the assistants' bytes go to a named organisation`, async () => {
      let total = 0;
      let named = 0;
      const worst: Array<[string, number]> = [];
      for (const file of files) {
        const b = await assistantBytes(file);
        total += b.total;
        named += b.named;
        if (b.total > 0) worst.push([file.split('/').pop() as string, b.named / b.total]);
      }
      worst.sort((a, b) => a[1] - b[1]);
      console.log(`privacy: ${set}: ${files.length} captures, ${(100 * named / total).toFixed(2)} % of ${total} assistant bytes named; lowest ${worst[0][0]} ${(100 * worst[0][1]).toFixed(1)} %`);
      expect(total).toBeGreaterThan(0);
      expect(named / total).toBeGreaterThanOrEqual(0.95);
    }, 300_000);
  }
});

describeShared('the learning period', () => {
  it('starts at the device\'s first packet, whichever of its flows ends first (an Echo of the VCFP captures)', async () => {
    const file = join(VCFP_CAPTURES, 'good_morning_5_30s.pcap');
    const echo = 'c4:95:00:e3:93:2f';
    // tshark: the Echo's first TCP or UDP frame (a connection open before the capture, which ends last)
    const first = execFileSync('tshark', ['-r', file, '-Y', `eth.addr == ${echo} && (tcp || udp)`, '-c', '1', '-T', 'fields', '-e', 'frame.time_epoch'], { encoding: 'utf8' }).trim();
    const [sec, frac = ''] = first.split('.');
    const firstMs = Number(sec) * 1000 + Number(frac.padEnd(3, '0').slice(0, 3));
    const config = loadConfig({});
    const runtime = buildRuntime(config, { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
    await runtime.run(buildSource({ kind: 'file', path: file }, {}));
    const device = runtime.privacy?.devices().find((d) => d.mac === echo);
    expect(device).toMatchObject({ firstSeen: new Date(firstMs).toISOString(), learningUntil: new Date(firstMs + config.privacy.learningPeriodH * 3_600_000).toISOString() });
  });
});


/** The ledger's days of one device after a replay of `file` through the run earshot assembles. */
async function daysOf(file: string, mac: string) {
  const runtime = buildRuntime(loadConfig({}), { clock: 'packet', activity: false }, { log: pino({ level: 'silent' }) });
  await runtime.run(buildSource({ kind: 'file', path: file }, {}));
  const device = runtime.privacy?.devices().find((d) => d.mac === mac);
  expect(device, `${mac} in the privacy ledger`).toBeDefined();
  return device!.days;
}

/**
 * What an assistant uploads is what left the home: the bytes tshark shows its MAC sending to addresses
 * beyond the home. What it sent to the home network (another Echo, the router, multicast) is counted
 * apart: the bytes tshark shows it sending in conversations with home addresses that it opened (the
 * other side's are the other device's, as earshot counts a LAN flow to its client).
 */
function uploadsAgainstTshark(file: string, mac: string, voiceTo?: string): void {
  const name = file.split('/').pop() as string;
  it(`${name}: ${mac}'s uploads and home-network bytes against tshark`, async () => {
    const sent = tsharkSentByMac(file, mac);
    const beyond = sent.filter((s) => !isHomeAddress(s.peer)).reduce((n, s) => n + s.bytes, 0);
    const home = sent.filter((s) => isHomeAddress(s.peer) && s.opened).reduce((n, s) => n + s.bytes, 0);
    const days = await daysOf(file, mac);
    const sum = (f: (d: (typeof days)[number]) => number) => days.reduce((n, d) => n + f(d), 0);
    console.log(`privacy uploads: ${name}: beyond the home ${beyond} B (voice ${sum((d) => d.voiceUp)}), home network ${home} B`);
    expect(beyond).toBeGreaterThan(0);
    expect(sum((d) => d.voiceUp + d.otherUp)).toBe(beyond);
    expect(sum((d) => Object.values(d.up).reduce((n, b) => n + b, 0))).toBe(beyond);
    expect(sum((d) => d.localUp)).toBe(home);
    if (voiceTo !== undefined) expect(sum((d) => d.voiceUp)).toBe(sent.filter((s) => s.peer === voiceTo).reduce((n, s) => n + s.bytes, 0));
  }, 120_000);
}

describe('uploads by day are what left the home', () => {
  // an Echo Dot 3 streaming 55 kB to another Echo (UDP 55444) beside its one voice upload, to 52.94.233.109
  uploadsAgainstTshark(join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng'), '68:db:f5:90:19:64', '52.94.233.109');
});

describeShared('uploads by day are what left the home (shared captures)', () => {
  uploadsAgainstTshark(join(REAL_CAPTURES, 'amazon-echodot2_normal-use_jhautry.pcap'), '50:f5:da:23:43:df');
  // a Nest Mini: voice over QUIC, DNS to the router, a Cast connection it answers (the phone's: not its upload)
  uploadsAgainstTshark(join(SHARED, 'captures', 'cic-iot-2022-rebuilt', 'nestmini', 'nestminiVOICEVOLUMEON_2.pcap'), 'cc:f4:11:9c:d0:00');

  it('every assistant of every shared capture: its uploads and home-network bytes are what tshark shows', async () => {
    const files = [
      ...readdirSync(REAL_CAPTURES).filter((f) => /\.pcap(ng)?$/.test(f)).map((f) => join(REAL_CAPTURES, f)),
      ...Object.values(SETS).slice(1).flat(),
    ];
    const wrong: string[] = [];
    let assistants = 0;
    for (const file of files) {
      const runtime = buildRuntime(loadConfig({}), { clock: 'packet', activity: false }, { log: pino({ level: 'silent' }) });
      await runtime.run(buildSource({ kind: 'file', path: file }, {}));
      for (const d of runtime.privacy?.devices({ assistantsOnly: true }) ?? []) {
        assistants++;
        const sent = tsharkSentByMac(file, d.mac);
        const beyond = sent.filter((s) => !isHomeAddress(s.peer)).reduce((n, s) => n + s.bytes, 0);
        const home = sent.filter((s) => isHomeAddress(s.peer) && s.opened).reduce((n, s) => n + s.bytes, 0);
        const up = d.days.reduce((n, x) => n + x.voiceUp + x.otherUp, 0);
        const local = d.days.reduce((n, x) => n + x.localUp, 0);
        if (up !== beyond || local !== home) wrong.push(`${file.split('/').pop()} ${d.mac}: uploaded ${up} (tshark ${beyond}), home network ${local} (tshark ${home})`);
      }
    }
    console.log(`privacy uploads: ${assistants} assistants in ${files.length} captures against tshark`);
    expect(assistants).toBeGreaterThanOrEqual(50);
    expect(wrong).toEqual([]);
  }, 300_000);
});
