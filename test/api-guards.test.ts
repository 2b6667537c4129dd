/**
 * The API's guards over real HTTP against the real `earshot collect --file` executable: an empty token
 * never matches (on loopback and with --listen 0.0.0.0), a foreign Host header is refused (DNS
 * rebinding) while the machine's own names pass, every answer carries the browser protections
 * (Content-Security-Policy, X-Frame-Options, nosniff, Referrer-Policy), and the rate limits are per
 * client address: POSTs across all routes share one budget, and failed tokens are limited too without
 * blocking the right token from another address. Requests go out from several loopback addresses
 * (127.0.0.2, 127.0.0.3, ...) to be several clients.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EARSHOT_BIN } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { freePort, untilValue } from './helpers/wait.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const TOKEN = 'guards-token-0123456789';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with full control of the Host header and of the client's source address. */
function http(port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: unknown; from?: string; host?: string } = {}): Promise<Answer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request({
      host: options.host ?? '127.0.0.1', port, path, method: options.method ?? 'GET', localAddress: options.from,
      headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...options.headers },
      agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

interface Server {
  port: number;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** `earshot collect --file` (serving after the capture ends) on HOST:free port, with `extra` options. */
async function startServer(listenHost: string, extra: string[]): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--file', CAPTURE, '--listen', `${listenHost}:${port}`, '--format', 'json', '--log-level', 'warn', ...extra], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await untilValue(`the API on port ${port} (${stderr})`, async () => {
    try {
      const res = await http(port, '/api/v1/health', { headers: { authorization: `Bearer ${TOKEN}` }, from: '127.0.0.9' });
      return res.status === 200 ? true : null;
    } catch {
      return null;
    }
  }, 20_000);
  return { port, stderr: () => stderr, stop: async () => { child.kill('SIGTERM'); await exited; } };
}

const json = (a: Answer) => JSON.parse(a.body) as Record<string, unknown>;

