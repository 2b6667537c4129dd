/**
 * One reader of wake-event records: the same record gets the same verdict and the same words from a
 * --wake-events file (JSON Lines, a real file), an MQTT payload (the sink's parser) and POST
 * /api/v1/wake-events (the real app, fastify's inject, over a runtime that replayed a real capture).
 * Each says where in its own terms (file:line, record N, body/N/); the words after that are the same.
 * The expected words are written here by hand.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp, localContext, type AppContext } from '../api/app.js';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { readWakeEventsFile, type WakeEvent } from '../collector/detect/wake-events.js';
import { EarshotError } from '../collector/errors.js';
import { buildRuntime, type Runtime } from '../collector/runtime.js';
import { parseWakePayload } from '../collector/sink/mqtt/wake-payload.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const TOKEN = 'token-for-wake-records-1';
const T = 1714550400;

/** Bad records and the problem each must get, whoever sent it. */
const BAD: Array<[unknown, string]> = [
  [{}, 'time: missing'],
  [{ device: 'x' }, 'time: missing'],
  [{ time: 'yesterday' }, 'time: "yesterday" is not an ISO 8601 time or epoch number'],
  [{ time: '2024-05-01T10:00:00' }, 'time: "2024-05-01T10:00:00" has no time zone (add Z or an offset such as +01:00)'],
  [{ time: true }, 'time: true is not an ISO 8601 time or epoch number'],
  [{ time: -5 }, 'time: -5 is out of range (epoch seconds or milliseconds expected)'],
  // the API used to coerce these to strings ("42", "7") and take them
  [{ time: T, device: 42 }, 'device: 42 is not a MAC address or device name'],
  [{ time: T, source: 7 }, 'source: 7 is not a string'],
  [{ time: T, source: 's'.repeat(65) }, 'source: longer than 64 characters'],
  [{ time: T, device: 'd'.repeat(129) }, 'device: longer than 128 characters'],
  [{ time: T, intended: 'maybe' }, 'intended: "maybe" is not true or false'],
  // taken as left out, "" made the event intended and its activation confirmed
  [{ time: T, intended: '' }, 'intended: "" is neither true nor false (leave the field out when it is not known)'],
  [{ time: T, intended: ' ' }, 'intended: "" is neither true nor false (leave the field out when it is not known)'],
  // files and MQTT used to ignore these: the event then counted for every speaker
  [{ time: T, devic: 'aa:bb:cc:dd:ee:01' }, 'devic is not allowed'],
  [{ time: T, Device: 'aa:bb:cc:dd:ee:01' }, 'Device is not allowed'],
  [{ time: T, intendet: false }, 'intendet is not allowed'],
  [[1], 'not a JSON object'],
  ['2024-05-01T10:00:00Z', 'not a JSON object'],
  [null, 'not a JSON object'],
];

/** Good records: the same event from each (the source named, so it does not depend on the sender). */
const GOOD: Array<[unknown, WakeEvent]> = [
  [{ time: '2024-05-01T10:00:00+02:00', device: 'AA-BB-CC-DD-EE-01', source: 's', intended: 'no', room: 'kitchen' }, { time: Date.parse('2024-05-01T08:00:00Z'), device: 'aa:bb:cc:dd:ee:01', source: 's', intended: false }],
  [{ time: T, device: 'aabb.ccdd.ee01', source: 's', entity_id: 'x' }, { time: T * 1000, device: 'aa:bb:cc:dd:ee:01', source: 's' }],
  [{ time: String(T * 1000), device: ' Kitchen Echo ', source: 's', intended: true, name: 'ignored' }, { time: T * 1000, device: 'Kitchen Echo', source: 's', intended: true }],
  [{ time: T, device: null, source: 's' }, { time: T * 1000, device: null, source: 's' }],
];

const dir = tempDir('earshot-wake-records-');
let context: AppContext;
let runtime: Runtime;
type Answer = Promise<{ status: number; body: { message?: string; accepted?: number } }>;
let post: (payload: unknown) => Answer;
let postText: (text: string) => Answer;

