/**
 * The hand-over of a capture held by one thread to the pipeline's (handover.ts), without the threads: the
 * holder's side fed by the file reader as libpcap would feed it, the pipeline's side read as the pipeline
 * reads it. What arrives must be what tshark reads from the file (lengths, bytes, times to the
 * microsecond); a pipeline that takes nothing makes the holder drop, not grow; a failure of the holder's
 * capture is the pipeline's source's error.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { differencesFromTshark, readSource, tsharkFramesOfAll } from '../../test/helpers/capture-files.js';
import { PROJECT_ROOT } from '../../test/helpers/shared.js';
import { earshotError, isEarshotError } from '../errors.js';
import { buildHandoverSource, HandoverWriter, type HandoverReply, type HandoverSource } from './handover.js';
import { buildFileSource } from './pcap-file.js';

const FIXTURES = ['amazon-echodot3_activation_neu.pcapng', 'nest_logsink-dns-cname_ndpi.pcap', 'sonos_local-tls_ndpi.pcapng']
  .map((name) => join(PROJECT_ROOT, 'test/fixtures/captures', name));

/**
 * A holder that "captures" `file` when the pipeline's side asks: each packet through the writer, as the
 * libpcap source's sink would give it; small chunks, so that a capture spans many.
 */
function holderOf(file: string, options: { chunkBytes?: number; maxInFlight?: number; failWith?: Error } = {}) {
  let source: HandoverSource | null = null;
  const chunks = new Set<ArrayBuffer>();
  let posts = 0;
  const writer = new HandoverWriter((chunk, length) => {
    chunks.add(chunk);
    posts++;
    source?.take({ t: 'packets', chunk, length });
  }, options.maxInFlight, options.chunkBytes ?? 4096);
  const replies: HandoverReply['t'][] = [];
  const reply = (m: HandoverReply) => {
    replies.push(m.t);
    // the chunk comes back for reuse: a reader still holding it would read the next packets' bytes
    if (m.t === 'consumed') writer.consumed(m.bytes, m.chunk);
    if (m.t === 'startCapture') void capture();
  };
  async function capture(): Promise<void> {
    const packets: Array<{ data: Buffer; wireLen: number; timeMs: number; linkType: number }> = [];
    await buildFileSource({ path: file }, {}).run((buf, offset, capLen, wireLen, timeMs, linkType) => {
      packets.push({ data: Buffer.from(buf.subarray(offset, offset + capLen)), wireLen, timeMs, linkType });
    });
    writer.header(packets[0].linkType, 262_144);
    // a few packets per turn of the event loop, as libpcap's batches come: the reader runs in between
    // and gives chunks back, which the writer then fills again
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i];
      writer.packet(p.data, 0, p.data.length, p.wireLen, p.timeMs);
      if (i % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
    }
    writer.flush();
    source?.take({ t: 'captureStats', kernelDrops: writer.dropped, interfaceDrops: 0, lastDropMs: null });
    source?.take(options.failWith ? { t: 'captureFailed', error: options.failWith } : { t: 'captureDone' });
  }
  source = buildHandoverSource(`interface test (libpcap)`, reply, {});
  return { source, writer, replies, reuse: () => ({ posts, chunks: chunks.size }) };
}

describe('the hand-over of a held capture', () => {
  it('delivers every packet of the real captures as tshark reads them (lengths, MD5, times to the microsecond)', async () => {
    const oracle = await tsharkFramesOfAll(FIXTURES);
    for (const file of FIXTURES) {
      const { source, writer, replies, reuse } = holderOf(file);
      const { packets, stats } = await readSource(source);
      expect(differencesFromTshark(packets, oracle.get(file) ?? []), file).toEqual([]);
      expect(stats.kernelDrops, file).toBe(0);
      expect(replies[0]).toBe('startCapture');
      // in many chunks, and the pipeline's side said it took every byte the holder posted
      expect(replies.filter((t) => t === 'consumed').length, file).toBeGreaterThan(5);
      expect(writer.pending(), file).toBe(0);
      // chunks given back were filled again (a reader holding one too long would have read other bytes)
      expect(reuse().chunks, file).toBeLessThan(reuse().posts / 2);
    }
  });

  it('a pipeline that takes nothing: the holder keeps at most maxInFlight bytes and counts what it drops', () => {
    const posted: number[] = [];
    const writer = new HandoverWriter((_chunk, length) => posted.push(length), 10_000, 4096);
    writer.header(1, 262_144);
    const frame = Buffer.alloc(1000, 7);
    for (let i = 0; i < 100; i++) writer.packet(frame, 0, frame.length, frame.length, 1_700_000_000_000 + i);
    writer.flush();
    // 24 header bytes, then 1,016-byte records while they fit in 10,000
    const kept = Math.floor((10_000 - 24) / 1016);
    expect(posted.reduce((a, b) => a + b, 0)).toBe(24 + kept * 1016);
    expect(writer.dropped).toBe(100 - kept);
    expect(writer.pending()).toBeLessThanOrEqual(10_000);
    // once the pipeline took what was posted, packets are handed over again
    writer.consumed(posted.reduce((a, b) => a + b, 0));
    writer.packet(frame, 0, frame.length, frame.length, 1_700_000_001_000);
    expect(writer.dropped).toBe(100 - kept);
    expect(writer.pending()).toBe(1016);
  });

  it('a failure of the holder\'s capture is the source\'s error, after the packets it had', async () => {
    const failure = earshotError('EARSHOT_ERR_CAPTURE_FAILED', 'test', 'the interface disappeared');
    const { source } = holderOf(FIXTURES[1], { failWith: failure });
    const seen: number[] = [];
    const error = await source.run((_buf, _offset, capLen) => seen.push(capLen)).then(() => null, (err: unknown) => err);
    expect(isEarshotError(error) && error.code).toBe('EARSHOT_ERR_CAPTURE_FAILED');
    expect(seen.length).toBe((await tsharkFramesOfAll([FIXTURES[1]])).get(FIXTURES[1])?.length);
  });

  it('stop() asks the holder to stop; a stop before run() is asked for right after the start', () => {
    const replies: string[] = [];
    const source = buildHandoverSource('interface test (libpcap)', (m) => replies.push(m.t), {});
    source.stop();
    void source.run(() => undefined).catch(() => undefined);
    expect(replies).toEqual(['stopCapture', 'startCapture', 'stopCapture']);
    source.take({ t: 'captureDone' });
  });

  it('reuses the chunks the pipeline gave back: a steady capture allocates none', () => {
    const posted: ArrayBuffer[] = [];
    const writer = new HandoverWriter((chunk) => posted.push(chunk), 1 << 20, 4096);
    const frame = Buffer.alloc(1000, 7);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) writer.packet(frame, 0, frame.length, frame.length, 1_700_000_000_000 + i);
      writer.flush();
      const chunk = posted[posted.length - 1];
      writer.consumed(3 * 1016, chunk);
    }
    expect(posted).toHaveLength(3);
    expect(new Set(posted).size).toBe(1);
  });
});
