/**
 * A label or a wake event that the API accepted (2xx) is on disk before the answer: it survives a
 * kill -9 right after, and a restart on the same data directory applies it to the same activations.
 * Through the `earshot` executable and real HTTP; the household is generated (test/scenario), and the
 * verdicts expected are the documented rules applied to the scenario's truth, not earshot's output.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { runCli } from './helpers/cli.js';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { describeMosquitto, Mosquitto } from './helpers/mosquitto.js';
import { tempDir } from './helpers/temp.js';
import { until } from './helpers/wait.js';
import { exampleDevices, generateScenario, writeScenarioPcap } from './scenario/generator.js';

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);
const TOKEN = 'labels-survive-a-kill-0123456789';

/** Waits until the capture ended (the report is on stdout) and returns the report. */
async function reportOf(run: CollectRun): Promise<Report> {
  await until('the end of the capture', () => run.stderr().includes('capture ended; the API keeps serving'), 60_000, 50);
  return JSON.parse(run.stdout()) as Report;
}

/** Starts earshot again on the same capture and flags (a restart); gives its report once the capture ended, and stops it (exit 0). */
async function reportAfterRestart(capture: string, flags: string[]): Promise<Report> {
  const again = await startCollect(capture, flags);
  try {
    return await reportOf(again);
  } finally {
    expect(await again.stop()).toBe(0);
  }
}

