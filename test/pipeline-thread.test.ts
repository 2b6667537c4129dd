/**
 * `earshot collect` with the API runs the pipeline on its own thread (cli/pipeline-thread.ts) and
 * lowers the API thread's priority; `--api-thread false` keeps one thread. Both give the same report
 * and the same API answers, a stdin stream is read on the pipeline's thread, and the counts match
 * tshark's.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PIPELINE_YOUNG_GENERATION_MB } from '../cli/pipeline-thread.js';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { tsharkTotals } from './helpers/tshark.js';
import { freePort, untilValue } from './helpers/wait.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const dir = tempDir('pipeline-thread');

/** The nice value of each thread of `pid` (field 19 of /proc/PID/task/TID/stat), by thread id. */
function niceness(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // the command name is in parentheses and may hold spaces: count fields after it
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[16]));
  }
  return out;
}

async function ended(run: CollectRun): Promise<void> {
  await untilValue('the capture to end', async () => {
    const health = await (await fetch(`${run.base}/api/v1/health`)).json() as { capture: { running: boolean } };
    return health.capture.running ? null : true;
  }, 20_000);
}

const answers = async (run: CollectRun) => Promise.all(['devices', 'activations', 'flows', 'calls', 'presence'].map(async (route) => (await fetch(`${run.base}/api/v1/${route}`)).json()));

