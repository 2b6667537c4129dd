/**
 * Local assistants on a GENERATED capture (test/scenario/local-assistant.ts: no real capture of one
 * exists): a Wyoming satellite, an ESPHome voice device and a Rhasspy satellite streaming to the local
 * server, once with the voice staying at home and once with Home Assistant sending it on to a cloud
 * speech-to-text service. Expected values come from what the generator put in and from tshark (frame
 * bytes), never from earshot. And none of the real captures has a local assistant.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import type { Activation } from '../collector/detect/detector.js';
import { buildCollector } from '../collector/index.js';
import { localToReport, type VoiceDestination } from '../collector/local/record.js';
import { activationEvent } from '../collector/sink/events.js';
import { runCli } from './helpers/cli.js';
import { describeShared, REAL_CAPTURES } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { localAssistantPcap, type LocalTruth, type LocalVariant } from './scenario/local-assistant.js';
import { parseIp, parseMac, TCP_ACK, TCP_SYN, tcpFrame } from './scenario/packets.js';

const dir = tempDir('earshot-local-');
const made = new Map<LocalVariant, { file: string; truth: LocalTruth }>();
for (const variant of ['home', 'cloud'] as const) {
  const { pcap, truth } = localAssistantPcap(variant);
  const file = join(dir, `local-${variant}.pcap`);
  writeFileSync(file, pcap);
  made.set(variant, { file, truth });
}

/** Wireshark's expert severity of a warning (epan/proto.h PI_WARN); errors are higher. */
const PI_WARN = 0x00600000;
const iso = (us: number) => new Date(Math.floor(us / 1000)).toISOString();

