/**
 * The webhook sink when things go wrong, against real HTTP receivers on port 0: an alert the receiver
 * refuses forever (5xx, or no answer, for that alert only) is set aside and the ones behind it arrive
 * within seconds; a receiver down for everyone keeps the order and is counted as down; a Retry-After
 * of 99999999999 s does not overflow the timer; outbox files left damaged by a power cut (truncated,
 * zero-filled, NUL-padded, a directory in a file's place) are quarantined with a warning naming them;
 * random truncations and byte flips of outbox files never crash a start nor block the queue.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../config.js';
import { Activation } from '../../detect/detector.js';
import { activationEvent, type ActivationEvent } from '../events.js';
import { buildWebhookSink, type WebhookSink, type WebhookSinkDeps } from './index.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { until } from '../../../test/helpers/wait.js';
import { TORN } from '../../../test/helpers/torn.js';

/** What the receiver does with one request: a status, or no answer at all. */
type Answer = { status: number; headers?: Record<string, string> } | 'hang';

/** A receiver that answers each request by `decide` (default 204) and records what it took (2xx). */
class Receiver {
  readonly requests: Array<{ key: string; atMs: number; status: number | null }> = [];
  /** Idempotency keys taken (2xx), in the order they arrived. */
  readonly taken: string[] = [];
  decide: (key: string, headers: IncomingHttpHeaders) => Answer = () => ({ status: 204 });
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server) {}

  static async start(): Promise<Receiver> {
    const server = createServer();
    const r = new Receiver(server);
    server.on('connection', (s) => {
      r.sockets.add(s);
      s.on('close', () => r.sockets.delete(s));
    });
    server.on('request', (req, res) => {
      req.resume();
      req.on('end', () => {
        const key = String(req.headers['x-earshot-idempotency-key']);
        const answer = r.decide(key, req.headers);
        const entry = { key, atMs: Date.now(), status: answer === 'hang' ? null : answer.status };
        r.requests.push(entry);
        if (answer === 'hang') return;
        if (answer.status < 300 && !r.taken.includes(key)) r.taken.push(key);
        res.writeHead(answer.status, answer.headers ?? {}).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const receivers: Receiver[] = [];
const sinks: WebhookSink[] = [];
afterEach(async () => {
  for (const s of sinks.splice(0)) await s.close(0);
});
afterAll(async () => {
  for (const r of receivers.splice(0)) await r.close();
});

async function receiver(): Promise<Receiver> {
  const r = await Receiver.start();
  receivers.push(r);
  return r;
}

type LogLine = { level: number; msg: string } & Record<string, unknown>;

/** A config with quick retries (20-100 ms) and a 24 h maxAgeH, plus any other flags. */
function config(url: string, flags: Record<string, string> = {}): Readonly<Config> {
  return loadConfig({ flags: { webhooks: JSON.stringify([{ url, name: 'home' }]), 'alert-retry-min': '0.02', 'alert-retry-max': '0.1', 'alert-timeout': '5', ...flags } });
}

function sink(cfg: Readonly<Config>, deps: Partial<WebhookSinkDeps> = {}) {
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug', base: undefined }, { write: (text: string) => void logs.push(JSON.parse(text) as LogLine) });
  const built = buildWebhookSink(cfg, { log, ...deps });
  if (built === null) throw new Error('no sink');
  sinks.push(built);
  return { sink: built, logs };
}

const T0 = Date.parse('2024-05-01T03:12:04.000Z');
const DEVICE = { mac: 'f0:27:2d:8a:1b:2c', name: 'Kitchen Echo', vendor: 'Amazon', model: 'Echo Dot', assistant: true };

/** Suspected activation number `n`, finished. */
function suspected(n: number): ActivationEvent {
  const a = new Activation(0xf0272d8a1b2c, T0 + n * 60_000);
  a.endMs = a.startMs + 5400;
  a.verdict = 'suspected';
  a.reasons = ['sustained-upload', 'no-wake-event'];
  return activationEvent('finished', a, () => DEVICE, a.endMs + 2000);
}
const keyOf = (n: number) => `f0272d8a1b2c-${T0 + n * 60_000}.activation.suspected`;
const ALL = [1, 2, 3, 4, 5].map(keyOf);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('an alert the receiver never takes does not block the ones behind it', () => {
  it('a 5xx for one alert only: it is set aside (quarantined, counted, logged once) and the rest arrive within seconds', async () => {
    const r = await receiver();
    r.decide = (key) => (key === keyOf(1) ? { status: 500 } : { status: 204 });
    const dataDir = tempDir('earshot-poison-');
    // maxAgeH 24: before the fix, alerts 2-5 waited behind alert 1 for 24 hours
    const { sink: s, logs } = sink(config(r.url, { 'data-dir': dataDir }));
    s.start();
    const began = Date.now();
    for (let n = 1; n <= 5; n++) s.onActivationEvent(suspected(n));
    await until('alerts 2-5 delivered', () => s.stats.delivered === 4, 10_000);
    expect(Date.now() - began).toBeLessThan(5000);
    expect(r.taken).toEqual(ALL.slice(1));
    expect(s.stats).toMatchObject({ delivered: 4, quarantined: 1, pending: 0, givenUp: 0, receiversDown: 0 });
    const setAside = logs.filter((l) => l.msg.includes('set aside'));
    expect(setAside).toHaveLength(1);
    expect(setAside[0]).toMatchObject({ webhook: 'home', key: keyOf(1), reason: 'HTTP 500' });
    const quarantine = join(dataDir, 'outbox', 'webhooks', 'quarantine');
    const [kept] = readdirSync(quarantine);
    expect(kept).toMatch(/^000000000001\.json\.refused-\d+$/);
    expect(JSON.parse(readFileSync(join(quarantine, kept), 'utf8'))).toMatchObject({ key: keyOf(1), hook: 'home' });
    // alert 1 was tried a few times, never again after it was set aside
    const tries = r.requests.filter((q) => q.key === keyOf(1)).length;
    await sleep(300);
    expect(r.requests.filter((q) => q.key === keyOf(1)).length).toBe(tries);
    expect(tries).toBeLessThanOrEqual(5);
  });

  it('no answer for one alert only (it times out): the rest arrive', async () => {
    const r = await receiver();
    r.decide = (key) => (key === keyOf(2) ? 'hang' : { status: 200 });
    const { sink: s } = sink(config(r.url, { 'alert-timeout': '0.2' }));
    s.start();
    for (let n = 1; n <= 5; n++) s.onActivationEvent(suspected(n));
    await until('four delivered', () => s.stats.delivered === 4, 10_000);
    expect(r.taken).toEqual([keyOf(1), keyOf(3), keyOf(4), keyOf(5)]);
    expect(s.stats).toMatchObject({ quarantined: 1, pending: 0 });
  });

  it('a receiver down for everyone keeps the order, is counted as down, and gets everything when it is back', async () => {
    const r = await receiver();
    let down = true;
    let comeBack = false;
    // it comes back at a retry of the oldest alert (docs/alerts.md: coming back in the instant between
    // that retry and its probe lets the probe overtake it)
    r.decide = (key) => {
      if (comeBack && key === keyOf(1)) down = false;
      return down ? { status: 503 } : { status: 204 };
    };
    const { sink: s, logs } = sink(config(r.url));
    s.start();
    for (let n = 1; n <= 5; n++) s.onActivationEvent(suspected(n));
    await until('the receiver counted as down', () => s.stats.receiversDown === 1, 10_000);
    await sleep(500);
    expect(s.stats).toMatchObject({ delivered: 0, quarantined: 0, pending: 5 });
    expect(logs.filter((l) => l.msg.startsWith('webhook receiver is down'))).toHaveLength(1);
    // while down, one probe follows each retry of the oldest alert: never more than two alerts tried
    expect(new Set(r.requests.map((q) => q.key)).size).toBeLessThanOrEqual(5);
    comeBack = true;
    await until('five delivered', () => s.stats.delivered === 5, 10_000);
    expect(r.taken).toEqual(ALL);
    expect(s.stats).toMatchObject({ quarantined: 0, receiversDown: 0, pending: 0 });
    expect(logs.filter((l) => l.msg === 'webhook delivering again')).toHaveLength(1);
  });
});

describe('Retry-After far in the future', () => {
  for (const [name, value] of [['99999999999 seconds', '99999999999'], ['an HTTP date in year 9999', 'Fri, 31 Dec 9999 23:59:59 GMT']]) {
    it(`${name}: the wait is capped at retryMaxS, no timer overflow, no retry every millisecond`, async () => {
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.name);
      process.on('warning', onWarning);
      try {
        const r = await receiver();
        r.decide = () => (r.requests.length === 0 ? { status: 503, headers: { 'Retry-After': value } } : { status: 204 });
        // maxAgeH 1000 h: a wait up to it is 3.6e9 ms, beyond what a Node timer holds (2^31-1 ms)
        const { sink: s } = sink(config(r.url, { 'alert-max-age': '1000', 'alert-retry-max': '0.5' }));
        s.start();
        const cpu = process.cpuUsage();
        s.onActivationEvent(suspected(1));
        await until('delivered after the capped wait', () => s.stats.delivered === 1, 5000);
        const used = process.cpuUsage(cpu);
        expect(r.requests.map((q) => q.status)).toEqual([503, 204]);
        expect(r.requests[1].atMs - r.requests[0].atMs).toBeGreaterThanOrEqual(400);
        expect(warnings).not.toContain('TimeoutOverflowWarning');
        // a timer firing every millisecond keeps a core busy; waiting costs next to nothing
        expect((used.user + used.system) / 1000).toBeLessThan(400);
      } finally {
        process.off('warning', onWarning);
      }
    });
  }
});

/** An outbox with alerts 1-3 for the webhook `home`, left by a run whose receiver was down. */
async function leftOutbox(): Promise<{ dataDir: string; outboxDir: string; files: string[] }> {
  const dataDir = tempDir('earshot-torn-');
  const first = sink(config('http://127.0.0.1:9/hook', { 'data-dir': dataDir }));
  for (let n = 1; n <= 3; n++) first.sink.onActivationEvent(suspected(n));
  await first.sink.close(0);
  const outboxDir = join(dataDir, 'outbox', 'webhooks');
  const files = readdirSync(outboxDir).sort();
  expect(files).toEqual(['000000000001.json', '000000000002.json', '000000000003.json']);
  return { dataDir, outboxDir, files };
}

describe('outbox files after a torn write', () => {
  for (const [kind, tear] of Object.entries(TORN)) {
    it(`${kind}: quarantined with a warning naming it; the other alerts are delivered`, async () => {
      const { dataDir, outboxDir, files } = await leftOutbox();
      tear(join(outboxDir, files[1]));
      const r = await receiver();
      const { sink: s, logs } = sink(config(r.url, { 'data-dir': dataDir }));
      const warning = logs.find((l) => l.msg === 'webhook outbox: a damaged delivery file was set aside');
      expect(warning).toMatchObject({ file: join(outboxDir, files[1]) });
      expect(String(warning?.keptAs)).toMatch(/quarantine\/000000000002\.json\.damaged-\d+$/);
      s.start();
      await until('two delivered', () => s.stats.delivered === 2, 5000);
      expect(r.taken).toEqual([keyOf(1), keyOf(3)]);
      expect(s.stats).toMatchObject({ quarantined: 1, pending: 0, givenUp: 0 });
      expect(readdirSync(join(outboxDir, 'quarantine'))).toHaveLength(1);
    });
  }
});

describe('outbox fuzz: random truncation and byte flips', () => {
  it('never crash a start and never block the queue', async () => {
    const { outboxDir: original, files } = await leftOutbox();
    const pristine = files.map((f) => readFileSync(join(original, f)));
    const r = await receiver();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 2 }),
        fc.oneof(
          fc.record({ cut: fc.nat() }),
          fc.record({ flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }) }),
        ),
        async (which, damage) => {
          const dataDir = tempDir('earshot-fuzz-');
          const outboxDir = join(dataDir, 'outbox', 'webhooks');
          mkdirSync(outboxDir, { recursive: true });
          files.forEach((f, i) => {
            let bytes = Buffer.from(pristine[i]);
            if (i === which) {
              if ('cut' in damage) bytes = bytes.subarray(0, damage.cut % bytes.length);
              else for (const [at, xor] of damage.flips) bytes[at % bytes.length] ^= xor;
            }
            writeFileSync(join(outboxDir, f), bytes);
          });
          const before = r.requests.length;
          const { sink: s } = sink(config(r.url, { 'data-dir': dataDir }));
          s.start();
          // the queue empties: the undamaged alerts arrive, the damaged one is quarantined (its checksum
          // catches a flip that still reads as JSON), never sent with changed bytes
          await until('the queue emptied', () => s.stats.pending === 0, 5000);
          expect(s.stats).toMatchObject({ delivered: 2, quarantined: 1, givenUp: 0 });
          const undamaged = [1, 2, 3].filter((n) => n - 1 !== which).map(keyOf);
          const took = r.requests.slice(before).filter((q) => q.status !== null && q.status < 300).map((q) => q.key);
          expect(took).toEqual(undamaged);
          await s.close(0);
        },
      ),
      { numRuns: 60, seed: 1414 },
    );
  }, 120_000);
});

