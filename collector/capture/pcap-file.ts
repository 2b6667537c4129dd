/**
 * The capture-file source: pcap or pcapng, optionally gzip-compressed, from a file, stdin or any stream
 * (tcpdump's stdout), read as a stream in constant memory, as fast as possible or paced to capture time.
 */
import { earshotError } from '../errors.js';
import { GzipDamageError } from './gzip.js';
import { openCaptureInput, type CaptureInput } from './input.js';
import { supportedLinkTypesText } from './pcap-classic.js';
import { CaptureStreamReader } from './stream-reader.js';
import { emptyCaptureStats, type CaptureSource, type CaptureStats, type PacketSink, type SourceDeps } from './types.js';

/** Options of buildFileSource(). */
export interface FileSourceOptions {
  /** Capture file; '-' reads stdin. */
  path: string;
  /** 0 or undefined: as fast as possible; N > 0: packet times map to wall time at N times capture speed. */
  realtimeSpeed?: number;
  /**
   * Read this stream instead of `path` (stdin, a tcpdump pipe, the chunks of a capture another thread
   * holds); `path` then only names it. A chunk of an async iterable is read before the next is asked for.
   */
  input?: NodeJS.ReadableStream | AsyncIterable<Buffer>;
  /** How messages name the input (defaults to the path, or "stdin"). */
  name?: string;
}

/** Gaps shorter than this are not slept: timers are not that precise anyway. */
const MIN_SLEEP_MS = 5;

/** Maps packet time to wall time: packet t is due at wallStart + (t - firstPacketTime) / speed. */
/** Longest single wait of a paced replay (a longer gap is waited in parts). */
const MAX_SLEEP_MS = 60_000;

class Pacer {
  private firstPacketTimeMs = NaN;
  private wallStartMs = 0;

  constructor(private readonly speed: number) {}

  /** How long to wait before the packet at `timeMs` is due (0 = now); `release` is then the new bound. */
  delayFor(timeMs: number): { delayMs: number; release: number } {
    const now = performance.now();
    if (Number.isNaN(this.firstPacketTimeMs)) {
      this.firstPacketTimeMs = timeMs;
      this.wallStartMs = now;
    }
    const delayMs = this.wallStartMs + (timeMs - this.firstPacketTimeMs) / this.speed - now;
    if (delayMs >= MIN_SLEEP_MS) return { delayMs, release: -Infinity };
    const release = this.firstPacketTimeMs + (now + MIN_SLEEP_MS - this.wallStartMs) * this.speed;
    return { delayMs: 0, release: Math.max(release, timeMs) };
  }
}

