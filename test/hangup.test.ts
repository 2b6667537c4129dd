/**
 * The terminal `earshot collect` runs in goes away (an SSH session that drops, a closed window): the
 * kernel sends SIGHUP, and the report's stdout is a terminal that can no longer be written. The run stops
 * as it does at SIGTERM, InfluxDB still gets the points of the interval in progress (they do not wait
 * for a report that cannot be written), the one error line says what failed, and the process ends by
 * the hang-up with no native stack trace (Node's reset of a terminal that is gone aborts:
 * collector/stop-signals.ts); the log lines it cannot write are lost, not fatal. A real pseudo-terminal
 * (util-linux `script`) and a real influxd.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { EARSHOT_BIN } from './helpers/cli.js';
import { describeInflux, useInfluxd } from './helpers/influxd.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { freePort, until, untilValue } from './helpers/wait.js';

// 48 s of an Echo Dot 3 (2,778 packets), paced at capture time: still running when the terminal goes
const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describeInflux('the terminal of a running collector goes away', () => {
  const server = useInfluxd();

  /**
   * `earshot collect` paced on a capture in a terminal of its own, which goes away at `hangUp()`. Its
   * stderr goes to a file (to read the log), or with `api` (on a port of its own) to the terminal too,
   * as a person at a terminal runs it.
   */
  async function inTerminal(db: string, api: number | null = null) {
    expect(spawnSync('script', ['--version']).status, 'util-linux script(1) makes the terminal here').toBe(0);
    const dir = tempDir('earshot-hangup-');
    const stderr = join(dir, 'stderr');
    const pidFile = join(dir, 'pid');
    // earshot leads the terminal's session (exec), as a login shell would: the kernel hangs it up directly
    const earshot = [process.execPath, EARSHOT_BIN, 'collect', '--file', CAPTURE, '--realtime-speed', '1',
      ...(api === null ? ['--api', 'false', '--log-format', 'text'] : ['--listen', `127.0.0.1:${api}`]),
      '--format', 'json', '--influx-url', server.url, '--influx-db', db, '--influx-raw-retention', 'INF'].map(quote).join(' ');
    const terminal = spawn('script', ['-qfec', `echo $$ >${quote(pidFile)}; exec ${earshot}${api === null ? ` 2>${quote(stderr)}` : ''}`, '/dev/null'], {
      cwd: PROJECT_ROOT, stdio: 'ignore',
    });
    const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');
    if (api === null) {
      await until('InfluxDB to be set up', () => read(stderr).includes('continuous queries ready'));
    } else {
      await untilValue('packets read', async () => {
        const health = await fetch(`http://127.0.0.1:${api}/api/v1/health`).then((r) => r.json() as Promise<{ capture?: { packets?: number } }>, () => null);
        return (health?.capture?.packets ?? 0) > 0 ? true : null;
      });
    }
    const pid = Number(read(pidFile));
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    const running = () => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
    return {
      log: () => read(stderr),
      running,
      // the terminal's end closes it: the kernel hangs up its session
      hangUp: () => terminal.kill('SIGKILL'),
      ended: () => until('earshot to end', () => !running(), 30_000, 50),
    };
  }

  /** The traffic points InfluxDB holds. */
  async function traffic(db: string): Promise<{ points: number; bytes: number }> {
    const [row] = await server.rows(db, 'SELECT sum(bytes_up) + sum(bytes_down) AS bytes, count(bytes_up) AS points FROM traffic').catch(() => []);
    return { points: Number(row?.points ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  function expectStoppedCleanly(log: string): void {
    expect(log).toMatch(/stopping: finishing flows and writing the report and the points.*signal=SIGHUP/);
    expect(log).not.toMatch(/Assertion failed|Native stack trace|internal error/);
    // the report's stdout was the terminal: the one error line, last
    const lines = log.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^earshot: stdout: cannot write: .*EIO/);
  }

  it('stops as at SIGTERM, delivers the points, says what failed in one line, ends by SIGHUP without a stack trace', async () => {
    const db = `hangup${process.pid}a`;
    const run = await inTerminal(db);
    // a second into the first 10-s interval: its points are written only when the run ends
    await new Promise((resolve) => setTimeout(resolve, 1500));
    run.hangUp();
    await run.ended();
    expectStoppedCleanly(run.log());
    const t = await traffic(db);
    expect(t.points).toBeGreaterThan(0);
    expect(t.bytes).toBeGreaterThan(0);
  }, 60_000);

  it('InfluxDB away at the hang-up: the points wait for it (influx.waitS) before the report\'s failure ends the run', async () => {
    const db = `hangup${process.pid}b`;
    const run = await inTerminal(db);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await server.stop();
    try {
      run.hangUp();
      await until('the wait for InfluxDB', () => run.log().includes('waiting up to'));
      expect(run.running()).toBe(true);
    } finally {
      await server.start();
    }
    await run.ended();
    expectStoppedCleanly(run.log());
    expect((await traffic(db)).points).toBeGreaterThan(0);
  }, 60_000);

  it('stderr on the terminal too, the pipeline on its own thread: the log lines it can no longer write do not end the stop', async () => {
    // an 'error' event of stderr (EIO) nobody listened to ended the process before the last points
    const db = `hangup${process.pid}c`;
    const run = await inTerminal(db, await freePort());
    await new Promise((resolve) => setTimeout(resolve, 1500));
    run.hangUp();
    await run.ended();
    expect((await traffic(db)).points).toBeGreaterThan(0);
  }, 60_000);
});
