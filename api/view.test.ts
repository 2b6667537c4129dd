/**
 * The API's read model (api/view.ts) over a real run's view (a real capture replayed): however many
 * requests come at once, the run is asked for a part once per max age; a command makes every part be
 * asked again; activations and flows are asked a page at a time; and the parts are plain data that cross a thread as they are (structured clone).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSource, type CaptureSource } from '../collector/capture/index.js';
import { formatMac } from '../collector/mac.js';
import { loadConfig } from '../collector/config.js';
import { buildRuntime } from '../collector/runtime.js';
import type { Flow } from '../collector/flow/flow.js';
import { flowRecord, servingPeer } from '../collector/flow/record.js';
import type { ApiFlow } from '../collector/sink/activity.js';
import { activationQuery, buildViewSource, VIEW_PARTS, type ActivationQuery, type FlowQuery, type ViewPart, type ViewSource } from '../collector/view.js';
import { buildApp, contextOver } from './app.js';
import { describeShared, PROJECT_ROOT, realCapture } from '../test/helpers/shared.js';
import { localProvider, QUERIES_PER_WINDOW, RunView, type ViewProvider } from './view.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');

let source: ViewSource;

beforeAll(async () => {
  const runtime = buildRuntime(loadConfig({}), { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
  await runtime.run(buildSource({ kind: 'file', path: CAPTURE }, {}));
  source = buildViewSource(runtime, { captureRunning: () => false, influxReachable: () => null, alerts: () => ({}) });
});

/** A provider over the real view that counts what it is asked, answering after `delayMs`. */
function counting(delayMs = 0): { provider: ViewProvider; asked: Map<ViewPart, number> } {
  const asked = new Map<ViewPart, number>();
  const local = localProvider(source);
  return {
    asked,
    provider: {
      async part(name) {
        asked.set(name, (asked.get(name) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, delayMs));
        return local.part(name);
      },
      activations: (query) => local.activations(query),
      flows: (query) => local.flows(query),
      device: (mac) => local.device(mac),
      command: (command) => local.command(command),
    },
  };
}

