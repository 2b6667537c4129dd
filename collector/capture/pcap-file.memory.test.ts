/**
 * A streamed input (a pipe, a .gz file) must not keep the chunks it has already parsed: the reader once
 * raced each read against a never-settling "stopped" promise, and every chunk stayed reachable until the
 * end (a 360 MB peak for a 426 MB capture on stdin). The sink sees the very Buffer each chunk arrived in,
 * so the test holds a WeakRef to each and, near the end of the input, collects garbage and counts the
 * chunks still alive.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { classicHeader, classicRecord, fakeFrame } from '../../test/helpers/capture-files.js';
import { tempDir } from '../../test/helpers/temp.js';
import { buildFileSource } from './pcap-file.js';
import type { CaptureSource } from './types.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const PACKETS = 24_000;
/** ~24 MB: a few hundred pipe reads (64 KB each) or gunzip chunks. */
function capture(): Buffer {
  const frame = fakeFrame(1000, 7);
  const records = Array.from({ length: PACKETS }, (_, i) => classicRecord({ seconds: 1_700_000_000 + i, fraction: 0, data: frame }));
  return Buffer.concat([classicHeader(), ...records]);
}

/** Reads the source; at 90 % of the packets, counts the chunks (other than the last few) still reachable after a GC. */
async function chunksAliveNearEnd(source: CaptureSource): Promise<{ chunks: number; alive: number }> {
  // the reader's carry buffer (a record straddling two chunks) comes back again and again: not a chunk
  const seen: Array<{ ref: WeakRef<Buffer>; reused: boolean }> = [];
  const index = new WeakMap<Buffer, number>();
  let last: Buffer | null = null;
  let count = 0;
  let alive = -1;
  let chunks = 0;
  await source.run((buf) => {
    count++;
    if (buf !== last) {
      last = buf;
      const at = index.get(buf);
      if (at !== undefined) {
        seen[at].reused = true;
      } else {
        index.set(buf, seen.length);
        seen.push({ ref: new WeakRef(buf), reused: false });
      }
    }
    if (count === Math.floor(PACKETS * 0.9)) {
      gc();
      gc();
      // the current chunk and the ones still queued in the stream may be alive, older ones must not be
      const older = seen.slice(0, -4).filter((entry) => !entry.reused);
      chunks = older.length;
      alive = older.filter((entry) => entry.ref.deref() !== undefined).length;
    }
  });
  expect(count).toBe(PACKETS);
  return { chunks, alive };
}

describe('streamed input keeps no parsed chunk', () => {
  const dir = tempDir('earshot-stream-memory-');
  const bytes = capture();
  const plain = join(dir, 'stream.pcap');
  writeFileSync(plain, bytes);
  const compressed = join(dir, 'stream.pcap.gz');
  writeFileSync(compressed, gzipSync(bytes, { level: 1 }));

  it('a pipe (stdin, tcpdump -w -)', async () => {
    const cat = spawn('cat', [plain], { stdio: ['ignore', 'pipe', 'inherit'] });
    const result = await chunksAliveNearEnd(buildFileSource({ path: '-', input: cat.stdout, name: 'pipe' }, {}));
    expect(result.chunks).toBeGreaterThan(100);
    expect(result.alive).toBe(0);
  });

  it('a .gz file', async () => {
    const result = await chunksAliveNearEnd(buildFileSource({ path: compressed }, {}));
    expect(result.chunks).toBeGreaterThan(50);
    expect(result.alive).toBe(0);
  });
});
