/**
 * The data directory: made (without node's recursive mkdir, which never returns for a path under
 * /proc on Node 20), checked writable with a probe that is removed again, and cleared of the
 * temporary files a run killed mid-write left (`NAME.tmp-PID`, `.write-test*`).
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fsyncDir, isDiskFull, readFileBounded, removeFile, TMP_SUFFIX, writeFileAtomic } from './durable.js';
import { earshotError, systemReason, type EarshotError } from './errors.js';
import { shellWord } from './text.js';

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

/** Why a data directory cannot be made or written by this user, and the command that makes it theirs. */
function permissionHint(dir: string, err: unknown): string {
  let user: string | null = null;
  try {
    user = userInfo().username;
  } catch {
    user = null; // a uid without a passwd entry (a container)
  }
  const uid = process.getuid?.() ?? '?';
  const owner = user ?? String(uid);
  return `${systemReason(err)} for ${user ?? 'uid'} ${user === null ? uid : `(uid ${uid})`}; make it theirs: sudo install -d -o ${shellWord(owner)} ${shellWord(dir)}`;
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
    const why = e.code === 'ENOENT' ? `${e.code}: the file system there does not take new files or directories`
      : e.code === 'EACCES' && process.getuid?.() !== 0 ? permissionHint(dir, e)
        : e.message;
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

/** The lock file of a data directory: which earshot process uses it. */
export const LOCK_FILE = 'earshot.pid';
/** Longest lock file read: a damaged or foreign one is not read to its end. */
const MAX_LOCK_BYTES = 1024;

/** Who holds a lock: its PID, the boot it ran in and its start time in that boot (Linux), when it began. */
interface LockHolder {
  pid: number;
  boot: string | null;
  start: string | null;
  sinceMs: number;
}

/** This boot's id and a process's start time in clock ticks since boot (Linux; null elsewhere). */
function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

function startTicks(pid: number): string | null {
  try {
    // field 22, counted after the command's closing parenthesis (the command itself may hold spaces and parentheses)
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function parseHolder(text: string): LockHolder | null {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0) return null;
    return { pid: v.pid as number, boot: typeof v.boot === 'string' ? v.boot : null, start: typeof v.start === 'string' ? v.start : null, sinceMs: Number(v.sinceMs) || 0 };
  } catch {
    return null;
  }
}

/**
 * True when the process a lock names still runs: the same PID, and where Linux tells, in the same boot
 * with the same start time (after a reboot or a crash the PID may belong to something else by now).
 */
function holderRuns(holder: LockHolder): boolean {
  if (!otherProcessRuns(holder.pid)) return false;
  const boot = bootId();
  if (holder.boot !== null && boot !== null && holder.boot !== boot) return false;
  const start = startTicks(holder.pid);
  return holder.start === null || start === null || holder.start === start;
}

/** A held lock on a data directory; `release()` removes it (when it is still this process's). */
export interface DataDirLock {
  release(): void;
  /** Why no lock is held although the run goes on (a full disk), null when it is. */
  warning: string | null;
}

/**
 * Takes `dir`'s lock (`earshot.pid`): one earshot per data directory. Two runs on one directory numbered
 * their spool batches alike and renamed them over each other (two paced `collect` runs with InfluxDB away
 * kept 33 of their 66 points), and overwrote each other's state. A lock left by a process that no longer
 * runs (killed, a power cut, a reboot: its PID now another process's, told apart by its start time) is
 * taken over. Throws EARSHOT_ERR_DATA_DIR_IN_USE naming the holder, or the file system's error.
 */
export function lockDataDir(dir: string, nowMs = Date.now()): DataDirLock {
  const path = join(dir, LOCK_FILE);
  const mine: LockHolder = { pid: process.pid, boot: bootId(), start: startTicks(process.pid), sinceMs: nowMs };
  const text = `${JSON.stringify(mine)}\n`;
  let created = false;
  try {
    const fd = openSync(path, 'wx', 0o644);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    fsyncDir(dir);
    created = true;
  } catch (err) {
    // a full disk is a state to get through (prepareDataDir): the run goes on, unlocked, and says so
    if (isDiskFull(err)) {
      removeFile(path, false);
      return { release: () => undefined, warning: fullDiskWarning(dir) };
    }
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw earshotError('EARSHOT_ERR_DATA_DIR', dir, `cannot take its lock ${LOCK_FILE}: ${(err as Error).message}`);
  }
  if (!created) {
    const holder = readHolder(path);
    if (holder !== null && holder.pid !== process.pid && holderRuns(holder)) throw inUse(dir, holder);
    // left by a process gone (or unreadable): replaced whole. Two runs that both found it stale both
    // write, and the one whose lock is not there when it reads it back gives way; one that read back
    // before the other wrote runs beside it (two starts at the same instant over a stale lock only)
    try {
      writeFileAtomic(path, text);
    } catch (err) {
      if (isDiskFull(err)) return { release: () => undefined, warning: fullDiskWarning(dir) };
      throw earshotError('EARSHOT_ERR_DATA_DIR', dir, `cannot take its lock ${LOCK_FILE}: ${(err as Error).message}`);
    }
    const now = readHolder(path);
    if (now === null || now.pid !== process.pid) throw inUse(dir, now ?? holder ?? mine);
  }
  return {
    warning: null,
    release() {
      if (readHolder(path)?.pid !== process.pid) return;
      try {
        removeFile(path);
      } catch {
        // a disk that refuses the removal leaves a lock of a process gone: the next run takes it over
      }
    },
  };
}

/** Who holds `dir`'s lock (for `earshot doctor`): its PID, since when, and whether it still runs; null when none does. */
export function dataDirHolder(dir: string): { pid: number; sinceMs: number; running: boolean } | null {
  const holder = readHolder(join(dir, LOCK_FILE));
  return holder === null ? null : { pid: holder.pid, sinceMs: holder.sinceMs, running: holder.pid === process.pid || holderRuns(holder) };
}

function fullDiskWarning(dir: string): string {
  return `${dir}: the disk is full: no lock (${LOCK_FILE}) is taken, and another earshot on this data directory would not be noticed`;
}

function readHolder(path: string): LockHolder | null {
  try {
    return parseHolder(readFileBounded(path, MAX_LOCK_BYTES).toString('utf8'));
  } catch {
    return null;
  }
}

function inUse(dir: string, holder: LockHolder): EarshotError {
  return earshotError('EARSHOT_ERR_DATA_DIR_IN_USE', dir, holder.pid, holder.sinceMs > 0 ? new Date(holder.sinceMs).toISOString() : 'an unknown time');
}
