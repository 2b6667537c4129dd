/**
 * The stream detector on packet shapes read from the labelled captures (docs/detection.md): an Echo Dot's
 * short command (a pre-roll of full-size frames, then a 172–332-byte record every ~15 ms), a Nest Mini's
 * QUIC upload, an Echo Spot's volume change (24 kB of full-size frames in half a second), an event post,
 * keepalives. Packet times are exact, so start and alert delays are checked to the millisecond.
 */
import { describe, expect, it } from 'vitest';
import { parseAddr } from '../flow/local-nets.js';
import { Flow } from '../flow/flow.js';
import { buildDetector, type Activation } from './detector.js';

const MAC = 0xa0d0dcc408ff;
const OTHER = 0x1c12b09b0cec;
const T0 = 1_633_627_600_000;

function flowOf(mac = MAC, service: string | null = 'voice', port = 46856): Flow {
  const f = new Flow(1, 6, 4, 0, T0, parseAddr('192.168.137.167')!.words, port, parseAddr('52.119.197.96')!.words, 443);
  f.deviceMac = mac;
  f.service = service;
  return f;
}

type Packet = [timeMs: number, bytes: number, up?: boolean, seq?: number];

/** An Echo Dot command at `atMs` (from T0): a 15-kB pre-roll in 3 ms, then a record every 20 ms for `streamMs`. */
function command(atMs: number, streamMs = 1900, stallMs = 0): Packet[] {
  const p: Packet[] = [[atMs, 350]];
  for (let i = 0; i < 10; i++) p.push([atMs + 1 + i * 0.3, 1514]);
  for (let i = 0, t = 10 + stallMs; t < streamMs + stallMs; t += 20, i++) p.push([atMs + t, i % 4 === 0 ? 332 : 172]);
  return p;
}

/** A volume change / event post: `bytes` of full-size frames within `spanMs`. */
function bulk(atMs: number, bytes: number, spanMs = 20): Packet[] {
  const n = Math.ceil(bytes / 1514);
  return Array.from({ length: n }, (_, i) => [atMs + (i * spanMs) / n, 1514] as Packet);
}

interface Run { started: Array<[Activation, number]>; finished: Array<[Activation, number]>; learned: Flow[]; det: ReturnType<typeof buildDetector> }

/** Feeds packets (sorted) with wall-clock ticks every 250 ms in between, as a live collector has them. */
function run(packets: Packet[], untilMs: number, flow = flowOf(), ticks = true): Run {
  const started: Array<[Activation, number]> = [];
  const finished: Array<[Activation, number]> = [];
  const learned: Flow[] = [];
  let now = T0;
  const det = buildDetector(() => 'amazon', {
    onStarted: (a) => started.push([a, now]),
    onFinished: (a) => finished.push([a, now]),
    onVoiceFlow: (f) => learned.push(f),
  });
  const sorted = [...packets].sort((a, b) => a[0] - b[0]);
  let next = 0;
  for (let ms = 0; ms <= untilMs; ms += 250) {
    while (next < sorted.length && sorted[next][0] <= ms) {
      const [t, bytes, up, seq] = sorted[next++];
      now = T0 + t;
      det.onPacket(flow, up ?? true, bytes, T0 + t, seq ?? -1);
    }
    now = T0 + ms;
    if (ticks) det.tick(now);
  }
  while (next < sorted.length) det.onPacket(flow, sorted[next][2] ?? true, sorted[next][1], T0 + sorted[next][0], sorted[next++][3] ?? -1);
  det.flush();
  return { started, finished, learned, det };
}

