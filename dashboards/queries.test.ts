/**
 * Every query of the committed dashboards (panel targets, annotations, template variables) and of the
 * alert rules, run against a real InfluxDB 1.x holding what `earshot replay` wrote from real captures.
 * Grafana's macros are expanded as Grafana expands them (macros.ts); each query must run and return
 * data. The captures are years apart, so each is first shifted (editcap) into its own 5-minute slot
 * of one afternoon: one time range then covers them all at Grafana's 10 s minimum interval. The
 * continuous queries' SELECT ... INTO is run by hand, so the panels on earshot_long have data too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Report } from '../collector/sink/report.js';
import { runCli } from '../test/helpers/cli.js';
import { describeInflux, Influxd } from '../test/helpers/influxd.js';
import { describeShared, PROJECT_ROOT, realCapture, VCFP_CAPTURES } from '../test/helpers/shared.js';
import { readDashboard, runDashboard, summarize } from '../test/helpers/dashboard-queries.js';
import { ALERTING_FILE, DASHBOARDS } from './index.js';
import { expandMacros, interpolateVariables, parseDuration, queryIntervalMs } from './macros.js';
import { tsharkUploads } from '../test/helpers/tshark.js';


const DB = 'earshot';
/** Where the shifted captures start: 2024-03-01 12:00 UTC, one slot of 5 minutes each. */
const BASE_MS = Date.UTC(2024, 2, 1, 12, 0, 0);
const SLOT_MS = 5 * 60_000;
/** A wide panel asks for about this many points (Grafana: the panel's width in pixels). */
const MAX_DATA_POINTS = 1000;

interface Capture {
  file: string;
  /** More replay flags. */
  flags: string[];
  /** Confirm these activations (by index) with wake events; the others become suspected. */
  confirm?: number[];
}

const CAPTURES: Capture[] = [
  // an Echo Dot 2 in normal use: seven activations, a name with a space
  // no learning period: its first contacts are notices (the Privacy dashboard's table)
  { file: realCapture('amazon-echodot2_normal-use_jhautry.pcap'), flags: ['--devices', JSON.stringify({ '50:f5:da:23:43:df': { name: 'Kitchen Echo' } }), '--learning-period', '0'] },
  // five "good morning"s: three confirmed by wake events, two suspected
  { file: join(VCFP_CAPTURES, 'good_morning_5_30s.pcap'), flags: ['--learning-period', '0'], confirm: [0, 2, 4] },
  // paced with 1-s self-metrics, so the collector's counters have a dozen points in one run
  { file: realCapture('amazon-echodot3_activation_neu.pcapng'), flags: ['--realtime-speed', '4', '--influx-interval', '1'] },
];

/** editcap shifts the captures, tshark reads their first packet's time; deploy/setup.sh installs both. */
const haveWiresharkTools = ['editcap', 'tshark'].every((tool) => !spawnSync(tool, ['--version'], { stdio: 'ignore' }).error);

/** The first packet's time (tshark), in ms. */
function firstPacketMs(file: string): number {
  const out = execFileSync('tshark', ['-r', file, '-c', '1', '-T', 'fields', '-e', 'frame.time_epoch'], { encoding: 'utf8' });
  return Math.round(Number(out.trim()) * 1000);
}

