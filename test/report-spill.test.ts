/**
 * `earshot collect` keeps the report's finished flows and DNS answers on disk while it runs
 * (collector/sink/spill.ts) and writes the same report as `earshot replay` of the same capture, byte
 * for byte; the spill directory is gone when it exits; on a full disk (a real tmpfs) it says so once
 * and the report is still whole.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classicHeader } from './helpers/capture-files.js';
import { runCli } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { canMount, Tmpfs } from './helpers/tmpfs.js';

const CAPTURE = `${PROJECT_ROOT}/test/fixtures/captures/amazon-echodot3_activation_neu.pcapng`;
// small bounds: the spill writes a segment every line, and drops old ones
const BOUNDS = ['--report-max-flows', '5', '--max-dns-answers', '4'];

async function replay(): Promise<string> {
  const r = await runCli(['replay', CAPTURE, '--format', 'json', '--no-progress', '--log-level', 'warn', ...BOUNDS]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

function collect(dataDir: string, capture = CAPTURE) {
  return runCli(['collect', '--file', capture, '--exit-when-done', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--format', 'json',
    '--log-level', 'warn', '--log-format', 'json', ...BOUNDS]);
}

describe('collect spills the report', () => {
  it('writes the report replay writes, and leaves no spill behind', async () => {
    const dataDir = tempDir('earshot-spill-collect-');
    const [expected, r] = await Promise.all([replay(), collect(dataDir)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(expected);
    expect(JSON.parse(r.stdout).stats.reportFlowsDropped).toBeGreaterThan(0);
    expect(readdirSync(dataDir).filter((f) => f.startsWith('earshot-spill-'))).toEqual([]);
    expect(r.stderr).not.toMatch(/spilled/);
  });
});

describe.skipIf(!canMount())('collect spills the report (full disk)', () => {
  let fs: Tmpfs;
  beforeAll(() => {
    fs = Tmpfs.mount(256);
  });
  afterAll(() => fs.unmount());

  it('says once that the records cannot be spilled, and still writes the whole report', async () => {
    const dataDir = `${fs.dir}/data`;
    // the data directory is made and its files fit (by a run with no packets: what a run keeps there,
    // findings among it, would be in the next run's report); then the disk is full
    const empty = join(tempDir('earshot-spill-empty-'), 'empty.pcap');
    writeFileSync(empty, classicHeader());
    const first = await collect(dataDir, empty);
    expect(first.code, first.stderr).toBe(0);
    fs.fill();
    const [expected, r] = await Promise.all([replay(), collect(dataDir)]);
    fs.free();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(expected);
    const spillWarnings = r.stderr.split('\n').filter((l) => l.includes('spilled'));
    expect(spillWarnings).toHaveLength(1);
    expect(JSON.parse(spillWarnings[0]).msg).toMatch(/^the report's records cannot be spilled to disk \(.*ENOSPC\): they are kept in memory for the rest of the run$/);
    expect(readdirSync(dataDir).filter((f) => f.startsWith('earshot-spill-'))).toEqual([]);
  });
});
