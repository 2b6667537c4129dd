/**
 * A live capture whose pipeline stalls (a long GC, a burst of API work on its thread, a slow disk) finds
 * what an unstalled one finds. While the pipeline is stalled, packets wait in the kernel's buffer; when it
 * runs again, the 100-ms wall-clock tick is overdue and runs first (timers come before I/O in Node's event
 * loop). That tick used to move the collector's clock by the whole stall past the last packet read, before
 * the waiting packets were read: the detector saw a silence the traffic does not have, mid-upload. The
 * first tick after a stall now only notes the time; the next one moves the clock from the packets read
 * since.
 */
import { pino } from 'pino';
import { expect, it, describe } from 'vitest';
import { join } from 'node:path';
import type { CaptureSource, CaptureStats, PacketSink } from './capture/types.js';
import { buildFileSource } from './capture/pcap-file.js';
import { loadConfig } from './config.js';
import { buildRuntime } from './runtime.js';
import type { ActivationEvent } from './sink/events.js';
import { PROJECT_ROOT } from '../test/helpers/shared.js';

/** An Echo Dot 3 asked one question: one activation, an upload of ~5 s. */
const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const STALL_MS = 2500;

interface Packet { bytes: Buffer; wireLen: number; timeMs: number; linkType: number }

/** Every packet of the capture, copied (the reader reuses its buffers). */
async function readPackets(): Promise<{ packets: Packet[]; stats: CaptureStats }> {
  const packets: Packet[] = [];
  const source = buildFileSource({ path: CAPTURE }, {});
  const stats = await source.run((buf, offset, capLen, wireLen, timeMs, linkType) => {
    packets.push({ bytes: Buffer.from(buf.subarray(offset, offset + capLen)), wireLen, timeMs, linkType });
  });
  return { packets, stats };
}

/** A live source stand-in: delivers the packets as fast as it can, blocking the thread at `stallAt`. */
function stallingSource(packets: Packet[], stats: CaptureStats, stallAt: number): CaptureSource {
  return {
    description: 'a stalling live capture',
    async run(sink: PacketSink): Promise<CaptureStats> {
      for (let i = 0; i < packets.length; i++) {
        if (i === stallAt) {
          // the pipeline's thread is busy: no timer runs, the packets wait (in the kernel, live)
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, STALL_MS);
          // back in the event loop, the overdue tick runs before the waiting packets are read
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
        const p = packets[i];
        sink(p.bytes, 0, p.bytes.length, p.wireLen, p.timeMs, p.linkType);
      }
      return stats;
    },
    stop() {},
    stats: () => stats,
  };
}

async function activations(source: CaptureSource, wallTicks: boolean): Promise<string[]> {
  const runtime = buildRuntime(loadConfig({ flags: {} }), { clock: 'packet', activity: false }, { log: pino({ level: 'silent' }) });
  const finished: ActivationEvent[] = [];
  runtime.addListener({ onActivationEvent: (e) => { if (e.kind === 'finished') finished.push(e); } });
  // the collect command's ticker (cli/run-capture.ts): every 100 ms; the first call calibrates
  let ticker: NodeJS.Timeout | null = null;
  if (wallTicks) {
    runtime.collector.wallTick(Date.now());
    ticker = setInterval(() => runtime.collector.wallTick(Date.now()), 100);
  }
  try {
    await runtime.run(source);
  } finally {
    if (ticker) clearInterval(ticker);
  }
  return finished.map(({ activation: a }) => `${a.start} ${a.end} ${a.bytesUp} ${a.score} ${a.reasons.join('+')}`);
}

describe('the wall clock of a live capture', () => {
  it('a stall in the middle of an upload changes nothing: the first tick after it does not jump past the waiting packets', async () => {
    const { packets, stats } = await readPackets();
    const reference = await activations(buildFileSource({ path: CAPTURE }, {}), false);
    expect(reference).toHaveLength(1);
    // the middle of the upload (start and end from the reference, i.e. from the packets alone)
    const [start, end] = reference[0].split(' ').slice(0, 2).map((t) => Date.parse(t));
    const middle = (start + end) / 2;
    const stallAt = packets.findIndex((p) => p.timeMs >= middle);
    expect(stallAt).toBeGreaterThan(0);
    expect(await activations(stallingSource(packets, stats, stallAt), true)).toEqual(reference);
  }, 30_000);

  it('after a late tick, the wall clock still ends an upload whose packets stop (the ticks after it move the clock)', async () => {
    // the packets up to the middle of the upload, then nothing: only the wall clock can end it
    const { packets } = await readPackets();
    const reference = await activations(buildFileSource({ path: CAPTURE }, {}), false);
    const [start, end] = reference[0].split(' ').slice(0, 2).map((t) => Date.parse(t));
    const cut = packets.findIndex((p) => p.timeMs >= (start + end) / 2);
    const runtime = buildRuntime(loadConfig({ flags: {} }), { clock: 'packet', activity: false }, { log: pino({ level: 'silent' }) });
    const finished: ActivationEvent[] = [];
    runtime.addListener({ onActivationEvent: (e) => { if (e.kind === 'finished') finished.push(e); } });
    runtime.collector.wallTick(Date.now());
    const ticker = setInterval(() => runtime.collector.wallTick(Date.now()), 100);
    try {
      for (const p of packets.slice(0, cut)) runtime.collector.ingest(p.bytes, 0, p.bytes.length, p.wireLen, p.timeMs, p.linkType);
      // a blocked thread first (a late tick), then silence: the activation must still end on the wall clock
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
      const deadline = Date.now() + 10_000;
      while (finished.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      clearInterval(ticker);
    }
    expect(finished).toHaveLength(1);
    expect(Date.parse(finished[0].activation.start)).toBe(start);
  }, 30_000);
});
