import { describe, expect, it } from 'vitest';
import { parseAddr } from '../flow/local-nets.js';
import { Flow } from '../flow/flow.js';
import { buildDetector, type Activation } from './detector.js';

const MAC = 0xc49500e3932f;
const T0 = 1_540_179_990_000;

function voiceFlow(): Flow {
  const f = new Flow(1, 6, 4, 0, T0, parseAddr('10.63.7.79')!.words, 39986, parseAddr('52.94.240.174')!.words, 443);
  f.deviceMac = MAC;
  f.service = 'voice';
  return f;
}

/** Feeds per-second upload sizes (bytes) starting at `startS`, as 1400-byte packets spread over each second. */
function feed(det: ReturnType<typeof buildDetector>, flow: Flow, startS: number, perSecond: number[]): void {
  perSecond.forEach((bytes, i) => {
    const n = Math.ceil(bytes / 1400);
    for (let k = 0; k < n; k++) {
      const t = T0 + (startS + i) * 1000 + 100 + k * (800 / Math.max(1, n));
      det.onPacket(flow, true, Math.min(1400, bytes - k * 1400), t);
      det.tick(t);
    }
  });
}

function run(perSecondAt: Array<[number, number[]]>, untilS: number) {
  const started: Array<[Activation, number]> = [];
  const finished: Array<[Activation, number]> = [];
  let now = T0;
  const det = buildDetector(() => 'amazon', {
    onStarted: (a) => started.push([a, now]),
    onFinished: (a) => finished.push([a, now]),
  });
  const flow = voiceFlow();
  // wall-clock ticks every 250 ms between the packets, as a live collector has them
  const events = perSecondAt.sort((a, b) => a[0] - b[0]);
  let next = 0;
  for (let ms = 0; ms <= untilS * 1000; ms += 250) {
    now = T0 + ms;
    while (next < events.length && events[next][0] * 1000 <= ms) {
      feed(det, flow, events[next][0], events[next][1]);
      next++;
    }
    det.tick(now);
  }
  det.flush();
  return { started, finished, det };
}

describe('activation detector', () => {
  it('finds a command: 20 kB then ~10 kB/s; started within 2 s of its start, finished within 2 s of its end', () => {
    const { started, finished } = run([[5, [21_000, 10_000, 10_000, 9_000]]], 20);
    expect(finished).toHaveLength(1);
    const [a, at] = finished[0];
    expect(a.bytesUp).toBeGreaterThanOrEqual(49_000);
    expect(a.startMs).toBeCloseTo(T0 + 5100, -1);
    expect(started[0][1] - a.startMs).toBeLessThanOrEqual(2000);
    expect(at - a.endMs).toBeLessThanOrEqual(2000 + 250);
    expect(a.reasons).toContain('sustained-upload');
  });

  it('keepalives and one-second event posts are not activations', () => {
    const keepalives: Array<[number, number[]]> = [0, 30, 60, 90].map((s) => [s, [150]]);
    const { finished, det } = run([...keepalives, [40, [35_000]], [70, [12_000, 1_500]]], 100);
    expect(finished).toHaveLength(0);
    expect(det.stats.rejectedBursts).toBeGreaterThanOrEqual(2);
  });

  it('a pause of one second stays one activation; a strong second after a pause is a new one', () => {
    const merged = run([[5, [22_000]], [7, [8_000, 27_000, 10_000]]], 20).finished;
    expect(merged).toHaveLength(1);
    expect(merged[0][0].bytesUp).toBeGreaterThan(60_000);
    // 13/11 kB (an answer's event post), a quiet second, then a command: only the command counts
    const split = run([[5, [13_000, 11_000]], [8, [28_000, 10_000, 9_000]]], 20).finished;
    expect(split).toHaveLength(1);
    expect(split[0][0].startMs).toBeGreaterThanOrEqual(T0 + 8000);
  });

  it('marks an upload right after the previous one as a follow-up', () => {
    const { finished } = run([[5, [20_000, 10_000, 10_000]], [13, [20_000, 10_000, 9_000]], [60, [20_000, 10_000, 9_000]]], 80);
    expect(finished.map(([a]) => a.reasons.includes('follow-up'))).toEqual([false, true, false]);
  });

  it('the same packets give the same activations with or without wall-clock ticks', () => {
    const withTicks = run([[5, [21_000, 10_000, 10_000]], [40, [25_000, 10_000]]], 60).finished.map(([a]) => [a.id, a.bytesUp, a.endMs]);
    const got: Activation[] = [];
    const det2 = buildDetector(() => 'amazon', { onFinished: (a) => got.push(a) });
    const flow = voiceFlow();
    feed(det2, flow, 5, [21_000, 10_000, 10_000]);
    feed(det2, flow, 40, [25_000, 10_000]);
    det2.flush();
    expect(got.map((a) => [a.id, a.bytesUp, a.endMs])).toEqual(withTicks);
  });

  it("adapts to a device's own idle baseline: a steady 2.5 kB/s background is not an upload, a command on it is", () => {
    const background: Array<[number, number[]]> = [[0, Array(120).fill(2_500)]];
    const { finished } = run([...background, [0, []]], 130);
    expect(finished).toHaveLength(0);
    const withCommand = run([[0, [...Array(100).fill(2_500), 22_500, 12_500, 12_500, 11_500, ...Array(20).fill(2_500)]]], 130).finished;
    expect(withCommand).toHaveLength(1);
    expect(withCommand[0][0].startMs).toBeGreaterThanOrEqual(T0 + 100_000);
  });
});
