/**
 * The data directory: made (without node's recursive mkdir, which never returns for a path under
 * /proc on Node 20), checked writable with a probe that is removed again, and cleared of the
 * temporary files a run killed mid-write left (`NAME.tmp-PID`, `.write-test*`).
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fsyncDir, isDiskFull, TMP_SUFFIX } from './durable.js';
import { earshotError } from './errors.js';

/** Probe files: `.write-test-PID` (and `.write-test`, which earshot before 0.x left behind). */
const WRITE_TEST = /^\.write-test(-\d+)?$/;

/** Deepest path creation: more components than this is not a data directory but a mistake. */
const MAX_DEPTH = 64;

/**
 * Makes `dir` and its missing parents one at a time, so a file system that refuses (ENOENT under
 * /proc, EROFS, EACCES, ENOTDIR) fails at once with its own error. Throws that error.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let path = resolve(dir); ; path = dirname(path)) {
    const found = statSync(path, { throwIfNoEntry: false });
    if (found !== undefined) {
      if (!found.isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: 'ENOTDIR' });
      break;
    }
    missing.push(path);
    if (dirname(path) === path || missing.length > MAX_DEPTH) break;
  }
  for (const path of missing.reverse()) {
    try {
      mkdirSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && statSync(path).isDirectory()) continue;
      throw err;
    }
  }
}

/** True for a process that runs now (and is not this one). */
export function otherProcessRuns(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes, from `dir` (not below), the temporary files that a run killed mid-write left. A file whose
 * PID belongs to another running process is kept: it may be that process's write in progress.
 */
export function removeLeftoverTemporaries(dir: string): number {
  let removed = 0;
  for (const name of readdirSync(dir)) {
    const tmp = TMP_SUFFIX.exec(name) ?? (WRITE_TEST.test(name) ? /-(\d+)$/.exec(name) ?? [name] : null);
    if (tmp === null) continue;
    const pid = tmp[1] === undefined ? NaN : Number(tmp[1].replace('-', ''));
    if (Number.isSafeInteger(pid) && otherProcessRuns(pid)) continue;
    try {
      rmSync(join(dir, name), { force: true });
      removed++;
    } catch {
      // a directory with a temporary's name: not ours to remove
    }
  }
  if (removed > 0) fsyncDir(dir);
  return removed;
}

/**
 * Makes sure the data directory exists and is writable; throws EARSHOT_ERR_DATA_DIR otherwise. A full disk
 * is not an error: the answer is a warning to log (null when all is well).
 */
export function prepareDataDir(dir: string): string | null {
  try {
    makeDirs(dir);
    removeLeftoverTemporaries(dir);
    const probe = join(dir, `.write-test-${process.pid}`);
    const fd = openSync(probe, 'w');
    try {
      writeSync(fd, 'x');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
      rmSync(probe, { force: true });
    }
    return null;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // a full disk is a state to get through, not a configuration error: earshot starts, holds in memory
    // what it cannot write (within bounds), says so in /health, and writes it when space returns
    if (isDiskFull(e)) return `${dir}: the disk is full (${e.code}): earshot runs, but what it must keep waits in memory (bounded) until there is room`;
    const why = e.code === 'ENOENT' ? `${e.code}: the file system there does not take new files or directories` : e.message;
    throw earshotError('EARSHOT_ERR_DATA_DIR', dir, why);
  }
}

const SEAL = /,"sum":"([0-9a-f]{64})"\}$/;
/** The end of a sealed text with any 3-character key and any 64 characters: what a damaged seal looks like. */
const SEAL_SHAPE = /,"[^"]{3}":"[^"]{64}"\}$/;

/**
 * Seals the JSON text of an object with a checksum as its last field (`"sum"`: SHA-256 of the text
 * without it), so a start tells a flipped byte from a valid file: a torn write is caught by JSON.parse,
 * a flip inside a string only by the sum.
 */
export function sealJson(text: string): string {
  if (!text.endsWith('}') || text === '{}') throw new Error('sealJson: not the text of a non-empty JSON object');
  return `${text.slice(0, -1)},"sum":"${createHash('sha256').update(text).digest('hex')}"}`;
}

/**
 * The JSON text of a sealed object without its seal, after checking it; an unsealed text (written by
 * an earshot before seals) as it is. Throws when the seal is damaged or does not match.
 */
export function unsealJson(text: string): string {
  const seal = SEAL.exec(text);
  if (seal === null) {
    // a seal whose key or digits were hit ("rum", a digit turned to "g") still has a seal's shape at the
    // end: damaged, not a file from before seals (those end with their own last field)
    if (text.includes('"sum"') || SEAL_SHAPE.test(text)) throw new Error('damaged checksum');
    return text;
  }
  const inner = `${text.slice(0, seal.index)}}`;
  if (createHash('sha256').update(inner).digest('hex') !== seal[1]) throw new Error('checksum mismatch (bytes changed on disk)');
  return inner;
}
