/**
 * The connection to InfluxDB: the `influx` package's InfluxDB class for InfluxQL (setup, queries), and
 * for writes our own small client on node:http, which sends gzip bodies and a token header, reads
 * every answer InfluxDB gives (see buildWriteClient) and its Retry-After. The writer decides what a
 * failure means.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import type { InfluxDB } from 'influx';
import type { IBackoffStrategy } from 'influx/lib/src/backoff/backoff.js';
import type { Config } from '../../config.js';
import { earshotError } from '../../errors.js';

// the influx package is loaded when a sink is built, not when earshot starts (most runs write nowhere)
const require = createRequire(import.meta.url);
let influxModule: typeof import('influx') | null = null;
const influxPackage = () => (influxModule ??= require('influx') as typeof import('influx'));

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
  /**
   * InfluxDB down, slow, or answering 5xx/429: try again later. `answered`: an HTTP answer came (the
   * server is there); `retryAfterMs`: what its Retry-After header asked for.
   */
  | { kind: 'retry'; reason: string; answered?: boolean; retryAfterMs?: number }
  /** A 4xx answer: the batch (or part of it) will never be taken. */
  | { kind: 'rejected'; status: number; reason: string };

/** Sends line-protocol bodies to /write. */
export interface WriteClient {
  write(body: Buffer, gzip: boolean, retentionPolicy: string | null): Promise<WriteOutcome>;
  /** True when InfluxDB answers /ping: a failed write then is the batch's fault, not the server's. */
  ping?(): Promise<boolean>;
}

/** The most of an answer's body that is read (InfluxDB's error answers are one short JSON object). */
const MAX_ANSWER_BYTES = 64 * 1024;
/** The longest Retry-After taken as it is (beyond, Node's timers overflow; a minute is plenty). */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

interface Answer {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), within [0, MAX_RETRY_AFTER_MS]. */
export function retryAfterMs(value: string | string[] | undefined, nowMs = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  let ms: number;
  if (/^\s*\d+\s*$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (!Number.isFinite(at)) return undefined;
    ms = at - nowMs;
  }
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

/**
 * The write client, on node:http. Its parser is lenient (insecureHTTPParser) for InfluxDB's answers
 * only: InfluxDB 1.x copies a line it cannot parse into its X-Influxdb-Error header, control bytes and
 * all, and Node's strict parser throws that answer away (HPE_INVALID_HEADER_TOKEN), which made a bad
 * batch look like an unreachable server and blocked every batch behind it.
 */
export function buildWriteClient(target: InfluxTarget): WriteClient {
  const secure = target.url.protocol === 'https:';
  const agent = secure ? new HttpsAgent({ keepAlive: true, maxSockets: 2 }) : new HttpAgent({ keepAlive: true, maxSockets: 2 });
  const prefix = target.url.pathname.replace(/\/$/, '');
  const auth: Record<string, string> = target.token !== null
    ? { Authorization: `Token ${target.token}` }
    : target.username !== null ? { Authorization: `Basic ${Buffer.from(`${target.username}:${target.password ?? ''}`).toString('base64')}` } : {};

  function send(method: 'GET' | 'POST', path: string, body: Buffer | null, headers: Record<string, string>): Promise<Answer> {
    const url = new URL(baseUrl(target));
    url.pathname = `${prefix}${path.split('?')[0]}`;
    url.search = path.includes('?') ? path.slice(path.indexOf('?')) : '';
    return new Promise<Answer>((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(url, {
        method,
        agent,
        headers: { ...auth, ...headers, ...(body !== null ? { 'Content-Length': String(body.length) } : {}) },
        insecureHTTPParser: true,
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          if (size < MAX_ANSWER_BYTES) chunks.push(d);
          size += d.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ANSWER_BYTES) }));
        res.on('error', reject);
      });
      req.setTimeout(target.timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${target.timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  }

  return {
    async write(body, gzip, retentionPolicy) {
      const query = new URLSearchParams({ db: target.database, precision: 'ms' });
      if (retentionPolicy !== null) query.set('rp', retentionPolicy);
      let answer: Answer;
      try {
        answer = await send('POST', `/write?${query.toString()}`, body,
          gzip ? { 'Content-Encoding': 'gzip', 'Content-Type': 'text/plain; charset=utf-8' } : { 'Content-Type': 'text/plain; charset=utf-8' });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        return { kind: 'retry', reason: e.code ? `${e.code} ${e.message}`.trim() : e.message || String(err) };
      }
      const { status } = answer;
      if (status >= 200 && status < 300) return { kind: 'ok' };
      const reason = influxMessage(answer);
      // 408 and 429: the server is busy, not the data bad; 5xx: the server fails
      if (status === 408 || status === 429 || status >= 500) {
        const after = retryAfterMs(answer.headers['retry-after']);
        return { kind: 'retry', reason: `${status} ${reason}`, answered: true, ...(after !== undefined ? { retryAfterMs: after } : {}) };
      }
      return { kind: 'rejected', status, reason };
    },
    async ping() {
      try {
        const answer = await send('GET', '/ping', null, {});
        return answer.status >= 200 && answer.status < 300;
      } catch {
        return false;
      }
    },
  };
}

/** The `error` text of an InfluxDB error answer (its JSON body, else its X-Influxdb-Error header), else the body as it is. */
function influxMessage(answer: Answer): string {
  try {
    const parsed = JSON.parse(answer.body) as { error?: unknown; message?: unknown };
    const text = parsed.error ?? parsed.message;
    if (typeof text === 'string') return text;
  } catch {
    // not JSON
  }
  const header = answer.headers['x-influxdb-error'];
  if (typeof header === 'string' && header !== '') return header.slice(0, 300);
  return answer.body.trim().slice(0, 300) || answer.statusMessage || `HTTP ${answer.status}`;
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
