/**
 * InfluxDB 2.x and 3.x are not on this machine (Debian has 1.6.7): the requests earshot sends them are
 * checked here, exactly, by a real HTTP server (node:http on port 0) that checks each one as the
 * documented v1 compatibility API would, and answers as those servers do. The documents it follows:
 * - 2.x: https://docs.influxdata.com/influxdb/v2/api-guide/influxdb-1x/write/ (POST /write; `db`
 *   required, `rp` optional, `precision` one of ns, u, µ, ms, s, m, h; token, basic or u/p auth) and
 *   https://docs.influxdata.com/influxdb/v2/reference/api/influxdb-1x/ (`Authorization: Token TOKEN`,
 *   "Token" case-sensitive). Its answers: 204; 401 `{"code":"unauthorized","message":"unauthorized
 *   access"}`; 404 `{"code":"not found","message":"no dbrp mapping found"}` (influxdb v2
 *   http/legacy/write_handler.go, findMapping) when no DBRP mapping names the database.
 * - 3.x: https://docs.influxdata.com/influxdb3/core/write-data/http-api/compatibility-apis/ (the v1
 *   /write?db=...&precision=... endpoint, token auth) and its troubleshooting page (404 "Not found" names
 *   the database); the body is the error's text (influxdb3_server http.rs: WriteBufferError::
 *   DatabaseNotFound -> 404).
 * - 1.x users (also 2.x v1 users): HTTP basic auth, which is what earshot sends (never u/p in the URL).
 * A token means setup off by default: no /query at all reaches a 2.x/3.x server.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
/** The precisions the v1 /write of 2.x documents (3.x takes the same on /write). */
const PRECISIONS = new Set(['ns', 'u', 'µ', 'ms', 's', 'm', 'h']);

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The line protocol, decoded as the server decodes it (gunzipped when sent with Content-Encoding: gzip). */
  lines: string[];
  status: number;
}

interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

/** A v1-compatible write endpoint: checks each request as documented, then answers with `decide`. */
class V1Server {
  readonly seen: Seen[] = [];
  /** What the documentation says a request must not be (a test expects none). */
  readonly violations: string[] = [];
  private server: Server | null = null;
  url = '';

  /** /query requests (the 1.x setup), with their form; answered by `answerQuery`. */
  readonly queries: Array<{ method: string; headers: IncomingHttpHeaders; form: URLSearchParams }> = [];

  constructor(private readonly decide: (request: Seen, index: number) => Answer, private readonly answerQuery: Answer | null = null) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const raw = Buffer.concat(chunks);
        if (url.pathname === '/query' && this.answerQuery !== null) {
          this.queries.push({ method: req.method ?? '', headers: req.headers, form: new URLSearchParams(raw.toString()) });
          res.writeHead(this.answerQuery.status, { 'Content-Type': 'application/json', ...this.answerQuery.headers });
          return void res.end(this.answerQuery.body);
        }
        let text = '';
        try {
          text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
        } catch {
          this.violations.push('a body that does not gunzip');
        }
        const seen: Seen = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, lines: text === '' ? [] : text.split('\n'), status: 0 };
        this.check(seen);
        const answer = this.decide(seen, this.seen.length);
        seen.status = answer.status;
        this.seen.push(seen);
        res.writeHead(answer.status, { ...(answer.body !== undefined ? { 'Content-Type': 'application/json; charset=utf-8' } : {}), ...answer.headers });
        res.end(answer.body);
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  private check(r: Seen): void {
    if (r.path !== '/write') return void this.violations.push(`${r.method} ${r.path}: not the v1 write endpoint`);
    if (r.method !== 'POST') this.violations.push(`/write by ${r.method}, not POST`);
    if (!r.query.get('db')) this.violations.push('/write without db');
    const precision = r.query.get('precision');
    if (precision !== null && !PRECISIONS.has(precision)) this.violations.push(`precision=${precision}`);
    if (r.query.has('u') || r.query.has('p')) this.violations.push('credentials in the URL (they would end in access logs)');
    const encoding = r.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'gzip' && encoding !== 'identity') this.violations.push(`Content-Encoding: ${encoding}`);
    for (const line of r.lines) {
      // measurement[,tags] fields timestamp: the timestamp in the precision asked for (ms: 13 digits in this era)
      if (!/^[^ ,]+(,[^ ]+)? [^ ].* \d+$/.test(line)) this.violations.push(`not line protocol: ${line.slice(0, 80)}`);
      else if (precision === 'ms' && !/ \d{13}$/.test(line)) this.violations.push(`not a millisecond time: ${line.slice(-20)}`);
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const logLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; code?: string });
const replay = (url: string, extra: string[], env: Record<string, string> = {}) =>
  runCli(['replay', CAPTURE, '--influx-url', url, '--format', 'json', '-o', '/dev/null', '--log-format', 'json', '--influx-wait', '15', ...extra], { env });