/** Builds a source reading a pcap/pcapng(.gz) file, stdin ('-') or opts.input. No I/O until run(). */
export function buildFileSource(opts: FileSourceOptions, deps: SourceDeps): CaptureSource {
  const name = opts.name ?? (opts.path === '-' ? 'stdin' : opts.path);
  const speed = opts.realtimeSpeed !== undefined && opts.realtimeSpeed > 0 ? opts.realtimeSpeed : 0;
  const stats = emptyCaptureStats();
  let reader: CaptureStreamReader | null = null;
  let input: CaptureInput | null = null;
  let stopRequested = false;
  let wakeUp: (() => void) | null = null;
  let onStop: (() => void) | null = null;
  /** Paced: the time of the packet held until it is due, else +Infinity. */
  let heldMs = Number.POSITIVE_INFINITY;

  function refresh(): CaptureStats {
    if (reader !== null) {
      stats.packets = reader.packets;
      stats.bytesRead = reader.bytesPushed;
      stats.clockOutliers = reader.clockOutliers;
    }
    if (input !== null) stats.fileBytesRead = input.fileBytesRead();
    return { ...stats };
  }

  /**
   * Waits `ms` (at most MAX_SLEEP_MS: the pacing loop asks again after it). A capture whose clock jumps by
   * more than 24.8 days (a router that started in 1970, then NTP) asked setTimeout for more than it
   * holds: Node then waits 1 ms, with a warning, 800 times a second.
   */
  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        wakeUp = null;
        resolve();
      }, Math.min(ms, MAX_SLEEP_MS));
      wakeUp = () => {
        clearTimeout(timer);
        wakeUp = null;
        resolve();
      };
    });
  }

  /**
   * What the end of the input says beyond the records: gzip damage or a gzip file cut short (a capture cut
   * short there), gzip notes (warnings), an unusable input (thrown), packets of unsupported interfaces.
   */
  function endOfInput(current: CaptureStreamReader, input: CaptureInput, damage: GzipDamageError | null): void {
    const notes = input.gzipNotes();
    // the capture cut short where the gzip data is damaged or ends early (gzip -d and tshark read up to there too)
    const gzipEnd = damage !== null ? `the gzip data is damaged near compressed byte ${damage.compressedOffset} (${damage.reason})`
      : notes?.cutShort === true && !stopRequested ? 'the gzip stream ends before its end (the file was cut short)' : null;
    if (gzipEnd !== null) {
      // nothing of a capture before the damage: the damage is the story
      if (damage !== null && current.error !== null) throw damage;
      if (current.error === null) {
        current.truncation = current.truncation === null ? { offset: current.bytesPushed, reason: gzipEnd }
          : { offset: current.truncation.offset, reason: `${current.truncation.reason}; ${gzipEnd}` };
      }
    }
    if (notes !== null && current.error === null) {
      if (notes.checksumMismatches > 0) {
        deps.onWarning?.(`${name}: the gzip checksum of ${notes.checksumMismatches === 1 ? 'a member' : `${notes.checksumMismatches} members`} does not match ` +
          'its data: the file was damaged after it was compressed; every packet that could be read was read');
      }
      if (notes.trailingBytes > 0) {
        deps.onWarning?.(`${name}: ignored what follows the gzip data at compressed byte ${notes.trailingAt} (not gzip, not zero padding), as gzip -d does`);
      }
    }
    if (current.error !== null) {
      // a gzip file that decompresses to nothing is no "empty input": it was cut short (or empty when compressed)
      if (current.error.code === 'EARSHOT_ERR_NOT_A_CAPTURE' && input.compressed() && current.bytesPushed === 0) {
        throw earshotError('EARSHOT_ERR_NOT_A_CAPTURE', name, `a gzip file of ${input.fileBytesRead()} bytes that decompresses to nothing: cut short, or an empty file compressed`);
      }
      throw current.error;
    }
    if (current.unsupportedPackets > 0) {
      const types = [...current.unsupportedLinkTypes].join(', ');
      // no packet could be decoded: the capture is of a kind earshot does not read (as a classic pcap of that link type)
      if (current.packets === 0) throw earshotError('EARSHOT_ERR_UNKNOWN_LINKTYPE', name, types, supportedLinkTypesText());
      stats.unsupportedLinkPackets = current.unsupportedPackets;
      deps.onWarning?.(`${name}: ${current.unsupportedPackets} packet${current.unsupportedPackets === 1 ? '' : 's'} on interfaces of link type ${types}, ` +
        `which earshot cannot decode, skipped (supported: ${supportedLinkTypesText()})`);
    }
  }

  async function read(sink: PacketSink): Promise<CaptureStats> {
    input = await openCaptureInput(opts.path, opts.input, name);
    stats.totalBytes = input.totalBytes;
    const current = new CaptureStreamReader(name, sink);
    reader = current;
    const pacer = speed > 0 ? new Pacer(speed) : null;
    // paced: hold the first packet so the pacer learns the capture's start time
    current.setRelease(stopRequested || pacer !== null ? -Infinity : Infinity);
    const chunks = input.chunks[Symbol.asyncIterator]();
    // stop() must end a read that waits for input that may never come (stdin held open by a quiet feed).
    // Each wait gets its own promise that either the chunk or stop() settles. Not Promise.race against one
    // long-lived "stopped" promise: every race adds a reaction to that never-settled promise, and each
    // reaction keeps its chunk reachable, so a stream's whole content stayed in memory until the end.
    const nextOrStop = (): Promise<IteratorResult<Buffer> | null> => new Promise((resolve, reject) => {
      onStop = () => resolve(null);
      chunks.next().then(resolve, reject);
    });
    let damage: GzipDamageError | null = null;
    try {
      for (;;) {
        let step: IteratorResult<Buffer> | null;
        try {
          step = stopRequested ? null : await nextOrStop();
        } catch (err) {
          if (!(err instanceof GzipDamageError)) throw err;
          damage = err;
          break;
        }
        onStop = null;
        if (step === null || step.done) break;
        const chunk = step.value;
        let parsedAll = current.push(chunk);
        while (!parsedAll && !current.done() && !stopRequested) {
          heldMs = current.heldTimeMs;
          const step = (pacer as Pacer).delayFor(heldMs);
          if (step.delayMs > 0) await sleep(step.delayMs);
          else current.setRelease(step.release);
          if (!stopRequested) parsedAll = current.resume();
        }
        heldMs = Number.POSITIVE_INFINITY;
        if (stopRequested) break;
        // garbage from a damaged gzip stream must be reported as such: read on until gunzip notices
        if (current.done() && !input.compressed()) break;
      }
      if (!stopRequested) current.finish();
    } finally {
      onStop = null;
      input.close();
    }
    endOfInput(current, input, damage);
    if (current.timesOutOfRange > 0) {
      deps.onWarning?.(`${name}: ${current.timesOutOfRange} packet${current.timesOutOfRange === 1 ? ' has a time' : 's have times'} past the year 9999 ` +
        '(an interface\'s if_tsresol or if_tsoffset, or a damaged time stamp): each took the time of the packet before it');
    }
    if (current.clockOutliers > 0) {
      deps.onWarning?.(`${name}: ${current.clockOutliers} packet${current.clockOutliers === 1 ? ' is' : 's are'} stamped more than a day ahead of the packets around ` +
        `${current.clockOutliers === 1 ? 'it' : 'them'} (a damaged time stamp): each took the latest time before it`);
    }
    if (current.truncation !== null) {
      stats.truncated = true;
      stats.truncatedAt = current.truncation.offset;
      deps.onWarning?.(`${name}: capture cut short at offset ${current.truncation.offset}: ${current.truncation.reason}; ` +
        `read ${current.packets} packets before it`);
    }
    return refresh();
  }

  return {
    description: opts.input !== undefined ? name : opts.path === '-' ? 'stdin' : `file ${opts.path}`,
    run: read,
    heldPacketMs: () => heldMs,
    stop() {
      stopRequested = true;
      // holds every further packet, also in the middle of a chunk, without a per-packet flag
      reader?.setRelease(-Infinity);
      wakeUp?.();
      onStop?.();
    },
    stats: refresh,
  };
}
