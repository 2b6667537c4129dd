/**
 * A paced replay on a busy machine finds what a replay at full speed finds. While the replay waits for a
 * packet's due time, the wall clock moves the collector's clock (so uploads end on time when nothing
 * comes); a timer that fires late, with the machine busy, used to push that clock past the packet the
 * replay was about to deliver, and the detector then saw a gap the capture does not have (an upload cut
 * short: another score, sometimes another activation). The source now says which packet it holds
 * (heldPacketMs) and the clock stays before it.
 */
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { buildRuntime } from '../runtime.js';
import type { ActivationEvent } from '../sink/events.js';
import { describeShared, realCapture } from '../../test/helpers/shared.js';
import { buildFileSource } from './pcap-file.js';

/** An Echo Dot 2 in normal use (216 s, seven activations): at 36x a replay takes 6 s. */
const CAPTURE = realCapture('amazon-echodot2_normal-use_jhautry.pcap');
const SPEED = 36;

/** Activations of one replay; `busy`: every 60 ms the thread blocks for 250 ms, as on a loaded machine. */
async function activations(speed: number, busy: boolean): Promise<string[]> {
  const runtime = buildRuntime(loadConfig({ flags: {} }), { clock: 'packet', activity: false }, { log: pino({ level: 'silent' }) });
  const finished: ActivationEvent[] = [];
  runtime.addListener({ onActivationEvent: (e) => { if (e.kind === 'finished') finished.push(e); } });
  const source = buildFileSource({ path: CAPTURE, realtimeSpeed: speed }, {});
  // the replay command's ticker: every 100 ms the wall clock moves the collector's clock
  const ticker = speed > 0 ? setInterval(() => runtime.collector.wallTick(Date.now(), speed, source.heldPacketMs?.()), 100) : null;
  const hog = busy ? setInterval(() => { const until = Date.now() + 250; while (Date.now() < until); }, 60) : null;
  try {
    await runtime.run(source);
  } finally {
    if (ticker) clearInterval(ticker);
    if (hog) clearInterval(hog);
  }
  const a = finished.map((e) => e.activation);
  return a.map((x) => `${x.start} ${x.end} ${x.bytesUp} ${x.score} ${x.reasons.join('+')}`);
}

describeShared('a paced replay\'s clock', () => {
  it('a paced replay on a busy machine finds the activations of a replay at full speed, to the byte and score', async () => {
    const reference = await activations(0, false);
    expect(reference.length).toBeGreaterThanOrEqual(5);
    expect(await activations(SPEED, true)).toEqual(reference);
  }, 60_000);

  it('while it waits for a packet, the source names that packet\'s time', async () => {
    const source = buildFileSource({ path: CAPTURE, realtimeSpeed: 1 }, {});
    expect(source.heldPacketMs?.()).toBe(Number.POSITIVE_INFINITY);
    const times: number[] = [];
    const run = source.run((_b, _o, _c, _w, timeMs) => { times.push(timeMs); });
    // the first packet goes out at once; the second (0.5 s of capture later or more) is held
    await new Promise((r) => setTimeout(r, 50));
    const held = source.heldPacketMs?.() as number;
    source.stop();
    await run;
    expect(times.length).toBeGreaterThanOrEqual(1);
    expect(held).toBeGreaterThan(times[times.length - 1]);
    expect(Number.isFinite(held)).toBe(true);
  });
});