/** A real full file system: a small tmpfs (root only; skipped otherwise). */
const ROOT = process.getuid?.() === 0;

describe.skipIf(!ROOT)('a full disk under the outbox', () => {
  it('an alert that cannot be saved is dropped and counted, leaves no temporary file, and saving works again once space returns', async () => {
    const dataDir = tempDir('earshot-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dataDir]);
    try {
      const r = await receiver();
      let accept = false;
      r.decide = () => (accept ? { status: 204 } : { status: 503 });
      const { sink: s, logs } = sink(config(r.url, { 'data-dir': dataDir }));
      s.onActivationEvent(suspected(1));
      // fill what is left of the file system
      const filler = join(dataDir, 'filler');
      try {
        writeFileSync(filler, Buffer.alloc(1 << 20));
      } catch {
        // ENOSPC: as full as it gets
      }
      s.onActivationEvent(suspected(2));
      expect(s.stats).toMatchObject({ pending: 1, dropped: 1 });
      expect(logs.find((l) => l.msg === 'webhook outbox: cannot save an alert; it is dropped')).toMatchObject({ key: keyOf(2) });
      const outbox = join(dataDir, 'outbox', 'webhooks');
      expect(readdirSync(outbox)).toEqual(['000000000001.json']);
      rmSync(filler);
      s.onActivationEvent(suspected(3));
      accept = true;
      s.start();
      await until('two delivered', () => s.stats.delivered === 2, 5000);
      expect(r.taken).toEqual([keyOf(1), keyOf(3)]);
      expect(readdirSync(outbox)).toEqual([]);
      await s.close(0);
    } finally {
      execFileSync('umount', [dataDir]);
    }
  });
});
