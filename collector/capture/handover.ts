/**
 * A live capture held by one thread and read by another: the libpcap source's packets, handed from the
 * main thread, where node_pcap's session must live (it never closes its poll handle, and the end of a
 * worker thread with an open handle aborts the process), to the pipeline's thread (cli/pipeline-thread.ts).
 *
 * The holding thread writes each packet as a classic pcap record into a chunk and posts the chunk when it
 * is full or when libpcap's batch is over (the next turn of the event loop), transferred, not copied. The
 * pipeline's thread reads the chunks with the capture-file reader, as it reads a tcpdump pipe: one parser,
 * the same packets (a golden test compares them with the file's).
 *
 * Bounded: chunks posted and not yet taken by the pipeline are at most `maxInFlight` bytes. A packet that
 * would pass it is not copied but dropped and counted with the kernel's drops (the capture did not keep
 * up, as when the kernel's buffer overflows), so a stalled pipeline never grows the holder's memory.
 */
import { Readable } from 'node:stream';
import { buildFileSource } from './pcap-file.js';
import type { CaptureSource, CaptureStats, PacketSink, SourceDeps } from './types.js';

/** Bytes of one chunk: ~2 ms of packets at 100k packets/s of 1-KB frames. */
export const HANDOVER_CHUNK = 256 * 1024;
/** Most bytes posted and not yet taken: ~0.3 s at 100k packets/s of 1-KB frames, twice the kernel's buffer. */
export const HANDOVER_MAX_IN_FLIGHT = 32 * 1024 * 1024;

/** What the holding thread tells the reading one. */
export type HandoverMessage =
  | { t: 'packets'; chunk: ArrayBuffer; length: number }
  | { t: 'captureStats'; kernelDrops: number; interfaceDrops: number; lastDropMs: number | null }
  | { t: 'captureDone' }
  | { t: 'captureFailed'; error: Error };

/** What the reading thread tells the holding one. */
export type HandoverReply = { t: 'startCapture' } | { t: 'stopCapture' } | { t: 'consumed'; bytes: number };

/** The holding side: packs packets into chunks and posts them (`post` transfers `chunk`). */
export class HandoverWriter {
  /** Packets not handed over because `maxInFlight` bytes were waiting already. */
  dropped = 0;
  private chunk: Buffer | null = null;
  private used = 0;
  private inFlight = 0;
  private flushQueued = false;

  constructor(
    private readonly post: (chunk: ArrayBuffer, length: number) => void,
    private readonly maxInFlight = HANDOVER_MAX_IN_FLIGHT,
    private readonly chunkBytes = HANDOVER_CHUNK,
  ) {}

  /** The pcap file header (classic, microseconds, little-endian), posted at once: the capture is open. */
  header(linkType: number, snaplen: number): void {
    const b = this.room(24);
    b.writeUInt32LE(0xa1b2c3d4, 0);
    b.writeUInt16LE(2, 4);
    b.writeUInt16LE(4, 6);
    b.writeUInt32LE(0, 8);
    b.writeUInt32LE(0, 12);
    b.writeUInt32LE(snaplen, 16);
    b.writeUInt32LE(linkType, 20);
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
      // libpcap hands over a batch per poll; what is left of the chunk goes when the batch is over
      this.flushQueued = true;
      setImmediate(() => {
        this.flushQueued = false;
        this.flush();
      });
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

  /** The reading side took `bytes` of what was posted. */
  consumed(bytes: number): void {
    this.inFlight = Math.max(0, this.inFlight - bytes);
  }

  /** Bytes posted and not yet taken, and bytes waiting in the current chunk. */
  pending(): number {
    return this.inFlight + this.used;
  }

  /** A chunk with `need` bytes free at `used` (a new one when the current one is full: it is posted first). */
  private room(need: number): Buffer {
    if (this.chunk !== null && this.used + need <= this.chunk.length) return this.chunk;
    this.flush();
    this.chunk = Buffer.from(new ArrayBuffer(Math.max(this.chunkBytes, need)));
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
  const queue: Buffer[] = [];
  let ended = false;
  let failure: Error | null = null;
  let wanted = false;
  let drops = { kernelDrops: 0, interfaceDrops: 0, lastDropMs: null as number | null };
  let stopRequested = false;

  // pulled: a chunk leaves the queue when the reader asks for more (a Readable holding one chunk at most)
  const input = new Readable({
    highWaterMark: 1,
    read() {
      wanted = true;
      pump();
    },
  });
  function pump(): void {
    while (wanted && queue.length > 0) {
      const chunk = queue.shift() as Buffer;
      reply({ t: 'consumed', bytes: chunk.length });
      wanted = input.push(chunk);
    }
    if (wanted && ended && queue.length === 0) {
      wanted = false;
      input.push(null);
    }
  }
  const reader = buildFileSource({ path: '-', input, name: description }, deps);

  return {
    description,
    take(message) {
      switch (message.t) {
        case 'packets':
          queue.push(Buffer.from(message.chunk, 0, message.length));
          pump();
          break;
        case 'captureStats':
          drops = { kernelDrops: message.kernelDrops, interfaceDrops: message.interfaceDrops, lastDropMs: message.lastDropMs };
          break;
        case 'captureFailed':
          failure = message.error;
          ended = true;
          pump();
          break;
        case 'captureDone':
          ended = true;
          pump();
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
