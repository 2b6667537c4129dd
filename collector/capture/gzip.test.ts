/**
 * The gzip member reader on its own: a gzip bomb is decompressed in bounded memory when the reader does
 * not take the output (zlib is paused), and everything comes out once it does. The expected bytes are
 * the test's own (what was compressed).
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GUNZIP_CHUNK, GzipMembers, MAX_QUEUED_BYTES, Outflow } from './gzip.js';

describe('GzipMembers', () => {
  it('a gzip bomb (64 MB of zeros in ~64 kB) waits in bounded memory until the reader takes it; then all of it comes out', async () => {
    const plain = Buffer.alloc(64 * 1024 * 1024);
    const bomb = gzipSync(plain);
    expect(bomb.length).toBeLessThan(100_000);
    const out = new Outflow();
    const members = new GzipMembers('bomb.gz', out);
    const fed = (async () => {
      await members.push(bomb);
      await members.end();
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // zlib paused at the bound: one output chunk in its own buffer, one on the way, at most
    expect(out.queuedBytes).toBeGreaterThanOrEqual(MAX_QUEUED_BYTES);
    expect(out.queuedBytes).toBeLessThanOrEqual(MAX_QUEUED_BYTES + 2 * GUNZIP_CHUNK);
    let total = 0;
    let nonZero = 0;
    for (;;) {
      if (out.queue.length > 0) {
        const chunk = out.take();
        total += chunk.length;
        nonZero += chunk.some((b) => b !== 0) ? 1 : 0;
        continue;
      }
      if (out.failure !== null) throw out.failure;
      if (out.ended) break;
      await out.waitForSignal();
    }
    await fed;
    expect([total, nonZero, members.notes]).toEqual([plain.length, 0, { checksumMismatches: 0, trailingBytes: 0, trailingAt: 0, cutShort: false }]);
  });
});
