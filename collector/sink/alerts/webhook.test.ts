/**
 * The webhook sink against real HTTP receivers (node:http on port 0) that check requests as a receiver
 * would: the signature verified with the code docs/alerts.md gives receivers, alerts deduplicated by
 * idempotency key. Pinned: which alerts each `on` gets; every suspected activation arrives once per key
 * through 5xx/408/429 answers, a receiver not listening yet, and a restart on the same data directory;
 * 4xx and redirects are not retried; Retry-After is honoured; alerts are given up after maxAgeH; the
 * outbox bound drops the oldest; close() delivers what is due within its wait; each preset's request
 * has its receiver's shape.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../config.js';
import { Activation } from '../../detect/detector.js';
import { isEarshotError } from '../../errors.js';
import { packagePath } from '../../paths.js';
import { activationEvent, type ActivationEvent, type EventDevice } from '../events.js';
import { buildWebhookSink, type WebhookSink, type WebhookSinkDeps } from './index.js';
import { signature } from './presets.js';
import { freePort, until } from '../../../test/helpers/wait.js';

// ---- the receiver side ------------------------------------------------------------------------------

type Verify = (rawBody: Buffer, header: string | undefined, secret: string, toleranceS?: number) => boolean;

/** The verification code from docs/alerts.md, run as written (imports and export stripped). */
const verifyAsDocumented: Verify = (() => {
  const doc = readFileSync(packagePath('docs', 'alerts.md'), 'utf8');
  const block = /<!-- verify-snippet[^>]*-->\s*```js\n([\s\S]*?)```/.exec(doc);
  if (!block) throw new Error('docs/alerts.md: the verify snippet is missing');
  const code = block[1].replace(/^import .*$/gm, '').replace(/^export /gm, '');
  return new Function('createHmac', 'timingSafeEqual', 'Buffer', `${code}\nreturn verifyEarshotSignature;`)(createHmac, timingSafeEqual, Buffer) as Verify;
})();

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  atMs: number;
  status: number | null;
}

/** What the receiver answers: a status (and headers, body); `handled` also when not 2xx (it crashed after handling). */
interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  handled?: boolean;
  /** Never answer. */
  hang?: boolean;
}

class Receiver {
  readonly requests: Received[] = [];
  /** Alerts handled, by idempotency key: what a receiver that dedupes keeps. */
  readonly handled = new Map<string, Received>();
  duplicates = 0;
  badSignatures = 0;
  /** Answers for the next requests, then `always`, then 204. */
  readonly answers: Answer[] = [];
  always: Answer | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server, private readonly secret: string | null) {}

  static async start(options: { secret?: string; port?: number } = {}): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server, options.secret ?? null);
    server.on('connection', (s) => {
      receiver.sockets.add(s);
      s.on('close', () => receiver.sockets.delete(s));
    });
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => receiver.handle({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks), atMs: Date.now(), status: null }, req.method ?? '', res));
    });
    await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  paths(path: string): Received[] {
    return this.requests.filter((r) => r.path === path && r.status !== null && r.status < 300);
  }

  private handle(req: Received, method: string, res: ServerResponse): void {
    this.requests.push(req);
    const answer = (status: number, headers: Record<string, string> = {}, body = '') => {
      req.status = status;
      res.writeHead(status, headers).end(body);
    };
    if (method !== 'POST') return answer(405);
    if (this.secret !== null && !verifyAsDocumented(req.body, req.headers['x-earshot-signature'] as string | undefined, this.secret)) {
      this.badSignatures++;
      return answer(401);
    }
    const planned = this.answers.shift() ?? this.always ?? { status: 204 };
    if (planned.hang) return;
    const ok = planned.status >= 200 && planned.status < 300;
    if (ok || planned.handled) {
      const key = String(req.headers['x-earshot-idempotency-key']);
      if (this.handled.has(key)) this.duplicates++;
      else this.handled.set(key, req);
    }
    answer(planned.status, planned.headers, planned.body);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---- the earshot side -------------------------------------------------------------------------------

const receivers: Receiver[] = [];
const sinks: WebhookSink[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const sink of sinks.splice(0)) await sink.close(0);
  for (const r of receivers.splice(0)) await r.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function receiver(options: { secret?: string; port?: number } = {}): Promise<Receiver> {
  const r = await Receiver.start(options);
  receivers.push(r);
  return r;
}

function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-webhook-test-'));
  dirs.push(dir);
  return dir;
}

