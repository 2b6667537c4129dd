/**
 * The spool: order kept (also across a re-open of the same directory), bound in bytes with the oldest
 * dropped and counted, the newest kept even alone over the bound, half-written files cleaned up, missing
 * files skipped and counted. The memory spool (no directory) behaves the same but for persistence.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool, type Batch } from './spool.js';

const dirs: string[] = [];
function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-spool-test-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A batch of `points` lines whose first line names it, `size` bytes long (before gzip). */
function batch(name: string, points: number, size = 10, gzip = false): Batch {
  const text = Buffer.from([name, ...Array.from({ length: points - 1 }, () => 'x')].join('\n').padEnd(size, '.'));
  return { body: gzip ? gzipSync(text) : text, points, gzip };
}

const nameOf = (b: Batch | null) => (b === null ? undefined : (b.gzip ? gunzipSync(b.body) : b.body).toString().split('\n')[0].replace(/\.+$/, ''));
/** The counters these tests look at. */
const counts = ({ batches, points, bytes, droppedPoints }: Spool['stats']) => ({ batches, points, bytes, droppedPoints });
const gz = (size: number) => batch('b', 2, size, true).body.length;

/** Takes every batch out, oldest first, as the names in their bodies. */
function drain(spool: Spool): string[] {
  const names: string[] = [];
  for (let b = spool.peek(); b !== null; b = spool.peek()) {
    names.push(nameOf(b) as string);
    spool.shift();
  }
  return names;
}

const kinds = [
  { kind: 'disk', open: (maxBytes: number) => new Spool(newDir(), maxBytes) },
  { kind: 'memory', open: (maxBytes: number) => new Spool(null, maxBytes) },
];

for (const { kind, open } of kinds) {
  describe(`${kind} spool`, () => {
    it('gives batches back oldest first, with their points and gzip flag, and counts what waits', () => {
      const spool = open(1000);
      spool.push(batch('a', 1));
      spool.push(batch('b', 2, 20, true));
      spool.push(batch('c', 3));
      expect(spool.persistent).toBe(kind === 'disk');
      expect(spool.size).toBe(3);
      expect(counts(spool.stats)).toEqual({ batches: 3, points: 6, bytes: 20 + gz(20), droppedPoints: 0 });
      expect(spool.peek()).toEqual(batch('a', 1));
      expect(spool.peek()).toEqual(batch('a', 1)); // peek does not take it
      spool.shift();
      expect(spool.peek()).toEqual(batch('b', 2, 20, true));
      expect(drain(spool)).toEqual(['b', 'c']);
      expect(counts(spool.stats)).toEqual({ batches: 0, points: 0, bytes: 0, droppedPoints: 0 });
      expect(spool.peek()).toBeNull();
      spool.shift(); // nothing to take: no change
      expect(spool.size).toBe(0);
    });

    it('over its bound in bytes, drops the oldest batches and counts their points', () => {
      const spool = open(25);
      spool.push(batch('a', 1));
      spool.push(batch('b', 2));
      expect(spool.stats.droppedPoints).toBe(0);
      spool.push(batch('c', 4)); // 30 bytes > 25: a goes
      expect(counts(spool.stats)).toEqual({ batches: 2, points: 6, bytes: 20, droppedPoints: 1 });
      spool.push(batch('d', 8, 15)); // 35 bytes: b goes, then 25 fits
      expect(counts(spool.stats)).toEqual({ batches: 2, points: 12, bytes: 25, droppedPoints: 3 });
      expect(drain(spool)).toEqual(['c', 'd']);
    });

    it('keeps the newest batch even when it alone is over the bound', () => {
      const spool = open(25);
      spool.push(batch('a', 1));
      spool.push(batch('b', 2));
      spool.push(batch('huge', 16, 100));
      expect(counts(spool.stats)).toEqual({ batches: 1, points: 16, bytes: 100, droppedPoints: 3 });
      spool.push(batch('next', 1));
      expect(counts(spool.stats)).toEqual({ batches: 1, points: 1, bytes: 10, droppedPoints: 19 });
      expect(drain(spool)).toEqual(['next']);
    });

    it('keeps order over thousands of batches pushed and taken in turns', () => {
      const spool = open(1e9);
      const taken: string[] = [];
      for (let i = 0; i < 3000; i++) {
        spool.push(batch(`b${i}`, 1));
        if (i % 3 !== 2) continue;
        taken.push(nameOf(spool.peek()) as string);
        spool.shift();
      }
      taken.push(...drain(spool));
      expect(taken).toEqual(Array.from({ length: 3000 }, (_, i) => `b${i}`));
    });
  });
}

describe('disk spool across runs', () => {
  it('a new Spool on the same directory picks the batches up in order, and numbering goes on', () => {
    const dir = newDir();
    const first = new Spool(dir, 1000);
    first.push(batch('a', 1));
    first.push(batch('b', 2, 10, true));
    first.push(batch('c', 3));
    first.shift();
    expect(readdirSync(dir).sort()).toEqual(['000000000002-2.lp.gz', '000000000003-3.lp']);

    const second = new Spool(dir, 1000);
    expect(counts(second.stats)).toEqual({ batches: 2, points: 5, bytes: 10 + gz(10), droppedPoints: 0 });
    expect(second.peek()).toEqual(batch('b', 2, 10, true));
    second.push(batch('d', 4));
    expect(readdirSync(dir).sort()).toEqual(['000000000002-2.lp.gz', '000000000003-3.lp', '000000000004-4.lp']);
    expect(drain(second)).toEqual(['b', 'c', 'd']);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('re-opened with a smaller bound, drops the oldest at once', () => {
    const dir = newDir();
    const first = new Spool(dir, 1000);
    for (const [i, name] of ['a', 'b', 'c'].entries()) first.push(batch(name, i + 1));
    const second = new Spool(dir, 15);
    expect(counts(second.stats)).toEqual({ batches: 1, points: 3, bytes: 10, droppedPoints: 3 });
    expect(readdirSync(dir)).toEqual(['000000000003-3.lp']);
  });

  it('removes batches cut short by a crash (*.tmp), and leaves files it does not know', () => {
    const dir = newDir();
    new Spool(dir, 1000).push(batch('a', 1));
    writeFileSync(join(dir, '000000000002-7.lp.tmp'), 'half a ba');
    writeFileSync(join(dir, 'notes.txt'), 'not a batch');
    const spool = new Spool(dir, 1000);
    expect(readdirSync(dir).sort()).toEqual(['000000000001-1.lp', 'notes.txt']);
    expect(counts(spool.stats)).toEqual({ batches: 1, points: 1, bytes: 10, droppedPoints: 0 });
    expect(drain(spool)).toEqual(['a']);
  });

  it('skips a batch whose file went missing, counting its points as dropped', () => {
    const dir = newDir();
    const spool = new Spool(dir, 1000);
    spool.push(batch('a', 1));
    spool.push(batch('b', 2));
    spool.push(batch('c', 3));
    rmSync(join(dir, '000000000001-1.lp'));
    rmSync(join(dir, '000000000002-2.lp'));
    expect(spool.peek()).toEqual(batch('c', 3));
    expect(counts(spool.stats)).toEqual({ batches: 1, points: 3, bytes: 10, droppedPoints: 3 });
    spool.shift();
    expect(spool.peek()).toBeNull();
  });

  it('a memory spool is gone with its process: a new one starts empty', () => {
    new Spool(null, 1000).push(batch('a', 1));
    expect(counts(new Spool(null, 1000).stats)).toEqual({ batches: 0, points: 0, bytes: 0, droppedPoints: 0 });
  });
});
