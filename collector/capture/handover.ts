/**
 * A live capture held by one thread and read by another: the libpcap source's packets, handed from the
 * main thread, where node_pcap's session must live (it never closes its poll handle, and the end of a
 * worker thread with an open handle aborts the process), to the pipeline's thread (cli/pipeline-thread.ts).
 *
 * The holding thread writes each packet as a classic pcap record into a chunk and posts the chunk when it
 * is full or FLUSH_MS after its first packet, transferred, not copied; the pipeline gives it back once read. The
 * pipeline's thread reads the chunks with the capture-file reader, as it reads a tcpdump pipe: one parser,
 * the same packets (a golden test compares them with the file's).
 *
 * Bounded: chunks posted and not yet taken by the pipeline are at most `maxInFlight` bytes. A packet that
 * would pass it is not copied but dropped and counted with the kernel's drops (the capture did not keep
 * up, as when the kernel's buffer overflows), so a stalled pipeline never grows the holder's memory.
 */
import { writeClassicHeader } from './pcap-classic.js';
import { buildFileSource } from './pcap-file.js';
import type { CaptureSource, CaptureStats, PacketSink, SourceDeps } from './types.js';

/** Bytes of one chunk: ~2 ms of packets at 100k packets/s of 1-KB frames. */
export const HANDOVER_CHUNK = 256 * 1024;
/** Most bytes posted and not yet taken: ~0.3 s at 100k packets/s of 1-KB frames, twice the kernel's buffer. */
export const HANDOVER_MAX_IN_FLIGHT = 32 * 1024 * 1024;

/** Chunks kept for reuse: 4 MB, what ~50 ms at 100k packets/s fill; a burst's other chunks are let go. */
const MAX_FREE_CHUNKS = 16;

/** Longest a packet waits in a chunk that is not full (the pipeline's clock ticks every 100 ms). */
export const FLUSH_MS = 10;

/** What the holding thread tells the reading one. */
export type HandoverMessage =
  | { t: 'packets'; chunk: ArrayBuffer; length: number }
  | { t: 'captureStats'; kernelDrops: number; interfaceDrops: number; lastDropMs: number | null }
  | { t: 'captureDone' }
  | { t: 'captureFailed'; error: Error };

/** What the reading thread tells the holding one; `consumed` gives the chunk back (transferred) for reuse. */
export type HandoverReply = { t: 'startCapture' } | { t: 'stopCapture' } | { t: 'consumed'; bytes: number; chunk: ArrayBuffer };

/** The holding side: packs packets into chunks and posts them (`post` transfers `chunk`). */
export class HandoverWriter {
  /** Packets not handed over because `maxInFlight` bytes were waiting already. */
  dropped = 0;
  private chunk: Buffer | null = null;
  private used = 0;
  private inFlight = 0;
  private flushQueued = false;
  /** Chunks the reading side gave back: reused, so that a steady capture allocates nothing. */
  private readonly free: ArrayBuffer[] = [];

  constructor(
    private readonly post: (chunk: ArrayBuffer, length: number) => void,
    private readonly maxInFlight = HANDOVER_MAX_IN_FLIGHT,
    private readonly chunkBytes = HANDOVER_CHUNK,
  ) {}

  /** The pcap file header (classic, microseconds, little-endian), posted at once: the capture is open. */
  header(linkType: number, snaplen: number): void {
    const b = this.room(24);
    const at = this.used;
    writeClassicHeader(b, at, linkType, snaplen);
    this.used += 24;
    this.flush();
  }

  /** One packet, as a PacketSink gets it; copied into the current chunk, or dropped (counted). */
  packet(buf: Buffer, offset: number, capLen: number, wireLen: number, timeMs: number): void {
    const need = 16 + capLen;
    if (this.inFlight + this.used + need > this.maxInFlight) {
      this.dropped++;
      return;
    }
    const b = this.room(need);
    const at = this.used;
    // libpcap's microseconds, back from the source's milliseconds (exact: timeMs = s * 1000 + us / 1000)
    const seconds = Math.floor(timeMs / 1000);
    const micros = Math.min(999_999, Math.round((timeMs - seconds * 1000) * 1000));
    b.writeUInt32LE(seconds, at);
    b.writeUInt32LE(micros, at + 4);
    b.writeUInt32LE(capLen, at + 8);
    b.writeUInt32LE(wireLen, at + 12);
    buf.copy(b, at + 16, offset, offset + capLen);
    this.used += need;
    if (!this.flushQueued) {
      // a chunk not filled goes FLUSH_MS after its first packet: a post (and its answer) costs ~20 us
      // a side, and at the end of each libpcap batch (~100 packets at 100k packets/s) that was ~0.4 s
      // of CPU per million packets
      this.flushQueued = true;
      setTimeout(() => {
        this.flushQueued = false;
        this.flush();
      }, FLUSH_MS).unref();
    }
  }