describe('stream detector', () => {
  it('finds a short Echo Dot command (~28 kB over 2 s): started within 1.5 s of its first packet, finished within 2 s of its end', () => {
    const { started, finished } = run(command(5000), 20_000);
    expect(finished).toHaveLength(1);
    const [a, at] = finished[0];
    expect(a.startMs).toBe(T0 + 5000);
    expect(a.bytesUp).toBeGreaterThan(25_000);
    expect(a.bytesUp).toBeLessThan(40_000);
    expect(started[0][1] - a.startMs).toBeLessThanOrEqual(1500);
    expect(at - a.endMs).toBeLessThanOrEqual(2000);
    expect(a.reasons).toEqual(['sustained-upload']);
  });

  it('volume changes, event posts and keepalives are not activations, whatever their bytes', () => {
    const packets = [
      ...[0, 30_000, 60_000, 90_000].map((t): Packet => [t, 154]),
      ...bulk(10_000, 24_000, 500), // Echo Spot volume change: 2 slots
      ...bulk(40_000, 35_000, 150), // event post after an answer
      ...bulk(70_000, 11_500, 900).map(([t]): Packet => [t, 1046]), // Nest volume change: 7 slots
    ];
    const { finished, det } = run(packets, 100_000);
    expect(finished).toHaveLength(0);
    expect(det.stats.activations).toBe(0);
  });

  it('a pre-roll, a stalled second and then the stream are one activation from the pre-roll', () => {
    const { finished } = run(command(5000, 1800, 1200), 20_000);
    expect(finished).toHaveLength(1);
    expect(finished[0][0].startMs).toBe(T0 + 5000);
  });

  it('a TCP stream the network stalls right after its pre-roll counts the slots spent in loss recovery: it alerts before the stream resumes', () => {
    // as in Kennedy et al.'s "what time is sunset": 0.7 s of pre-roll and stream, then retransmission
    // timeouts (the same segment again at 0.9 s and 1.5 s), the stream going on at 2.6 s
    const seqd = (packets: Packet[], stalled: Packet[] = []): Packet[] => {
      let seq = 1000;
      const out = packets.map(([t, b]) => { const p: Packet = [t, b, true, seq]; seq += b - 54; return p; });
      return [...out, ...stalled.map(([t, b]) => [t, b, true, 1000] as Packet)];
    };
    const pre = command(0, 700).filter(([t]) => t < 700);
    const after = command(2600, 1500).slice(11);
    const packets = seqd([...pre, ...after], [[900, 1514], [1500, 1514]]);
    const { started } = run(packets, 10_000);
    expect(started).toHaveLength(1);
    expect(started[0][0].startMs).toBe(T0);
    expect(started[0][1] - T0).toBeLessThanOrEqual(2000);
    // the same packets without sequence numbers (UDP) wait for the stream
    const udp = run(packets.map(([t, b]) => [t, b] as Packet), 10_000);
    expect(udp.started[0][1] - T0).toBeGreaterThan(2600);
    // a 10-kB post over three slots the network stalls for a second is still not a stream: the credit is capped at its busy slots
    const post = seqd(bulk(0, 10_000, 250), [[600, 1514], [1200, 1514], [1900, 1514]]);
    expect(run(post, 10_000).started).toEqual([]);
  });

  it('commands 15 s apart are two; one within 8 s of the last is a follow-up', () => {
    const { finished } = run([...command(5000), ...command(20_000), ...command(28_500)], 45_000);
    expect(finished.map(([a]) => [a.startMs - T0, a.reasons.includes('follow-up')])).toEqual([[5000, false], [20_000, false], [28_500, true]]);
  });

  it('a QUIC upload of 200 kB in 2.2 s is voice; 2 MB in 2 s is a bulk transfer', () => {
    const nest: Packet[] = [];
    for (let t = 0; t < 2200; t += 7) nest.push([3000 + t, 1392]);
    expect(run(nest, 10_000).finished).toHaveLength(1);
    const bulkUp: Packet[] = [];
    for (let t = 0; t < 2000; t += 0.7) bulkUp.push([3000 + t, 1514]);
    const r = run(bulkUp, 10_000);
    expect(r.finished).toHaveLength(0);
    expect(r.det.stats.rejectedBursts).toBe(1);
  });

  it('an unnamed connection is learned as the voice channel by the stream it carries, not by a volume change', () => {
    const flow = flowOf(MAC, null);
    const quiet = run(bulk(2000, 24_000, 500), 10_000, flow);
    expect([quiet.finished.length, quiet.learned.length]).toEqual([0, 0]);
    const voice = run(command(2000), 10_000, flowOf(MAC, null));
    expect(voice.finished).toHaveLength(1);
    expect(voice.learned).toHaveLength(1);
  });

  it('a stream that stops after a second on the voice channel is an aborted wake; on an unnamed connection it is nothing', () => {
    const short = command(5000, 700);
    const onVoice = run(short, 15_000).finished;
    expect(onVoice.map(([a]) => a.reasons)).toEqual([['sustained-upload', 'aborted-wake']]);
    expect(run(short, 15_000, flowOf(MAC, null)).finished).toHaveLength(0);
  });

  it('a stream that goes on for minutes ends as a long stream once, and starts nothing more until it stops', () => {
    const packets: Packet[] = [];
    for (let t = 1000; t < 181_000; t += 20) packets.push([t, 300]);
    const { finished } = run(packets, 190_000);
    expect(finished).toHaveLength(1);
    expect(finished[0][0].reasons).toContain('long-stream');
    expect(finished[0][0].endMs - finished[0][0].startMs).toBeLessThanOrEqual(61_000);
  });

  it("a steady background (a 1.4-kB packet every half second) is not an upload; a command on it is, from the command's start", () => {
    const background: Packet[] = [];
    for (let t = 0; t < 130_000; t += 500) background.push([t, 1400]);
    expect(run(background, 135_000).finished).toHaveLength(0);
    const { finished } = run([...background, ...command(100_000)], 135_000);
    expect(finished).toHaveLength(1);
    expect(Math.abs(finished[0][0].startMs - (T0 + 100_000))).toBeLessThanOrEqual(500);
    // and it ends with the command, when the background's scattered packets are all that is left
    expect(finished[0][0].endMs - (T0 + 100_000)).toBeLessThan(3000);
    expect(finished[0][0].reasons).not.toContain('long-stream');
  });

  it('the answer coming down and pure ACKs are not upload', () => {
    const down: Packet[] = [];
    for (let t = 0; t < 5000; t += 10) down.push([1000 + t, 1514, false], [1000 + t + 1, 66, true]);
    expect(run(down, 10_000).finished).toHaveLength(0);
  });

  it('the same packets give the same activations with or without wall-clock ticks', () => {
    const packets = [...command(5000), ...bulk(12_000, 20_000), ...command(40_000, 2500, 1100)];
    const key = (r: Run) => r.finished.map(([a]) => [a.id, a.bytesUp, a.endMs, a.reasons.join()]);
    expect(key(run(packets, 60_000, flowOf(), false))).toEqual(key(run(packets, 60_000)));
  });

  it('two assistants: one that stops after a second while the other answers lost arbitration', () => {
    const started: Activation[] = [];
    const det = buildDetector(() => 'amazon', { onStarted: (a) => started.push(a) });
    const a = flowOf(MAC);
    const b = flowOf(OTHER, 'voice', 40000);
    const pa = command(5000, 2500);
    const pb = command(5300, 700);
    const all = [...pa.map((p) => [a, p] as const), ...pb.map((p) => [b, p] as const)].sort((x, y) => x[1][0] - y[1][0]);
    for (const [f, [t, bytes]] of all) det.onPacket(f, true, bytes, T0 + t);
    det.flush();
    const loser = started.find((x) => x.deviceMac === OTHER);
    expect(loser?.reasons).toEqual(['sustained-upload', 'arbitration-loser']);
  });
  it('a stream a stall cut short is an activation when its answer comes down; a post with a small reply is not', () => {
    // 1 s of stream, then silence (TCP stalled), then 6 kB of spoken answer 2.3 s after its last packet
    const stalled = [...command(5000, 1000), ...Array.from({ length: 5 }, (_, i): Packet => [8300 + i * 40, 1300, false])];
    const { finished, started } = run(stalled, 20_000, flowOf(MAC, 'voice'));
    expect(finished.map(([a]) => [a.startMs - T0, a.reasons])).toEqual([[5000, ['sustained-upload', 'answered']]]);
    // alerted as the answer came, not at the end of the window
    expect(started[0][1] - T0).toBeLessThanOrEqual(8300 + 4 * 40 + 250);
    // the same on the maker's connection open before capture (not yet known as voice)
    const candidate = flowOf(MAC, null);
    candidate.vendor = 'amazon';
    expect(run(stalled, 20_000, candidate).finished).toHaveLength(1);
    // a volume change's 7 slots of posts with 3 kB back is nothing, even on the voice channel
    const post: Packet[] = [...bulk(5000, 11_500, 900).map(([t]): Packet => [t, 1046]), [6200, 1500, false], [6300, 1500, false]];
    expect(run(post, 20_000).finished).toHaveLength(0);
  });
  it('forged devices do not grow its memory without end: 10,000 MACs leave at most 4,096 remembered', () => {
    const det = buildDetector(() => 'amazon', {});
    for (let i = 0; i < 10_000; i++) det.onPacket(flowOf(0x0200_0000_0000 + i, null), true, 300, T0 + i);
    det.flush();
    expect(det.stats.devices).toBeLessThanOrEqual(4096);
  });
});