describe('RunView', () => {
  it('asks the run once for 200 requests at once, and again only once the part is older than its max age', async () => {
    const { provider, asked } = counting(20);
    const view = new RunView(provider, 200);
    const answers = await Promise.all(Array.from({ length: 200 }, () => view.get('activations')));
    expect(asked.get('activations')).toBe(1);
    expect(new Set(answers).size).toBe(1);
    expect(answers[0].length).toBe(1);
    await view.get('activations');
    expect(asked.get('activations')).toBe(1);
    await new Promise((r) => setTimeout(r, 220));
    await view.get('activations');
    expect(asked.get('activations')).toBe(2);
  });

  it('distinct activation queries reach the run at most QUERIES_PER_WINDOW per max age; the others wait, and all are answered', async () => {
    let asked = 0;
    const local = localProvider(source);
    const provider: ViewProvider = { part: (name) => local.part(name), activations: (query) => { asked++; return local.activations(query); }, flows: (query) => local.flows(query), device: (mac) => local.device(mac), command: (c) => local.command(c) };
    const view = new RunView(provider, 250);
    const started = Date.now();
    const pages = Promise.all(Array.from({ length: 3 * QUERIES_PER_WINDOW }, (_, i) => view.activations(activationQuery({ offset: i }))));
    await new Promise((r) => setTimeout(r, 50));
    // within the first window: only its budget went to the run
    expect(asked).toBe(QUERIES_PER_WINDOW);
    const answers = await pages;
    expect(asked).toBe(3 * QUERIES_PER_WINDOW);
    expect(answers.every((page) => page.total === 1)).toBe(true);
    // three windows of 250 ms: the last batch went out after two had passed
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * 250 - 5);
  });

  it('with max age 0 every request asks (one thread: nothing kept)', async () => {
    const { provider, asked } = counting();
    const view = new RunView(provider, 0);
    await view.get('status');
    await view.get('status');
    expect(asked.get('status')).toBe(2);
  });

  it('a command makes every part be asked again, and its answer shows the change', async () => {
    const { provider, asked } = counting();
    const view = new RunView(provider, 60_000);
    const [before] = await view.get('activations');
    expect(before.verdict).toBe('unverified');
    await view.get('status');
    const result = await view.command({ kind: 'label', id: before.id, label: 'not-intended' });
    expect(result.kind === 'label' && result.activation?.verdict).toBe('suspected');
    const [after] = await view.get('activations');
    expect(after.verdict).toBe('suspected');
    await view.get('status');
    expect([asked.get('activations'), asked.get('status')]).toEqual([2, 2]);
  });

  it('every part is plain data: a structured clone is equal to it', () => {
    for (const name of VIEW_PARTS) {
      const part = source.part(name);
      expect(structuredClone(part), name).toEqual(part);
    }
    const page = source.activations(activationQuery({ limit: 10 }));
    expect(structuredClone(page)).toEqual(page);
  });

  it('the activation routes ask for a page, never the whole list: only the page crosses the threads', async () => {
    const parts: ViewPart[] = [];
    const pages: Array<{ query: ActivationQuery; returned: number }> = [];
    const flowPages: Array<{ query: FlowQuery; returned: number }> = [];
    const watched: ViewSource = {
      part: (name) => { parts.push(name); return source.part(name); },
      activations: (query) => {
        const page = source.activations(query);
        pages.push({ query, returned: page.activations.length });
        return page;
      },
      flows: (query) => {
        const page = source.flows(query);
        flowPages.push({ query, returned: page.length });
        return page;
      },
      device: (mac) => source.device(mac),
      command: (command) => source.command(command),
    };
    const app = await buildApp({ token: null, tokenForReads: false, postsPerMinute: 10, failedTokensPerMinute: 10, allowedHosts: [], bodyLimitBytes: 1024, version: 'test' },
      contextOver(watched, { config: loadConfig({}), captureRunning: () => false, captureSource: 'file', influxReachable: () => null, startedMs: Date.now(), version: 'test', alerts: () => ({}) } as Parameters<typeof contextOver>[1]));
    const [only] = source.part('activations');
    const list = await app.inject({ url: `/api/v1/activations?limit=1&verdict=${only.verdict}` });
    expect(list.json()).toMatchObject({ total: 1, limit: 1, activations: [{ id: only.id }] });
    expect((await app.inject({ url: `/api/v1/activations/${only.id}` })).json()).toMatchObject({ id: only.id });
    expect((await app.inject({ url: `/api/v1/devices/${only.device}` })).json()).toMatchObject({ activations: [{ id: only.id }] });
    expect(parts).not.toContain('activations');
    expect(pages.map((p) => [p.query.limit, p.query.verdict, p.query.id, p.query.device, p.returned])).toEqual([[1, only.verdict, null, null, 1], [1, null, only.id, null, 1], [20, null, null, only.device, 1]]);
    // flows too: the device and the limit go to the run, and only the page comes back
    // a device's flows are its own and the LAN flows it answered (`peer`)
    const flows = (await app.inject({ url: `/api/v1/flows?device=${only.device.toUpperCase()}&limit=3` })).json() as { flows: Array<{ device: string; peer: string | null }> };
    expect(flows.flows.map((f) => (f.device === only.device || f.peer === only.device ? only.device : f.device))).toEqual([only.device, only.device, only.device]);
    expect((await app.inject({ url: '/api/v1/flows?limit=2' })).json()).toMatchObject({ flows: [{}, {}] });
    expect(flowPages).toEqual([{ query: { device: only.device, limit: 3 }, returned: 3 }, { query: { device: null, limit: 2 }, returned: 2 }]);
  });
});