/** The 2.x answer to a token it does not know (kit/transport/http error encoding). */
const UNAUTHORIZED_2X: Answer = { status: 401, body: '{"code":"unauthorized","message":"unauthorized access"}', headers: { 'X-Influxdb-Version': 'v2.7.10', 'X-Influxdb-Build': 'OSS' } };

describe('InfluxDB 2.x and 3.x through the v1 compatibility API: the requests, checked as documented', () => {
  let server: V1Server | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it('2.x with a token: POST /write?db=&precision=ms, "Authorization: Token", gzip, no rp, no /query; no mapping -> kept, the dbrp command, written once mapped', async () => {
    let mapped = false;
    server = new V1Server((r) => {
      if (r.headers.authorization !== 'Token site1-write-token') return UNAUTHORIZED_2X;
      if (!mapped) {
        // an admin maps the bucket after the first refusal
        mapped = true;
        return { status: 404, body: '{"code":"not found","message":"no dbrp mapping found"}', headers: { 'X-Influxdb-Version': 'v2.7.10', 'X-Influxdb-Build': 'OSS' } };
      }
      return { status: 204, headers: { 'X-Influxdb-Version': 'v2.7.10' } };
    });
    await server.start();
    const r = await replay(server.url, ['--influx-db', 'home1', '--influx-token', 'site1-write-token']);
    expect(server.violations).toEqual([]);
    expect(r.code).toBe(0);
    expect(server.seen.length).toBeGreaterThanOrEqual(2);
    for (const s of server.seen) {
      expect(`${s.method} ${s.path}?${s.query.toString()}`).toBe('POST /write?db=home1&precision=ms');
      expect(s.headers).toMatchObject({ authorization: 'Token site1-write-token', 'content-encoding': 'gzip', 'content-type': 'text/plain; charset=utf-8' });
    }
    // the refused batch came again, whole, and was taken
    const [refused, ...taken] = server.seen;
    expect(refused.status).toBe(404);
    const takenLines = new Set(taken.flatMap((s) => s.lines));
    expect(refused.lines.every((l) => takenLines.has(l))).toBe(true);
    expect(refused.lines.some((l) => l.startsWith('traffic,'))).toBe(true);
    const missing = logLines(r.stderr).filter((l) => l.code === 'EARSHOT_ERR_INFLUX_MISSING');
    expect(missing.map((l) => l.msg)).toEqual([
      `InfluxDB has no DBRP mapping for database "home1" (404 no dbrp mapping found): points wait in the spool until it exists; create it with: influx v1 dbrp create --db 'home1' --rp 'autogen' --bucket-id $(influx bucket list --name 'home1' --hide-headers | cut -f1) --default (make the bucket first if it is missing: influx bucket create --name 'home1' --retention 30d)`,
    ]);
  }, 40_000);

  it('2.x with a token it does not know: 401, said with the flag to check, the points kept; nothing else is tried', async () => {
    server = new V1Server(() => UNAUTHORIZED_2X);
    await server.start();
    const r = await replay(server.url, ['--influx-token', 'revoked']);
    expect(server.violations).toEqual([]);
    expect(r.code).toBe(3);
    expect(server.seen.every((s) => s.path === '/write' && s.headers.authorization === 'Token revoked')).toBe(true);
    expect(logLines(r.stderr).filter((l) => l.level >= 50).map((l) => l.msg)[0]).toMatch(/^InfluxDB refused the credentials \(401 unauthorized access\): check influx.token \(--influx-token, EARSHOT_INFLUX_TOKEN\)/);
  }, 40_000);

  it('3.x with a token: the database missing (404, its text, no version header) -> kept, the influxdb3 command, written once created', async () => {
    let created = false;
    server = new V1Server((r) => {
      if (r.headers.authorization !== 'Token apiv3_site2') return { status: 401 };
      if (!created) {
        created = true;
        return { status: 404, body: 'database not found: home2' };
      }
      return { status: 204 };
    });
    await server.start();
    const r = await replay(server.url, ['--influx-db', 'home2', '--influx-token', 'apiv3_site2', '--influx-raw-retention', '90d']);
    expect(server.violations).toEqual([]);
    expect(r.code).toBe(0);
    expect(server.seen.map((s) => `${s.method} ${s.path}?${s.query.toString()}`)).toEqual(server.seen.map(() => 'POST /write?db=home2&precision=ms'));
    expect(logLines(r.stderr).filter((l) => l.code === 'EARSHOT_ERR_INFLUX_MISSING').map((l) => l.msg)).toEqual([
      `InfluxDB has no database "home2" (404 database not found: home2): points wait in the spool until it exists; create it with: influxdb3 create database 'home2' --retention-period 90d`,
    ]);
  }, 40_000);

  it('1.x user and password: HTTP basic auth on every request, never in the URL; the setup /query as a form, refused (403) -> the admin\'s command, writes go on', async () => {
    const basic = `Basic ${Buffer.from('site3:s3cr3t pass').toString('base64')}`;
    server = new V1Server((r) => {
      if (r.headers.authorization !== basic) return { status: 401, body: '{"error":"authorization failed"}' };
      return { status: 204, headers: { 'X-Influxdb-Version': '1.8.10' } };
    // the setup's first statement, answered as influxd 1.6.7 answers a user without admin rights
    }, { status: 403, headers: { 'X-Influxdb-Version': '1.8.10' }, body: `{"error":"error authorizing query: site3 not authorized to execute statement 'CREATE DATABASE earshot', requires admin privilege"}` });
    await server.start();
    const { queries } = server;
    const r = await replay(server.url, ['--influx-username', 'site3', '--influx-raw-retention', 'INF', '--influx-setup', 'true'], { EARSHOT_INFLUX_PASSWORD: 's3cr3t pass' });
    expect(r.code).toBe(0);
    expect(queries).toHaveLength(1);
    expect(queries[0]).toMatchObject({ method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' } });
    expect(Object.fromEntries(queries[0].form)).toEqual({ q: 'CREATE DATABASE "earshot"', db: 'earshot' });
    const writes = server.seen.filter((s) => s.path === '/write');
    expect(writes.length).toBeGreaterThan(0);
    for (const s of writes) {
      expect(`${s.method} ${s.path}?${s.query.toString()}`).toBe('POST /write?db=earshot&precision=ms&rp=earshot_raw');
      expect(s.headers.authorization).toBe(basic);
    }
    expect(server.violations).toEqual([]);
    const denied = logLines(r.stderr).filter((l) => l.code === 'EARSHOT_ERR_INFLUX_SETUP_DENIED');
    expect(denied).toHaveLength(1);
    expect(denied[0].msg).toMatch(/^user "site3" may not run the database setup \(403 error authorizing query: .*requires admin privilege\); writing without it\. An admin can run it: influx -execute 'CREATE DATABASE "earshot"; .*; GRANT WRITE ON "earshot" TO "site3"'; then set influx.setup to false$/);
    // the password is in no log line
    expect(r.stderr).not.toContain('s3cr3t');
  }, 40_000);
});