/** A config with `webhooks` and quick retries (20-100 ms), plus any other flags. */
function config(webhooks: object[], flags: Record<string, string> = {}): Readonly<Config> {
  return loadConfig({ flags: { webhooks: JSON.stringify(webhooks), 'alert-retry-min': '0.02', 'alert-retry-max': '0.1', 'alert-timeout': '5', ...flags } });
}

type LogLine = { level: number; msg: string } & Record<string, unknown>;

function sink(cfg: Readonly<Config>, deps: Partial<WebhookSinkDeps> = {}) {
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug', base: undefined }, { write: (text: string) => void logs.push(JSON.parse(text) as LogLine) });
  const built = buildWebhookSink(cfg, { log, ...deps });
  if (built === null) throw new Error('no sink');
  sinks.push(built);
  return { sink: built, logs };
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const T0 = Date.parse('2024-05-01T03:12:04.000Z');
const ECHO: EventDevice = { mac: 'f0:27:2d:8a:1b:2c', name: 'Kitchen Echo', vendor: 'Amazon', model: 'Echo Dot (3rd Gen)', assistant: true };

/** Activation number `n` of the Kitchen Echo (a minute apart), as the pipeline reports it. */
function event(n: number, kind: ActivationEvent['kind'], verdict: Activation['verdict'], device: EventDevice = ECHO): ActivationEvent {
  const a = new Activation(0xf0272d8a1b2c, T0 + n * 60_000);
  a.endMs = a.startMs + 5400;
  a.bytesUp = 41_200 + n;
  a.bytesDown = 8800;
  a.server = '52.94.233.129';
  a.serverName = 'avs-alexa-4-na.amazon.com';
  a.score = 0.91;
  a.verdict = verdict;
  a.reasons = verdict === 'suspected' ? ['sustained-upload', 'no-wake-event'] : ['sustained-upload'];
  return activationEvent(kind, a, () => device, a.endMs + 2000);
}
const suspected = (n: number, device?: EventDevice) => event(n, 'finished', 'suspected', device);
const keyOf = (n: number, suffix = 'activation.suspected') => `f0272d8a1b2c-${T0 + n * 60_000}.${suffix}`;
/** The key of activation n's change to `verdict` (made by event(): at its end + 2 s). */
const changeKeyOf = (n: number, verdict: string) => keyOf(n, `activation.verdict-changed.${verdict}.${T0 + n * 60_000 + 5400 + 2000}`);

// ---- tests ------------------------------------------------------------------------------------------

describe('webhook sink', () => {
  it('is not built without webhooks, and names a bad webhook in a config error', () => {
    expect(buildWebhookSink(loadConfig({}), { log: pino({ level: 'silent' }) })).toBeNull();
    let error: unknown;
    try {
      buildWebhookSink(config([{ url: 'https://ok.example/a' }, { url: 'ftp://example.net/x' }]), { log: pino({ level: 'silent' }) });
    } catch (err) {
      error = err;
    }
    expect(isEarshotError(error) && error.code).toBe('EARSHOT_ERR_CONFIG_INVALID');
    expect((error as Error).message).toMatch(/^alerts\.webhooks\[1\]\.url: must be http/);
  });

  it('a configured header replaces the preset\'s whatever its case; earshot\'s own headers cannot be configured', async () => {
    const r = await receiver();
    const { sink: s } = sink(config([{ url: r.url(), headers: { 'content-type': 'application/x-custom', 'x-team': 'home' } }]));
    s.start();
    s.onActivationEvent(suspected(1));
    await until('delivery', () => s.stats.delivered === 1);
    const req = r.handled.get(keyOf(1)) as Received;
    // it was "application/json, application/x-custom": a plain object kept both spellings
    expect(req.headers['content-type']).toBe('application/x-custom');
    expect(req.headers['x-team']).toBe('home');
    expect(req.headers['x-earshot-site']).toBe(loadConfig({}).site);
    for (const name of ['x-earshot-site', 'X-Earshot-Signature', 'user-agent']) {
      let error: unknown;
      try {
        buildWebhookSink(config([{ url: 'https://ok.example/a', headers: { [name]: 'forged' } }]), { log: pino({ level: 'silent' }) });
      } catch (err) {
        error = err;
      }
      expect(isEarshotError(error) && error.code, name).toBe('EARSHOT_ERR_CONFIG_INVALID');
      expect((error as Error).message).toBe(`alerts.webhooks[0].headers: "${name}" is earshot's own header: it cannot be set`);
    }
  });

  it('posts a signed earshot.alert/1 document that verifies as docs/alerts.md says', async () => {
    const secret = 'correct horse battery staple';
    const r = await receiver({ secret });
    const { sink: s } = sink(config([{ url: r.url(), secret, headers: { 'X-Team': 'home' } }], { 'time-zone': 'Europe/Berlin' }));
    s.start();
    s.onActivationEvent(suspected(1));
    await until('delivery', () => s.stats.delivered === 1);
    expect(r.badSignatures).toBe(0);
    const req = r.handled.get(keyOf(1)) as Received;
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['x-earshot-event']).toBe('activation.suspected');
    expect(req.headers['x-earshot-idempotency-key']).toBe(keyOf(1));
    expect(req.headers['x-team']).toBe('home');
    expect(req.headers['x-earshot-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const doc = JSON.parse(req.body.toString('utf8'));
    expect(doc).toMatchObject({
      schema: 'earshot.alert/1', event: 'activation.suspected', id: keyOf(1), time: '2024-05-01T03:13:11.400Z',
      title: 'Suspected false activation: Kitchen Echo', device: ECHO,
      activation: { id: `f0272d8a1b2c-${T0 + 60_000}`, start: '2024-05-01T03:13:04.000Z', verdict: 'suspected', reasons: ['sustained-upload', 'no-wake-event'] },
    });
    expect(doc.text).toContain('05:13:04 Europe/Berlin');
    // the documented check is not vacuous: a changed body, another secret or an old timestamp fail
    const header = req.headers['x-earshot-signature'] as string;
    expect(verifyAsDocumented(req.body, header, secret)).toBe(true);
    expect(verifyAsDocumented(Buffer.concat([req.body, Buffer.from(' ')]), header, secret)).toBe(false);
    expect(verifyAsDocumented(req.body, header, 'another secret')).toBe(false);
    const old = signature(secret, Math.floor(Date.now() / 1000) - 3600, req.body.toString('utf8'));
    expect(verifyAsDocumented(req.body, old, secret)).toBe(false);
    expect(verifyAsDocumented(req.body, undefined, secret)).toBe(false);
    expect(s.stats).toMatchObject({ delivered: 1, failedAttempts: 0, givenUp: 0, dropped: 0, pending: 0 });
  });

  it('sends each webhook the alerts its `on` subscribes to, "suspected" once per activation', async () => {
    const r = await receiver();
    const hooks = (['suspected', 'finished', 'started', 'all'] as const).map((on) => ({ url: r.url(`/${on}`), on, name: on }));
    const { sink: s } = sink(config(hooks));
    s.start();
    const events = [
      event(1, 'started', 'unverified'), event(1, 'finished', 'confirmed'),
      event(2, 'started', 'unverified'), event(2, 'finished', 'suspected'),
      event(2, 'verdict-changed', 'confirmed'), event(2, 'verdict-changed', 'suspected'),
      event(1, 'verdict-changed', 'suspected'),
    ];
    for (const e of events) s.onActivationEvent(e);
    await until('all deliveries', () => s.stats.delivered === 2 + 5 + 2 + 9);
    const keys = (path: string) => r.paths(path).map((q) => q.headers['x-earshot-idempotency-key']);
    const [started1, finished1, started2, finished2] = [keyOf(1, 'activation.started'), keyOf(1, 'activation.finished'), keyOf(2, 'activation.started'), keyOf(2, 'activation.finished')];
    const [changed2c, changed2s, changed1s] = [changeKeyOf(2, 'confirmed'), changeKeyOf(2, 'suspected'), changeKeyOf(1, 'suspected')];
    expect(keys('/suspected')).toEqual([keyOf(2), keyOf(1)]);
    expect(keys('/finished')).toEqual([finished1, finished2, changed2c, changed2s, changed1s]);
    expect(keys('/started')).toEqual([started1, started2]);
    expect(keys('/all')).toEqual([started1, finished1, started2, finished2, keyOf(2), changed2c, changed2s, changed1s, keyOf(1)]);
    expect(r.paths('/all').map((q) => q.headers['x-earshot-event'])).toEqual([
      'activation.started', 'activation.finished', 'activation.started', 'activation.finished', 'activation.suspected',
      'activation.verdict-changed', 'activation.verdict-changed', 'activation.verdict-changed', 'activation.suspected',
    ]);
  });

  it('sends nothing for activations with a reason the owner skips (an aborted wake), and the rest as before', async () => {
    const r = await receiver();
    const { sink: s } = sink(config([{ url: r.url(), on: 'all' }], { 'alert-skip-reasons': 'aborted-wake,follow-up' }));
    s.start();
    const aborted = suspected(1);
    aborted.activation.reasons = ['sustained-upload', 'aborted-wake', 'no-wake-event'];
    s.onActivationEvent(aborted);
    s.onActivationEvent(suspected(2));
    await until('delivery', () => s.stats.delivered === 2);
    await sleep(200);
    expect(r.requests.map((q) => q.headers['x-earshot-idempotency-key'])).toEqual([keyOf(2, 'activation.finished'), keyOf(2)]);
  });

  it('retries 5xx, 408 and 429 with back-off until the receiver takes every alert once per key', async () => {
    const r = await receiver();
    // the first answer comes after the receiver handled the alert: earshot sends it again, the key dedupes it
    r.answers.push({ status: 500, handled: true }, { status: 503 }, { status: 408 }, { status: 429, headers: { 'Retry-After': '0' } }, { status: 502 });
    // no probing behind the failing alert here (faults.test.ts pins that): the plain retry order
    const { sink: s, logs } = sink(config([{ url: r.url() }]), { suspectAfter: 10 });
    s.start();
    for (let n = 1; n <= 5; n++) s.onActivationEvent(suspected(n));
    await until('five deliveries', () => s.stats.delivered === 5);
    expect([...r.handled.keys()].sort()).toEqual([1, 2, 3, 4, 5].map((n) => keyOf(n)).sort());
    expect(r.duplicates).toBe(1);
    expect(r.requests.map((q) => q.status)).toEqual([500, 503, 408, 429, 502, 204, 204, 204, 204, 204]);
    // one webhook, one request at a time, oldest first: the first alert was retried until it went through
    expect(r.requests.slice(0, 6).every((q) => q.headers['x-earshot-idempotency-key'] === keyOf(1))).toBe(true);
    expect(s.stats).toMatchObject({ delivered: 5, failedAttempts: 5, givenUp: 0, pending: 0 });
    expect(logs.filter((l) => l.msg === 'webhook delivery failed; retrying with back-off')).toHaveLength(1);
    expect(logs.filter((l) => l.msg === 'webhook delivering again')).toHaveLength(1);
  });

  it('waits for a receiver that is not listening yet', async () => {
    const port = await freePort();
    // strict order is pinned here; with probing, a receiver that starts in the instant between a retry
    // and its probe would see the probe first (docs/alerts.md)
    const { sink: s, logs } = sink(config([{ url: `http://127.0.0.1:${port}/hook`, name: 'late' }]), { suspectAfter: 1000 });
    s.start();
    for (let n = 1; n <= 3; n++) s.onActivationEvent(suspected(n));
    await until('failed attempts', () => s.stats.failedAttempts >= 3);
    expect(logs.find((l) => l.msg === 'webhook delivery failed; retrying with back-off')).toMatchObject({ webhook: 'late', reason: 'ECONNREFUSED' });
    const r = await receiver({ port });
    await until('three deliveries', () => s.stats.delivered === 3);
    expect([...r.handled.keys()]).toEqual([1, 2, 3].map((n) => keyOf(n)));
    expect(r.duplicates).toBe(0);
  });

  it('honours Retry-After on 429 (up to retryMaxS)', async () => {
    const r = await receiver();
    r.answers.push({ status: 429, headers: { 'Retry-After': '1' } });
    const { sink: s } = sink(config([{ url: r.url() }], { 'alert-retry-max': '5' }));
    s.start();
    s.onActivationEvent(suspected(1));
    await until('delivery', () => s.stats.delivered === 1);
    expect(r.requests).toHaveLength(2);
    // without Retry-After the wait would be 20-40 ms
    expect(r.requests[1].atMs - r.requests[0].atMs).toBeGreaterThanOrEqual(950);
  });

  it('keeps undelivered alerts on disk across a restart and delivers them when the next run starts', async () => {
    const dataDir = newDir();
    const r = await receiver({ secret: 'restart-secret' });
    r.always = { status: 503 };
    const cfg = config([{ url: r.url(), secret: 'restart-secret', name: 'home' }], { 'data-dir': dataDir });
    const first = sink(cfg);
    first.sink.start();
    for (let n = 1; n <= 3; n++) first.sink.onActivationEvent(suspected(n));
    await until('a failed attempt', () => first.sink.stats.failedAttempts >= 2);
    expect(await first.sink.close(200)).toEqual({ pending: 3 });
    await sleep(50); // an attempt close() aborted may still reach the receiver
    const outboxDir = join(dataDir, 'outbox', 'webhooks');
    const files = readdirSync(outboxDir).sort();
    expect(files).toEqual(['000000000001.json', '000000000002.json', '000000000003.json']);
    const saved = JSON.parse(readFileSync(join(outboxDir, files[0]), 'utf8'));
    expect(saved).toMatchObject({ v: 1, hook: 'home', event: 'activation.suspected', key: keyOf(1) });
    expect(saved.attempts).toBeGreaterThanOrEqual(2);
    expect(r.handled.size).toBe(0);

    // the receiver comes back; a new run on the same data directory
    r.always = null;
    const asked = r.requests.length;
    const second = sink(cfg);
    expect(second.sink.stats.pending).toBe(3);
    await sleep(100);
    expect(r.requests.length).toBe(asked); // nothing before start()
    second.sink.start();
    await until('three deliveries', () => second.sink.stats.delivered === 3);
    expect([...r.handled.keys()]).toEqual([1, 2, 3].map((n) => keyOf(n)));
    expect(r.badSignatures).toBe(0);
    expect(readdirSync(outboxDir)).toEqual([]);
    expect(second.logs.some((l) => l.msg === 'webhook outbox: alerts left by an earlier run will be delivered')).toBe(true);
  });

  it('drops, and counts, what waits for a webhook no longer configured', async () => {
    const dataDir = newDir();
    const port = await freePort();
    const first = sink(config([{ url: `http://127.0.0.1:${port}/`, name: 'old' }], { 'data-dir': dataDir }));
    first.sink.onActivationEvent(suspected(1));
    expect(await first.sink.close(0)).toEqual({ pending: 1 });
    const r = await receiver();
    const second = sink(config([{ url: r.url(), name: 'new' }], { 'data-dir': dataDir }));
    expect(second.sink.stats).toMatchObject({ pending: 0, givenUp: 1 });
    expect(second.logs.find((l) => l.msg.includes('no longer configured'))).toMatchObject({ webhook: 'old', alerts: 1 });
  });

  it('gives up at once on 4xx and redirects, logging the status', async () => {
    const r = await receiver();
    r.answers.push({ status: 400, body: 'invalid_payload' }, { status: 404, body: 'no_service' }, { status: 307, headers: { Location: 'https://elsewhere.example/hook' } });
    const { sink: s, logs } = sink(config([{ url: r.url(), name: 'slackish' }]));
    s.start();
    for (let n = 1; n <= 3; n++) s.onActivationEvent(suspected(n));
    await until('three given up', () => s.stats.givenUp === 3);
    await sleep(300); // retries would come within 20-100 ms
    expect(r.requests.map((q) => q.status)).toEqual([400, 404, 307]);
    expect(s.stats).toMatchObject({ delivered: 0, failedAttempts: 3, givenUp: 3, pending: 0 });
    const refused = logs.filter((l) => l.msg === 'webhook refused an alert; it is not retried');
    expect(refused.map((l) => [l.status, l.key])).toEqual([[400, keyOf(1)], [404, keyOf(2)], [307, keyOf(3)]]);
    expect(refused[0].reason).toBe('HTTP 400: invalid_payload');
    expect(refused[2].reason).toMatch(/redirect to https:\/\/elsewhere\.example\/hook/);
    expect(JSON.stringify(logs)).not.toContain(r.url()); // URLs hold tokens: never logged
  });

  it('gives an alert up once it is older than alerts.maxAgeH', async () => {
    const r = await receiver();
    r.always = { status: 503 };
    // the sink's clock runs with the real one, and jumps
    let offset = 0;
    const { sink: s, logs } = sink(config([{ url: r.url() }], { 'alert-max-age': '1' }), { now: () => Date.now() + offset });
    s.start();
    s.onActivationEvent(suspected(1));
    await until('failed attempts', () => s.stats.failedAttempts >= 2);
    expect(s.stats.givenUp).toBe(0);
    offset += 2 * 3_600_000;
    await until('given up', () => s.stats.givenUp === 1);
    expect(s.stats).toMatchObject({ delivered: 0, pending: 0 });
    expect(logs.find((l) => l.msg === 'webhook alert given up')).toMatchObject({ key: keyOf(1), why: expect.stringMatching(/maxAgeH \(1 h\)/) });
  });

  it('bounds the outbox, dropping the oldest alerts (counted)', async () => {
    const r = await receiver();
    const { sink: s, logs } = sink(config([{ url: r.url() }]), { maxDeliveries: 3 });
    for (let n = 1; n <= 5; n++) s.onActivationEvent(suspected(n));
    expect(s.stats).toMatchObject({ pending: 3, dropped: 2 });
    expect(logs.some((l) => l.msg === 'webhook outbox full: the oldest alerts were dropped')).toBe(true);
    s.start();
    await until('three deliveries', () => s.stats.delivered === 3);
    expect([...r.handled.keys()]).toEqual([3, 4, 5].map((n) => keyOf(n)));
  });

  it('times out a receiver that does not answer, and retries', async () => {
    const r = await receiver();
    r.answers.push({ status: 0, hang: true });
    const { sink: s, logs } = sink(config([{ url: r.url() }], { 'alert-timeout': '0.3' }));
    s.start();
    s.onActivationEvent(suspected(1));
    await until('delivery', () => s.stats.delivered === 1);
    expect(s.stats.failedAttempts).toBe(1);
    expect(logs.find((l) => l.msg === 'webhook delivery failed; retrying with back-off')?.reason).toBe('no answer within 0.3 s');
  });

  it('close() delivers what falls due within its wait, and leaves the rest', async () => {
    const r = await receiver();
    r.answers.push({ status: 503 });
    const { sink: s } = sink(config([{ url: r.url() }]));
    s.onActivationEvent(suspected(1)); // never started: close() still delivers
    expect(await s.close(10_000)).toEqual({ pending: 0 });
    expect([...r.handled.keys()]).toEqual([keyOf(1)]);

    const port = await freePort();
    const dead = sink(config([{ url: `http://127.0.0.1:${port}/` }]));
    dead.sink.start();
    dead.sink.onActivationEvent(suspected(2));
    const began = Date.now();
    expect(await dead.sink.close(400)).toEqual({ pending: 1 });
    const took = Date.now() - began;
    expect(took).toBeGreaterThanOrEqual(250); // it may end early when the next retry falls after its deadline
    expect(took).toBeLessThan(5000);
    expect(dead.sink.stats.failedAttempts).toBeGreaterThanOrEqual(2);

    // a hanging receiver: close() aborts the attempt at its deadline
    const hung = await receiver();
    hung.always = { status: 0, hang: true };
    const waiting = sink(config([{ url: hung.url() }]));
    waiting.sink.start();
    waiting.sink.onActivationEvent(suspected(3));
    await until('the request', () => hung.requests.length === 1);
    const t = Date.now();
    expect(await waiting.sink.close(200)).toEqual({ pending: 1 });
    expect(Date.now() - t).toBeLessThan(3000);
    expect(waiting.sink.stats.failedAttempts).toBe(0); // an attempt cut by close() does not count
  });
});

/** Decodes an RFC 2047 encoded word (=?UTF-8?B?...?=) as ntfy does; other values as they are. */
function decodeWord(value: string): string {
  const m = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$/i.exec(value);
  return m ? Buffer.from(m[1], 'base64').toString('utf8') : value;
}

describe('webhook presets against receivers', () => {
  it("sends each preset's request in its receiver's format, all signed and keyed", async () => {
    const secret = 'preset-secret-123';
    const r = await receiver({ secret });
    const paths = { ntfy: '/earshot-alerts', slack: '/services/T000/B000/XXXX', discord: '/api/webhooks/1234/abcd', homeassistant: '/api/webhook/earshot-alerts', json: '/hook' };
    const hooks = Object.entries(paths).map(([preset, path]) => ({
      url: r.url(path), preset, secret, name: preset, ...(preset === 'ntfy' ? { headers: { Authorization: 'Bearer tk_test' } } : {}),
    }));
    const { sink: s } = sink(config(hooks));
    s.start();
    const kitchen = { ...ECHO, name: 'Küche Echo 🔊' };
    const long = { ...ECHO, name: `Küche Echo ${'(upstairs) '.repeat(250)}` };
    s.onActivationEvent(suspected(1, kitchen));
    s.onActivationEvent(suspected(2, long));
    await until('ten deliveries', () => s.stats.delivered === 10);
    expect(r.badSignatures).toBe(0);
    for (const q of r.requests) {
      expect(q.headers['x-earshot-event']).toBe('activation.suspected');
      expect(q.headers['x-earshot-idempotency-key']).toMatch(/^f0272d8a1b2c-\d+\.activation\.suspected$/);
      expect(verifyAsDocumented(q.body, q.headers['x-earshot-signature'] as string, secret)).toBe(true);
    }
    const [ntfy, ntfyLong] = r.paths(paths.ntfy);
    expect(ntfy.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(ntfy.headers.authorization).toBe('Bearer tk_test');
    expect(decodeWord(ntfy.headers.title as string)).toBe('Suspected false activation: Küche Echo 🔊');
    expect(ntfy.headers.priority).toBe('4');
    expect((ntfy.headers.tags as string).split(',')).toContain('warning');
    expect(ntfy.body.toString('utf8')).toMatch(/^Küche Echo 🔊 uploaded audio to avs-alexa-4-na\.amazon\.com at 2024-05-01 03:13:04 UTC/);
    expect(ntfyLong.body.length).toBeLessThanOrEqual(4096); // ntfy turns larger bodies into attachments

    for (const slack of r.paths(paths.slack)) {
      expect(slack.headers['content-type']).toBe('application/json');
      const body = JSON.parse(slack.body.toString('utf8'));
      expect(typeof body.text).toBe('string');
      expect(body.text).toMatch(/^Suspected false activation: Küche Echo/);
      expect(body.blocks[0].text.type).toBe('mrkdwn');
      expect(body.blocks[0].text.text.length).toBeLessThanOrEqual(3000);
    }

    const discord = r.paths(paths.discord).map((q) => JSON.parse(q.body.toString('utf8')));
    expect(discord[0].content).toBe('Suspected false activation: Küche Echo 🔊');
    for (const body of discord) {
      expect(body.content.length).toBeLessThanOrEqual(2000);
      expect(body.embeds[0].title.length).toBeLessThanOrEqual(256);
      expect(body.embeds[0].description.length).toBeLessThanOrEqual(4096);
    }
    expect(discord[1].content.endsWith('…')).toBe(true);

    for (const preset of ['homeassistant', 'json'] as const) {
      const [doc] = r.paths(paths[preset]).map((q) => JSON.parse(q.body.toString('utf8')));
      expect(r.paths(paths[preset])[0].headers['content-type']).toBe('application/json');
      expect(doc).toMatchObject({ schema: 'earshot.alert/1', event: 'activation.suspected', id: keyOf(1), device: kitchen, activation: { verdict: 'suspected' } });
    }
  });
});
