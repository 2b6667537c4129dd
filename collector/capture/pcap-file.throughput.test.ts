/**
 * Reader throughput with a sink that does nothing, on a ~1M-packet capture built from a real one's
 * records. The bound is loose (CI machines vary); the measured rate is printed.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, expect, it } from 'vitest';
import { classicHeader, classicRecords } from '../../test/helpers/capture-files.js';
import { describeShared, realCapture } from '../../test/helpers/shared.js';
import { buildFileSource } from './pcap-file.js';

const scratch = mkdtempSync(join(tmpdir(), 'earshot-throughput-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describeShared('file reader throughput', () => {
  it('reads a million small packets quickly', async () => {
    // 10,000 packets, mostly small (a port scan): per-packet cost dominates, not bytes
    const records = classicRecords(realCapture('cicids2017-slice_multihost-lan_trafficmanipulator.pcap'));
    const path = join(scratch, 'big.pcap');
    const fd = openSync(path, 'w');
    writeSync(fd, classicHeader());
    for (let i = 0; i < 100; i++) writeSync(fd, records);
    closeSync(fd);
    const start = performance.now();
    const stats = await buildFileSource({ path }, {}).run(() => {});
    const seconds = (performance.now() - start) / 1000;
    const rate = stats.packets / seconds;
    console.log(`file reader: ${stats.packets} packets in ${seconds.toFixed(2)} s = ${Math.round(rate).toLocaleString('en-US')} packets/s`);
    expect(stats.packets).toBe(1_000_000);
    expect(rate).toBeGreaterThan(300_000);
  });
});