  /** Posts what the current chunk holds. */
  flush(): void {
    if (this.chunk === null || this.used === 0) return;
    this.inFlight += this.used;
    this.post(this.chunk.buffer as ArrayBuffer, this.used);
    this.chunk = null;
    this.used = 0;
  }

  /** The reading side is done with `bytes` of what was posted, and gives their chunk back. */
  consumed(bytes: number, chunk?: ArrayBuffer): void {
    this.inFlight = Math.max(0, this.inFlight - bytes);
    // a few: a burst's chunks are not kept after it
    if (chunk !== undefined && chunk.byteLength === this.chunkBytes && this.free.length < MAX_FREE_CHUNKS) this.free.push(chunk);
  }

  /** Bytes posted and not yet taken, and bytes waiting in the current chunk. */
  pending(): number {
    return this.inFlight + this.used;
  }

  /** A chunk with `need` bytes free at `used` (a new one when the current one is full: it is posted first). */
  private room(need: number): Buffer {
    if (this.chunk !== null && this.used + need <= this.chunk.length) return this.chunk;
    this.flush();
    const reused = need <= this.chunkBytes ? this.free.pop() : undefined;
    // not zero-filled (every byte posted is written first), and never from the shared pool: its own ArrayBuffer to transfer
    this.chunk = reused !== undefined ? Buffer.from(reused) : Buffer.allocUnsafeSlow(Math.max(this.chunkBytes, need));
    this.used = 0;
    return this.chunk;
  }
}

/** The reading side's source: give it the holder's messages (take), it answers through `reply`. */
export interface HandoverSource extends CaptureSource {
  take(message: HandoverMessage): void;
}

/**
 * The pipeline's side: a capture source over the chunks the holder posts, read by the capture-file
 * reader, with the holder's drop counters. run() asks the holder to open the capture (so that it opens
 * when the pipeline is ready, as a source on this thread would); stop() asks it to stop.
 */
export function buildHandoverSource(description: string, reply: (message: HandoverReply) => void, deps: SourceDeps): HandoverSource {
  const queue: Array<{ chunk: ArrayBuffer; length: number }> = [];
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  let drops = { kernelDrops: 0, interfaceDrops: 0, lastDropMs: null as number | null };
  let stopRequested = false;

  /**
   * The chunks as they come. The reader asks for the next chunk only when it is done with this one (the
   * input's rule), so that is when the chunk goes back to the holder, for reuse.
   */
  async function* chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      while (queue.length === 0 && !ended) await new Promise<void>((resolve) => { wake = resolve; });
      const next = queue.shift();
      if (next === undefined) return;
      yield Buffer.from(next.chunk, 0, next.length);
      reply({ t: 'consumed', bytes: next.length, chunk: next.chunk });
    }
  }
  const awaken = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const reader = buildFileSource({ path: '-', input: chunks(), name: description }, deps);

  return {
    description,
    take(message) {
      switch (message.t) {
        case 'packets':
          queue.push({ chunk: message.chunk, length: message.length });
          awaken();
          break;
        case 'captureStats':
          drops = { kernelDrops: message.kernelDrops, interfaceDrops: message.interfaceDrops, lastDropMs: message.lastDropMs };
          break;
        case 'captureFailed':
          failure = message.error;
          ended = true;
          awaken();
          break;
        case 'captureDone':
          ended = true;
          awaken();
          break;
      }
    },
    async run(sink: PacketSink): Promise<CaptureStats> {
      reply({ t: 'startCapture' });
      if (stopRequested) reply({ t: 'stopCapture' });
      let stats: CaptureStats;
      try {
        stats = await reader.run(sink);
      } catch (err) {
        // what the holder met (the interface could not be opened, or went away) is the reason; a reader
        // that gave up by itself leaves the holder capturing: stop it
        if (failure === null) reply({ t: 'stopCapture' });
        throw failure ?? err;
      }
      if (failure !== null) throw failure;
      return { ...stats, ...drops };
    },
    stop() {
      stopRequested = true;
      reply({ t: 'stopCapture' });
    },
    stats: () => ({ ...reader.stats(), ...drops }),
  };
}