function post(run: CollectRun, path: string, body: unknown): Promise<Response> {
  return fetch(`${run.base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });
}

const near = (report: Report, start: number) => report.activations.find((a) => Math.abs(Date.parse(a.start) - start) <= 2000);

describe('labels and wake events survive a kill -9', () => {
  it('posted after `collect --file` ended, then SIGKILL: a restart on the same data directory applies both', async () => {
    const [kitchenEcho, , , nest] = exampleDevices();
    const starts = [T0 + 60_000, T0 + 180_000, T0 + 300_000];
    const scenario = generateScenario({
      seed: 5, startMs: T0, durationMs: 8 * 60_000, devices: exampleDevices(),
      activations: [
        { device: kitchenEcho.mac, start: starts[0], kind: 'command', intended: true },
        { device: nest.mac, start: starts[1], kind: 'false', intended: false },
        { device: kitchenEcho.mac, start: starts[2], kind: 'command', intended: true },
      ],
    });
    const dir = tempDir('earshot-labels-');
    const pcap = join(dir, 'household.pcap');
    writeScenarioPcap(scenario, pcap);
    const dataDir = join(dir, 'data');
    const flags = ['--data-dir', dataDir, '--api-token', TOKEN];

    const first = await startCollect(pcap, flags);
    let firstReport: Report;
    try {
      firstReport = await reportOf(first);
      // no wake-event source: every activation is unverified
      expect(firstReport.activations.map((a) => a.verdict)).toEqual(['unverified', 'unverified', 'unverified']);
      const [labelled] = starts.map((s) => near(firstReport, s)!);
      // the person says the first was not meant; a wake event (a second before it) arrives for the third
      const labelAnswer = await post(first, `/api/v1/activations/${labelled.id}/label`, { label: 'not-intended' });
      expect(labelAnswer.status).toBe(200);
      const wakeAnswer = await post(first, '/api/v1/wake-events', { time: new Date(starts[2] - 1000).toISOString(), device: kitchenEcho.mac, source: 'doorbell' });
      expect(wakeAnswer.status).toBe(200);
    } finally {
      // at once after the answers: a crash or a power cut
      expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    }

    const second = await startCollect(pcap, flags);
    try {
      const report = await reportOf(second);
      const [labelled, other, woken] = starts.map((s) => near(report, s)!);
      // the label wins; the wake event confirms its activation; a wake-event source now exists, so the
      // activation without one is suspected (docs: a configured source without an event: nobody spoke)
      expect([labelled.verdict, labelled.reasons.includes('label:not-intended')]).toEqual(['suspected', true]);
      expect([woken.verdict, woken.reasons.includes('wake-event:doorbell'), woken.wakeEvent]).toEqual(['confirmed', true, new Date(starts[2] - 1000).toISOString()]);
      expect([other.verdict, other.reasons.includes('no-wake-event')]).toEqual(['suspected', true]);
      // the API of the restarted collector says the same
      const api = (await (await fetch(`${second.base}/api/v1/activations/${labelled.id}`)).json()) as { verdict: string };
      expect(api.verdict).toBe('suspected');
    } finally {
      expect(await second.stop()).toBe(0);
    }
    // one small file each, one line per record: the inventory was not rewritten for them
    expect(readFileSync(join(dataDir, 'labels.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readFileSync(join(dataDir, 'wake-events.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
  }, 120_000);

  it('labels an older version kept in state.json move into labels.jsonl and still apply', async () => {
    const [kitchenEcho] = exampleDevices();
    const start = T0 + 60_000;
    const scenario = generateScenario({ seed: 6, startMs: T0, durationMs: 3 * 60_000, devices: exampleDevices(), activations: [{ device: kitchenEcho.mac, start, kind: 'command', intended: true }] });
    const dir = tempDir('earshot-labels-');
    const pcap = join(dir, 'household.pcap');
    writeScenarioPcap(scenario, pcap);
    const dataDir = join(dir, 'data');
    const first = await runCli(['replay', pcap, '--format', 'json']);
    const { id } = (JSON.parse(first.stdout) as Report).activations[0];
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'state.json'), JSON.stringify({ schema: 'earshot.state/1', savedAt: new Date(T0).toISOString(), devices: [], dns: [], labels: [[id, 'not-intended']] }));
    for (let run = 0; run < 2; run++) {
      const r = await runCli(['replay', pcap, '--format', 'json', '--data-dir', dataDir]);
      expect(r.code, r.stderr).toBe(0);
      const a = (JSON.parse(r.stdout) as Report).activations[0];
      expect([a.id, a.verdict, a.reasons.includes('label:not-intended')]).toEqual([id, 'suspected', true]);
    }
    expect(readFileSync(join(dataDir, 'labels.jsonl'), 'utf8')).toBe(`${JSON.stringify({ id, label: 'not-intended' })}\n`);
    expect((JSON.parse(readFileSync(join(dataDir, 'state.json'), 'utf8')) as { labels: unknown[] }).labels).toEqual([]);
  }, 60_000);

  it.runIf(process.getuid?.() === 0)('on a full disk a label is refused (503, nothing changes); once there is room it is taken and kept', async () => {
    const [kitchenEcho] = exampleDevices();
    const start = T0 + 60_000;
    const scenario = generateScenario({ seed: 6, startMs: T0, durationMs: 3 * 60_000, devices: exampleDevices(), activations: [{ device: kitchenEcho.mac, start, kind: 'command', intended: true }] });
    const dir = tempDir('earshot-labels-');
    const pcap = join(dir, 'household.pcap');
    writeScenarioPcap(scenario, pcap);
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dataDir]);
    try {
      const run = await startCollect(pcap, ['--data-dir', dataDir, '--api-token', TOKEN]);
      let id = '';
      try {
        id = (await reportOf(run)).activations[0].id;
        const filler = join(dataDir, 'filler');
        try {
          for (;;) appendFileSync(filler, Buffer.alloc(4096, 1));
        } catch (err) {
          expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
        }
        const refused = await post(run, `/api/v1/activations/${id}/label`, { label: 'intended' });
        const body = (await refused.json()) as { message: string };
        expect([refused.status, body.message]).toEqual([503, expect.stringMatching(/labels\.jsonl: ENOSPC.*nothing was changed$/)]);
        expect(((await (await fetch(`${run.base}/api/v1/activations/${id}`)).json()) as { verdict: string }).verdict).toBe('unverified');
        rmSync(filler);
        expect((await post(run, `/api/v1/activations/${id}/label`, { label: 'intended' })).status).toBe(200);
      } finally {
        await run.kill('SIGKILL');
      }
      const a = (await reportAfterRestart(pcap, ['--data-dir', dataDir, '--api-token', TOKEN])).activations[0];
      expect([a.id, a.verdict, a.reasons.includes('label:intended')]).toEqual([id, 'confirmed', true]);
    } finally {
      execFileSync('umount', [dataDir]);
    }
  }, 60_000);

  it('posted while a paced capture still runs (as live), then SIGKILL before any periodic save: a restart applies it', async () => {
    const [kitchenEcho] = exampleDevices();
    const starts = [T0 + 30_000, T0 + 400_000];
    const scenario = generateScenario({
      seed: 8, startMs: T0, durationMs: 8 * 60_000, devices: exampleDevices(),
      activations: starts.map((start) => ({ device: kitchenEcho.mac, start, kind: 'command' as const, intended: true })),
    });
    const dir = tempDir('earshot-labels-');
    const pcap = join(dir, 'household.pcap');
    writeScenarioPcap(scenario, pcap);
    const dataDir = join(dir, 'data');
    const flags = ['--data-dir', dataDir, '--api-token', TOKEN];
    // 8 minutes of capture at 10x: 48 s, far less than the 300 s between state saves
    const paced = await startCollect(pcap, [...flags, '--realtime-speed', '10']);
    let id = '';
    try {
      await until('the first activation to finish', async () => {
        const list = (await (await fetch(`${paced.base}/api/v1/activations`)).json()) as { activations: Array<{ id: string; start: string; open: boolean }> };
        const first = list.activations.find((a) => Math.abs(Date.parse(a.start) - starts[0]) <= 2000 && !a.open);
        id = first?.id ?? '';
        return first !== undefined;
      }, 40_000, 200);
      expect((await post(paced, `/api/v1/activations/${id}/label`, { label: 'not-intended' })).status).toBe(200);
      const health = (await (await fetch(`${paced.base}/api/v1/health`)).json()) as { capture: { running: boolean } };
      expect(health.capture.running).toBe(true);
    } finally {
      await paced.kill('SIGKILL');
    }
    const a = near(await reportAfterRestart(pcap, flags), starts[0]);
    expect([a?.id, a?.verdict, a?.reasons.includes('label:not-intended')]).toEqual([id, 'suspected', true]);
  }, 120_000);
});

describeMosquitto('wake events from MQTT survive a kill -9', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start();
  }, 30_000);
  afterAll(async () => {
    await broker?.close();
  });

  it('a wake event taken from the broker confirms its activation again after SIGKILL and a restart', async () => {
    const [kitchenEcho] = exampleDevices();
    const start = T0 + 60_000;
    const scenario = generateScenario({ seed: 6, startMs: T0, durationMs: 3 * 60_000, devices: exampleDevices(), activations: [{ device: kitchenEcho.mac, start, kind: 'command', intended: true }] });
    const dir = tempDir('earshot-labels-');
    const pcap = join(dir, 'household.pcap');
    writeScenarioPcap(scenario, pcap);
    const dataDir = join(dir, 'data');
    const run = await startCollect(pcap, ['--data-dir', dataDir, '--api-token', TOKEN, '--mqtt-url', broker.url]);
    let id = '';
    try {
      id = (await reportOf(run)).activations[0].id;
      const client = mqtt.connect(broker.url);
      await new Promise<void>((resolve) => client.on('connect', () => resolve()));
      await client.publishAsync('earshot/wake', JSON.stringify({ time: new Date(start - 800).toISOString(), device: kitchenEcho.mac, source: 'ha-voice' }));
      await client.endAsync();
      // applied means saved: the journal is written first
      await until('the wake event to confirm the activation', async () => ((await (await fetch(`${run.base}/api/v1/activations/${id}`)).json()) as { verdict: string }).verdict === 'confirmed', 20_000, 50);
    } finally {
      await run.kill('SIGKILL');
    }
    const a = (await reportAfterRestart(pcap, ['--data-dir', dataDir, '--api-token', TOKEN])).activations[0];
    expect([a.id, a.verdict, a.reasons.includes('wake-event:ha-voice')]).toEqual([id, 'confirmed', true]);
  }, 60_000);
});
