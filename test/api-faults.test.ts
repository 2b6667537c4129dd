/**
 * What the API does with faults of its own and with clients that never finish. An internal error (a bug)
 * answered 500 and left no trace: the log now has its route and where it came from (the fault is made by
 * a view that throws, as no real server can be made to show a bug on purpose). A client that trickled a
 * declared 1-GB body kept its connection without end, with no token: now cut after the request timeout
 * (real `earshot collect`, a raw socket).
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp, localContext, REQUEST_TIMEOUT_MS } from '../api/app.js';
import type { RunView } from '../api/view.js';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { buildRuntime } from '../collector/runtime.js';
import { startCollect } from './helpers/collect.js';
import { PROJECT_ROOT } from './helpers/shared.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');

describe('API faults', () => {
  it('a 500 is logged with its route and stack; the client gets "internal error" only', async () => {
    const config = loadConfig({});
    const runtime = buildRuntime(config, { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
    await runtime.run(buildSource({ kind: 'file', path: CAPTURE }, {}));
    const context = localContext({ runtime, config, captureRunning: () => false, captureSource: 'file', influxReachable: () => null, startedMs: Date.now(), version: 'test', alerts: () => ({}) });
    const broken = { ...context, view: { get: () => Promise.reject(new Error('the view broke')) } as unknown as RunView };
    const logged: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const log = { error: (fields: Record<string, unknown>, message: string) => logged.push({ fields, message }) };
    const app = await buildApp({ token: null, tokenForReads: false, postsPerMinute: 10, failedTokensPerMinute: 10, allowedHosts: [], bodyLimitBytes: 1024, version: 'test', log: log as never }, broken);
    const res = await app.inject({ method: 'GET', url: '/api/v1/devices?limit=5' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ statusCode: 500, error: 'Internal Server Error', message: 'internal error' });
    expect(logged).toHaveLength(1);
    expect(logged[0].message).toBe('API: internal error answering GET /api/v1/devices (a bug; please report it with this line)');
    expect(logged[0].fields).toMatchObject({ route: 'GET /api/v1/devices', err: 'the view broke' });
    expect(String(logged[0].fields.stack)).toMatch(/api-faults\.test\.ts/);
    await app.close();
  });

  /** Sends a declared body of `length` bytes one byte every 0.5 s; resolves with the ms until the server closed the connection. */
  async function trickle(port: number, headers: string, length: number): Promise<number> {
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.on('error', () => {});
    const startedMs = Date.now();
    socket.write(`POST /api/v1/wake-events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${headers}Content-Length: ${length}\r\n\r\n[`);
    const timer = setInterval(() => socket.write(' '), 500);
    try {
      return await new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - startedMs)));
    } finally {
      clearInterval(timer);
    }
  }

  it('a client trickling a declared body is cut: at once after its 401, within 1.5 times api.requestTimeoutS with the token (both were held without end)', async () => {
    expect(loadConfig({}).api.requestTimeoutS * 1000).toBe(REQUEST_TIMEOUT_MS);
    const token = 'faults-token-0123456789';
    // a short timeout, so the test need not wait the default 30 s (the mechanism is the same)
    const timeoutMs = 4_000;
    const run = await startCollect(CAPTURE, ['--log-level', 'warn', '--api-token', token, '--api-request-timeout', String(timeoutMs / 1000)]);
    try {
      const port = Number(new URL(run.base).port);
      expect(await trickle(port, '', 1e9)).toBeLessThan(timeoutMs);
      // with the token, and within the body limit (a larger one is refused at once, 413)
      const withToken = await trickle(port, `Authorization: Bearer ${token}\r\n`, 500_000);
      expect(withToken).toBeGreaterThanOrEqual(timeoutMs - 1_000);
      // looked for every half of the timeout: cut between 1 and 1.5 times it (with Node's 30-s default
      // interval a 30-s timeout cut it after up to 60 s; with the timeout alone, 88 s; before, never)
      expect(withToken).toBeLessThan(timeoutMs * 1.5 + 1_500);
      // the server goes on
      expect((await fetch(`${run.base}/api/v1/health`)).status).toBe(200);
    } finally {
      expect(await run.stop()).toBe(0);
    }
  }, 60_000);
});
