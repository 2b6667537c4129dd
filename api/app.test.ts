/**
 * The app's guards, in-process (fastify's inject, the real app over a runtime that replayed a real
 * capture): the token for reads beyond loopback, the POST rate limit, the body limit, the listen
 * address parser and the loopback rule.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { buildRuntime, type Runtime } from '../collector/runtime.js';
import { PROJECT_ROOT } from '../test/helpers/shared.js';
import { buildApp, localContext, tokenMatches, type AppContext } from './app.js';
import { hostCheck } from './guards.js';
import { isLoopback, parseListen } from './server.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const TOKEN = 'token-for-tests-123';

let context: AppContext;

beforeAll(async () => {
  const config = loadConfig({});
  const runtime: Runtime = buildRuntime(config, { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
  await runtime.run(buildSource({ kind: 'file', path: CAPTURE }, {}));
  context = localContext({
    runtime, config, captureRunning: () => false, captureSource: 'file', influxReachable: () => null,
    startedMs: Date.now(), version: 'test', alerts: () => ({}),
  });
});

const app = (over: Partial<Parameters<typeof buildApp>[0]> = {}) =>
  buildApp({ token: TOKEN, tokenForReads: false, postsPerMinute: 100, failedTokensPerMinute: 10, allowedHosts: [], bodyLimitBytes: 1024 * 1024, version: 'test', ...over }, context);

describe('API schemas', () => {
  it('every route\'s schemas compile, checked at the build as fastify does by default (the served app compiles them at first use)', async () => {
    const eager = await app({ eagerSchemas: true });
    await expect(eager.ready()).resolves.toBeDefined();
    // and the lazily compiled app answers the same
    const lazy = await app();
    for (const url of ['/api/v1/devices', '/api/v1/activations?limit=2', '/api/v1/activations?limit=abc', '/api/v1/health']) {
      const [a, b] = await Promise.all([eager.inject({ url }), lazy.inject({ url })]);
      expect({ url, status: b.statusCode, body: url.endsWith('health') ? b.statusCode : b.body }).toEqual({ url, status: a.statusCode, body: url.endsWith('health') ? a.statusCode : a.body });
    }
  });
});

describe('API guards', () => {
  it('reads need no token on loopback, and the token beyond it', async () => {
    const open = await app();
    expect((await open.inject({ url: '/api/v1/devices' })).statusCode).toBe(200);
    const guarded = await app({ tokenForReads: true });
    expect((await guarded.inject({ url: '/api/v1/devices' })).statusCode).toBe(401);
    expect((await guarded.inject({ url: '/metrics' })).statusCode).toBe(401);
    expect((await guarded.inject({ url: '/api/v1/devices', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
    expect((await guarded.inject({ url: '/metrics', headers: { 'x-earshot-token': TOKEN } })).statusCode).toBe(200);
    // the status page itself holds no data: it loads, and asks for the token for its requests
    expect((await guarded.inject({ url: '/' })).statusCode).toBe(200);
  });

  it('without a configured token every POST is refused', async () => {
    const none = await app({ token: null });
    const res = await none.inject({ method: 'POST', url: '/api/v1/wake-events', payload: { time: 1 } });
    expect(res.statusCode).toBe(401);
    expect(res.json().message).toMatch(/no API token is configured/);
  });

  it('rate-limits POSTs per client (429 with Retry-After)', async () => {
    const limited = await app({ postsPerMinute: 3 });
    const codes: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await limited.inject({ method: 'POST', url: '/api/v1/wake-events', headers: { authorization: `Bearer ${TOKEN}` }, payload: { time: 1573894000 } });
      codes.push(res.statusCode);
      retryAfter ??= res.statusCode === 429 ? String(res.headers['retry-after']) : undefined;
    }
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    // reads are not limited
    for (let i = 0; i < 5; i++) expect((await limited.inject({ url: '/api/v1/activations' })).statusCode).toBe(200);
  });

  it('refuses bodies over the limit (413)', async () => {
    const small = await app({ bodyLimitBytes: 200 });
    const batch = Array.from({ length: 20 }, (_, i) => ({ time: 1573894000 + i, source: 'x' }));
    const res = await small.inject({ method: 'POST', url: '/api/v1/wake-events', headers: { authorization: `Bearer ${TOKEN}` }, payload: batch });
    expect(res.statusCode).toBe(413);
  });

  it('compares tokens whatever their lengths', () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches(`${TOKEN}x`, TOKEN)).toBe(false);
    expect(tokenMatches('', TOKEN)).toBe(false);
    expect(tokenMatches(undefined, TOKEN)).toBe(false);
    // defence in depth: an empty token never matches, not even an empty configured one
    expect(tokenMatches('', '')).toBe(false);
    expect(tokenMatches('   ', '')).toBe(false);
  });

  it('knows its names in the Host header (a machine named pi.lan, a proxy at earshot.example.net)', () => {
    const allowed = hostCheck(['earshot.example.net', '.home.arpa'], 'pi.lan');
    const yes = ['127.0.0.1:8377', '10.0.0.5', '[::1]:8377', '[fe80::1]', 'localhost', 'LocalHost.:80', 'grafana.localhost', 'pi.lan', 'pi', 'pi.local:8377',
      'Earshot.Example.Net', 'home.arpa', 'earshot.home.arpa:443', undefined];
    const no = ['rebind.example', 'pi.lan.evil.test', 'earshot.example.net.evil.test', 'xhome.arpa', '127.0.0.1.nip.io', 'pi.local.evil', 'localhost.evil.test', '2130706433', ''];
    expect(yes.filter((h) => !allowed(h))).toEqual([]);
    expect(no.filter((h) => allowed(h))).toEqual([]);
  });

  it('parses --listen and knows loopback', () => {
    expect(parseListen('127.0.0.1:8377')).toEqual({ host: '127.0.0.1', port: 8377 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(() => parseListen('8377')).toThrow(/expected HOST:PORT/);
    expect(() => parseListen('host:70000')).toThrow(/expected HOST:PORT/);
    expect([isLoopback('127.0.0.1'), isLoopback('127.1.2.3'), isLoopback('::1'), isLoopback('localhost')]).toEqual([true, true, true, true]);
    expect([isLoopback('0.0.0.0'), isLoopback('192.168.1.2'), isLoopback('::')]).toEqual([false, false, false]);
  });
});

describe('site', () => {
  it('health and /metrics name the site the collector watches', async () => {
    const open = await app();
    const health = (await open.inject({ url: '/api/v1/health' })).json() as { site: string };
    expect(health.site).toBe(context.config?.site);
    expect(health.site).toMatch(/^[a-z0-9][a-z0-9_-]*$/);
    const metrics = (await open.inject({ url: '/metrics' })).body;
    expect(metrics).toContain(`earshot_info{site="${health.site}",version="test"} 1`);
  });
});