describe('API guards on loopback (real HTTP)', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startServer('127.0.0.1', ['--api-token', TOKEN, '--api-posts-per-minute', '3', '--api-failed-tokens-per-minute', '5', '--api-allowed-hosts', 'earshot.example.net,.proxy.example']);
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('an empty X-Earshot-Token or "Authorization: Bearer " is refused (401), POSTs and reads alike', async () => {
    for (const headers of [{ 'x-earshot-token': '' }, { authorization: 'Bearer ' }, { authorization: 'Bearer' }] as Array<Record<string, string>>) {
      const res = await http(server.port, '/api/v1/wake-events', { method: 'POST', headers, body: { time: 1573894000 }, from: '127.0.0.2' });
      expect(res.status, JSON.stringify(headers)).toBe(401);
    }
  });

  it('refuses a Host that is not one of its names (DNS rebinding) with 403 and one clear message', async () => {
    for (const host of [`rebind.example:${server.port}`, 'attacker.example', `127.0.0.1.nip.io:${server.port}`, `earshot.example.net.evil.test:${server.port}`]) {
      const res = await http(server.port, '/api/v1/health', { headers: { host }, from: '127.0.0.4' });
      expect(res.status, host).toBe(403);
      expect(json(res).message, host).toMatch(/^Host ".*" is not a name of this earshot/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    // the status page and the docs too: everything is behind the check
    expect((await http(server.port, '/', { headers: { host: 'rebind.example' }, from: '127.0.0.4' })).status).toBe(403);
    expect((await http(server.port, '/api/v1/docs', { headers: { host: 'rebind.example' }, from: '127.0.0.4' })).status).toBe(403);
  });

  it('an integer in a query is digits: Infinity, 1e309, NaN, 0x10, 1.5 get 400 (Infinity passed every bound: 500s, caps gone)', async () => {
    const routes = ['/api/v1/activations?offset=', '/api/v1/activations?limit=', '/api/v1/calls?offset=', '/api/v1/calls?limit=', '/api/v1/devices?limit=',
      '/api/v1/flows?limit=', '/api/v1/privacy?limit=', '/api/v1/findings?limit='];
    for (const route of routes) {
      const field = route.slice(route.indexOf('?') + 1, -1);
      for (const bad of ['Infinity', '-Infinity', '1e309', 'NaN', '0x10', '1.5', '1e2']) {
        const res = await http(server.port, `${route}${encodeURIComponent(bad)}`, { from: '127.0.0.6' });
        expect(res.status, `${route}${bad}`).toBe(400);
        expect(json(res).message, `${route}${bad}`).toBe(`querystring/${field} must be an integer, got "${bad}"`);
      }
      expect((await http(server.port, `${route}2`, { from: '127.0.0.6' })).status, `${route}2`).toBe(200);
    }
    // a leap second passes the date-time format but no comparison: it gave an empty 200
    for (const route of ['/api/v1/activations', '/api/v1/calls']) {
      for (const field of ['since', 'until']) {
        const res = await http(server.port, `${route}?${field}=2016-12-31T23:59:60Z`, { from: '127.0.0.6' });
        expect(res.status, `${route} ${field}`).toBe(400);
        expect(json(res).message).toBe(`querystring/${field} must be a date and time such as 2026-11-01T08:00:00Z, got "2016-12-31T23:59:60Z"`);
      }
    }
    const devices = json(await http(server.port, '/api/v1/devices?limit=2', { from: '127.0.0.6' })) as unknown as { devices: unknown[]; total: number };
    expect(devices.total).toBeGreaterThan(2);
    expect(devices.devices).toHaveLength(2);
  });

  it("accepts IP literals, localhost, the machine's names and the configured ones", async () => {
    const short = hostname().split('.')[0];
    const hosts = [`127.0.0.1:${server.port}`, '192.168.1.20', `[::1]:${server.port}`, `localhost:${server.port}`, 'LOCALHOST.', 'app.localhost',
      hostname(), `${short}.local:${server.port}`, 'earshot.example.net', 'EARSHOT.example.net:443', 'proxy.example', 'a.proxy.example'];
    for (const host of hosts) {
      expect((await http(server.port, '/api/v1/health', { headers: { host }, from: '127.0.0.4' })).status, host).toBe(200);
    }
  });

  it('sets CSP, X-Frame-Options, nosniff and Referrer-Policy on every answer: JSON, errors, the page, metrics', async () => {
    const answers = await Promise.all([
      http(server.port, '/api/v1/health'), http(server.port, '/api/v1/nothing-here'), http(server.port, '/'),
      http(server.port, '/page.js'), http(server.port, '/metrics'), http(server.port, '/api/v1/activations?verdict=great'),
      http(server.port, '/api/v1/wake-events', { method: 'POST', body: { time: 1 }, from: '127.0.0.5' }),
      // answered by fastify's router before any hook: it had no security headers and echoed the path
      http(server.port, '/api/v1/%ZZ<script>'), http(server.port, `/api/v1/devices/${'a'.repeat(200)}%zz`),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 404, 200, 200, 200, 400, 401, 400, 400]);
    for (const a of answers.slice(-2)) {
      expect(json(a)).toEqual({ statusCode: 400, error: 'Bad Request', message: 'the path is not a valid URL (a malformed %-escape)' });
      expect(a.headers['cross-origin-resource-policy']).toBe('same-origin');
    }
    for (const a of answers) {
      expect(a.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
      expect(a.headers['content-security-policy']).toMatch(/script-src 'self'(;|$)/);
      expect(a.headers['content-security-policy']).not.toMatch(/unsafe-inline|unsafe-eval/);
      expect(a.headers['x-frame-options']).toBe('DENY');
      expect(a.headers['x-content-type-options']).toBe('nosniff');
      expect(a.headers['referrer-policy']).toBe('no-referrer');
    }
    const docs = await http(server.port, '/api/v1/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(docs.headers['x-frame-options']).toBe('DENY');
  });

  it('sends no CORS permission: a cross-site preflight for a POST with a token header fails', async () => {
    const preflight = await http(server.port, '/api/v1/wake-events', {
      method: 'OPTIONS', from: '127.0.0.5',
      headers: { origin: 'http://attacker.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(preflight.status).toBeGreaterThanOrEqual(400);
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    const read = await http(server.port, '/api/v1/devices', { headers: { origin: 'http://attacker.example' } });
    expect(read.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('limits POSTs per client across routes, not per route (429 with Retry-After); another client keeps its own budget', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const id = (json(await http(server.port, '/api/v1/activations')).activations as Array<{ id: string }>)[0]?.id ?? 'none';
    const codes: number[] = [];
    let retryAfter: string | string[] | undefined;
    for (let i = 0; i < 3; i++) {
      const wake = await http(server.port, '/api/v1/wake-events', { method: 'POST', headers: auth, body: { time: 1573894000 }, from: '127.0.0.6' });
      const label = await http(server.port, `/api/v1/activations/${id}/label`, { method: 'POST', headers: auth, body: { label: 'intended' }, from: '127.0.0.6' });
      codes.push(wake.status, label.status);
      retryAfter ??= label.status === 429 ? label.headers['retry-after'] : undefined;
    }
    // 3 a minute in all: two wake-event POSTs and one label pass, whatever the route
    expect(codes.filter((c) => c !== 429)).toHaveLength(3);
    expect(codes.slice(3)).toEqual([429, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    // another client is not affected
    expect((await http(server.port, '/api/v1/wake-events', { method: 'POST', headers: auth, body: { time: 1573894000 }, from: '127.0.0.7' })).status).toBe(200);
  });

  it('limits failed tokens per client (then 429 with Retry-After, even for the right token), and not the right token from another client', async () => {
    const attacker = '127.0.0.8';
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await http(server.port, '/api/v1/wake-events', { method: 'POST', headers: { authorization: `Bearer wrong-token-guess-${i}` }, body: { time: 1 }, from: attacker });
      codes.push(res.status);
    }
    expect(codes).toEqual([401, 401, 401, 401, 401, 429, 429]);
    const right = await http(server.port, '/api/v1/wake-events', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: { time: 1573894000 }, from: attacker });
    expect(right.status).toBe(429);
    expect(Number(right.headers['retry-after'])).toBeGreaterThan(0);
    expect(json(right).message).toMatch(/too many wrong tokens/);
    const owner = await http(server.port, '/api/v1/wake-events', { method: 'POST', headers: { 'x-earshot-token': TOKEN }, body: { time: 1573894000 }, from: '127.0.0.10' });
    expect(owner.status).toBe(200);
    // a request without any token (the status page before its owner typed one) is no guess: not counted
    for (let i = 0; i < 8; i++) expect((await http(server.port, '/api/v1/wake-events', { method: 'POST', body: { time: 1 }, from: '127.0.0.11' })).status).toBe(401);
    expect((await http(server.port, '/api/v1/wake-events', { method: 'POST', headers: { 'x-earshot-token': TOKEN }, body: { time: 1573894000 }, from: '127.0.0.11' })).status).toBe(200);
  });

  it('counts every wrong token of a parallel burst: 30 at once from one address, at most 5 answered 401', async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) =>
      http(server.port, '/api/v1/wake-events', { method: 'POST', headers: { 'x-earshot-token': `parallel-guess-${i}-0000000` }, body: { time: 1 }, from: '127.0.0.12' })));
    const codes = answers.map((a) => a.status);
    expect(codes.filter((c) => c === 401)).toHaveLength(5);
    expect(codes.filter((c) => c === 429)).toHaveLength(25);
  });
});

describe('API guards beyond loopback (--listen 0.0.0.0)', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startServer('0.0.0.0', ['--api-token', TOKEN]);
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('every route needs the token; an empty one gets 401', async () => {
    for (const path of ['/api/v1/health', '/api/v1/devices', '/metrics']) {
      expect((await http(server.port, path, { from: '127.0.0.2' })).status, path).toBe(401);
      expect((await http(server.port, path, { headers: { 'x-earshot-token': '' }, from: '127.0.0.2' })).status, path).toBe(401);
      expect((await http(server.port, path, { headers: { authorization: 'Bearer ' }, from: '127.0.0.2' })).status, path).toBe(401);
      expect((await http(server.port, path, { headers: { authorization: `Bearer ${TOKEN}` }, from: '127.0.0.2' })).status, path).toBe(200);
    }
    const post = await http(server.port, '/api/v1/wake-events', { method: 'POST', headers: { 'x-earshot-token': '' }, body: { time: 1 }, from: '127.0.0.2' });
    expect(post.status).toBe(401);
  });
});