function tshark(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** Frame bytes tshark counts for a display filter (the oracle for an activation's bytes). */
function frameBytes(file: string, filter: string): number {
  const r = tshark(['-r', file, '-Y', filter, '-T', 'fields', '-e', 'frame.len']);
  expect(r.status).toBe(0);
  return r.stdout.split('\n').filter((l) => l !== '').reduce((sum, l) => sum + Number(l), 0);
}

/** The epoch-seconds window [fromUs, toUs] as a tshark filter. */
const during = (fromUs: number, toUs: number) => `frame.time_epoch >= ${(fromUs / 1e6).toFixed(6)} && frame.time_epoch <= ${(toUs / 1e6).toFixed(6)}`;

interface JsonActivation {
  device: string; start: string; end: string; bytesUp: number; bytesDown: number; server: string | null; serverName: string | null;
  verdict: string; reasons: string[]; wakeEvent: string | null;
}

describe('local assistants: the generated scenario', () => {
  it('tshark reads both generated captures without an error or a malformed packet', () => {
    for (const [variant, { file }] of made) {
      const r = tshark(['-r', file, '-T', 'fields', '-e', 'frame.number', '-e', '_ws.malformed', '-e', '_ws.expert.severity']);
      expect(r.status, `${variant}: ${r.stderr}`).toBe(0);
      expect(r.stderr.replace(/^Running as user "root".*\n/m, '').trim()).toBe('');
      // no malformed packet, no expert warning or error (chats and notes, such as a SYN or a FIN, are normal)
      const flagged = r.stdout.split('\n').filter((l) => l !== '').filter((l) => {
        const [, malformed, severities] = l.split('\t');
        return malformed !== '' || severities.split(',').some((s) => s !== '' && Number(s) >= PI_WARN);
      });
      expect(flagged, variant).toEqual([]);
      // what tshark reads is what was written: the mDNS services and, with the cloud, the TLS server name
      const names = tshark(['-r', file, '-Y', 'mdns', '-T', 'fields', '-e', 'dns.ptr.domain_name']).stdout;
      expect(names).toContain('dca632300030._wyoming._tcp.local');
      expect(names).toContain('Home._home-assistant._tcp.local');
      expect(names).toContain('living-room-voice._esphomelib._tcp.local');
      const sni = tshark(['-r', file, '-Y', 'tls.handshake.type == 1', '-T', 'fields', '-e', 'tls.handshake.extensions_server_name']).stdout.trim();
      expect(sni).toBe(variant === 'cloud' ? 'speech.googleapis.com' : '');
      const mqtt = tshark(['-r', file, '-Y', 'mqtt.msgtype == 3', '-T', 'fields', '-e', 'mqtt.topic']).stdout.split('\n').filter((l) => l !== '');
      expect(mqtt.filter((t) => t === 'hermes/audioServer/bedroom/audioFrame').length).toBe(made.get(variant)!.truth.rhasspy.frames);
    }
  });

  for (const variant of ['home', 'cloud'] as const) {
    it(`replay --format json (${variant}): each satellite's stream is a local activation, and the voice ${variant === 'home' ? 'stayed at home' : 'went to the cloud STT'}`, async () => {
      const { file, truth } = made.get(variant)!;
      const r = await runCli(['replay', file, '--format', 'json', '--no-progress']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as { activations: JsonActivation[]; devices: Array<{ mac: string; vendor: string | null; model: string | null; assistant: boolean; evidence: string[] }> };
      const local = report.activations.filter((a) => a.reasons[0]?.startsWith('local assistant: '));
      expect(local.map((a) => a.device).sort()).toEqual([truth.esphome.mac, truth.satellite.mac, truth.rhasspy.mac].sort());
      // nothing else is an activation: the cloud connection is Home Assistant's, not an assistant's upload
      expect(report.activations.length).toBe(3);

      const w = truth.wyoming;
      const wy = local.find((a) => a.device === truth.satellite.mac)!;
      expect(wy.start).toBe(iso(w.firstChunkUs));
      expect(wy.end).toBe(iso(w.stopUs));
      expect(wy.wakeEvent).toBe(iso(w.wakeUs));
      expect(wy.verdict).toBe('confirmed');
      expect(wy.server).toMatch(new RegExp(`^${truth.server.ip.replace(/\./g, '\\.')}:\\d+$`));
      expect(wy.serverName).toBe('Home Assistant (Wyoming)');
      const satToHa = `ip.src == ${truth.satellite.ip} && ip.dst == ${truth.server.ip} && tcp.srcport == ${truth.satellite.port}`;
      const haToSat = `ip.src == ${truth.server.ip} && ip.dst == ${truth.satellite.ip} && tcp.dstport == ${truth.satellite.port}`;
      expect(wy.bytesUp).toBe(frameBytes(file, `${satToHa} && ${during(w.firstChunkUs, w.stopUs)}`));
      expect(wy.bytesDown).toBe(frameBytes(file, `${haToSat} && ${during(w.firstChunkUs, w.stopUs)}`));
      expect(wy.reasons).toContain(`wake word "${w.wakeWord}" detected on the LAN (Wyoming detection event)`);

      const e = truth.esphomeAudio;
      const es = local.find((a) => a.device === truth.esphome.mac)!;
      expect(es.start).toBe(iso(e.firstUs));
      expect(es.end).toBe(iso(e.lastUs));
      expect(es.server).toBe(`${truth.server.ip}:${e.serverPort}`);
      expect(es.bytesUp).toBe(frameBytes(file, `ip.src == ${truth.esphome.ip} && ip.dst == ${truth.server.ip} && udp.dstport == ${e.serverPort}`));

      const h = truth.rhasspy;
      const rh = local.find((a) => a.device === h.mac)!;
      expect(rh.start).toBe(iso(h.firstUs));
      expect(rh.end).toBe(iso(h.lastUs));
      expect(rh.wakeEvent).toBe(iso(h.wakeUs));
      expect(rh.server).toBe(`${truth.server.ip}:1883`);
      expect(rh.bytesUp).toBe(frameBytes(file, `ip.src == ${h.ip} && tcp.dstport == 1883 && ${during(h.firstUs, h.lastUs)}`));

      // where the voice went: the cloud contact only during the satellite's stream
      const home = (a: JsonActivation) => a.reasons.some((x) => x.startsWith('voice stayed at home'));
      expect(home(es)).toBe(true);
      expect(home(rh)).toBe(true);
      if (variant === 'home') {
        expect(home(wy)).toBe(true);
        expect(wy.reasons.some((x) => x.startsWith('voice went to'))).toBe(false);
      } else {
        expect(home(wy)).toBe(false);
        expect(wy.reasons).toContain(`voice went to ${truth.cloud!.name} (Google Cloud Speech-to-Text, Google) at ${truth.cloud!.ip}:443`);
      }

      // the inventory: satellites are assistants of a local kind; the server is named, not an assistant
      const device = (mac: string) => report.devices.find((d) => d.mac === mac)!;
      expect(device(truth.satellite.mac)).toMatchObject({ vendor: 'home-assistant', model: 'voice satellite (Wyoming)', assistant: true });
      expect(device(truth.esphome.mac)).toMatchObject({ vendor: 'home-assistant', model: 'voice satellite (ESPHome)', assistant: true });
      expect(device(truth.rhasspy.mac)).toMatchObject({ vendor: 'rhasspy', model: 'Rhasspy satellite (Hermes MQTT)', assistant: true });
      expect(device(truth.server.mac)).toMatchObject({ vendor: 'home-assistant', model: 'Home Assistant (Assist server)', assistant: false });
      expect(device(truth.server.mac).evidence).toContain('announces _home-assistant._tcp.local (Home Assistant)');
    });

    it(`replay --format text (${variant}) lists the local activations and where the voice went`, async () => {
      const { file, truth } = made.get(variant)!;
      const r = await runCli(['replay', file, '--format', 'text', '--no-progress']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("Local assistants' activations (3)");
      const line = r.stdout.split('\n').find((l) => l.startsWith(truth.satellite.mac) && l.includes(iso(truth.wyoming.firstChunkUs)));
      expect(line).toBeDefined();
      expect(line).toContain(variant === 'home' ? 'stayed at home' : `went to ${truth.cloud!.name}`);
    });
  }

  it('a cloud connection opened just before the stream, in a capture that begins mid-session, still counts', async () => {
    const { pcap, truth } = localAssistantPcap('cloud-early');
    const file = join(dir, 'local-cloud-early.pcap');
    writeFileSync(file, pcap);
    const finished: Activation[] = [];
    const collector = buildCollector(loadConfig({}), { onActivation: (a) => finished.push(a) });
    await collector.run(buildSource({ kind: 'file', path: file }, {}));
    const wy = finished.find((a) => a.device === truth.satellite.mac)!;
    // the stream is found without the setup (the satellite's port), and the earlier connection is its
    expect(truth.cloud!.startUs).toBeLessThan(truth.wyoming.firstChunkUs);
    expect(localToReport(wy.local!)).toMatchObject({ voiceDestination: 'cloud', cloud: [{ name: truth.cloud!.name, first: iso(truth.cloud!.startUs) }] });
  });

  it('in process: Activation.local carries the satellite, the server, the audio and the destination; events carry it too', async () => {
    for (const [variant, { file, truth }] of made) {
      const started: Array<{ device: string; destination: VoiceDestination }> = [];
      const finished: Activation[] = [];
      const collector = buildCollector(loadConfig({}), {
        onActivationStarted: (a) => started.push({ device: a.device, destination: a.local!.voiceDestination }),
        onActivation: (a) => finished.push(a),
      });
      await collector.run(buildSource({ kind: 'file', path: file }, {}));
      // announced when the stream started, before the verdict on the voice
      expect(started.map((s) => s.destination)).toEqual(['pending', 'pending', 'pending']);
      const wy = finished.find((a) => a.device === truth.satellite.mac)!;
      const l = wy.local!;
      expect(l.protocol).toBe('wyoming');
      expect(l.assistant).toBe('home-assistant');
      expect(l.audioBytes).toBe(truth.wyoming.audioBytes);
      expect(l.chunks).toBe(truth.wyoming.chunks);
      expect(l.wakeWord).toBe(truth.wyoming.wakeWord);
      const report = localToReport(l);
      expect(report.satellite).toBe(truth.satellite.mac);
      expect(report.server).toBe(truth.server.mac);
      expect(report.voiceDestination).toBe(variant);
      if (variant === 'cloud') {
        expect(report.cloud).toHaveLength(1);
        expect(report.cloud[0]).toMatchObject({ name: truth.cloud!.name, device: truth.server.mac, address: `${truth.cloud!.ip}:443`, first: iso(truth.cloud!.startUs) });
      } else {
        expect(report.cloud).toEqual([]);
      }
      const es = finished.find((a) => a.device === truth.esphome.mac)!.local!;
      expect([es.protocol, es.audioBytes, es.chunks, es.voiceDestination]).toEqual(['esphome', truth.esphomeAudio.audioBytes, truth.esphomeAudio.datagrams, 'home']);
      const rh = finished.find((a) => a.device === truth.rhasspy.mac)!.local!;
      expect([rh.protocol, rh.assistant, rh.audioBytes, rh.chunks, rh.wakeWord, rh.voiceDestination]).toEqual(['hermes', 'rhasspy', truth.rhasspy.audioBytes, truth.rhasspy.frames, truth.rhasspy.wakeWord, 'home']);
      // webhooks and MQTT get the same facts
      const event = activationEvent('finished', wy, () => null);
      expect((event.activation as { local?: { voiceDestination: string } }).local?.voiceDestination).toBe(variant);
      expect(collector.stats().local?.localActivations).toBe(3);
    }
  });
});

describe('local assistants: bounds (what is read from packets is attacker-controlled)', () => {
  it('a flood of connections to a Wyoming port watches at most 1024 of them and counts the rest', () => {
    const collector = buildCollector(loadConfig({}), {});
    const a = { mac: parseMac('02:00:00:00:0a:0a'), ip: parseIp('192.168.1.66') };
    const b = { mac: parseMac('dc:a6:32:10:00:10'), ip: parseIp('192.168.1.10') };
    let t = 1_700_000_000_000;
    for (let port = 20_000; port < 21_500; port++) {
      // a SYN, then a header that is not Wyoming's end: each connection stays open and watched
      const syn = tcpFrame({ srcMac: a.mac, dstMac: b.mac, src: a.ip, dst: b.ip, ttl: 64, ipId: port }, { srcPort: port, dstPort: 10300, seq: 1, ack: 0, flags: TCP_SYN, window: 65535 }, Buffer.alloc(0));
      collector.ingest(syn, 0, syn.length, syn.length, t++, 1);
      const data = tcpFrame({ srcMac: a.mac, dstMac: b.mac, src: a.ip, dst: b.ip, ttl: 64, ipId: port }, { srcPort: port, dstPort: 10300, seq: 2, ack: 1, flags: TCP_ACK, window: 65535 }, Buffer.from('{"type": "audio-chunk", "payload_length": 100000}\n'));
      collector.ingest(data, 0, data.length, data.length, t++, 1);
    }
    const stats = collector.stats().local!;
    expect(stats.watchedFlows).toBe(1024);
    expect(stats.watchedDropped).toBe(1500 - 1024);
    // audio toward a speech service is not a satellite's stream: no activation from it
    expect(stats.localActivations).toBe(0);
  });
});

describeShared('local assistants: none in the real captures', () => {
  it('no real capture makes a local assistant role or a local activation', async () => {
    const files = readdirSync(REAL_CAPTURES).filter((f) => /\.pcap(ng)?$/.test(f)).sort();
    // every capture INDEX.tsv lists (the issue counts 32 with the index; 31 are captures)
    const indexed = readFileSync(join(REAL_CAPTURES, 'INDEX.tsv'), 'utf8').split('\n').slice(1).filter((l) => l.trim() !== '').map((l) => l.split('\t')[0]);
    expect(files).toEqual([...indexed].sort());
    for (const f of files) {
      const activations: Activation[] = [];
      const collector = buildCollector(loadConfig({}), { onActivation: (a) => activations.push(a) });
      await collector.run(buildSource({ kind: 'file', path: join(REAL_CAPTURES, f) }, {}));
      expect(activations.filter((a) => a.local !== null), f).toEqual([]);
      expect(collector.inventory!.all().filter((d) => d.localRoles.size > 0).map((d) => d.macText), f).toEqual([]);
      expect(collector.stats().local?.localActivations, f).toBe(0);
    }
  });
});
