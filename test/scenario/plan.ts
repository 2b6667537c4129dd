/**
 * How uploads and answers are laid out in time and bytes. Pure functions of the scenario's own fields
 * (and the seed, for answers), so that generateScenario (which records the ground truth and places
 * decoys after answers) and writeScenarioPcap (which renders them) always agree.
 *
 * Upload sizes are exact in frame bytes: a write of p payload bytes costs p plus one header per
 * segment, so not every total is reachable with one write; splitExact spreads a total over the writes
 * with each write's cost reachable and the sum equal to the total, to the byte.
 */
import { TCP_FRAME_OVERHEAD, UDP_FRAME_OVERHEAD } from './packets.js';
import { QUIC_MAX_DATAGRAM } from './quic.js';
import { hashLabel, Rng } from './rng.js';
import { MIN_RECORD } from './tls.js';
import type { ActivationKind, DeviceKind, ScenarioActivation } from './types.js';

/** How a voice channel turns writes into frames. */
export interface Transport {
  /** Payload bytes per packet at most. */
  maxPayload: number;
  /** Header bytes per packet (Ethernet and up). */
  overhead: number;
  /** Smallest write (one TLS record; one QUIC packet's header and tag). */
  minWrite: number;
  /** Smallest last packet of a write. */
  minLast: number;
}

export const TCP_TRANSPORT: Transport = { maxPayload: 1400, overhead: TCP_FRAME_OVERHEAD, minWrite: MIN_RECORD, minLast: 1 };
export const QUIC_TRANSPORT: Transport = { maxPayload: QUIC_MAX_DATAGRAM, overhead: UDP_FRAME_OVERHEAD, minWrite: 40, minLast: 40 };

/** Whether one write can cost exactly `frameBytes`. */
function reachable(t: Transport, frameBytes: number): boolean {
  const packets = Math.ceil(frameBytes / (t.maxPayload + t.overhead));
  const payload = frameBytes - t.overhead * packets;
  const last = payload - t.maxPayload * (packets - 1);
  return packets >= 1 && payload >= t.minWrite && last >= t.minLast && last <= t.maxPayload;
}

/** The payload of a write costing `frameBytes` (which must be reachable). */
export function payloadOf(t: Transport, frameBytes: number): number {
  return frameBytes - t.overhead * Math.ceil(frameBytes / (t.maxPayload + t.overhead));
}

/** The smallest reachable cost not below `frameBytes`. */
function reachableAtLeast(t: Transport, frameBytes: number): number {
  let c = Math.max(Math.round(frameBytes), t.minWrite + t.overhead);
  while (!reachable(t, c)) c++;
  return c;
}

/** Splits `total` frame bytes over writes in proportion to `weights`, every write reachable, the sum exact. */
export function splitExact(t: Transport, total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  let used = 0;
  let wanted = 0;
  for (let i = 0; i < weights.length - 2; i++) {
    wanted += (total * weights[i]) / sum;
    const c = reachableAtLeast(t, wanted - used);
    out.push(c);
    used += c;
  }
  const rest = total - used;
  if (weights.length === 1) {
    if (!reachable(t, rest)) throw new Error(`scenario: ${total} frame bytes cannot be one write`);
    return [rest];
  }
  // the last two writes share what is left, nudged apart until both are reachable
  const half = Math.round((rest * weights[weights.length - 2]) / (weights[weights.length - 2] + weights[weights.length - 1]));
  for (let d = 0; d < 4 * (t.maxPayload + t.overhead); d++) {
    for (const a of [half + d, half - d]) {
      if (reachable(t, a) && reachable(t, rest - a)) return [...out, a, rest - a];
    }
  }
  throw new Error(`scenario: cannot split ${total} frame bytes over ${weights.length} writes (too few bytes for the duration?)`);
}

/** The shape of a device's audio upload over time. */
export type UploadProfile = 'front-loaded' | 'flat';

/** Echos send the buffered wake word and the start of speech at once: the first second is heavier. */
const FRONT_LOAD = 2.5;
const WRITE_INTERVAL_MS = 100;

/** One write of an upload: when (epoch ms, fractional) and its payload bytes. */
export interface PlannedWrite {
  atMs: number;
  payload: number;
}

/**
 * The writes of an upload of exactly `bytesUp` frame bytes from `start` for `durationMs`: one every
 * ~100 ms, the first at the start and the last just before the end.
 */
