/**
 * The owner away (sound detection: Alexa Guard and routines upload without a wake word): the reason
 * owner-away on real capture replays, in the report and in a webhook's alert; a bad detect.away is one
 * line and exit 2; the live state over a real mosquitto and over the API, with its 4xx answers; a
 * restart (after kill -9) keeps it. Upload times come from the capture's labels, not from earshot.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { buildRuntime } from '../collector/runtime.js';
import type { ActivationEvent } from '../collector/sink/events.js';
import type { Report } from '../collector/sink/report.js';
import { runCli } from './helpers/cli.js';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { describeMosquitto, Mosquitto } from './helpers/mosquitto.js';
import { WebhookReceiver } from './helpers/receiver.js';
import { describeShared, PROJECT_ROOT, VCFP_CAPTURES } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { until, untilValue } from './helpers/wait.js';

interface Label { file: string; echo_mac: string; reference_bursts: Array<{ start_epoch_s: number; end_epoch_s: number }>; reference_agrees_with_commands: boolean }

const TOKEN = 'presence-test-token-0123456789';
const SECRET = 'presence-webhook-secret';

async function vcfpLabel(): Promise<Label> {
  const { readFileSync } = await import('node:fs');
  const labels = JSON.parse(readFileSync(join(VCFP_CAPTURES, 'labels.json'), 'utf8')) as Label[];
  return labels.find((l) => l.reference_agrees_with_commands)!;
}

/** "HH:00-HH+1:00" (UTC) around the label's first upload, and the hour after its last. */
function hourAround(epochS: number): string {
  const hour = new Date(epochS * 1000).getUTCHours();
  const hh = (h: number) => String(h % 24).padStart(2, '0');
  return `${hh(hour)}:00-${hh(hour + 1)}:00`;
}

function emptyWakeEvents(): string {
  const file = join(tempDir('earshot-presence-'), 'none.jsonl');
  writeFileSync(file, '');
  return file;
}

