/**
 * The connection to InfluxDB, through the `influx` package: its InfluxDB class for InfluxQL (setup,
 * queries) and its request pool for writes, which lets us send gzip bodies and a token header. The
 * pool's own retries and host back-off are turned off: the writer decides what a failure means.
 */
import { createRequire } from 'node:module';
import type { InfluxDB } from 'influx';
import type { IBackoffStrategy } from 'influx/lib/src/backoff/backoff.js';
import type * as PoolModule from 'influx/lib/src/pool.js';
import type { Config } from '../../config.js';
import { earshotError } from '../../errors.js';

// the influx package is loaded when a sink is built, not when earshot starts (most runs write nowhere)
const require = createRequire(import.meta.url);
let influxModule: typeof import('influx') | null = null;
let poolModule: typeof PoolModule | null = null;
const influxPackage = () => (influxModule ??= require('influx') as typeof import('influx'));
const poolPackage = () => (poolModule ??= require('influx/lib/src/pool.js') as typeof PoolModule);

/** True for the influx package's error for an InfluxQL statement InfluxDB refused (HTTP 200 with an error). */
export function isResultError(err: unknown): boolean {
  return influxModule !== null && err instanceof influxModule.ResultError;
}

const noBackoff: IBackoffStrategy = { getDelay: () => 0, next: () => noBackoff, reset: () => noBackoff };

/** Where and how to reach InfluxDB, from the config's influx section. */
export interface InfluxTarget {
  url: URL;
  database: string;
  token: string | null;
  username: string | null;
  password: string | null;
  timeoutMs: number;
}

/** Checks the URL of the influx section; throws a usage error naming the key. */
export function influxTarget(influx: Readonly<Config['influx']>): InfluxTarget | null {
  if (influx.url === null) return null;
  let url: URL;
  try {
    url = new URL(influx.url);
  } catch {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', 'influx.url', `not a URL: "${influx.url}" (e.g. http://127.0.0.1:8086)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', 'influx.url', `must be http:// or https://, got "${url.protocol}"`);
  }
  return {
    url,
    database: influx.database,
    token: influx.token,
    username: influx.username ?? (url.username ? decodeURIComponent(url.username) : null),
    password: influx.password ?? (url.password ? decodeURIComponent(url.password) : null),
    timeoutMs: Math.round(influx.timeoutS * 1000),
  };
}

function baseUrl(target: InfluxTarget): string {
  const u = new URL(target.url.href);
  u.username = '';
  u.password = '';
  return u.href;
}

function headers(target: InfluxTarget): Record<string, string> {
  return target.token === null ? {} : { Authorization: `Token ${target.token}` };
}

/** What a write attempt came to. */
export type WriteOutcome =
  | { kind: 'ok' }
  /** InfluxDB down, slow, or answering 5xx/429: try again later. */
  | { kind: 'retry'; reason: string }
  /** A 4xx answer: the batch (or part of it) will never be taken. */
  | { kind: 'rejected'; status: number; reason: string };

/** Sends line-protocol bodies to /write. */
export interface WriteClient {
  write(body: Buffer, gzip: boolean, retentionPolicy: string | null): Promise<WriteOutcome>;
}

/** The write client on the influx package's pool. */
export function buildWriteClient(target: InfluxTarget): WriteClient {
  const { Pool, RequestError } = poolPackage();
  const pool = new Pool({ maxRetries: 0, requestTimeout: target.timeoutMs, backoff: noBackoff });
  pool.addHost(baseUrl(target), { headers: headers(target) });
  const auth = target.username !== null ? `${target.username}:${target.password ?? ''}` : undefined;
  return {
    async write(body, gzip, retentionPolicy) {
      const query: Record<string, string> = { db: target.database, precision: 'ms' };
      if (retentionPolicy !== null) query.rp = retentionPolicy;
      try {
        await pool.discard({
          method: 'POST',
          path: '/write',
          query,
          // the pool takes a Buffer as well as a string (it measures it with Buffer.from)
          body: body as unknown as string,
          headers: gzip ? { 'Content-Encoding': 'gzip', 'Content-Type': 'text/plain; charset=utf-8' } : { 'Content-Type': 'text/plain; charset=utf-8' },
          auth,
        });
        return { kind: 'ok' };
      } catch (err) {
        if (err instanceof RequestError) {
          const status = err.res.statusCode ?? 0;
          const reason = influxMessage(err.message);
          // 408 and 429: the server is busy, not the data bad
          if (status === 408 || status === 429) return { kind: 'retry', reason: `${status} ${reason}` };
          return { kind: 'rejected', status, reason };
        }
        const e = err as NodeJS.ErrnoException;
        return { kind: 'retry', reason: e.code ? `${e.code} ${e.message}`.trim() : e.message || String(err) };
      }
    },
  };
}

/** The `error` text of an InfluxDB error answer, else the message as it is. */
function influxMessage(message: string): string {
  const body = message.replace(/^A \d+ [^:]*: /, '');
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    const text = parsed.error ?? parsed.message;
    if (typeof text === 'string') return text;
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 300);
}

/** The influx package's InfluxDB class for InfluxQL (setup and queries). */
export function buildQueryClient(target: InfluxTarget): InfluxDB {
  const u = target.url;
  return new (influxPackage().InfluxDB)({
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80,
    protocol: u.protocol === 'https:' ? 'https' : 'http',
    path: u.pathname === '/' ? '' : u.pathname.replace(/\/$/, ''),
    database: target.database,
    ...(target.username !== null ? { username: target.username, password: target.password ?? '' } : {}),
    options: { headers: headers(target) },
    pool: { maxRetries: 0, requestTimeout: target.timeoutMs, backoff: noBackoff },
  });
}
