/** Replay pacing (realtimeSpeed) and stopping a file read early. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { classicPcap, fakeFrame } from '../../test/helpers/capture-files.js';
import { describeShared, realCapture } from '../../test/helpers/shared.js';
import { buildFileSource } from './pcap-file.js';

const scratch = mkdtempSync(join(tmpdir(), 'earshot-pacing-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A capture of `count` packets `stepMs` apart. */
function evenlySpaced(name: string, count: number, stepMs: number): string {
  const path = join(scratch, name);
  writeFileSync(path, classicPcap(Array.from({ length: count }, (_, i) => {
    const us = i * stepMs * 1000;
    return { seconds: 1_700_000_000 + Math.floor(us / 1e6), fraction: us % 1e6, data: fakeFrame(60, i) };
  })));
  return path;
}

describe('pacing', () => {
  it('replays 0.6 s of capture at speed 2 in about 0.3 s, packets spread over it', async () => {
    const path = evenlySpaced('600ms.pcap', 13, 50);
    const arrivals: number[] = [];
    const start = performance.now();
    const stats = await buildFileSource({ path, realtimeSpeed: 2 }, {}).run(() => arrivals.push(performance.now() - start));
    const elapsed = performance.now() - start;
    expect(stats.packets).toBe(13);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    // the middle packet (0.3 s into the capture) is due 0.15 s into the replay
    expect(arrivals[6]).toBeGreaterThanOrEqual(120);
  });

  it('without realtimeSpeed it does not wait', async () => {
    const path = evenlySpaced('10s.pcap', 11, 1000);
    const start = performance.now();
    await buildFileSource({ path }, {}).run(() => {});
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('stop() ends a paced replay during its wait', async () => {
    const path = evenlySpaced('slow.pcap', 10, 1000);
    const source = buildFileSource({ path, realtimeSpeed: 1 }, {});
    setTimeout(() => source.stop(), 100);
    const start = performance.now();
    const stats = await source.run(() => {});
    expect(performance.now() - start).toBeLessThan(900);
    expect(stats.packets).toBe(1);
    expect(stats.truncated).toBe(false);
  });
});

describeShared('stopping a file read', () => {
  it('stop() from inside the sink delivers no further packet', async () => {
    const source = buildFileSource({ path: realCapture('cicids2017-slice_multihost-lan_trafficmanipulator.pcap') }, {});
    let seen = 0;
    const stats = await source.run(() => {
      seen++;
      if (seen === 10) source.stop();
    });
    expect(seen).toBe(10);
    expect(stats.packets).toBe(10);
    expect(stats.truncated).toBe(false);
  });

  it('stop() before run() reads nothing', async () => {
    const source = buildFileSource({ path: realCapture('tls13-ech_zeek.pcap') }, {});
    source.stop();
    const stats = await source.run(() => {
      throw new Error('no packet expected');
    });
    expect(stats.packets).toBe(0);
  });
});
