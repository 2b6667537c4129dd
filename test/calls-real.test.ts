/**
 * Calls on real captures, tshark the oracle: earshot's STUN/TURN recognition frame by frame against
 * tshark's `stun` and `classicstun` dissectors, and what the whole pipeline makes of a real Teams call
 * set-up and a real Zoom start (a PC each, declared an assistant in `devices:` as a user can).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { buildDecoder } from '../collector/decode/index.js';
import { IPPROTO_UDP } from '../collector/decode/packet.js';
import { buildLocalNets } from '../collector/flow/local-nets.js';
import { classifyStun, STUN_CLASSIC, STUN_MESSAGE, TURN_CHANNEL_DATA } from '../collector/decode/stun.js';
import { readCaptureSimple } from './helpers/read-capture-simple.js';
import { replayReport } from './helpers/replay.js';
import { describeShared, haveShared, REAL_CAPTURES, realCapture, SHARED } from './helpers/shared.js';

const TEAMS = 'teams_dns-cname-sni_ndpi.pcap';
const ZOOM = 'zoom_qinq-vlan-sni_ndpi.pcapng';
/** The PCs of the two captures (eth.src of their STUN requests, read with tshark). */
const TEAMS_PC = '28:37:37:00:6d:c8';

/** Frame numbers tshark's display filter selects. */
function tsharkFrames(file: string, filter: string, field = 'frame.number'): string[] {
  let out: string;
  try {
    out = execFileSync('tshark', ['-r', file, '-Y', filter, '-T', 'fields', '-e', field], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    // a capture cut short: tshark exits 2 after printing what it read (as earshot reads it)
    const e = err as { status?: number; stdout?: string; stderr?: string };
    if (e.status !== 2 || !/cut short/.test(e.stderr ?? '')) throw err;
    out = e.stdout ?? '';
  }
  return out.split('\n').filter((l) => l !== '');
}

/** Frame numbers earshot's classifier gives each kind, over the UDP packets of a capture. */
function ourFrames(file: string): { stun: string[]; classic: string[] } {
  const decoder = buildDecoder();
  const local = buildLocalNets([]);
  const stun: string[] = [];
  const classic: string[] = [];
  let frame = 0;
  for (const r of readCaptureSimple(file)) {
    frame++;
    const p = decoder.decode(r.buf, r.offset, r.capLen, r.wireLen, r.timeMs, r.linkType);
    if (p === null || p.proto !== IPPROTO_UDP || p.srcPort < 0 || p.payloadLength === 0) continue;
    // the remote side's port: the STUN/TURN server's, or the peer's
    const remotePort = local.isLocal(p.ipVersion, p.srcAddr) ? p.dstPort : p.srcPort;
    const kind = classifyStun(p.payloadBuf, p.payloadOffset, p.payloadLength, remotePort);
    if (kind === STUN_MESSAGE || kind === TURN_CHANNEL_DATA) stun.push(String(frame));
    else if (kind === STUN_CLASSIC) classic.push(String(frame));
  }
  return { stun, classic };
}

const files = haveShared() ? readdirSync(REAL_CAPTURES).filter((f) => /\.pcap(ng)?$/.test(f)).sort() : [];

describeShared('calls on real captures (tshark the oracle)', () => {
  it('the Teams capture: the same STUN frames as tshark (55 messages, 2 MS-TURN ChannelData) and the same 6 classic STUN', () => {
    const file = realCapture(TEAMS);
    const ours = ourFrames(file);
    const stun = tsharkFrames(file, 'stun');
    expect(stun).toHaveLength(57);
    expect(ours.stun).toEqual(stun);
    expect(ours.classic).toEqual(tsharkFrames(file, 'classicstun'));
    expect(ours.classic).toHaveLength(6);
  });

  it('every real capture: STUN frames equal tshark\'s', () => {
    expect(files.length).toBeGreaterThanOrEqual(30);
    for (const name of files) {
      const file = realCapture(name);
      expect(ourFrames(file).stun, name).toEqual(tsharkFrames(file, 'stun'));
    }
  });

  it('the Teams call set-up through the pipeline: every STUN message counted, no call (0.5 s of media before the capture ends), no activation', async () => {
    const file = realCapture(TEAMS);
    const report = await replayReport(file, { env: { EARSHOT_DEVICES: JSON.stringify({ [TEAMS_PC]: { assistant: true } }) } });
    expect(report.devices.find((d) => d.mac === TEAMS_PC)?.assistant).toBe(true);
    // STUN messages (with a type; ChannelData has none) of the PC, which is on every STUN packet
    expect(report.stats.stunPackets).toBe(tsharkFrames(file, 'stun.type').length);
    // the RTP starts 0.5 s before the last packet (tshark: rtp-like frames after 25.1 s of 25.6 s)
    expect(report.calls).toEqual([]);
    expect(report.activations).toEqual([]);
  });

  it('the Zoom start: its exchanges with 3478/3479 (not STUN for tshark) and a one-way 1.4-s burst to 8801 make no call', async () => {
    const file = realCapture(ZOOM);
    // the PC that sends to 3478 and 8801
    const pc = tsharkFrames(file, 'ip.src == 192.168.1.117 && udp.dstport == 8801', 'eth.src')[0];
    const report = await replayReport(file, { env: { EARSHOT_DEVICES: JSON.stringify({ [pc]: { assistant: true } }) } });
    expect(report.devices.find((d) => d.mac === pc)?.assistant).toBe(true);
    expect(report.stats.stunPackets).toBe(tsharkFrames(file, 'stun.type && ip.addr == 192.168.1.117').length);
    expect(report.calls).toEqual([]);
  });

  it('no call on the assistants\' real captures (Echo X-ray, Echo Dot 2, Echo Dot 3; the CIC IoT 2022 Echo Dot, Echo Spot and Nest Mini declared)', async () => {
    const assistants = files.filter((f) => f.startsWith('amazon-echo'));
    expect(assistants.length).toBeGreaterThanOrEqual(5);
    for (const name of assistants) {
      const report = await replayReport(realCapture(name));
      expect(report.devices.some((d) => d.assistant), name).toBe(true);
      expect(report.calls, name).toEqual([]);
    }
    // MACs from the folder's README; the Nest Mini's voice is QUIC on 443
    const cic = join(SHARED, 'captures', 'cic-iot-2022-rebuilt');
    const devices = JSON.stringify({ 'a0:d0:dc:c4:08:ff': { assistant: true }, '1c:12:b0:9b:0c:ec': { assistant: true }, 'cc:f4:11:9c:d0:00': { assistant: true } });
    const captures = readdirSync(cic, { recursive: true, encoding: 'utf8' }).filter((f) => /\.pcap(ng)?$/.test(f));
    expect(captures.length).toBe(30);
    for (const name of captures) {
      const report = await replayReport(join(cic, name), { env: { EARSHOT_DEVICES: devices } });
      expect(report.calls, name).toEqual([]);
      expect(report.stats.callsRejected, name).toBe(0);
    }
  });
});