/** `source`, with `look(packets so far)` called after each packet went through the pipeline (as the API asks between packets). */
function lookedAt(source: CaptureSource, look: (packets: number) => void): CaptureSource {
  let packets = 0;
  return {
    ...source,
    description: source.description,
    run: (sink) => source.run((...args) => {
      sink(...args);
      look(++packets);
    }),
    stop: () => source.stop(),
    stats: () => source.stats(),
  };
}

describe('the devices part while flows are open', () => {
  it('counts each device as one device\'s answer does (its open flows made into records, its endpoints): the cheap sums and the full path agree', async () => {
    const runtime = buildRuntime(loadConfig({}), { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
    const view = buildViewSource(runtime, { captureRunning: () => true, influxReachable: () => null, alerts: () => ({}) });
    const file = buildSource({ kind: 'file', path: CAPTURE }, {});
    // the view looked at between packets, as the pipeline answers the API: every 250th packet
    let compared = 0;
    let withOpen = 0;
    await runtime.run(lookedAt(file, (packets) => {
      if (packets % 250 !== 0) return;
      const open = runtime.collector.activeFlows();
      for (const { device } of view.part('devices')) {
        const one = view.device(device.mac);
        expect(one?.device, `${device.mac} at packet ${packets}`).toEqual(device);
        compared++;
        if (open.some((f) => formatMac(f.deviceMac) === device.mac)) withOpen++;
      }
    }));
    expect(withOpen).toBeGreaterThan(10);
    expect(compared).toBeGreaterThan(withOpen);
    // and one device's endpoints come with it (the Echo's voice service: tshark shows 68:db:f5:90:19:64
    // sending every frame to the voice server 52.94.233.109; its three Echo peers have none)
    const echo = view.part('devices').find((e) => e.device.mac === '68:db:f5:90:19:64');
    expect(echo?.device.assistant).toBe(true);
    expect(Object.keys(view.device(echo!.device.mac)!.endpoints)).toContain('voice');
    expect(view.device('02:00:00:00:00:01')).toBeNull();
  });
});

/**
 * Replays `path`, and at every `every`-th packet asks the view for pages of open flows (all devices, then
 * each device's); `check` gets each page with the open flows sorted newest first by a plain sort.
 */
async function atEveryNth(path: string, every: number, check: (page: ApiFlow[], sorted: Flow[], where: string) => void): Promise<number> {
  const runtime = buildRuntime(loadConfig({}), { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
  const view = buildViewSource(runtime, { captureRunning: () => true, influxReachable: () => null, alerts: () => ({}) });
  const file = buildSource({ kind: 'file', path }, {});
  let packets = 0;
  let pages = 0;
  await runtime.run({
    ...file,
    description: file.description,
    run: (sink) => file.run((...args) => {
      sink(...args);
      if (++packets % every !== 0) return;
      // the expectation: every open flow, sorted by its last packet (a stable sort of the table's copy)
      const sorted = [...runtime.collector.activeFlows()].sort((a, b) => b.lastMs - a.lastMs);
      for (const limit of [1, 5, 50]) {
        check(view.flows({ device: null, limit }).filter((f) => f.open), sorted.slice(0, limit), `packet ${packets}, limit ${limit}`);
        pages++;
      }
      // a device's flows: its own, and the LAN flows it answered from its MAC (servingPeer)
      for (const mac of new Set(sorted.flatMap((f) => [f.deviceMac, servingPeer(f)]).filter((m) => m >= 0))) {
        const device = formatMac(mac);
        check(view.flows({ device, limit: 20 }).filter((f) => f.open), sorted.filter((f) => f.deviceMac === mac || servingPeer(f) === mac).slice(0, 20), `packet ${packets}, ${device}`);
        pages++;
      }
    }),
    stop: () => file.stop(),
    stats: () => file.stats(),
  });
  return pages;
}

/** The page holds the newest open flows, newest first: the same last times, the same flows above the page's oldest. */
function newestFirst(page: ApiFlow[], expected: Flow[], where: string): void {
  expect(page.map((f) => f.last), where).toEqual(expected.map((f) => new Date(f.lastMs).toISOString()));
  if (page.length === 0) return;
  const oldest = page.at(-1)!.last;
  const key = (proto: string, client: string, clientPort: number, server: string, serverPort: number): string => `${proto} ${client}:${clientPort} ${server}:${serverPort}`;
  const got = page.filter((f) => f.last > oldest).map((f) => key(f.proto, f.client, f.clientPort, f.server, f.serverPort)).sort();
  const want = expected.filter((f) => new Date(f.lastMs).toISOString() > oldest).map(flowRecord).map((r) => key(r.proto === 6 ? 'tcp' : 'udp', r.client, r.clientPort, r.server, r.serverPort)).sort();
  expect(got, where).toEqual(want);
}

describe('open flows in GET /flows', () => {
  it('come newest first across TCP and UDP (every open UDP flow came before the newest TCP one), of all devices and of each', async () => {
    let udpBeforeTcp = 0;
    const pages = await atEveryNth(CAPTURE, 100, (page, expected, where) => {
      newestFirst(page, expected, where);
      if (page.length >= 2 && page[0]!.proto === 'tcp' && page.some((f) => f.proto === 'udp')) udpBeforeTcp++;
    });
    expect(pages).toBeGreaterThan(100);
    // the capture has moments where a TCP flow is the newest while UDP flows are open (the case the old order got wrong)
    expect(udpBeforeTcp).toBeGreaterThan(5);
  });

  describeShared('with thousands open (CIC IDS 2017 slice)', () => {
    it('the newest of 3,000+ open flows, at every 1,000th packet', async () => {
      let most = 0;
      const pages = await atEveryNth(realCapture('cicids2017-slice_multihost-lan_trafficmanipulator.pcap'), 1000, (page, expected, where) => {
        newestFirst(page, expected, where);
        most = Math.max(most, page.length);
      });
      expect(pages).toBeGreaterThan(30);
      expect(most).toBe(50);
    });
  });
});

describeShared('a device\'s last sighting', () => {
  it('is its latest TCP or UDP frame, as tshark shows it, also while a long connection is open (nest_logsink)', async () => {
    const file = realCapture('nest_logsink-dns-cname_ndpi.pcap');
    const nest = '18:b4:30:26:34:40';
    // tshark: frame number and time of every TCP or UDP frame to or from the Nest
    const frames = execFileSync('tshark', ['-r', file, '-Y', `(tcp || udp) && eth.addr == ${nest}`, '-T', 'fields', '-e', 'frame.number', '-e', 'frame.time_epoch'], { encoding: 'utf8' })
      .split('\n').filter(Boolean).map((l) => l.split('\t')).map(([n, t]) => {
        // whole milliseconds, as an ISO time shows them: from the digits, not a float times 1000
        const [sec, frac = ''] = t.split('.');
        return [Number(n), Number(sec) * 1000 + Number(frac.padEnd(3, '0').slice(0, 3))] as const;
      });
    expect(frames.length).toBeGreaterThan(100);
    const runtime = buildRuntime(loadConfig({}), { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
    const view = buildViewSource(runtime, { captureRunning: () => true, influxReachable: () => null, alerts: () => ({}) });
    const source = buildSource({ kind: 'file', path: file }, {});
    let checked = 0;
    let next = 0;
    let latest = 0;
    await runtime.run(lookedAt(source, (packets) => {
      while (next < frames.length && frames[next][0] <= packets) latest = Math.max(latest, frames[next++][1]);
      if (packets % 25 !== 0 || latest === 0) return;
      const seen = view.part('devices').find((e) => e.device.mac === nest)?.device.lastSeen;
      expect(seen, `at packet ${packets}`).toBe(new Date(latest).toISOString());
      expect(view.device(nest)?.device.lastSeen, `at packet ${packets}`).toBe(seen);
      checked++;
    }));
    expect(checked).toBeGreaterThan(20);
    expect(view.device(nest)?.device.lastSeen).toBe(new Date(frames[frames.length - 1][1]).toISOString());
  });
});
