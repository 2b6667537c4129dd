/**
 * A private InfluxDB 1.x (Debian's influxd) on loopback, with its data in a directory of ours: for
 * `earshot demo`, the tests and `npm run bench`. influxd runs without a config file (`-config
 * /dev/null`), set up through its INFLUXDB_* environment, and counts as started once /ping answers.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { lazyBuiltin } from './builtins.js';

const childProcess = lazyBuiltin<typeof import('node:child_process')>('node:child_process');
const net = lazyBuiltin<typeof import('node:net')>('node:net');

/** Whether influxd can be run here. */
export function haveInfluxd(): boolean {
  return childProcess().spawnSync('influxd', ['version'], { stdio: 'ignore' }).status === 0;
}

/** A free TCP port on loopback (asked of the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net().createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface InfluxdStart {
  /** Where its meta, data and WAL directories go (kept across restarts on the same ports). */
  dir: string;
  httpPort: number;
  /** Its RPC (backup) port, which influxd always opens. */
  rpcPort: number;
  /** More environment, e.g. { INFLUXDB_HTTP_AUTH_ENABLED: 'true' }. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface RunningInfluxd {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it exited. Its data stays. */
  stop(): Promise<void>;
}

/** Starts influxd; resolves once /ping answers, rejects with its last stderr when it exits or hangs. */
export async function startInfluxd(options: InfluxdStart): Promise<RunningInfluxd> {
  const { dir, httpPort, rpcPort } = options;
  const env = {
    ...process.env,
    INFLUXDB_META_DIR: join(dir, 'meta'),
    INFLUXDB_DATA_DIR: join(dir, 'data'),
    INFLUXDB_DATA_WAL_DIR: join(dir, 'wal'),
    INFLUXDB_HTTP_BIND_ADDRESS: `127.0.0.1:${httpPort}`,
    INFLUXDB_BIND_ADDRESS: `127.0.0.1:${rpcPort}`,
    INFLUXDB_REPORTING_DISABLED: 'true',
    INFLUXDB_HTTP_LOG_ENABLED: 'false',
    INFLUXDB_DATA_QUERY_LOG_ENABLED: 'false',
    ...options.env,
  };
  const child = childProcess().spawn('influxd', ['-config', '/dev/null'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const url = `http://127.0.0.1:${httpPort}`;
  const stop = () => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  let failed: Error | null = null;
  void spawnError.then((err) => { failed = err; });
  while (Date.now() < deadline) {
    if (failed) throw new Error(`influxd did not start: ${(failed as Error).message}`);
    if (child.exitCode !== null) throw new Error(`influxd exited (${child.exitCode}): ${stderr.trim().split('\n').pop() ?? ''}`);
    try {
      if ((await fetch(`${url}/ping`)).status === 204) return { url, child, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`influxd did not answer /ping within ${timeoutMs / 1000} s: ${stderr.trim().split('\n').pop() ?? ''}`);
}