export function uploadWrites(start: number, durationMs: number, bytesUp: number, profile: UploadProfile, t: Transport): PlannedWrite[] {
  const count = Math.max(2, Math.round(durationMs / WRITE_INTERVAL_MS));
  const span = Math.max(1, durationMs - 5);
  const offsets = Array.from({ length: count }, (_, k) => (k * span) / (count - 1));
  const weights = offsets.map((o) => (profile === 'front-loaded' && o < 1000 ? FRONT_LOAD : 1));
  const costs = splitExact(t, bytesUp, weights);
  return offsets.map((o, k) => ({ atMs: start + o, payload: payloadOf(t, costs[k]) }));
}

/** The profile and transport of each voice device's uploads. */
export function voiceChannel(kind: DeviceKind): { profile: UploadProfile; transport: Transport } {
  if (kind === 'nest') return { profile: 'flat', transport: QUIC_TRANSPORT };
  return { profile: kind === 'echo' ? 'front-loaded' : 'flat', transport: TCP_TRANSPORT };
}

/**
 * Default duration and upload size of an activation, drawn for the device kind (FACTS.md numbers);
 * a duration the caller chose is kept and the size drawn to fit it.
 */
export function defaultUpload(rng: Rng, kind: DeviceKind, activation: ActivationKind, lostArbitration: boolean, durationMs?: number): { durationMs: number; bytesUp: number } {
  if (kind === 'homepod') {
    // a Siri misactivation uploaded 46–47 kB over 5.5–9 s
    const duration = durationMs ?? rng.int(5500, 9000);
    const bytes = rng.int(46000, 47000);
    return { durationMs: duration, bytesUp: durationMs === undefined ? bytes : Math.round((bytes * duration) / 7250) };
  }
  if (kind !== 'echo') {
    // Nest (and any other): a steady 8–15 kB/s for 3–6 s
    const duration = durationMs ?? rng.int(3000, 6000);
    return { durationMs: duration, bytesUp: Math.round((rng.int(8000, 15000) * duration) / 1000) };
  }
  // Echo: 15–30 kB in the first second, then ~8–10 kB/s
  const ranges: Record<ActivationKind, [number, number]> = { command: [3000, 9000], false: [3000, 11000], 'follow-up': [2000, 5000], timer: [2000, 4000] };
  const [min, max] = lostArbitration ? [1000, 3000] : ranges[activation];
  const duration = durationMs ?? rng.int(min, max);
  const seconds = duration / 1000;
  const rate = rng.int(8000, 10000);
  return { durationMs: duration, bytesUp: Math.round(rate * (FRONT_LOAD * Math.min(1, seconds) + Math.max(0, seconds - 1))) };
}

/** The answer the cloud sends after an upload: when it starts, how long, how many payload bytes. */
export interface AnswerPlan {
  start: number;
  durationMs: number;
  bytesDown: number;
}

/** The answer to an activation, drawn from the seed and the activation alone (null: no answer). */
export function answerPlan(seed: number, a: ScenarioActivation, kind: DeviceKind): AnswerPlan | null {
  const rng = new Rng(hashLabel(seed, `answer:${a.device}:${a.start}`));
  const end = a.start + a.durationMs;
  if (a.arbitration === 'lost') return { start: end + rng.int(150, 400), durationMs: 100, bytesDown: rng.int(800, 2000) };
  const sizes: Record<ActivationKind, [number, number]> = {
    command: [20000, 200000], 'follow-up': [20000, 120000], timer: [5000, 20000], false: [2000, 12000],
  };
  const [min, largest] = sizes[a.kind];
  const max = kind === 'homepod' ? Math.min(largest, 80000) : largest;
  const bytesDown = rng.int(min, max);
  return { start: end + rng.int(300, 900), durationMs: Math.max(300, Math.round(bytesDown / 100) + rng.int(0, 600)), bytesDown };
}

/** Splits `bytes` payload bytes into writes of at most `chunk`, each at least one record. */
export function chunks(bytes: number, chunk: number): number[] {
  const out: number[] = [];
  let left = bytes;
  while (left > 0) {
    let size = Math.min(chunk, left);
    if (left - size > 0 && left - size < MIN_RECORD) size -= MIN_RECORD;
    out.push(Math.max(size, MIN_RECORD));
    left -= size;
  }
  return out;
}