/** heap_size_limit of a bare worker thread with the pipeline's resourceLimits, under node's `flags`. */
function bareWorkerLimit(flags: string[]): number {
  const script = `const { Worker } = require('node:worker_threads');
new Worker("require('node:worker_threads').parentPort.postMessage(require('node:v8').getHeapStatistics().heap_size_limit)",
  { eval: true, resourceLimits: { maxYoungGenerationSizeMb: ${PIPELINE_YOUNG_GENERATION_MB} } }).on('message', (m) => console.log(m));`;
  return Number(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' }).trim());
}

describe('the pipeline on its own thread', () => {
  const runs: CollectRun[] = [];
  afterAll(async () => {
    for (const run of runs) await run.kill('SIGKILL').catch(() => {});
  });

  it('lowers only the API thread, and answers and reports as one thread does', async () => {
    const threaded = await startCollect(CAPTURE, ['-o', join(dir, 'threaded.json')]);
    runs.push(threaded);
    const single = await startCollect(CAPTURE, ['-o', join(dir, 'single.json'), '--api-thread', 'false']);
    runs.push(single);
    await ended(threaded);
    await ended(single);
    const threads = niceness(threaded.pid);
    // the main thread (its id is the process's) serves the API at +10; the pipeline's keeps 0
    expect(threads.get(threaded.pid)).toBe(10);
    expect([...threads.values()].filter((n) => n === 0).length).toBeGreaterThan(0);
    expect(niceness(single.pid).get(single.pid)).toBe(0);
    const [a, b] = [await answers(threaded), await answers(single)];
    expect(a).toEqual(b);
    expect((a[1] as { total: number }).total).toBe(1);
    expect([await threaded.stop(), await single.stop()]).toEqual([0, 0]);
    const report = (name: string) => {
      const r = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Record<string, unknown>;
      return r;
    };
    expect(report('threaded.json')).toEqual(report('single.json'));
    expect((report('threaded.json').capture as { packets: number }).packets).toBe(tsharkTotals(CAPTURE).packets);
  }, 60_000);

  it('reads a stream on stdin on the pipeline thread: every packet, the report on stdout', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--source', 'stdin', '--listen', `127.0.0.1:${port}`, '--format', 'json', '--log-format', 'json'], { cwd: PROJECT_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.stdin.end(readFileSync(CAPTURE));
    expect(await exited, stderr).toBe(0);
    const report = JSON.parse(stdout) as { capture: { packets: number; bytes: number } };
    expect(report.capture).toMatchObject(tsharkTotals(CAPTURE));
    // the log lines of both threads, each a whole JSON line
    const lines = stderr.trim().split('\n');
    expect(lines.every((l) => { try { JSON.parse(l); return true; } catch { return false; } }), stderr).toBe(true);
    expect(stderr).toMatch(/API on http:\/\/127\.0\.0\.1/);
    expect(stderr).toMatch(/"msg":"capturing"/);
  }, 30_000);

  // the API is built while the pipeline's thread starts and listens once the pipeline is ready: its
  // failures and the pipeline's before it must still end the run with one line, and end the process
  it('an API that cannot listen, or a capture that fails first: one line and exit 2', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      // told before anything starts: the line alone (not after "capturing" and the token's warning), and
      // nothing written to the data directory (before, its state was loaded and its lock taken first)
      const data = join(dir, 'in-use-data');
      mkdirSync(data);
      const inUse = await runCli(['collect', '--file', CAPTURE, '--exit-when-done', '--listen', `127.0.0.1:${port}`, '--data-dir', data, '-o', join(dir, 'in-use.json')], { timeoutMs: 20_000 });
      expect(inUse.code, inUse.stderr).toBe(2);
      expect(inUse.stderr).toBe(`earshot: cannot listen on 127.0.0.1:${port}: the address is in use (another earshot, or another program on this port)\n`);
      expect(readdirSync(data)).toEqual([]);
    } finally {
      taken.close();
    }
    // a listen address that cannot be: one line each, before anything starts
    const token = ['--api-token', 'a-token-of-24-characters'];
    for (const [args, line] of [
      [['--listen', '127.0.0.1:99999'], 'earshot: --listen: expected HOST:PORT (e.g. 127.0.0.1:8377 or [::1]:8377), got "127.0.0.1:99999"'],
      [['--listen', '999.1.1.1:8377', ...token], 'earshot: --listen: "999.1.1.1" is not an IPv4 address'],
      // TEST-NET-1 (RFC 5737): no interface of a machine has it
      [['--listen', '192.0.2.1:8377', ...token], 'earshot: cannot listen on 192.0.2.1:8377: no interface of this machine has that address'],
      [['--listen', '127.0.0.1:0', '--api-token', 'short'], 'earshot: --api-token: the API token is 5 bytes; it must be at least 16 (e.g. openssl rand -base64 24)'],
    ] as const) {
      const r = await runCli(['collect', '--file', CAPTURE, '--exit-when-done', ...args], { timeoutMs: 20_000 });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`${line}\n`);
    }
    const open = await runCli(['collect', '--file', CAPTURE, '--exit-when-done', '--listen', '0.0.0.0:0', '-o', join(dir, 'open.json')], { timeoutMs: 20_000 });
    expect(open.code, open.stderr).toBe(2);
    expect(open.stderr).toBe('earshot: --listen: listening on 0.0.0.0 beyond loopback needs an API token (api.token or --data-dir to keep a generated one)\n');
    // the capture fails before the pipeline asks for the API: its error alone (the API built meanwhile
    // never listens and says nothing)
    const missing = await runCli(['collect', '--file', join(dir, 'missing.pcap'), '--exit-when-done', '--listen', '127.0.0.1:0'], { timeoutMs: 20_000 });
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr.trim()).toBe(`earshot: ${join(dir, 'missing.pcap')}: no such file`);
  }, 60_000);

  it("keeps the pipeline thread's own young generation under node's --max-semi-space-size (as installed)", async () => {
    // V8 takes the process's flag over a worker's resourceLimits: the thread's young generation doubled
    // (12 -> 24 MB) once the flag was set, and the soak's RSS rose with it (cli/heap-flags.ts)
    const port = await freePort();
    const child = spawn(process.execPath, ['--max-semi-space-size=8', EARSHOT_BIN, 'collect', '--source', 'stdin', '--listen', `127.0.0.1:${port}`, '--format', 'json', '--log-format', 'json', '--log-level', 'debug'], { cwd: PROJECT_ROOT, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.stdin.end(readFileSync(CAPTURE));
    expect(await exited, stderr).toBe(0);
    const started = stderr.split('\n').filter((l) => l.includes('"the pipeline thread started"')).map((l) => JSON.parse(l) as { heapSizeLimit: number });
    expect(started).toHaveLength(1);
    // what V8 makes of the same limits in a bare worker, without the flag and with it
    const own = bareWorkerLimit([]);
    expect(own).not.toBe(bareWorkerLimit(['--max-semi-space-size=8']));
    expect(started[0].heapSizeLimit).toBe(own);
  }, 30_000);

  // SIGHUP too (a closed terminal): forwarded to the pipeline's thread like the others
  it.each(['SIGTERM', 'SIGHUP'] as const)('a quiet stdin feed still open: %s ends the run, with the report, exit 0', async (signal) => {
    const port = await freePort();
    const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--source', 'stdin', '--listen', `127.0.0.1:${port}`, '--format', 'json', '--log-level', 'warn'], { cwd: PROJECT_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stdin.on('error', () => {});
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await untilValue('the API', async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/api/v1/health`)).ok ? true : null;
      } catch {
        return null;
      }
    }, 20_000);
    // the packets come after the start, and the feed stays open (an SSH pipe from a router)
    child.stdin.write(readFileSync(CAPTURE));
    await untilValue('every packet', async () => {
      const h = await (await fetch(`http://127.0.0.1:${port}/api/v1/health`)).json() as { capture: { packets: number } };
      return h.capture.packets === tsharkTotals(CAPTURE).packets ? true : null;
    }, 20_000);
    child.kill(signal);
    expect(await exited).toBe(0);
    expect((JSON.parse(stdout) as { capture: { packets: number } }).capture.packets).toBe(tsharkTotals(CAPTURE).packets);
  }, 40_000);
});
