/**
 * The scenario generator's only source of chance: mulberry32, seeded, forked by label. Each device and
 * each activation draws from its own fork, so adding a device to a scenario does not move the packets
 * of the others, and the same seed always gives the same bytes.
 */

/** A small deterministic random source with the draws the generator needs. */
export class Rng {
  private state: number;

  constructor(private readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform float in [0, 1) (mulberry32). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** A uniform float in [min, max). */
  float(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** A uniform integer in [min, max] (both included). */
  int(min: number, max: number): number {
    return min + Math.floor((max - min + 1) * this.next());
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** `length` random bytes (the stand-in for ciphertext). */
  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let i = 0;
    for (; i + 4 <= length; i += 4) out.writeUInt32LE((this.next() * 4294967296) >>> 0, i);
    for (; i < length; i++) out[i] = (this.next() * 256) | 0;
    return out;
  }

  /** `digits` random lower-case hex digits. */
  hex(digits: number): string {
    return this.bytes(Math.ceil(digits / 2)).toString('hex').slice(0, digits);
  }

  /** An independent stream for a sub-task: depends on the seed and label only, not on earlier draws. */
  fork(label: string): Rng {
    return new Rng(hashLabel(this.seed, label));
  }
}

/** FNV-1a over the label, mixed with a seed: the seed of a forked stream. */
export function hashLabel(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
