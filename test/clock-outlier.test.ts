/**
 * One damaged time stamp far ahead (found by an audit): the capture's clock only moves forward, so one
 * packet stamped 2096 inside a real activation expired every flow, split the upload in two, made the
 * capture end in 2096, and held a paced replay for 82 years. Such a packet now takes the latest time
 * (collector/capture/record-parser.ts) when the packet after it is back; a jump the next packet shares stays.
 * Expected values are the capture's: its label (one wake-word activation, ../shared/captures/real/INDEX.tsv)
 * and tshark's flows and times of the unmodified file.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { haveTshark } from './helpers/capture-files.js';
import { runCli } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { tsharkFlows, tsharkTotals } from './helpers/tshark.js';
import { describe } from 'vitest';

const FIXTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
/** A packet inside the activation (the upload runs from ~packet 1000 to ~2000 of 2778). */
const DAMAGED = 1200;

/** The classic pcap's records: offset of each 16-byte record header. */
function recordOffsets(file: Buffer): number[] {
  const out: number[] = [];
  for (let at = 24; at + 16 <= file.length; at += 16 + file.readUInt32LE(at + 8)) out.push(at);
  return out;
}

/** tshark's first and last packet time (ISO, ms). */
function tsharkSpan(file: string): { first: string; last: string } {
  const times = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.time_epoch'], { encoding: 'utf8' }).trim().split('\n').map(Number);
  const iso = (s: number) => new Date(Math.floor(s * 1000)).toISOString();
  return { first: iso(Math.min(...times)), last: iso(Math.max(...times)) };
}

describe.skipIf(!haveTshark())('time stamps far ahead of the capture\'s clock', () => {
  const dir = tempDir('earshot-clock-');
  const plain = join(dir, 'plain.pcap');
  const outlier = join(dir, 'outlier.pcap');
  const stepped = join(dir, 'stepped.pcap');

  beforeAll(() => {
    execFileSync('editcap', ['-F', 'pcap', FIXTURE, plain]);
    const bytes = readFileSync(plain);
    expect(bytes.readUInt32LE(0)).toBe(0xa1b2c3d4);
    const records = recordOffsets(bytes);
    expect(records.length).toBe(2778);
    // one record stamped 2096-10-02
    const damaged = Buffer.from(bytes);
    damaged.writeUInt32LE(4_000_000_000, records[DAMAGED]);
    writeFileSync(outlier, damaged);
    // the clock set forward two days from that packet on (every later packet)
    const step = Buffer.from(bytes);
    for (const at of records.slice(DAMAGED)) step.writeUInt32LE(step.readUInt32LE(at) + 2 * 86_400, at);
    writeFileSync(stepped, step);
  });

  it('one packet stamped 2096 takes the latest time: one activation, tshark\'s flows and times, counted and told', async () => {
    const r = await runCli(['replay', outlier, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.activations).toHaveLength(1);
    expect(report.flows).toHaveLength(tsharkFlows(plain).size);
    expect(report.stats.flowsExpired).toBe(0);
    const span = tsharkSpan(plain);
    expect({ first: report.capture.first, last: report.capture.last }).toEqual(span);
    expect(report.capture.packets).toBe(tsharkTotals(outlier).packets);
    expect(report.stats.clockOutliers).toBe(1);
    expect(r.stderr).toContain('1 packet is stamped more than a day ahead of the packets around it (a damaged time stamp): each took the latest time before it');
  });

  it('a paced replay does not wait for it (it waited ~82 years)', async () => {
    const started = Date.now();
    // 48 s of capture at 40x: ~1.2 s
    const r = await runCli(['replay', outlier, '--format', 'json', '--realtime-speed', '40', '--no-progress'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(25_000);
    expect((JSON.parse(r.stdout) as Report).capture.packets).toBe(2778);
  }, 40_000);

  it('a jump the next packets share (every later packet two days on) is the capture\'s own: kept, as tshark shows it', async () => {
    const r = await runCli(['replay', stepped, '--format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect({ first: report.capture.first, last: report.capture.last }).toEqual(tsharkSpan(stepped));
    expect(report.stats.clockOutliers).toBe(0);
    expect(r.stderr).not.toContain('stamped more than a day ahead');
  });

  it('a damaged stamp on the last packet of the input stays (nothing after it to tell), and one in the middle is found whatever the reads\' sizes (stdin)', async () => {
    // stdin arrives in pipe-sized pieces: the look at the next record must not depend on where they end
    const viaStdin = await runCli(['replay', '-', '--format', 'json'], { input: readFileSync(outlier) });
    expect(viaStdin.code, viaStdin.stderr).toBe(0);
    const fromFile = await runCli(['replay', outlier, '--format', 'json']);
    expect(viaStdin.stdout).toBe(fromFile.stdout);
  });
});