describeInflux('Grafana dashboards against a real InfluxDB', () => {
  describeShared('replays of real captures', () => {
    if (!haveWiresharkTools && process.env.CI !== 'true') {
      it.skip('needs editcap and tshark (apt-get install tshark)', () => {});
      return;
    }
    let server: Influxd;
    let tmp: string;
    const reports: Report[] = [];
    let range: { fromMs: number; toMs: number };
    let intervalMs: number;
    let minIntervalMs: number;

    beforeAll(async () => {
      server = await Influxd.start();
      tmp = mkdtempSync(join(tmpdir(), 'earshot-dashboards-'));
      for (const [i, capture] of CAPTURES.entries()) {
        const shifted = join(tmp, `slot${i}-${capture.file.split('/').pop()}`);
        execFileSync('editcap', ['-t', String((BASE_MS + i * SLOT_MS - firstPacketMs(capture.file)) / 1000), capture.file, shifted]);
        const flags = [...capture.flags];
        if (capture.confirm) {
          // a first pass finds the activations; wake events then confirm some of them
          const dry = await runCli(['replay', shifted, '--format', 'json']);
          expect(dry.code, dry.stderr).toBe(0);
          const found = (JSON.parse(dry.stdout) as Report).activations;
          const events = capture.confirm.map((n) => JSON.stringify({ time: found[n].start, device: found[n].device, source: 'test' }));
          const eventsFile = join(tmp, `wake-events-${i}.jsonl`);
          writeFileSync(eventsFile, `${events.join('\n')}\n`);
          flags.push('--wake-events', eventsFile);
        }
        const r = await runCli(['replay', shifted, '--format', 'json', '--influx-url', server.url, '--influx-db', DB, '--influx-raw-retention', 'INF', '--influx-long-retention', 'INF', '--log-format', 'json', ...flags], { timeoutMs: 120_000 });
        expect(r.code, r.stderr).toBe(0);
        reports.push(JSON.parse(r.stdout) as Report);
      }
      // the continuous queries' downsampling, over the whole replay (influxd's own schedule only covers the last hour)
      const [cqs] = await server.query(DB, 'SHOW CONTINUOUS QUERIES');
      const selects = (cqs.find((s) => s.name === DB)?.values ?? []).map((v) => /BEGIN (.*) END$/.exec(String(v[1]))?.[1] as string);
      expect(selects.length).toBeGreaterThan(0);
      for (const select of selects) await server.query(DB, select.replace(' GROUP BY', `${select.includes(' WHERE ') ? ' AND' : ' WHERE'} time > 0 GROUP BY`));
      range = { fromMs: BASE_MS - 60_000, toMs: BASE_MS + CAPTURES.length * SLOT_MS };
      const datasource = parse(readFileSync(join(PROJECT_ROOT, 'deploy/grafana/provisioning/datasources/earshot.yaml'), 'utf8')).datasources[0];
      expect(datasource.jsonData.dbName).toBe(DB);
      minIntervalMs = parseDuration(datasource.jsonData.timeInterval);
      intervalMs = queryIntervalMs(range.fromMs, range.toMs, MAX_DATA_POINTS, minIntervalMs);
    }, 240_000);

    afterAll(async () => {
      await server?.close();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('the replays give every verdict, and one range covers them at Grafana\'s minimum interval', () => {
      const verdicts = reports.flatMap((r) => r.activations.map((a) => a.verdict));
      expect(verdicts.filter((v) => v === 'confirmed')).toHaveLength(3);
      expect(verdicts.filter((v) => v === 'suspected')).toHaveLength(2);
      expect(verdicts.filter((v) => v === 'unverified').length).toBeGreaterThan(0);
      expect(intervalMs).toBe(10_000);
    });

    it('every panel, annotation, variable and alert query runs and returns data', async () => {
      /** The device a user picks on the Device dashboard: the Echo whose activations are confirmed and suspected. */
      const pickedDevice = reports[CAPTURES.findIndex((c) => c.confirm)].activations[0].device as string;
      // viewed 30 s after the last collector point, so the Fleet overview's "reported in the last 2 minutes" has a site
      const [[lastReport]] = (await server.query(DB, 'SELECT last("packets") FROM "collector"'))[0].map((s) => s.values);
      const nowMs = Number(lastReport[0]) + 30_000;
      const ran: Array<{ where: string; query: string; rows: number; values: number }> = [];
      for (const { file } of DASHBOARDS) {
        const runs = await runDashboard(server, DB, readDashboard(file), {
          range,
          minIntervalMs,
          maxDataPoints: MAX_DATA_POINTS,
          nowMs,
          choose: (v, values) => {
            if (v.includeAll && v.current?.value === '$__all') return undefined; // Grafana's default: All
            expect(values, `${file}: $${v.name} offers the device`).toContain(pickedDevice);
            return pickedDevice;
          },
        });
        for (const r of runs) ran.push({ where: r.where, query: r.query, ...summarize(r.results) });
      }
      const run = async (where: string, query: string) => {
        const results = await server.query(DB, query).catch((err: Error) => {
          throw new Error(`${where}: ${err.message}\n${query}`);
        });
        ran.push({ where, query, ...summarize(results) });
      };

      const alerting = parse(readFileSync(join(PROJECT_ROOT, ALERTING_FILE), 'utf8'));
      for (const rule of alerting.groups.flatMap((g: { rules: unknown[] }) => g.rules) as Array<{ title: string; data: Array<{ datasourceUid: string; model: { query?: string } }> }>) {
        for (const q of rule.data.filter((d) => d.datasourceUid === 'earshot-influxdb')) {
          await run(`alert rule "${rule.title}"`, expandMacros(q.model.query as string, range, intervalMs));
        }
      }

      // an activation whose verdict changed has a second point (current=false): every query counts the current one
      const onActivations = ran.filter((r) => /FROM "activation"/.test(r.query));
      expect(onActivations.length).toBeGreaterThanOrEqual(10);
      expect(onActivations.filter((r) => !r.query.includes('"current" = true')).map((r) => r.where), 'activation queries without "current" = true').toEqual([]);
      const empty = ran.filter((r) => r.values === 0);
      expect(empty.map((r) => `${r.where}: ${r.query}`), 'queries that returned no data').toEqual([]);
      const panelQueries = ran.filter((r) => r.where.includes(' panel '));
      expect(panelQueries.length).toBeGreaterThanOrEqual(10);
      console.log(`ran ${ran.length} queries (${panelQueries.length} panel targets); every one returned data`);
    }, 60_000);

    it('the collector points carry the process\'s memory, and the heap is within it', async () => {
      const [series] = await server.query(DB, 'SELECT "rss_bytes", "heap_used_bytes" FROM "collector"');
      const rows = series[0]?.values ?? [];
      expect(rows.length).toBeGreaterThan(3);
      for (const [, rss, heap] of rows) {
        // a Node.js process that replays a capture: tens of MB resident, a few MB of heap or more
        expect(rss as number).toBeGreaterThan(20 * 2 ** 20);
        expect(rss as number).toBeLessThan(4 * 2 ** 30);
        expect(heap as number).toBeGreaterThan(2 ** 20);
        expect(heap as number).toBeLessThan(rss as number);
      }
    });

    it('the Privacy dashboard\'s uploads are what left the home: the Echo Dot 3 that streamed 55 kB to another Echo, against tshark', async () => {
      const capture = CAPTURES[2].file;
      const echo = '68:db:f5:90:19:64';
      const oracle = tsharkUploads(capture, echo);
      // its one voice upload went to 52.94.233.109 (a 222-kB burst over TLS); the rest beyond the home is a
      // connectivity check and a DNS query; 55 kB went to the Echo at 192.168.12.115
      const voice = oracle.to('52.94.233.109');
      const other = oracle.beyond - voice;
      expect(oracle.home).toBeGreaterThan(50_000);
      const runs = await runDashboard(server, DB, readDashboard('earshot-privacy.json'), {
        range, minIntervalMs, maxDataPoints: MAX_DATA_POINTS,
        choose: (v, values) => (v.name === 'device' ? (expect(values).toContain(echo), echo) : undefined),
      });
      const stat = (title: string) => {
        const r = runs.find((x) => x.panel?.title === title);
        expect(r, title).toBeDefined();
        return (r!.results[0] ?? []).reduce((n, series) => n + series.values.reduce((m, row) => m + Number(row[1] ?? 0), 0), 0);
      };
      expect(stat('Voice uploaded')).toBe(voice);
      expect(stat('Uploaded, not voice')).toBe(other);
      expect(stat('Uploaded per day, by service')).toBe(voice + other);
      expect(stat('Uploaded by organisation')).toBe(voice + other);
    });

    it('collector rates come from within one run: the paced replay alone gives several per-second points', async () => {
      const slot = { fromMs: BASE_MS + 2 * SLOT_MS - 60_000, toMs: BASE_MS + 3 * SLOT_MS };
      const collector = readDashboard('earshot-collector.json');
      const capture = collector.panels.find((p) => p.title === 'Capture rate');
      const query = capture?.targets?.[0].query as string;
      const [series] = await server.query(DB, expandMacros(interpolateVariables(query, { site: { raw: '.*' } }), slot, 10_000));
      const points = series[0]?.values ?? [];
      expect(points.length).toBeGreaterThanOrEqual(3);
      for (const [, rate] of points) expect(rate as number).toBeGreaterThanOrEqual(0);
    });
  });
});
