/**
 * Many homes, one InfluxDB (docs/fleet.md): three collectors, each with its own site name and its own
 * write-only user, replay three different real captures at the same time into one database of a real
 * influxd with authentication on; InfluxDB is stopped in the middle and started again. Each site's totals
 * in the shared database must equal its own report (and tshark's count of its capture), and no site's
 * points may land under another's name. Then the shipped dashboards' queries run on that database as
 * Grafana would run them: with $site set to one site, each dashboard shows what the same dashboard shows
 * of that site's own database (the site replayed alone); the Fleet overview lists all three, each with its
 * report's numbers, and names the one whose collector stopped reporting.
 *
 * The captures are years apart: each is shifted (editcap) to end at a planned moment of one afternoon,
 * seen from a "now" just after (InfluxDB's now() in the queries is that moment): two sites end seconds
 * before it, the third eleven minutes before, so it stopped reporting.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALERTING_FILE, DASHBOARDS } from '../dashboards/index.js';
import { expandMacros } from '../dashboards/macros.js';
import type { Report } from '../collector/sink/report.js';
import { EARSHOT_BIN } from './helpers/cli.js';
import { activationsIn, answeredLanFlows, reportActivations, reportByDevice, trafficByDevice, tsharkFlowTotals } from './helpers/influx-sums.js';
import { type DashboardVariable, readDashboard, runDashboard, summarize } from './helpers/dashboard-queries.js';
import { describeInflux, seriesRows, useInfluxd } from './helpers/influxd.js';
import { describeShared, PROJECT_ROOT, realCapture, VCFP_CAPTURES } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';

const DB = 'fleet';
const ADMIN = { username: 'admin', password: 'admin-secret' };

/** When the dashboards are looked at: 2024-03-01 12:30 UTC. */
const NOW_MS = Date.UTC(2024, 2, 1, 12, 30, 0);

/**
 * Three homes: a capture each, paced so every replay takes about 12 s (capinfos durations: 48, 216,
 * 123 s), and where its last packet lands before NOW_MS.
 */
const SITES = [
  { site: 'flat-a', capture: realCapture('amazon-echodot3_activation_neu.pcapng'), speed: 4, endsBeforeNowMs: 11 * 60_000, wakeEvents: false },
  // its owner records wake events (none came in the capture's minutes): its activations are suspected
  { site: 'house-b', capture: realCapture('amazon-echodot2_normal-use_jhautry.pcap'), speed: 18, endsBeforeNowMs: 10_000, wakeEvents: true },
  { site: 'lab-c', capture: join(VCFP_CAPTURES, 'good_morning_5_30s.pcap'), speed: 10, endsBeforeNowMs: 45_000, wakeEvents: false },
];
/** The sites whose last collector point is older than the Fleet overview's 2 minutes. */
const STOPPED = ['flat-a'];

/** capinfos (Wireshark's, not earshot's reading): the capture's packets and its last packet's time in ms. */
function captureInfo(file: string): { packets: number; lastMs: number } {
  const out = execFileSync('capinfos', ['-T', '-r', '-c', '-e', '-S', file], { encoding: 'utf8' }).trim().split('\t');
  return { packets: Number(out[1]), lastMs: Math.round(Number(out[2]) * 1000) };
}

/** An empty wake-events file: a source that recorded no wake word. */
const NO_WAKE_EVENTS = join(tempDir('earshot-fleet-wake-'), 'none.jsonl');