beforeAll(async () => {
  const config = loadConfig({});
  runtime = buildRuntime(config, { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
  await runtime.run(buildSource({ kind: 'file', path: CAPTURE }, {}));
  context = localContext({ runtime, config, captureRunning: () => false, captureSource: 'file', influxReachable: () => null, startedMs: Date.now(), version: 'test', alerts: () => ({}) });
  const app = await buildApp({ token: TOKEN, tokenForReads: false, postsPerMinute: 10_000, failedTokensPerMinute: 10, allowedHosts: [], bodyLimitBytes: 1024 * 1024, version: 'test' }, context);
  postText = async (text) => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/wake-events', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, payload: text });
    return { status: res.statusCode, body: res.json() };
  };
  post = async (payload) => postText(JSON.stringify(payload));
}, 60_000);

/** The file's verdict on its line 2 (after a good record that makes it JSON Lines): the event, or the coded error's one line. */
function fromFile(record: unknown, name: string): WakeEvent | string {
  const path = join(dir, name);
  writeFileSync(path, `{"time": ${T}}\n${JSON.stringify(record)}\n`);
  try {
    return readWakeEventsFile(path)[1];
  } catch (err) {
    expect(err).toBeInstanceOf(EarshotError);
    expect((err as EarshotError).code).toBe('EARSHOT_ERR_WAKE_EVENTS');
    expect((err as EarshotError).exitCode).toBe(2);
    return (err as EarshotError).message;
  }
}

describe('a wake-event record means the same from a file, MQTT and the API', () => {
  it('refuses each bad record with the same words after its own location', async () => {
    for (const [i, [record, problem]] of BAD.entries()) {
      const label = JSON.stringify(record);
      expect(fromFile(record, `bad-${i}.jsonl`), label).toBe(`${join(dir, `bad-${i}.jsonl`)}:2: ${problem}`);
      // MQTT: in an array beside a good record (kept), and alone
      const batch = parseWakePayload(Buffer.from(JSON.stringify([{ time: T }, record])));
      expect(batch, label).toEqual({ events: [{ time: T * 1000, device: null, source: 'mqtt' }], problems: [`record 2: ${problem}`] });
      if (!Array.isArray(record)) expect(parseWakePayload(Buffer.from(JSON.stringify(record))).problems, label).toEqual([problem]);
      // API: the batch is refused as a whole, naming the record
      expect(await post([{ time: T }, record]), label).toEqual({ status: 400, body: { statusCode: 400, error: 'Bad Request', message: `body/1/${problem}` } });
    }
  });

  it('takes each good record as the same event', async () => {
    for (const [i, [record, event]] of GOOD.entries()) {
      const label = JSON.stringify(record);
      expect(fromFile(record, `good-${i}.jsonl`), label).toEqual(event);
      expect(parseWakePayload(Buffer.from(JSON.stringify(record))), label).toEqual({ events: [event], problems: [] });
      const answer = await post(record);
      expect(answer.status, label).toBe(200);
      expect(answer.body.accepted, label).toBe(1);
    }
    // what the API took is what the detector holds
    const held = runtime.collector.detect?.store.list() ?? [];
    for (const [, event] of GOOD) expect(held).toContainEqual(event);
  });

  it('a record nested 32,000 deep is refused like any other, by each reader (it overflowed the stack)', async () => {
    const depth = 32_000;
    const record = `{"time":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const problem = 'time: [[[[[[[[[...]]]]]]]]] is not an ISO 8601 time or epoch number';
    const path = join(dir, 'deep.jsonl');
    writeFileSync(path, `{"time": ${T}}\n${record}\n`);
    expect(() => readWakeEventsFile(path)).toThrow(`${path}:2: ${problem}`);
    expect(parseWakePayload(Buffer.from(record))).toEqual({ events: [], problems: [problem] });
    expect(await postText(record)).toEqual({ status: 400, body: { statusCode: 400, error: 'Bad Request', message: `body/0/${problem}` } });
  });

  it('each sender names its own default source', () => {
    expect(fromFile({ time: T }, 'events.jsonl')).toMatchObject({ source: 'events.jsonl' });
    expect(parseWakePayload(Buffer.from(`{"time":${T}}`)).events[0].source).toBe('mqtt');
  });
});
