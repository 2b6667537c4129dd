/**
 * The InfluxDB sink in a live collector (`earshot collect --source stdin`, fed a real capture) and
 * around the edges of a run: wall-clock timestamps, SIGTERM and SIGHUP (flush, write, exit 0), a second signal
 * (exit at once, points kept in the spool), wake events and device snapshots. Real influxd.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { describeInflux, useInfluxd } from './helpers/influxd.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { until } from './helpers/wait.js';
import { tempDir } from './helpers/temp.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const WAKE_EVENTS = join(PROJECT_ROOT, 'test/fixtures/wake-events/events.jsonl');

let dbSeq = 0;
const newDb = () => `live${process.pid}_${++dbSeq}`;

/** Sum of bytes over the report's flows. */
/** The report's flow bytes, a LAN flow's once more for the device that answered it (`peer`): what `traffic` sums to over the home. */
const reportBytes = (r: Report) => r.flows.reduce((n, f) => n + (f.bytesUp + f.bytesDown) * (f.peer === null ? 1 : 2), 0);

interface Child {
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  stderr: () => string;
  child: ReturnType<typeof spawn>;
}

/** `earshot collect --source stdin ...` with its stdin held open after `input` (a live feed that goes quiet). */
function collectFromStdin(args: string[], input: Buffer): Child {
  const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--source', 'stdin', '--format', 'json', '--log-format', 'text', '--api', 'false', ...args], { cwd: PROJECT_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdin.on('error', () => {});
  child.stdin.write(input);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { done, stderr: () => stderr, child };
}


describeInflux('InfluxDB sink, live', () => {
  const server = useInfluxd();

  // SIGHUP too: the terminal an operator ran it from closed (Node's default for it ended the process at
  // once: no report, the points of the interval in progress never written)
  it.each(['SIGTERM', 'SIGHUP'] as const)('a live collector stamps points with wall time; %s flushes, writes the points and exits 0', async (signal) => {
    const db = newDb();
    const before = Date.now();
    const run = collectFromStdin(['--influx-url', server.url, '--influx-db', db], readFileSync(CAPTURE));
    // every packet read (the capture spans 48 s of 2019; live, that is now), then the operator stops it
    await until('the packets to be read', async () => {
      const rows = await server.rows(db, 'SELECT last(packets) AS p FROM collector').catch(() => []);
      return rows.length > 0 && Number(rows[0].p) === 2778;
    });
    run.child.kill(signal);
    const r = await run.done;
    expect([r.code, r.signal]).toEqual([0, null]);
    expect(r.stderr).toMatch(new RegExp(`stopping: finishing flows and writing the report and the points.*signal=${signal}`));
    const report = JSON.parse(r.stdout) as Report;
    const [sum] = await server.rows(db, 'SELECT sum(bytes_up) + sum(bytes_down) AS b, min(bytes_up) AS m FROM traffic');
    expect(sum.b).toBe(reportBytes(report));
    const times = await server.rows(db, 'SELECT bytes_up FROM traffic');
    for (const t of times) {
      expect(Number(t.time)).toBeGreaterThan(before - 60_000);
      expect(Number(t.time)).toBeLessThan(Date.now() + 60_000);
    }
    expect(await server.rows(db, 'SELECT * FROM activation')).toHaveLength(report.activations.length);
  }, 60_000);

  it('a second signal exits at once, and the points wait in the spool', async () => {
    const dataDir = tempDir('earshot-live-');
    await server.stop();
    try {
      const run = collectFromStdin(['--influx-url', server.url, '--influx-db', newDb(), '--data-dir', dataDir, '--influx-wait', '600'], readFileSync(CAPTURE));
      await until('InfluxDB to be missed', () => run.stderr().includes('spooling'));
      run.child.kill('SIGTERM');
      // the first signal: finishing, then waiting for InfluxDB (600 s); the second ends it
      await until('the wait', () => run.stderr().includes('stopping'));
      await new Promise((r) => setTimeout(r, 500));
      const sent = Date.now();
      run.child.kill('SIGTERM');
      const r = await run.done;
      expect(Date.now() - sent).toBeLessThan(3000);
      expect(r.code).toBe(130);
      const files = readdirSync(join(dataDir, 'spool', 'influx'));
      expect(files.length).toBeGreaterThan(0);
      expect(files.every((f) => /^\d{12}-\d+\.lp\.gz$/.test(f))).toBe(true);
    } finally {
      await server.start();
    }
  }, 60_000);

  it('writes wake events and device snapshots', async () => {
    const db = newDb();
    const r = await runCli(['replay', CAPTURE, '--format', 'json', '--influx-url', server.url, '--influx-db', db, '--influx-raw-retention', 'INF', '--wake-events', WAKE_EVENTS]);
    expect(r.code).toBe(0);
    // the events in the file (JSON lines that are not comments), counted here without earshot's parser
    const expected = readFileSync(WAKE_EVENTS, 'utf8').split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as { source: string });
    const events = await server.rows(db, 'SELECT * FROM wake_event');
    expect(events).toHaveLength(expected.length);
    expect(events.map((e) => e.source).sort()).toEqual(expected.map((e) => e.source).sort());
    const report = JSON.parse(r.stdout) as Report;
    const devices = await server.rows(db, 'SELECT last("name") AS "name", last(vendor) AS vendor, last(assistant) AS assistant FROM device GROUP BY device');
    const seen = new Map(devices.map((d) => [d.device, d]));
    for (const d of report.devices) {
      expect(seen.get(d.mac), d.mac).toMatchObject({ name: d.name ?? '', assistant: d.assistant });
    }
  });
});
