/**
 * The connection to InfluxDB: one small client on node:http for InfluxDB 1.x's documented HTTP API
 * (/write, /query, /ping). It sends gzip bodies and a token or basic-auth header, reads every answer
 * InfluxDB gives (see buildInfluxClient) with its Retry-After and its error text. The writer decides
 * what a failed write means. Why not the `influx` package, nor fetch: docs/influxdb.md ("The HTTP client").
 */
import type { IncomingHttpHeaders } from 'node:http';
import { lazyBuiltin } from '../../builtins.js';
import type { Config } from '../../config.js';
import { earshotError } from '../../errors.js';
import { missingTarget, type MissingTarget } from './setup.js';

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

/** What a write attempt came to. */
export type WriteOutcome =
  | { kind: 'ok' }
  /**
   * InfluxDB down, slow, or answering 5xx/429: try again later. `answered`: an HTTP answer came (the
   * server is there); `retryAfterMs`: what its Retry-After header asked for.
   */
  | { kind: 'retry'; reason: string; answered?: boolean; retryAfterMs?: number }
  /** A 4xx answer: the batch (or part of it) will never be taken. */
  | { kind: 'rejected'; status: number; reason: string }
  /**
   * The database, retention policy or DBRP mapping does not exist (missingTarget() in setup.ts reads the answer):
   * the batch is kept for when it does. `server`: the answer's X-Influxdb-Version.
   */
  | { kind: 'missing'; status: number; reason: string; missing: MissingTarget; server: string | null };

/** Sends line-protocol bodies to /write. */
export interface WriteClient {
  write(body: Buffer, gzip: boolean, retentionPolicy: string | null): Promise<WriteOutcome>;
  /** True when InfluxDB answers /ping: a failed write then is the batch's fault, not the server's. */
  ping?(): Promise<boolean>;
}

/** One series of an InfluxQL result, as /query answers it. */
export interface QuerySeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values?: unknown[][];
}

/** Writes, pings, and runs InfluxQL statements. */
export interface InfluxClient extends WriteClient {
  ping(): Promise<boolean>;
  /**
   * Runs one InfluxQL statement (POST /query) and resolves with its series. Rejects with an
   * InfluxQueryError when InfluxDB refuses it, or with the network error when no answer came.
   */
  query(statement: string, options?: QueryOptions): Promise<QuerySeries[]>;
}

/** How /query answers: `epoch: 'ms'` gives times as epoch milliseconds (else RFC 3339 text). */
export interface QueryOptions {
  epoch?: 'ms';
}

/**
 * InfluxDB refused an InfluxQL statement: `status` is the HTTP status, 200 when the statement itself
 * failed (InfluxDB answers 200 with the error in the statement's result: a bad statement, a duration
 * it does not take), so a retry would not help.
 */
export class InfluxQueryError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = 'InfluxQueryError';
  }
}

/** The most of a write answer's body that is read (InfluxDB's error answers are one short JSON object). */
const MAX_ANSWER_BYTES = 64 * 1024;
/** The most of a query answer's body that is read (setup reads policies and continuous queries: small). */
const MAX_QUERY_ANSWER_BYTES = 4 * 1024 * 1024;
/** The longest Retry-After taken as it is (beyond, Node's timers overflow; a minute is plenty). */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

interface Answer {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body's full size in bytes: beyond the bound, `body` holds only its start. */
  size: number;
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

const httpModule = lazyBuiltin<typeof import('node:http')>('node:http');
const httpsModule = lazyBuiltin<typeof import('node:https')>('node:https');

/**
 * The client, on node:http. Its parser is lenient (insecureHTTPParser) for InfluxDB's answers only:
 * InfluxDB 1.x copies a line it cannot parse into its X-Influxdb-Error header, control bytes and all,
 * and Node's strict parser (and fetch's) throws that answer away (HPE_INVALID_HEADER_TOKEN), which made
 * a bad batch look like an unreachable server and blocked every batch behind it.
 */
export function buildInfluxClient(target: InfluxTarget): InfluxClient {
  const secure = target.url.protocol === 'https:';
  const http = secure ? httpsModule() : httpModule();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const prefix = target.url.pathname.replace(/\/$/, '');
  const auth: Record<string, string> = target.token !== null
    ? { Authorization: `Token ${target.token}` }
    : target.username !== null ? { Authorization: `Basic ${Buffer.from(`${target.username}:${target.password ?? ''}`).toString('base64')}` } : {};

  function send(method: 'GET' | 'POST', path: string, body: Buffer | null, headers: Record<string, string>, maxBytes = MAX_ANSWER_BYTES): Promise<Answer> {
    const url = new URL(baseUrl(target));
    url.pathname = `${prefix}${path.split('?')[0]}`;
    url.search = path.includes('?') ? path.slice(path.indexOf('?')) : '';
    return new Promise<Answer>((resolve, reject) => {
      const req = http.request(url, {
        method,
        agent,
        headers: { ...auth, ...headers, ...(body !== null ? { 'Content-Length': String(body.length) } : {}) },
        insecureHTTPParser: true,
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          if (size < maxBytes) chunks.push(d);
          size += d.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks).toString('utf8').slice(0, maxBytes), size }));
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
      const missing = missingTarget(status, reason);
      if (missing !== null) {
        const version = answer.headers['x-influxdb-version'];
        return { kind: 'missing', status, reason, missing, server: typeof version === 'string' ? version : null };
      }
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
    async query(statement, options = {}) {
      // POST: InfluxDB takes statements that change things (CREATE, ALTER, DROP) only by POST
      const params = new URLSearchParams({ q: statement, db: target.database });
      if (options.epoch !== undefined) params.set('epoch', options.epoch);
      const form = Buffer.from(params.toString());
      const answer = await send('POST', '/query', form, { 'Content-Type': 'application/x-www-form-urlencoded' }, MAX_QUERY_ANSWER_BYTES);
      if (answer.status < 200 || answer.status >= 300) throw new InfluxQueryError(`${answer.status} ${influxMessage(answer)}`, answer.status);
      // never a cut answer read as the whole (or as "not JSON"): the caller asks for less (a LIMIT, a shorter range)
      if (answer.size > MAX_QUERY_ANSWER_BYTES) throw new InfluxQueryError(`an answer of ${answer.size} bytes, over the ${MAX_QUERY_ANSWER_BYTES} read: ask for fewer rows`, answer.status);
      let parsed: { error?: unknown; results?: Array<{ error?: unknown; series?: QuerySeries[] }> };
      try {
        parsed = JSON.parse(answer.body) as typeof parsed;
      } catch {
        throw new InfluxQueryError(`an answer that is not JSON: ${answer.body.slice(0, 200)}`, answer.status);
      }
      const error = parsed.error ?? parsed.results?.find((r) => r.error !== undefined)?.error;
      if (error !== undefined) throw new InfluxQueryError(String(error), answer.status);
      return parsed.results?.[0]?.series ?? [];
    },
  };
}

/** The same client, for callers that only write (doctor's check, tests). */
export const buildWriteClient: (target: InfluxTarget) => WriteClient = buildInfluxClient;

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