describeShared('owner away on a real capture', () => {
  it('every upload in a scheduled away time is suspected with owner-away, in the report and the alert text', async () => {
    const label = await vcfpLabel();
    const file = join(VCFP_CAPTURES, label.file);
    const first = label.reference_bursts[0].start_epoch_s;
    const last = label.reference_bursts[label.reference_bursts.length - 1].start_epoch_s;
    // the whole capture must lie in one hour for the range below to cover it
    expect(new Date(first * 1000).getUTCHours()).toBe(new Date(last * 1000).getUTCHours());
    const receiver = new WebhookReceiver(SECRET);
    await receiver.start();
    try {
      const day = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][new Date(first * 1000).getUTCDay()];
      const r = await runCli(['replay', file, '--format', 'json', '--wake-events', emptyWakeEvents(), '--away', `${day} ${hourAround(first)}`, '--time-zone', 'UTC',
        '--webhooks', JSON.stringify([{ url: `http://127.0.0.1:${receiver.port}/hook`, secret: SECRET, on: 'suspected' }]), '--alert-retry-min', '0.05']);
      expect(r.code, r.stderr).toBe(0);
      const activations = (JSON.parse(r.stdout) as Report).activations;
      expect(activations).toHaveLength(label.reference_bursts.length);
      for (const a of activations) expect([a.verdict, a.reasons.includes('no-wake-event'), a.reasons.includes('owner-away')]).toEqual(['suspected', true, true]);
      expect(receiver.byKey.size).toBe(activations.length);
      for (const alert of receiver.byKey.values()) {
        expect((alert.activation as { reasons: string[] }).reasons).toContain('owner-away');
        expect(alert.text).toMatch(/\(.*owner-away.*\)\. You were away: sound detection \(Alexa Guard/);
        expect(alert.title).toMatch(/^Audio uploaded while you were away: /);
      }
    } finally {
      await receiver.stop();
    }
  }, 60_000);

  it('outside the away time (another day; the hour after) nothing says owner-away; without a wake-event source, away alone suspects', async () => {
    const label = await vcfpLabel();
    const file = join(VCFP_CAPTURES, label.file);
    const first = label.reference_bursts[0].start_epoch_s;
    const otherDay = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][(new Date(first * 1000).getUTCDay() + 1) % 7];
    const nextHour = hourAround(first + 3600);
    for (const away of [`${otherDay} ${hourAround(first)}`, nextHour]) {
      const r = await runCli(['replay', file, '--format', 'json', '--wake-events', emptyWakeEvents(), '--away', away, '--time-zone', 'UTC']);
      expect(r.code, r.stderr).toBe(0);
      for (const a of (JSON.parse(r.stdout) as Report).activations) expect([a.verdict, a.reasons.includes('owner-away')]).toEqual(['suspected', false]);
    }
    const noSource = await runCli(['replay', file, '--format', 'json', '--away', hourAround(first), '--time-zone', 'UTC']);
    expect(noSource.code, noSource.stderr).toBe(0);
    const noSourceActivations = (JSON.parse(noSource.stdout) as Report).activations;
    expect(noSourceActivations).toHaveLength(label.reference_bursts.length);
    for (const a of noSourceActivations) expect([a.verdict, a.reasons.includes('owner-away'), a.reasons.includes('no-wake-event')]).toEqual(['suspected', true, false]);
  }, 60_000);

  it('the live state set before an upload (API or MQTT) gives its activations owner-away; set after, it does not', async () => {
    const label = await vcfpLabel();
    const bursts = label.reference_bursts.map((b) => b.start_epoch_s * 1000);
    const config = loadConfig({ flags: { 'wake-events': emptyWakeEvents() } });
    const runtime = buildRuntime(config, { clock: 'packet', activity: false }, { log: pino({ level: 'silent' }) });
    const finished: ActivationEvent[] = [];
    runtime.addListener({ onActivationEvent: (e) => { if (e.kind === 'finished') finished.push(e); } });
    // away from 10 s before the third upload: the first two were while the owner was home
    expect(runtime.setPresence(true, 'api', { nowMs: bursts[2] - 10_000 })).toMatchObject({ away: true, source: 'api' });
    await runtime.run(buildSource({ kind: 'file', path: join(VCFP_CAPTURES, label.file), realtimeSpeed: 0 }, { onWarning: () => {} }));
    const byStart = bursts.map((b) => finished.find((e) => Math.abs(Date.parse(e.activation.start) - b) <= 2000)!);
    expect(byStart.map((e) => e.activation.reasons.includes('owner-away'))).toEqual(bursts.map((_, i) => i >= 2));
  }, 60_000);
});

it('a bad detect.away is one line naming it, and exit 2', async () => {
  const capture = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
  const flag = await runCli(['replay', capture, '--away', 'weekdays 08:00-17:00']);
  expect(flag.code).toBe(2);
  expect(flag.stderr.trim().split('\n')).toEqual(['earshot: detect.away[0]: "weekdays 08:00-17:00": "weekdays" is not a day (mon, tue, wed, thu, fri, sat, sun)']);
  const config = join(tempDir('earshot-presence-'), 'earshot.yaml');
  writeFileSync(config, 'detect:\n  away: ["mon-fri 08:00-17:30", "sat 25:00-02:00"]\n');
  const file = await runCli(['replay', capture, '--config', config]);
  expect(file.code).toBe(2);
  expect(file.stderr.trim().split('\n')).toEqual(['earshot: detect.away[1]: "sat 25:00-02:00": 25:00 is not a time HH:MM (00:00 to 23:59)']);
});

