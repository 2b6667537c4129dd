/**
 * A map bounded to `max` keys that evicts the oldest inserted key, with a second chance for a key
 * whose value was marked `touched` since (the CLOCK approximation of least recently used): such a
 * key goes to the back, unmarked, instead. Each mark buys at most one move, so eviction costs O(1)
 * amortised, however the marks are spread.
 *
 * Why not a Map alone, evicting `map.keys().next()`: V8's Map leaves a hole for each deleted key until
 * it rebuilds its table, and finding the first key walks the holes, so a full Map used as a queue costs
 * O(holes) per eviction: ~9 us at 10,000 keys and ~26 us at 50,000 on this project's bench machine.
 * The DNS cache did that twice per answer: forged DNS answers with new names at ~600 packets/s of 30
 * answers held the pipeline's thread (a 20,000-packet replay took 34 s). Here the order lives in a
 * ring of keys beside the Map, which only ever deletes the key the ring hands it.
 */
export interface Touchable {
  touched: boolean;
}

export class ClockMap<V extends Touchable> {
  private readonly map = new Map<string, V>();
  /** The keys, oldest first, from `head` on (circular); every key of the map once. */
  private ring: string[] = new Array<string>(16);
  private head = 0;
  /** Keys evicted so far. */
  evicted = 0;

  constructor(readonly max: number) {
    if (!(max >= 1)) throw new RangeError(`ClockMap: max must be >= 1, got ${max}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  /**
   * Sets `key`; a key already kept keeps its place (mark the value `touched` for a second chance). A
   * new key goes to the back, and the oldest go until `max` are left.
   */
  set(key: string, value: V): void {
    const size = this.map.size;
    this.map.set(key, value);
    if (this.map.size === size) return;
    this.push(key);
    while (this.map.size > this.max) this.evictOne();
  }

  /** The entries, oldest first (the order eviction takes them in; a save and load keeps it). */
  *entries(): Generator<[string, V]> {
    const n = this.map.size;
    for (let i = 0; i < n; i++) {
      const key = this.ring[(this.head + i) % this.ring.length];
      yield [key, this.map.get(key) as V];
    }
  }

  private push(key: string): void {
    // map.size already counts the key: it is the ring's length after the push
    const n = this.map.size;
    if (n > this.ring.length) {
      const bigger = new Array<string>(Math.max(16, this.ring.length * 2));
      for (let i = 0; i < n - 1; i++) bigger[i] = this.ring[(this.head + i) % this.ring.length];
      this.ring = bigger;
      this.head = 0;
    }
    this.ring[(this.head + n - 1) % this.ring.length] = key;
  }

  private evictOne(): void {
    const key = this.ring[this.head];
    const value = this.map.get(key) as V;
    if (value.touched) {
      // to the back: the slot it leaves at the head is the one after the last key
      value.touched = false;
      this.head = (this.head + 1) % this.ring.length;
      this.ring[(this.head + this.map.size - 1) % this.ring.length] = key;
      return;
    }
    this.map.delete(key);
    this.head = (this.head + 1) % this.ring.length;
    this.evicted++;
  }
}
