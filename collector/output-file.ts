/**
 * Files a person names with -o (the report, imported wake events, an export). Written whole or not at
 * all: a temporary file beside the target, fsynced and renamed over it (collector/durable.ts), so a full
 * disk or a kill leaves the old file, never a cut-off one. Two cases are not files to replace: a device,
 * FIFO or socket (`-o /dev/null`, `/dev/stdout`: renaming over /dev/null as root replaced the device) is
 * written in place, and a symbolic link is followed (the file it names is replaced, the link stays).
 * And -o must never name what the command reads: `replay x.pcap -o x.pcap` destroyed the capture.
 */
import { closeSync, constants as fsConstants, existsSync, lstatSync, openSync, readdirSync, readlinkSync, realpathSync, statSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { otherProcessRuns } from './data-dir.js';
import { openFileAtomic, writeWhole, type AtomicFile } from './durable.js';
import { earshotError, isEarshotError, systemReason } from './errors.js';
import { onStopSignals } from './stop-signals.js';

/** What a command reads from files, with what each is called in the refusal ("the capture file"). */
export type NamedInputs = ReadonlyArray<readonly [what: string, path: string | null | undefined]>;

/**
 * Throws EARSHOT_ERR_OUTPUT_IS_INPUT when `output` is one of `inputs` (the same file: device and inode,
 * so another spelling or a link is caught too). Inputs that do not exist (yet) are not compared.
 */
export function refuseInputAsOutput(output: string | undefined, inputs: NamedInputs): void {
  if (output === undefined || output === '-') return;
  let out;
  try {
    out = statSync(output);
  } catch {
    return; // a new file is no input
  }
  if (!out.isFile()) return; // /dev/null is read by nobody's capture
  for (const [what, path] of inputs) {
    if (!path || path === '-') continue;
    try {
      const input = statSync(path);
      if (input.dev === out.dev && input.ino === out.ino) throw earshotError('EARSHOT_ERR_OUTPUT_IS_INPUT', output, what);
    } catch (err) {
      if (isEarshotError(err)) throw err;
      // an input that cannot be read is reported by whoever reads it
    }
  }
}

/** Where an atomic write of `path` goes: the file a symbolic link names (the link stays), else `path`. */
function replacedFile(path: string): string {
  let link;
  try {
    link = lstatSync(path);
  } catch {
    return path;
  }
  if (!link.isSymbolicLink()) return path;
  try {
    return realpathSync(path);
  } catch {
    // a link to a file that does not exist yet: that file is written
    return resolve(dirname(path), readlinkSync(path));
  }
}

/**
 * Why `path` cannot be written, in words: a missing directory by its name, and a directory that exists but
 * takes no new file (/proc, /sys: the temporary file beside the target cannot be made) as such; before,
 * both said "no such file or directory".
 */
function outputReason(path: string, err: unknown): string {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return systemReason(err);
  const dir = dirname(resolve(path));
  return existsSync(dir) ? `no new file can be made in ${dir}` : `no such directory: ${dir}`;
}

/**
 * Opens `path` for output: nothing shows there until commit(). A device, FIFO or socket is written in
 * place (commit closes it). Throws EARSHOT_ERR_OUTPUT naming the path.
 */
export function openOutputFile(path: string, options: { mode?: number } = {}): AtomicFile {
  const failed = (err: unknown) => earshotError('EARSHOT_ERR_OUTPUT', path, outputReason(path, err));
  try {
    const st = (() => {
      try {
        return statSync(path);
      } catch {
        return null;
      }
    })();
    if (st !== null && st.isDirectory()) throw new Error('is a directory');
    if (st !== null && !st.isFile()) {
      const fd = st.isFIFO() ? openFifo(path) : openSync(path, 'w');
      let open = true;
      const close = () => {
        if (open) closeSync(fd);
        open = false;
      };
      return {
        write(data) {
          const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
          for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
        },
        commit: close,
        abort: close,
      };
    }
    const target = replacedFile(path);
    removeStaleTemporaries(target);
    // the file replaced keeps its owner and mode (a report a group reads, an export kept 0600); a mode the
    // command asks for (an export's 0600) is never widened by it
    const old = target === path ? st : statOrNull(target);
    if (old === null || !old.isFile()) return openFileAtomic(target, options);
    const mode = old.mode & 0o7777 & (options.mode ?? 0o7777);
    return openFileAtomic(target, { ...options, mode, owner: { uid: old.uid, gid: old.gid } });
  } catch (err) {
    throw failed(err);
  }
}

/**
 * Opens a FIFO for writing when it has a reader, else throws (ENXIO: "no such device or address"). A
 * plain open() of a FIFO waits for a reader as a shell's `>` does, but inside the open() call: the thread
 * ran no signal handler, so Ctrl-C and SIGTERM did nothing and only SIGKILL ended a command whose report
 * went to a FIFO nobody read. openOutputFileWhenRead() is where a command waits for the reader.
 */
function openFifo(path: string): number {
  // without blocking: a reader is there, or ENXIO
  const probe = openSync(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  try {
    // the reader is there: a blocking descriptor (writes wait for the reader, as to any pipe) opens at once
    return openSync(path, 'w');
  } finally {
    closeSync(probe);
  }
}

/** How often openOutputFileWhenRead looks for a FIFO's reader. */
const FIFO_POLL_MS = 100;

/**
 * openOutputFile, but a FIFO with no reader yet is waited for with the event loop running (signals,
 * timers) instead of refused. `wait.onWait` hears once that it waits; a request to stop while it waits
 * (SIGINT, SIGTERM) ends the wait with EARSHOT_ERR_OUTPUT (the command's own handlers run as well).
 */
export async function openOutputFileWhenRead(path: string, options: { mode?: number } = {}, wait: OutputWait = {}): Promise<AtomicFile> {
  const st = statOrNull(path);
  if (st === null || !st.isFIFO()) return openOutputFile(path, options);
  let signalled: string | null = null;
  const stop = wait.onStop ?? onStopSignals;
  const off = stop((signal) => {
    signalled = signal;
  });
  try {
    for (let told = false; ; told = true) {
      let probe: number | null = null;
      try {
        probe = openSync(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      } catch (err) {
        // anything but "no reader" is the open's own failure, told by openOutputFile
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO') return openOutputFile(path, options);
      }
      if (probe !== null) {
        // held while the output opens: closed first, it would be the reader's end of file
        try {
          return openOutputFile(path, options);
        } finally {
          closeSync(probe);
        }
      }
      if (!told) wait.onWait?.(`${path} is a FIFO that nobody reads yet: waiting for a reader (Ctrl-C to stop)`);
      await sleep(FIFO_POLL_MS);
      if (signalled !== null) throw earshotError('EARSHOT_ERR_OUTPUT', path, `a FIFO that nobody read: stopped by ${signalled} while waiting for a reader`);
    }
  } finally {
    off();
  }
}

/** How a wait for a FIFO's reader is told and stopped. */
export interface OutputWait {
  /** Hears once that the command waits for a reader. */
  onWait?: (message: string) => void;
  /**
   * Calls its handler on a request to stop (SIGINT, SIGTERM, SIGHUP); returns what removes it. Default: this
   * process's signals (a worker thread gets none: its host forwards them).
   */
  onStop?: (handler: (signal: string) => void) => () => void;
}


function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/**
 * Removes `PATH.tmp-PID` files beside `path` that a writer left when it was killed or lost power before
 * its rename (openFileAtomic's temporaries), when that process is gone. Another live earshot's is left.
 */
function removeStaleTemporaries(path: string): void {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || otherProcessRuns(pid)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      // not ours to remove after all (permissions): left as it is
    }
  }
}


/** Writes `data` to `path` as openOutputFileWhenRead does; throws EARSHOT_ERR_OUTPUT (the old file untouched). */
export async function writeOutputFile(path: string, data: string | Uint8Array, options: { mode?: number } = {}, wait: OutputWait = {}): Promise<void> {
  const file = await openOutputFileWhenRead(path, options, wait);
  try {
    writeWhole(file, data);
  } catch (err) {
    throw isEarshotError(err) ? err : earshotError('EARSHOT_ERR_OUTPUT', path, systemReason(err));
  }
}