describeMosquitto('the live presence over MQTT and the API (earshot collect)', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterAll(async () => {
    await broker?.close();
  });

  const capture = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
  const presenceOf = async (run: CollectRun) => (await fetch(`${run.base}/api/v1/presence`)).json() as Promise<Record<string, unknown>>;
  const put = (run: CollectRun, body: string, token: string | null = TOKEN) => fetch(`${run.base}/api/v1/presence`, {
    method: 'PUT', body, headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  });

  it('MQTT sets it, the API shows and sets it, bad input is refused, and a restart after kill -9 keeps it', async () => {
    const dataDir = join(tempDir('earshot-presence-'), 'data');
    const flags = ['--data-dir', dataDir, '--api-token', TOKEN, '--mqtt-url', broker.url, '--mqtt-prefix', 'presence-test', '--mqtt-discovery', 'false', '--away', 'mon-fri 08:00-17:30'];
    const client = await mqtt.connectAsync(broker.url, { clientId: 'presence-test-client' });
    const first = await startCollect(capture, flags);
    try {
      expect(await presenceOf(first)).toMatchObject({ away: null, since: null, source: null, schedule: ['mon-fri 08:00-17:30'] });
      await until('MQTT connected', () => first.stderr().includes('MQTT: connected'), 20_000, 50);
      // bad payloads first: counted, logged, nothing set
      for (const bad of ['home', '{"away": "yes"}', '{"away": true, "who": "me"}', '[true]']) await client.publishAsync('presence-test/presence', bad, { qos: 1 });
      await client.publishAsync('presence-test/presence', '{"away": true}', { qos: 1 });
      const state = await untilValue('the presence from MQTT', async () => {
        const p = await presenceOf(first);
        return p.away === true ? p : null;
      }, 20_000);
      expect(state).toMatchObject({ away: true, source: 'mqtt', awayNow: true });
      const health = (await (await fetch(`${first.base}/api/v1/health`)).json()) as { alerts: { mqtt: { presenceMessages: number; presenceRejected: number } } };
      expect([health.alerts.mqtt.presenceMessages, health.alerts.mqtt.presenceRejected]).toEqual([1, 4]);
      expect(first.stderr()).toMatch(/presence rejected on presence-test\/presence: not JSON: expected a JSON object \{"away": true\} or \{"away": false\}/);

      // the API: the token, then the body's shape
      expect((await put(first, '{"away": false}', null)).status).toBe(401);
      expect((await put(first, '{"away": false}', 'wrong-token-0123456789')).status).toBe(401);
      for (const [body, message] of [
        ['{}', 'body/away is required'],
        ['{"away": "maybe"}', 'body/away must be true or false, got "maybe"'],
        ['{"away": null}', 'body/away must be true or false, got null'],
        ['{"away": 0}', 'body/away must be true or false, got 0'],
        ['{"away": true, "until": "tomorrow"}', 'body/until is not allowed'],
        ['[{"away": true}]', 'body must be object'],
        ['{"away": tru', ''],
      ] as const) {
        const answer = await put(first, body);
        expect(answer.status, body).toBe(400);
        if (message) expect(((await answer.json()) as { message: string }).message, body).toBe(message);
      }
      expect(await presenceOf(first)).toMatchObject({ away: true, source: 'mqtt' });
      const set = await put(first, '{"away": false}');
      expect(set.status).toBe(200);
      expect(await set.json()).toMatchObject({ away: false, source: 'api', schedule: ['mon-fri 08:00-17:30'] });
      // the last word is MQTT's again, just before the crash
      await client.publishAsync('presence-test/presence', '{"away": true}', { qos: 1 });
      await until('away again', async () => (await presenceOf(first)).away === true, 20_000, 50);
    } finally {
      expect(await first.kill('SIGKILL')).toBe('SIGKILL');
      await client.endAsync();
    }
    // no broker this time: what it had said comes from presence.json
    const second = await startCollect(capture, ['--data-dir', dataDir, '--api-token', TOKEN, '--away', 'mon-fri 08:00-17:30']);
    try {
      expect(await presenceOf(second)).toMatchObject({ away: true, source: 'mqtt', awayNow: true });
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 90_000);
});
