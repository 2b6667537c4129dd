/**
 * The report's spill (sink/spill.ts): the newest `max` lines come back in order from segment files on
 * a real disk, old segments are deleted so the disk holds at most max + max/8 lines, the directory
 * goes away on close (and a killed run's on the next run's first write), and a full disk (a real
 * tmpfs) costs one warning and no line: what cannot be written stays in memory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/temp.js';
import { canMount, Tmpfs } from '../../test/helpers/tmpfs.js';
import { SpillDir } from './spill.js';
import { heapUsed } from '../../test/helpers/heap.js';

/** Line `i`: varied length, multi-byte characters (which chunked reads must not cut), no newline. */
const line = (i: number) => `${i} ${'é'.repeat(i % 7)}🔊${'x'.repeat((i * 37) % 300)}`;

/** Every line in the spill directory's files, and how many files. */
function onDisk(dir: string): { lines: number; files: number } {
  let lines = 0;
  const files = readdirSync(dir);
  for (const f of files) lines += readFileSync(join(dir, f), 'utf8').split('\n').length - 1;
  return { lines, files: files.length };
}

describe('spill ring', () => {
  it('gives back the newest max lines in order, with at most max + max/8 on disk', () => {
    const base = tempDir('earshot-spill-test-');
    const warnings: string[] = [];
    const spill = new SpillDir(base, (m) => warnings.push(m));
    const ring = spill.ring('flows', 1000);
    let most = 0;
    for (let i = 0; i < 20_000; i++) {
      ring.push(line(i));
      if (i % 97 === 0 && spill.dir !== null) most = Math.max(most, onDisk(spill.dir).lines);
    }
    const expected = Array.from({ length: 1000 }, (_, k) => line(19_000 + k));
    expect([...ring.lines()]).toEqual(expected);
    // read twice (the text report and the JSON one), and more lines after that
    expect([...ring.lines()]).toEqual(expected);
    ring.push(line(20_000));
    expect([...ring.lines()]).toEqual([...expected.slice(1), line(20_000)]);
    expect(ring.dropped).toBe(19_001);
    expect(most).toBeGreaterThanOrEqual(1000);
    expect(most).toBeLessThanOrEqual(1125);
    expect(warnings).toEqual([]);
    const dir = spill.dir as string;
    expect(dir.startsWith(join(base, `earshot-spill-${process.pid}-`))).toBe(true);
    spill.close();
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(base)).toEqual([]);
  });

  it('keeps lines in memory without a directory, and keeps nothing with max 0', () => {
    const spill = new SpillDir(null);
    const ring = spill.ring('dns', 3);
    const none = spill.ring('flows', 0);
    for (let i = 0; i < 5; i++) {
      ring.push(line(i));
      none.push(line(i));
    }
    expect([...ring.lines()]).toEqual([line(2), line(3), line(4)]);
    expect([...none.lines()]).toEqual([]);
    expect([ring.dropped, none.dropped, spill.dir]).toEqual([2, 5, null]);
  });

  it('keeps a line in memory as one string, not as the rope of pieces it was built from (~2 KB for a flow\'s)', () => {
    const ring = new SpillDir(null).ring('flows', 20_000);
    const built = (i: number) => {
      let s = `{"id":${i},`;
      for (let k = 0; k < 30; k++) s += `"k${k}":"${i % 7}",`;
      return `${s}"z":1}`; // 309 characters in 62 pieces
    };
    const before = heapUsed();
    for (let i = 0; i < 20_000; i++) ring.push(built(i));
    const perLine = (heapUsed() - before) / 20_000;
    expect(perLine).toBeLessThan(600);
    expect([...ring.lines()][19_999]).toBe(built(19_999));
  });

  it('removes the spill a killed run left, not one of a process still running', () => {
    const base = tempDir('earshot-spill-test-');
    // a pid that was alive and is gone now
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    mkdirSync(join(base, `earshot-spill-${dead}-abc123`));
    writeFileSync(join(base, `earshot-spill-${dead}-abc123`, 'flows-1.jsonl'), 'x\n');
    mkdirSync(join(base, 'earshot-spill-1-alive')); // pid 1 runs
    mkdirSync(join(base, 'other'));
    const spill = new SpillDir(base);
    const ring = spill.ring('flows', 1);
    ring.push('a');
    expect([...ring.lines()]).toEqual(['a']);
    expect(readdirSync(base).sort()).toEqual(['earshot-spill-1-alive', (spill.dir as string).slice(base.length + 1), 'other'].sort());
    spill.close();
  });
});

describe.skipIf(!canMount())('spill ring on a full disk (tmpfs)', () => {
  let fs: Tmpfs;
  beforeAll(() => {
    fs = Tmpfs.mount(256);
  });
  afterAll(() => fs.unmount());

  it('says once that the disk is full and keeps every line, in order: what could not be written stays in memory', () => {
    const warnings: string[] = [];
    const spill = new SpillDir(fs.dir, (m) => warnings.push(m));
    const flows = spill.ring('flows', 10_000);
    const dns = spill.ring('dns', 10_000);
    // ~1.1 MB of lines into 256 KB
    for (let i = 0; i < 6000; i++) {
      flows.push(line(i));
      dns.push(`dns ${i}`);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`^the report's records cannot be spilled to disk \\(${fs.dir}/earshot-spill-\\d+-\\w+/flows-\\d+\\.jsonl: ENOSPC\\): they are kept in memory for the rest of the run$`));
    expect([...flows.lines()]).toEqual(Array.from({ length: 6000 }, (_, i) => line(i)));
    expect([...dns.lines()]).toEqual(Array.from({ length: 6000 }, (_, i) => `dns ${i}`));
    // the disk holds only whole lines (a cut line was taken back)
    const dir = spill.dir as string;
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8')).toMatch(/(^|\n)$/);
    spill.close();
    expect(readdirSync(fs.dir)).toEqual([]);
  });
});
