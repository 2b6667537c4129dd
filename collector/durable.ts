/**
 * Files that survive a power cut: every file earshot writes under its data directory goes through
 * writeFileAtomic (a temporary name in the same directory, written and fsynced, renamed over the
 * target, then the directory fsynced), so a crash leaves the old file or the new one, never an empty,
 * torn or NUL-padded one. Reading back, a file that fails its check is moved aside (quarantined) with
 * a name that says so, never deleted and never allowed to stop a start.
 */
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The suffix of temporary files: `NAME.tmp-PID`; a start removes those an earlier run left. */
export const TMP_SUFFIX = /\.tmp(-\d+)?$/;

/** Fsyncs a directory, so a rename or unlink in it is on disk. Ignores file systems that refuse it. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // some file systems (and platforms) do not fsync directories: nothing more can be done there
  } finally {
    closeSync(fd);
  }
}

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644); applied at creation, before any byte is written. */
  mode?: number;
  /** Fsync the file and its directory (default true). Off only where losing the file costs nothing. */
  sync?: boolean;
  /**
   * Replacing a file a person owns: the new file gets this owner (skipped where not permitted) and
   * exactly `mode`, the umask not applied, before it replaces the old.
   */
  owner?: { uid: number; gid: number };
}

/** A file being written in place of `path`: nothing shows at `path` until commit(). */
export interface AtomicFile {
  /** Appends to the temporary file. */
  write(data: string | Uint8Array): void;
  /** Fsyncs, renames over `path` and fsyncs the directory: the old file or the whole new one, after a power cut. */
  commit(): void;
  /** Closes and removes the temporary file (after a failure); the old file is untouched. */
  abort(): void;
}

/**
 * Opens `path`'s temporary file (PATH.tmp-PID) for a write that may come in parts (a long export):
 * the same scheme as writeFileAtomic, which is this with one write. Throws the file system's error.
 */
export function openFileAtomic(path: string, options: AtomicWriteOptions = {}): AtomicFile {
  const sync = options.sync ?? true;
  const tmp = `${path}.tmp-${process.pid}`;
  let fd = openSync(tmp, 'w', options.mode ?? 0o644);
  if (options.owner !== undefined) {
    // replacing a file: its mode exactly (the umask narrowed it at creation), and its owner
    if (options.mode !== undefined) fchmodSync(fd, options.mode);
    try {
      fchownSync(fd, options.owner.uid, options.owner.gid);
    } catch {
      // only root may give a file away: the writer's own is as good as it gets
    }
  }
  const close = () => {
    if (fd < 0) return;
    const was = fd;
    fd = -1;
    closeSync(was);
  };
  return {
    write(data) {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    },
    commit() {
      if (sync) fsyncSync(fd);
      close();
      renameSync(tmp, path);
      if (sync) fsyncDir(dirname(path));
    },
    abort() {
      try {
        close();
      } catch {
        // already failing: the first error is the one to report
      }
      rmSync(tmp, { force: true });
    },
  };
}

/**
 * Writes `data` to `path` atomically and durably. Throws the file system's error (ENOSPC, EACCES, ...)
 * with the temporary file removed; the old file, if any, is untouched then.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  writeWhole(openFileAtomic(path, options), data);
}

/** Writes `data` into `file` and commits it; aborts it (the old file untouched) and rethrows on failure. */
export function writeWhole(file: AtomicFile, data: string | Uint8Array): void {
  try {
    file.write(data);
    file.commit();
  } catch (err) {
    file.abort();
    throw err;
  }
}

/** Removes a file and makes the removal durable (a delivered batch must not come back after a power cut). */
export function removeFile(path: string, sync = true): void {
  rmSync(path, { force: true, recursive: false });
  if (sync) fsyncDir(dirname(path));
}

/**
 * Moves a damaged file aside as `NAME.damaged-TIME` in the same directory (or `intoDir` when given),
 * where the owner can look at it and no start reads it again. Returns the new path, or null when even
 * the move failed (the file is then removed, so it cannot block a queue).
 */
export function quarantine(path: string, intoDir: string | null = null, nowMs = Date.now()): string | null {
  const aside = join(intoDir ?? dirname(path), `${basename(path)}.damaged-${nowMs}`);
  try {
    renameSync(path, aside);
    fsyncDir(dirname(path));
    return aside;
  } catch {
    try {
      rmSync(path, { force: true, recursive: true });
    } catch {
      // nothing left to try: the caller counts it
    }
    return null;
  }
}

/**
 * Keeps a copy of a damaged file's bytes beside it (`NAME.damaged-TIME`, written atomically) and leaves
 * the file in place, for the caller to replace atomically with what it could read. A power cut in between
 * finds the damaged file (and what it can read) again, never nothing, as moving it aside first would.
 * Returns the copy's path, or null when it could not be written (a full disk).
 */
export function keepDamagedCopy(path: string, bytes: string | Uint8Array, nowMs = Date.now()): string | null {
  const copy = `${path}.damaged-${nowMs}`;
  try {
    writeFileAtomic(copy, bytes);
    return copy;
  } catch {
    return null;
  }
}

/** True for errors that mean the disk (or the quota) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * The bytes of the file at `path`, at most `maxBytes`: a larger one throws (code EFBIG, "larger than
 * ..."). readFileSync reads to the end, and some files have none (/dev/zero, a FIFO a runaway writer
 * feeds): a config or wake-event file that was one took 6 GB in 40 s.
 */
export function readFileBounded(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) {
        const mb = maxBytes / (1024 * 1024);
        throw Object.assign(new Error(`larger than ${mb >= 1 ? `${mb} MiB` : `${maxBytes} bytes`}`), { code: 'EFBIG' });
      }
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}
