/**
 * The journal of labels and wake events: what was appended loads again; a damaged line (a torn append,
 * a flipped byte, NUL padding) is quarantined with a warning naming the file, the good lines kept; the
 * file stays bounded; on a full file system (a real tmpfs) an append fails whole, leaves the file as it
 * was, and works again once there is room.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/temp.js';
import { Journal, NotSavedError, parseSavedLabel, parseSavedWakeEvent, savedWakeEvent, type SavedLabel } from './journal.js';
import { MAX_WAKE_SOURCE_LENGTH, type WakeEvent } from './wake-events.js';

/** A label journal over a Map, as the runtime keeps it. */
function labelJournal(dir: string, max = 100) {
  const labels = new Map<string, SavedLabel['label']>();
  const journal = new Journal<SavedLabel>(dir, { file: 'labels.jsonl', what: 'labels', max, parse: parseSavedLabel, live: () => [...labels].map(([id, label]) => ({ id, label })) });
  const warning = journal.load((records) => {
    for (const r of records) {
      labels.delete(r.id);
      labels.set(r.id, r.label);
      if (labels.size > max) labels.delete(labels.keys().next().value as string);
    }
  });
  const add = (id: string, label: SavedLabel['label']) => {
    journal.append([{ id, label }]);
    labels.delete(id);
    labels.set(id, label);
    if (labels.size > max) labels.delete(labels.keys().next().value as string);
  };
  return { journal, labels, warning, add };
}

const id = (n: number) => `c49500e3932f-${1_700_000_000_000 + n}`;

describe('journal', () => {
  it('loads what was appended, the latest label of an activation winning', () => {
    const dir = tempDir('earshot-journal-');
    const first = labelJournal(dir);
    first.add(id(1), 'intended');
    first.add(id(2), 'not-intended');
    first.add(id(1), 'not-intended');
    first.journal.close();
    const again = labelJournal(dir);
    expect(again.warning).toBeNull();
    expect([...again.labels]).toEqual([[id(2), 'not-intended'], [id(1), 'not-intended']]);
  });

  for (const [what, damage] of [
    ['a torn last append', (text: string) => `${text}{"id":"c49500e3932f-17`],
    ['a flipped byte', (text: string) => text.replace('"label":"intended"', '"label":"intemded"')],
    ['NUL padding after a power cut', (text: string) => `${text}${'\0'.repeat(4096)}`],
    ['a line that is not JSON', (text: string) => `garbage\n${text}`],
  ] as const) {
    it(`${what}: the file is quarantined, the good lines kept, a warning names both`, () => {
      const dir = tempDir('earshot-journal-');
      const first = labelJournal(dir);
      first.add(id(1), 'intended');
      first.add(id(2), 'not-intended');
      first.journal.close();
      const path = join(dir, 'labels.jsonl');
      writeFileSync(path, damage(readFileSync(path, 'utf8')));
      const again = labelJournal(dir);
      const aside = readdirSync(dir).find((f) => f.startsWith('labels.jsonl.damaged-'));
      expect(aside).toBeDefined();
      expect(again.warning).toContain(path);
      expect(again.warning).toContain(aside);
      expect(again.warning).not.toContain('\n');
      const good = [...again.labels].filter(([, label]) => label !== undefined);
      expect(good.length).toBeGreaterThanOrEqual(1);
      expect(good).toContainEqual([id(2), 'not-intended']);
      // the rewritten file loads without a warning, and appends go on after it
      again.add(id(3), 'intended');
      again.journal.close();
      const third = labelJournal(dir);
      expect(third.warning).toBeNull();
      expect(third.labels.get(id(3))).toBe('intended');
    });
  }

  it('a directory in its place is set aside with a warning; the start goes on and appends work', () => {
    const dir = tempDir('earshot-journal-');
    mkdirSync(join(dir, 'labels.jsonl', 'inside'), { recursive: true });
    const run = labelJournal(dir);
    expect(run.warning).toMatch(/labels\.jsonl: cannot read \(EISDIR.*kept as .*labels\.jsonl\.damaged-\d+, no labels restored$/);
    run.add(id(1), 'intended');
    run.journal.close();
    expect([...labelJournal(dir).labels]).toEqual([[id(1), 'intended']]);
  });

  it('stays bounded: past twice its bound it is rewritten with the live records', () => {
    const dir = tempDir('earshot-journal-');
    const max = 50;
    const run = labelJournal(dir, max);
    for (let n = 0; n < 1000; n++) {
      run.add(id(n), n % 2 === 0 ? 'intended' : 'not-intended');
      const lines = readFileSync(join(dir, 'labels.jsonl'), 'utf8').split('\n').length - 1;
      expect(lines).toBeLessThanOrEqual(2 * max);
    }
    run.journal.close();
    const again = labelJournal(dir, max);
    expect([...again.labels.keys()]).toEqual(Array.from({ length: max }, (_, i) => id(1000 - max + i)));
  });

  it('wake events load back as they were saved; texts are cut to a bound', () => {
    const dir = tempDir('earshot-journal-');
    const events: WakeEvent[] = [
      { time: 1_700_000_000_123, device: 'c4:95:00:e3:93:2f', source: 'api' },
      { time: 1_700_000_001_000, device: null, source: 'x'.repeat(5000), intended: false },
    ];
    const journal = new Journal<WakeEvent>(dir, { file: 'wake-events.jsonl', what: 'wake events', max: 10, parse: parseSavedWakeEvent, live: () => [] });
    journal.append(events.map(savedWakeEvent));
    journal.close();
    const loaded: WakeEvent[] = [];
    expect(new Journal<WakeEvent>(dir, { file: 'wake-events.jsonl', what: 'wake events', max: 10, parse: parseSavedWakeEvent, live: () => [] }).load((r) => loaded.push(...r))).toBeNull();
    expect(loaded).toEqual([events[0], { ...events[1], source: 'x'.repeat(MAX_WAKE_SOURCE_LENGTH) }]);
  });
});

const isRoot = process.getuid?.() === 0;

describe.runIf(isRoot)('journal on a full file system (tmpfs)', () => {
  const mount = tempDir('earshot-journal-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount]);
  afterAll(() => {
    execFileSync('umount', [mount]);
  });

  it('an append that does not fit fails whole (503), leaves the file as it was, and works once there is room', () => {
    const run = labelJournal(mount);
    run.add(id(1), 'intended');
    const path = join(mount, 'labels.jsonl');
    const before = readFileSync(path, 'utf8');
    // fill what is left
    const filler = join(mount, 'filler');
    try {
      for (;;) appendFileSync(filler, Buffer.alloc(4096, 1));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    let thrown: unknown = null;
    try {
      // a batch larger than any free block left
      run.journal.append(Array.from({ length: 200 }, (_, n) => ({ id: id(100 + n), label: 'intended' as const })));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(NotSavedError);
    expect((thrown as NotSavedError).statusCode).toBe(503);
    expect((thrown as Error).message).toMatch(/ENOSPC/);
    expect(readFileSync(path, 'utf8')).toBe(before);
    rmSync(filler);
    expect(existsSync(filler)).toBe(false);
    run.add(id(2), 'not-intended');
    run.journal.close();
    expect([...labelJournal(mount).labels]).toEqual([[id(1), 'intended'], [id(2), 'not-intended']]);
  });
});
