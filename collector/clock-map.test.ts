import { describe, expect, it } from 'vitest';
import { ClockMap } from './clock-map.js';

interface V {
  n: number;
  touched: boolean;
}
const v = (n: number): V => ({ n, touched: false });
const keys = (m: ClockMap<V>) => [...m.entries()].map(([k]) => k);

describe('ClockMap', () => {
  it('keeps the newest max keys, oldest out first', () => {
    const m = new ClockMap<V>(3);
    for (let i = 0; i < 5; i++) m.set(`k${i}`, v(i));
    expect(keys(m)).toEqual(['k2', 'k3', 'k4']);
    expect(m.get('k1')).toBeUndefined();
    expect(m).toMatchObject({ size: 3, evicted: 2 });
  });

  it('a set of a kept key keeps its place; a touched key gets one second chance', () => {
    const m = new ClockMap<V>(3);
    m.set('a', v(1));
    m.set('b', v(2));
    m.set('c', v(3));
    m.set('a', { n: 10, touched: true });
    m.set('d', v(4));
    // a was the oldest but touched: it went to the back, unmarked, and b went
    expect([...m.entries()]).toEqual([['c', v(3)], ['d', v(4)], ['a', v(10)]]);
    m.set('e', v(5));
    m.set('f', v(6));
    expect(keys(m)).toEqual(['a', 'e', 'f']);
    m.set('g', v(7));
    expect(keys(m)).toEqual(['e', 'f', 'g']);
    expect(m.evicted).toBe(4);
  });

  it('matches a plain list model over random sets, touches and growth of its ring', () => {
    // the model: an array, oldest first, shifted and scanned (the obvious O(n) CLOCK)
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (const max of [1, 2, 5, 17, 64]) {
      const m = new ClockMap<V>(max);
      // the model's own marks: the map clears the values' marks as it moves them
      const model: Array<{ key: string; value: V; touched: boolean }> = [];
      let evicted = 0;
      for (let step = 0; step < 5000; step++) {
        const key = `k${rand(max * 3)}`;
        const kept = model.find((e) => e.key === key);
        if (kept !== undefined && rand(2) === 0) {
          kept.value.touched = true;
          kept.touched = true;
          continue;
        }
        const value = v(step);
        m.set(key, value);
        if (kept !== undefined) {
          kept.value = value;
          kept.touched = false;
        } else {
          model.push({ key, value, touched: false });
          while (model.length > max) {
            const oldest = model.shift() as (typeof model)[number];
            if (oldest.touched) {
              oldest.touched = false;
              model.push(oldest);
            } else {
              evicted++;
            }
          }
        }
        expect(keys(m)).toEqual(model.map((e) => e.key));
        // a new key can go at once, when every older one had its second chance due (max 1)
        expect(m.get(key)).toBe(model.some((e) => e.key === key) ? value : undefined);
      }
      expect(m.evicted).toBe(evicted);
      expect(m.size).toBe(model.length);
    }
  });

  it('refuses a bound below one', () => {
    expect(() => new ClockMap<V>(0)).toThrow(/max must be >= 1/);
  });
});
