/**
 * A real InfluxDB 1.x (Debian's influxd) for tests: started on free ports with its data in a temp dir,
 * stopped and started again on the same data (outage tests), queried over its HTTP API with plain
 * fetch, so the expectations do not pass through the code under test. Missing influxd fails in CI
 * and skips elsewhere, like the shared captures.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { haveInfluxd, startInfluxd, type RunningInfluxd } from '../../collector/influxd.js';
import { describeNeeding } from './shared.js';
import { freePort } from './wait.js';

export { haveInfluxd };

/** describe() for suites that need influxd: in CI its absence fails; elsewhere the suite is skipped. */
export function describeInflux(name: string, fn: () => void): void {
  describeNeeding(name, haveInfluxd(), "influxd is missing: apt-get install influxdb (deploy/setup.sh installs Debian's package)", fn);
}

export { freePort };

export interface Series {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

export interface InfluxdOptions {
  /** More environment for influxd, e.g. { INFLUXDB_HTTP_AUTH_ENABLED: 'true' }. */
  env?: Record<string, string>;
}

export class Influxd {
  readonly dir = mkdtempSync(join(tmpdir(), 'earshot-influxd-'));
  /** Credentials for query() (set once the user exists, on a server with authentication). */
  auth: { username: string; password: string } | null = null;
  private running: RunningInfluxd | null = null;
  private constructor(readonly httpPort: number, private readonly rpcPort: number, private readonly extraEnv: Record<string, string>) {}

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  static async start(options: InfluxdOptions = {}): Promise<Influxd> {
    const server = new Influxd(await freePort(), await freePort(), options.env ?? {});
    await server.start();
    return server;
  }

  /** Starts influxd (again) on the same ports and data; resolves once /ping answers. */
  async start(): Promise<void> {
    this.running = await startInfluxd({
      dir: this.dir,
      httpPort: this.httpPort,
      rpcPort: this.rpcPort,
      // continuous queries are checked by running their SELECT ourselves, not on influxd's schedule
      env: { INFLUXDB_CONTINUOUS_QUERIES_ENABLED: 'false', ...this.extraEnv },
    });
  }

  /** Stops influxd (SIGTERM) and waits for it to exit; its data stays for start(). */
  async stop(): Promise<void> {
    const running = this.running;
    this.running = null;
    await running?.stop();
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs InfluxQL; returns each statement's series (throws on an error answer). */
  async query(db: string | null, q: string): Promise<Series[][]> {
    const params = new URLSearchParams({ q, epoch: 'ms' });
    if (db) params.set('db', db);
    const headers: Record<string, string> = {};
    if (this.auth) headers.Authorization = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
    const res = await fetch(`${this.url}/query`, { method: 'POST', body: params, headers });
    const body = (await res.json()) as { error?: string; results?: Array<{ error?: string; series?: Series[] }> };
    if (!res.ok || body.error) throw new Error(`query failed (${res.status}): ${body.error ?? ''}`);
    return (body.results ?? []).map((r) => {
      if (r.error) throw new Error(`${q}: ${r.error}`);
      return r.series ?? [];
    });
  }

  /**
   * On a server with authentication (INFLUXDB_HTTP_AUTH_ENABLED): creates the first user, an admin (1.x
   * lets the first CREATE USER through without credentials), and queries as it from then on.
   */
  async createAdmin(username = 'admin', password = 'admin-password'): Promise<void> {
    this.auth = null;
    await this.query(null, `CREATE USER "${username}" WITH PASSWORD '${password}' WITH ALL PRIVILEGES`);
    this.auth = { username, password };
  }

  /** Rows of one statement as objects (column name -> value), with the series' tags merged in. */
  async rows(db: string, q: string): Promise<Array<Record<string, unknown>>> {
    const [series] = await this.query(db, q);
    return seriesRows(series);
  }
}

/** A statement's series as rows (column name -> value), each with its series' tags, as Grafana's table format shows them. */
export function seriesRows(series: readonly Series[] = []): Array<Record<string, unknown>> {
  return series.flatMap((s) => s.values.map((v) => ({ ...s.tags, ...Object.fromEntries(s.columns.map((c, i) => [c, v[i]])) })));
}

/**
 * One influxd for the enclosing describe: started in beforeAll, closed in afterAll. The answer stands for
 * it (use it inside tests and hooks, once it has started).
 */
export function useInfluxd(options: InfluxdOptions = {}): Influxd {
  let started: Influxd | null = null;
  beforeAll(async () => {
    started = await Influxd.start(options);
  }, 30_000);
  afterAll(async () => {
    await started?.close();
  });
  const target = (): Influxd => {
    if (started === null) throw new Error('influxd is not started yet: use it inside a test or hook');
    return started;
  };
  return new Proxy({} as Influxd, {
    get(_, key) {
      const value = Reflect.get(target(), key) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target()) : value;
    },
    set(_, key, value) {
      return Reflect.set(target(), key, value);
    },
  });
}