/** The flags of every replay of a site in this file (the outage aside). */
function replayFlags({ site, speed, wakeEvents }: (typeof SITES)[number]): string[] {
  writeFileSync(NO_WAKE_EVENTS, '');
  return ['--format', 'json', '--site', site, '--realtime-speed', String(speed), '--influx-setup', 'false', '--influx-flush-interval', '0.2',
    '--influx-interval', '1', '--log-format', 'json', ...(wakeEvents ? ['--wake-events', NO_WAKE_EVENTS] : [])];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function replay(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [EARSHOT_BIN, ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describeInflux('many sites in one InfluxDB (real influxd with authentication)', () => {
  const server = useInfluxd({ env: { INFLUXDB_HTTP_AUTH_ENABLED: 'true' } });

  describeShared('three collectors, three captures', () => {
    let tmp: string;
    /** Each site's capture, shifted to end endsBeforeNowMs before NOW_MS. */
    const shifted: string[] = [];
    /** Each site's report of its replay into the shared database. */
    const reports: Report[] = [];

    beforeAll(() => {
      tmp = mkdtempSync(join(tmpdir(), 'earshot-fleet-'));
      for (const { site, capture, endsBeforeNowMs } of SITES) {
        const file = join(tmp, `${site}.pcap`);
        execFileSync('editcap', ['-F', 'pcap', '-t', String((NOW_MS - endsBeforeNowMs - captureInfo(capture).lastMs) / 1000), capture, file]);
        shifted.push(file);
      }
    });
    afterAll(() => {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    /** A database prepared by the admin as docs/fleet.md says (earshot's retention policies, kept forever here). */
    async function prepareDatabase(db: string): Promise<void> {
      await server.query(null, `CREATE DATABASE "${db}"`);
      await server.query(null, `CREATE RETENTION POLICY "earshot_raw" ON "${db}" DURATION INF REPLICATION 1 DEFAULT`);
      await server.query(null, `CREATE RETENTION POLICY "earshot_long" ON "${db}" DURATION INF REPLICATION 1`);
    }

    it('every site\'s totals equal its own report, across an outage of InfluxDB, each written by a write-only user', async () => {
      // the database's admin prepares it once (earshot's setup statements, docs/influxdb.md); the sites only write
      await server.query(null, `CREATE USER "${ADMIN.username}" WITH PASSWORD '${ADMIN.password}' WITH ALL PRIVILEGES`);
      server.auth = ADMIN;
      await prepareDatabase(DB);
      for (const { site } of SITES) {
        await server.query(null, `CREATE USER "${site}" WITH PASSWORD '${site}-pw'`);
        await server.query(null, `GRANT WRITE ON "${DB}" TO "${site}"`);
      }

      const runs = SITES.map((one, i) => replay([
        'replay', shifted[i], ...replayFlags(one),
        '--influx-url', server.url, '--influx-db', DB, '--influx-username', one.site, '--influx-password', `${one.site}-pw`,
      ]));
      // InfluxDB away for 4 s in the middle of every replay: their points wait in the spool
      await sleep(3000);
      await server.stop();
      await sleep(4000);
      await server.start();
      const results = await Promise.all(runs);

      const sites = await server.rows(DB, 'SELECT count(packets) AS n FROM collector GROUP BY site');
      expect(sites.map((r) => r.site).sort()).toEqual(SITES.map((s) => s.site).sort());
      for (const [i, { site }] of SITES.entries()) {
        const r = results[i];
        expect(r.code, `${site}: ${r.stderr.slice(-2000)}`).toBe(0);
        // the outage was seen (and survived) by every collector
        expect(r.stderr, site).toContain('InfluxDB answers again: writing the spool');
        const report = JSON.parse(r.stdout) as Report;
        reports.push(report);
        expect(report.site).toBe(site);
        const where = `WHERE "site" = '${site}'`;
        expect(Object.fromEntries(await trafficByDevice(server, DB, where)), site).toEqual(Object.fromEntries(reportByDevice(report)));
        const influx = await trafficByDevice(server, DB, where);
        let bytes = 0;
        let packets = 0;
        for (const c of influx.values()) {
          bytes += c.bytesUp + c.bytesDown;
          packets += c.packets;
        }
        // each frame once (tshark), and a LAN flow's once more for the device that answered it
        const lan = answeredLanFlows(report);
        expect({ packets: packets - lan.packets, bytes: bytes - lan.bytes }, site).toEqual(tsharkFlowTotals(shifted[i]));
        expect(await activationsIn(server, DB, `${where} AND "current" = true`), site).toEqual(reportActivations(report));
      }
      // nothing without a site: every series names one of the three
      const [series] = await server.query(DB, `SHOW SERIES ON "${DB}"`);
      const keys = series[0].values.map((v) => String(v[0]));
      expect(keys.filter((k) => !SITES.some(({ site }) => k.includes(`,site=${site}`)))).toEqual([]);
    }, 120_000);

    /** The dashboard's default range (24 h) seen from NOW_MS, as Grafana's defaults ask for it. */
    const view = { range: { fromMs: NOW_MS - 24 * 3_600_000, toMs: NOW_MS }, minIntervalMs: 10_000, maxDataPoints: 1000, nowMs: NOW_MS };

    it('with $site set to one site, every dashboard shows what it shows of that site alone', async () => {
      expect(reports, 'the replays into the shared database ran').toHaveLength(SITES.length);
      // each site again, alone in a database of its own: what a one-home install's dashboards show
      server.auth = ADMIN;
      const alone = (site: string) => `alone_${site.replace('-', '_')}`;
      for (const { site } of SITES) await prepareDatabase(alone(site));
      const runs = await Promise.all(SITES.map((one, i) => replay([
        'replay', shifted[i], ...replayFlags(one),
        '--influx-url', server.url, '--influx-db', alone(one.site), '--influx-username', ADMIN.username, '--influx-password', ADMIN.password,
      ])));
      for (const r of runs) expect(r.code, r.stderr.slice(-2000)).toBe(0);

      let compared = 0;
      let withData = 0;
      for (const [i, { site }] of SITES.entries()) {
        // the device a user opens: the site's first activation's assistant
        const device = reports[i].activations[0]?.device as string;
        expect(device, `${site} has an activation`).toBeTruthy();
        for (const { file } of DASHBOARDS.filter((d) => d.file !== 'earshot-fleet.json')) {
          const dashboard = readDashboard(file);
          const choose = (value: string) => (v: DashboardVariable) => {
            if (v.name === 'site') return value;
            return v.includeAll && v.current?.value === '$__all' ? undefined : device;
          };
          const shared = await runDashboard(server, DB, dashboard, { ...view, choose: choose(site) });
          const own = await runDashboard(server, alone(site), dashboard, { ...view, choose: (v) => (v.name === 'site' ? { raw: '.*' } : choose(site)(v)) });
          expect(shared.map((q) => q.where)).toEqual(own.map((q) => q.where));
          for (const [n, q] of shared.entries()) {
            if (/FROM "collector"/.test(q.query)) {
              // a collector's own counters (writes, retries, spool) differ between a run with an outage and one without:
              // here only this site's collector may answer
              const named = (q.results[0] ?? []).map((series) => series.tags?.site).filter((t) => t !== undefined);
              expect(new Set(named), `${site}: ${q.where}`).toEqual(new Set(named.length > 0 ? [site] : []));
              expect(summarize(q.results).rows, `${site}: ${q.where} has rows`).toBeGreaterThan(0);
              continue;
            }
            expect(q.results, `${site}: ${q.where}\n${q.query}`).toEqual(own[n].results);
            compared++;
            if (summarize(q.results).values > 0) withData++;
          }
          // the site variable offers every site; the device variables only this site's devices
          const deviceVariable = shared.find((q) => /variable \$(device|assistant)$/.test(q.where));
          if (deviceVariable) {
            const offered = seriesRows(deviceVariable.results[0]).map((r) => String(r.value));
            const macs = new Set(reports[i].devices.map((d) => d.mac));
            expect(offered.filter((mac) => !macs.has(mac)), `${site}: ${deviceVariable.where}`).toEqual([]);
          }
        }
      }
      console.log(`compared ${compared} queries of three sites, ${withData} with data`);
      expect(compared).toBeGreaterThanOrEqual(100);
      expect(withData).toBeGreaterThanOrEqual(compared / 2);
    }, 120_000);

    it('the Fleet overview lists every site with its own report\'s numbers and names the one that stopped', async () => {
      expect(reports, 'the replays into the shared database ran').toHaveLength(SITES.length);
      server.auth = ADMIN;
      const fleet = await runDashboard(server, DB, readDashboard('earshot-fleet.json'), view);
      const panel = (title: string, refId = 'A') => {
        const q = fleet.find((r) => r.panel?.title === title && r.refId === refId);
        if (!q) throw new Error(`no panel "${title}" ${refId}`);
        return seriesRows(q.results[0]);
      };
      const bySite = <T>(rows: Array<Record<string, unknown>>, column: string) => Object.fromEntries(rows.map((r) => [String(r.site), r[column] as T]));
      const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
      const want = <T>(f: (i: number) => T): Record<string, T> => Object.fromEntries(SITES.map(({ site }, i) => [site, f(i)]));

      expect(panel('Sites').map((r) => r.site).sort()).toEqual(SITES.map((s) => s.site));
      // one row per site: the newest collector point, which a replay writes at its last packet (capinfos)
      const last = panel('Sites and their collectors');
      expect(last).toHaveLength(SITES.length);
      expect(bySite(last, 'Version')).toEqual(want(() => pkg.version));
      expect(bySite(last, 'Packets')).toEqual(want((i) => captureInfo(shifted[i]).packets));
      expect(bySite(last, 'Kernel drops')).toEqual(want(() => 0));
      for (const [i, { site }] of SITES.entries()) {
        const lastReport = Number(last.find((r) => r.site === site)?.time);
        expect(Math.abs(lastReport - captureInfo(shifted[i]).lastMs), `${site}: last report at its last packet`).toBeLessThanOrEqual(1000);
      }
      // today per site: assistants, activations and suspected ones, as each site's report counts them
      const today = 'Assistants and activations today, per site';
      expect(bySite(panel(today, 'A'), 'Assistants')).toEqual(want((i) => reports[i].devices.filter((d) => d.assistant).length));
      expect(bySite(panel(today, 'B'), 'Activations')).toEqual(want((i) => reports[i].activations.length));
      const suspected = Object.fromEntries(Object.entries(want((i) => reports[i].activations.filter((a) => a.verdict === 'suspected').length)).filter(([, n]) => n !== 0));
      expect(bySite(panel(today, 'C'), 'Suspected')).toEqual(suspected);
      const total = (rows: Array<Record<string, unknown>>) => Number(rows[0]?.[Object.keys(rows[0] ?? {}).find((k) => k !== 'time') as string] ?? 0);
      expect(total(panel('Activations today'))).toBe(reports.reduce((n, r) => n + r.activations.length, 0));
      expect(total(panel('Suspected today'))).toBe(Object.values(suspected).reduce((n, s) => n + s, 0));
      // stopped: the sites of the range (A) with no point in the last 2 minutes (B): Grafana's outer join and "is null" filter
      for (const title of ['Stopped reporting', 'Sites that stopped reporting']) {
        const recent = new Set(panel(title, 'B').map((r) => r.site));
        expect(panel(title, 'A').map((r) => String(r.site)).filter((site) => !recent.has(site)), title).toEqual(STOPPED);
      }
      // one collector per site in the last 10 minutes (the stopped site ended before them)
      expect(bySite(panel('Collectors per site, last 10m'), 'Collectors')).toEqual(Object.fromEntries(SITES.filter((s) => !STOPPED.includes(s.site)).map((s) => [s.site, 1])));

      // one site chosen: only its row
      const one = await runDashboard(server, DB, readDashboard('earshot-fleet.json'), { ...view, choose: (v) => (v.name === 'site' ? 'house-b' : undefined) });
      const rows = one.filter((q) => q.panel?.title === 'Sites and their collectors').flatMap((q) => seriesRows(q.results[0]));
      expect(rows.map((r) => r.site)).toEqual(['house-b']);
    }, 60_000);

    it('the alert rules fire per site: suspected activations of house-b\'s Echo, and flat-a stopped reporting', async () => {
      expect(reports, 'the replays into the shared database ran').toHaveLength(SITES.length);
      server.auth = ADMIN;
      const alerting = parse(readFileSync(join(PROJECT_ROOT, ALERTING_FILE), 'utf8'));
      const rules = alerting.groups.flatMap((g: { rules: unknown[] }) => g.rules) as Array<{ uid: string; data: Array<{ datasourceUid: string; relativeTimeRange?: { from: number }; model: { query?: string } }> }>;
      /** Grafana's evaluation at NOW_MS: query A over its relative range, B = last value per series (labels = its tags). */
      const evaluate = async (uid: string) => {
        const rule = rules.find((r) => r.uid === uid);
        const a = rule?.data.find((d) => d.datasourceUid === 'earshot-influxdb');
        if (!a?.relativeTimeRange) throw new Error(`no rule ${uid}`);
        const range = { fromMs: NOW_MS - a.relativeTimeRange.from * 1000, toMs: NOW_MS };
        const [series] = await server.query(DB, expandMacros(a.model.query as string, range, 1000));
        return series.map((one) => ({ labels: one.tags ?? {}, last: one.values[one.values.length - 1][1] as number }));
      };
      // Suspected activation: B > 0, one instance per site and device
      const suspected = (await evaluate('earshot-suspected-activation')).filter((x) => x.last > 0);
      const b = SITES.findIndex((x) => x.wakeEvents);
      const want = reports[b].activations.filter((a) => a.verdict === 'suspected');
      expect(want.length, 'house-b has suspected activations').toBeGreaterThan(0);
      expect(suspected.map((x) => [x.labels.site, x.labels.device, x.last])).toEqual([[SITES[b].site, want[0].device, want.length]]);
      // earshot site stopped reporting: B < 1
      const silent = await evaluate('earshot-collector-silent');
      expect(silent.map((x) => x.labels.site).sort()).toEqual(SITES.map((x) => x.site));
      expect(silent.filter((x) => x.last < 1).map((x) => x.labels.site)).toEqual(STOPPED);
    });

    it('two collectors given one site name by mistake show as two instances of it', async () => {
      server.auth = ADMIN;
      const db = 'twins';
      await server.query(null, `CREATE DATABASE "${db}"`);
      await server.query(null, `CREATE RETENTION POLICY "earshot_raw" ON "${db}" DURATION INF REPLICATION 1 DEFAULT`);
      const flags = ['--format', 'json', '--site', 'twin', '--influx-url', server.url, '--influx-db', db, '--influx-username', ADMIN.username,
        '--influx-password', ADMIN.password, '--influx-setup', 'false', '--influx-interval', '1'];
      const [one, two] = await Promise.all([
        replay(['replay', SITES[0].capture, ...flags]),
        replay(['replay', SITES[2].capture, ...flags]),
      ]);
      expect([one.code, two.code]).toEqual([0, 0]);
      const [row] = await server.rows(db, 'SELECT count(distinct("instance")) AS n FROM collector WHERE "site" = \'twin\'');
      expect(row.n).toBe(2);
      const versions = await server.rows(db, 'SELECT distinct("version") AS v FROM collector');
      const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
      expect(versions.map((r) => r.v)).toEqual([pkg.version]);
    }, 60_000);
  });
});
