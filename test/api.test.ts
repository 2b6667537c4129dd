/**
 * The API of `earshot collect --file` on a real capture (the bundled Echo Dot 3 capture of Dubois et
 * al.), over real HTTP: it lists what the report lists, guards POSTs with the token, names bad fields,
 * and a wake event posted during a paced replay confirms the activation it matches.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { untilValue } from './helpers/wait.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
// a wake-event source whose events are years away from the capture: activations start suspected
const WAKE_EVENTS = join(PROJECT_ROOT, 'test/fixtures/wake-events/events.jsonl');
const TOKEN = 'test-token-0123456789';

const startRun = (extra: string[]) => startCollect(CAPTURE, ['--api-token', TOKEN, ...extra]);

const get = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const post = async (url: string, body: unknown, token: string | null = TOKEN) => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('API (earshot collect --file)', () => {
  let run: CollectRun;
  let report: Report;
  beforeAll(async () => {
    run = await startRun(['--wake-events', WAKE_EVENTS, '--realtime-speed', '4']);
  }, 30_000);
  afterAll(async () => {
    await run?.stop();
  });

  it('a wake event posted during the paced replay confirms the activation it matches', async () => {
    // the upload starts 31 s into the capture: ~8 s at 4x
    const activation = await untilValue('the activation to show', async () => {
      const { body } = await get(`${run.base}/api/v1/activations`);
      const list = body.activations as Array<{ id: string; start: string; verdict: string }>;
      return list.length > 0 ? list[0] : null;
    });
    expect((await get(`${run.base}/api/v1/health`)).body.capture).toMatchObject({ running: true });
    const posted = await post(`${run.base}/api/v1/wake-events`, { time: activation.start, device: null, source: 'test-detector' });
    expect(posted.status).toBe(200);
    const confirmed = await untilValue('the verdict', async () => {
      const { body } = await get(`${run.base}/api/v1/activations/${activation.id}`);
      return body.open === false && body.verdict === 'confirmed' ? body : null;
    });
    expect(confirmed.reasons).toContain('wake-event:test-detector');
  }, 60_000);

  it('lists the devices and activations of the report', async () => {
    await untilValue('the capture to end', async () => ((await get(`${run.base}/api/v1/health`)).body.capture as { running: boolean }).running ? null : true);
    // the report is printed when the capture ends; the API keeps serving
    await untilValue('the report', async () => (run.stdout().includes('"stats"') ? true : null));
    report = JSON.parse(run.stdout()) as Report;
    const { body } = await get(`${run.base}/api/v1/devices`);
    const devices = body.devices as Array<{ mac: string; name: string | null; assistant: boolean; bytesUp: number; bytesDown: number }>;
    const byMac = new Map(devices.map((d) => [d.mac, d]));
    for (const d of report.devices) {
      expect(byMac.get(d.mac), d.mac).toMatchObject({ name: d.name, assistant: d.assistant, bytesUp: d.bytesUp, bytesDown: d.bytesDown });
    }
    expect(devices).toHaveLength(report.devices.length);
    const listed = (await get(`${run.base}/api/v1/activations?limit=1000`)).body.activations as Array<Record<string, unknown>>;
    expect(listed.map(({ open: _open, ...a }) => a)).toEqual([...report.activations].reverse());
    const assistant = report.devices.find((d) => d.assistant) as Report['devices'][number];
    const one = await get(`${run.base}/api/v1/devices/${assistant.mac.replace(/:/g, '-')}`);
    expect(one.status).toBe(200);
    expect((one.body.activations as unknown[]).length).toBe(report.activations.filter((a) => a.device === assistant.mac).length);
    expect(Object.keys(one.body.endpoints as object)).toContain('voice');
    // its flows and the LAN flows it answered (`peer`)
    const flows = (await get(`${run.base}/api/v1/flows?device=${assistant.mac}`)).body.flows as Array<{ device: string }>;
    expect(flows.length).toBe(report.flows.filter((f) => f.device === assistant.mac || f.peer === assistant.mac).length);
  }, 60_000);

  it('refuses a POST without the token (401) and names the bad field (400)', async () => {
    expect((await post(`${run.base}/api/v1/wake-events`, { time: 1 }, null)).status).toBe(401);
    expect((await post(`${run.base}/api/v1/wake-events`, { time: 1 }, 'wrong-token-000')).status).toBe(401);
    const bad = await post(`${run.base}/api/v1/wake-events`, [{ time: 1573894026918 }, { time: 'yesterday' }]);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/^body\/1\/time: "yesterday" is not an ISO 8601 time/);
    const unknown = await post(`${run.base}/api/v1/wake-events`, { time: 1, devic: 'x' });
    expect(unknown).toMatchObject({ status: 400, body: { message: 'body/0/devic is not allowed' } });
    const label = await post(`${run.base}/api/v1/activations/${report.activations[0].id}/label`, { label: 'maybe' });
    expect(label).toMatchObject({ status: 400, body: { message: 'body/label must be one of intended, not-intended' } });
    expect((await get(`${run.base}/api/v1/activations?verdict=great`)).status).toBe(400);
    // a MAC that is not one: the rule in words (it was the regular expression)
    const forms = 'must be a MAC address: aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabbccddeeff or aabb.ccdd.eeff';
    expect(await get(`${run.base}/api/v1/devices/zz`)).toMatchObject({ status: 400, body: { message: `params/mac ${forms}` } });
    expect(await get(`${run.base}/api/v1/flows?device=zz`)).toMatchObject({ status: 400, body: { message: `querystring/device ${forms}` } });
    expect((await get(`${run.base}/api/v1/activations/000000000000-1`)).status).toBe(404);
  });

  it('labels an activation, serves OpenAPI and Prometheus metrics', async () => {
    const id = report.activations[0].id;
    const labelled = await post(`${run.base}/api/v1/activations/${id}/label`, { label: 'not-intended' });
    expect(labelled.status).toBe(200);
    expect(labelled.body.verdict).toBe('suspected');
    const openapi = (await get(`${run.base}/api/v1/openapi.json`)).body as { openapi: string; paths: Record<string, unknown> };
    expect(openapi.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/api/v1/activations', '/api/v1/wake-events', '/api/v1/devices/{mac}']));
    const metrics = await (await fetch(`${run.base}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^earshot_packets_total ${report.capture.packets}$`, 'm'));
    // a counter of every activation found; the verdicts (which move) a gauge
    expect(metrics).toMatch(new RegExp(`^# TYPE earshot_activations_total counter\nearshot_activations_total ${report.activations.length}$`, 'm'));
    expect(metrics).toMatch(/^# TYPE earshot_activations gauge$/m);
    expect(metrics).toMatch(/^earshot_activations\{verdict="suspected"\} 1$/m);
    // per assistant, its activations of the report (counted where they are kept, not copied per scrape)
    for (const d of report.devices.filter((x) => x.assistant)) {
      const n = report.activations.filter((a) => a.device === d.mac).length;
      expect(metrics, d.mac).toMatch(new RegExp(`^earshot_device_activations\\{device="${d.mac}"\\} ${n}$`, 'm'));
      expect(metrics, d.mac).toMatch(new RegExp(`^earshot_device_bytes_total\\{device="${d.mac}",direction="up"\\} ${d.bytesUp}$`, 'm'));
      expect(metrics, d.mac).toMatch(new RegExp(`^earshot_device_info\\{device="${d.mac}",name="[^"]*",vendor="[^"]*"\\} 1$`, 'm'));
    }
    // devices that are not assistants have no series of their own
    const assistants = new Set(report.devices.filter((x) => x.assistant).map((x) => x.mac));
    const listed = new Set([...metrics.matchAll(/^earshot_device_\w+\{device="([^"]+)"/gm)].map((m) => m[1]));
    expect([...listed].sort()).toEqual([...assistants].sort());
    const docs = await fetch(`${run.base}/api/v1/docs`);
    expect(docs.status).toBe(200);
  });

  it("reports the process's memory and CPU as the kernel counts them, and each thread's heap", async () => {
    // the kernel's own figures for the process, read just before and after the scrape
    const proc = () => {
      const status = readFileSync(`/proc/${run.pid}/status`, 'utf8');
      const stat = readFileSync(`/proc/${run.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      const ticks = 100; // USER_HZ on Linux
      return { rss: Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024, cpu: (Number(stat[11]) + Number(stat[12])) / ticks };
    };
    const before = proc();
    const metrics = await (await fetch(`${run.base}/metrics`)).text();
    const after = proc();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    const rss = value('process_resident_memory_bytes');
    expect(rss).toBeGreaterThanOrEqual(Math.min(before.rss, after.rss) * 0.9);
    expect(rss).toBeLessThanOrEqual(Math.max(before.rss, after.rss) * 1.1);
    const cpu = value('process_cpu_seconds_total');
    expect(cpu).toBeGreaterThanOrEqual(before.cpu - 0.02);
    expect(cpu).toBeLessThanOrEqual(after.cpu + 0.02);
    expect(Math.abs(value('process_start_time_seconds') - Date.now() / 1000)).toBeLessThan(120);
    // the pipeline has its own thread here (api.thread's default): both heaps, each within the RSS
    const heaps = [...metrics.matchAll(/^nodejs_heap_size_used_bytes\{thread="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])] as const);
    expect(heaps.map(([t]) => t)).toEqual(['main', 'pipeline']);
    for (const [thread, used] of heaps) {
      expect(used, thread).toBeGreaterThan(1 << 20);
      expect(used, thread).toBeLessThan(rss);
      expect(Number(new RegExp(`^nodejs_heap_size_total_bytes\\{thread="${thread}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]), thread).toBeGreaterThanOrEqual(used);
    }
    const h = (await get(`${run.base}/api/v1/health`)).body.process as { rssBytes: number; threads: Array<{ thread: string }> };
    expect(h.threads.map((t) => t.thread)).toEqual(['main', 'pipeline']);
    expect(h.rssBytes).toBeGreaterThan(rss * 0.5);
  });

  it('exits 0 on SIGTERM once the capture has ended', async () => {
    expect(await run.stop()).toBe(0);
  });
});
