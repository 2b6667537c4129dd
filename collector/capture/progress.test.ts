/** The progress bar: what the line says, and that it draws only on a terminal for inputs of known size. */
import { describe, expect, it } from 'vitest';
import { buildProgress, formatBytes, progressLine } from './progress.js';
import { emptyCaptureStats, type CaptureSource, type CaptureStats } from './types.js';

function fakeTerminal(isTTY: boolean): { stream: NodeJS.WriteStream; output: string[] } {
  const output: string[] = [];
  const stream = { isTTY, columns: 100, write: (text: string) => output.push(text) } as unknown as NodeJS.WriteStream;
  return { stream, output };
}

function fakeSource(stats: Partial<CaptureStats>): CaptureSource {
  const current = { ...emptyCaptureStats(), ...stats };
  return { description: 'test', run: async () => current, stop: () => {}, stats: () => ({ ...current }) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('progress', () => {
  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 * 1024 * 1024)).toBe('5.0 GiB');
  });

  it('shows bytes of total, percent, packets and rate, within the width', () => {
    const line = progressLine(512 * 1024, 1024 * 1024, 12_345, 6789.4, 100);
    expect(line).toContain('512.0 KiB / 1.0 MiB');
    expect(line).toContain(' 50%');
    expect(line).toContain('12,345 pkts');
    expect(line).toContain('6,789 pkt/s');
    expect(line).toMatch(/^\[#+-+\] /);
    expect(line.length).toBeLessThanOrEqual(100);
    expect(progressLine(10, 1000, 1, 1, 30).length).toBeLessThanOrEqual(30);
  });

  it('draws on a terminal and clears its line at stop()', async () => {
    const { stream, output } = fakeTerminal(true);
    const bar = buildProgress(stream, fakeSource({ totalBytes: 1000, fileBytesRead: 250, packets: 42 }));
    bar.start();
    await sleep(350);
    bar.stop();
    const draws = output.filter((text) => text.includes('pkts'));
    expect(draws.length).toBeGreaterThanOrEqual(2);
    expect(draws.length).toBeLessThanOrEqual(5);
    expect(draws[0]).toContain('25%');
    expect(output[output.length - 1]).toBe('\r\x1b[K');
    const count = output.length;
    await sleep(150);
    expect(output.length).toBe(count);
  });

  it('stays silent when stderr is not a terminal', async () => {
    const { stream, output } = fakeTerminal(false);
    const bar = buildProgress(stream, fakeSource({ totalBytes: 1000 }));
    bar.start();
    await sleep(150);
    bar.stop();
    expect(output).toEqual([]);
  });

  it('stays silent when the input size is unknown (stdin)', async () => {
    const { stream, output } = fakeTerminal(true);
    const bar = buildProgress(stream, fakeSource({ totalBytes: null }));
    bar.start();
    await sleep(150);
    bar.stop();
    expect(output).toEqual([]);
  });
});
