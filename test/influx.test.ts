/**
 * The InfluxDB sink against a real InfluxDB 1.x (Debian's influxd, started here): what `earshot replay`
 * writes must add up to what it reports (whose flows are checked against tshark elsewhere) and to
 * tshark's own totals, also when InfluxDB goes away mid-replay and when earshot is killed with points
 * in its spool. InfluxDB is read with plain HTTP queries, not through earshot's code.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { buildRuntime } from '../collector/runtime.js';
import type { Report } from '../collector/sink/report.js';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { describeInflux, useInfluxd, type Influxd } from './helpers/influxd.js';
import { activationsIn, answeredLanFlows, reportActivations, reportByDevice, trafficByDevice, tsharkFlowTotals } from './helpers/influx-sums.js';
import { describeShared, PROJECT_ROOT, realCapture, VCFP_CAPTURES } from './helpers/shared.js';
import { until } from './helpers/wait.js';
import { tempDir } from './helpers/temp.js';

const CAPTURES = [
  realCapture('amazon-echodot3_activation_neu.pcapng'),
  realCapture('amazon-echodot2_normal-use_jhautry.pcap'),
  realCapture('sonos_local-tls_ndpi.pcapng'),
  realCapture('dns-cname_var-services_zeek.pcap'),
  join(VCFP_CAPTURES, 'good_morning_5_30s.pcap'),
];

let dbSeq = 0;
const newDb = () => `t${process.pid}_${++dbSeq}`;
const tmp = () => tempDir('earshot-influx-test-');

/** Flags for a replay into `db` that keeps old capture times (raw retention INF). */
const influxFlags = (server: Influxd, db: string) => ['--influx-url', server.url, '--influx-db', db, '--influx-raw-retention', 'INF', '--log-format', 'json'];

/**
 * Runs what each of earshot's continuous queries runs, over all time (influxd runs them over the last
 * hour or week only, on wall time, which a replay of an old capture is far from). Returns the queries.
 */
async function runContinuousQueries(server: Influxd, db: string): Promise<string[]> {
  const [cqs] = await server.query(db, 'SHOW CONTINUOUS QUERIES');
  const queries = cqs.find((s) => s.name === db)?.values.map((v) => String(v[1])) ?? [];
  for (const q of queries) {
    const select = /BEGIN (.*) END$/.exec(q)?.[1] as string;
    expect(select).toMatch(/GROUP BY time\(5m\)/);
    await server.query(db, select.replace(' GROUP BY', `${select.includes(' WHERE ') ? ' AND' : ' WHERE'} time > 0 GROUP BY`));
  }
  return queries;
}

/** Checks that InfluxDB holds exactly what the report says (and what tshark counts), for points in `where`. */
async function expectMatches(server: Influxd, db: string, report: Report, capture: string, where = ''): Promise<void> {
  const influx = await trafficByDevice(server, db, where);
  const expected = reportByDevice(report);
  expect(Object.fromEntries(influx)).toEqual(Object.fromEntries(expected));
  let bytes = 0;
  let packets = 0;
  for (const c of influx.values()) {
    bytes += c.bytesUp + c.bytesDown;
    packets += c.packets;
  }
  // each frame once (tshark), and a LAN flow's once more for the device that answered it
  const lan = answeredLanFlows(report);
  expect({ packets: packets - lan.packets, bytes: bytes - lan.bytes }).toEqual(tsharkFlowTotals(capture));
  expect(await activationsIn(server, db, where)).toEqual(reportActivations(report));
  // each activation's duration: the report's end - start (whole milliseconds there), in microseconds at
  // most (it was written as the float left by subtracting two times: 2.464822021484375)
  const durations = await server.rows(db, `SELECT "id", "duration_s" FROM activation ${where}`);
  for (const row of durations) {
    const a = report.activations.find((x) => x.id === row.id)!;
    expect(Math.abs(Number(row.duration_s) - (Date.parse(a.end) - Date.parse(a.start)) / 1000), String(row.id)).toBeLessThan(0.001);
    expect(String(row.duration_s), String(row.id)).toMatch(/^\d+(\.\d{1,6})?$/);
  }
}

interface Running {
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  stderrSoFar: () => string;
  stdoutSoFar: () => string;
  kill: (signal: NodeJS.Signals) => void;
}

/** Starts `earshot ...args` in the background. */
function startCli(args: string[]): Running {
  const child = spawn(process.execPath, [EARSHOT_BIN, ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { done, stderrSoFar: () => stderr, stdoutSoFar: () => stdout, kill: (s) => child.kill(s) };
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeInflux('InfluxDB sink (real influxd)', () => {
  const server = useInfluxd();

  describeShared('replays of real captures', () => {
    for (const capture of CAPTURES) {
      it(`${capture.split('/').pop()}: traffic sums and activations equal the report and tshark`, async () => {
        const db = newDb();
        const r = await runCli(['replay', capture, '--format', 'json', ...influxFlags(server, db)]);
        expect(r.stderr).not.toMatch(/"level":(40|50)/);
        expect(r.code).toBe(0);
        await expectMatches(server, db, JSON.parse(r.stdout) as Report, capture);
      });
    }

    it('traffic is written in the interval it happened (the pipeline pushes each interval), not when its flow ends', async () => {
      // long-lived flows: the Echo Dot 2's AVS connection spans the whole 216-s capture
      const capture = CAPTURES[1];
      const db = newDb();
      const r = await runCli(['replay', capture, '--format', 'json', ...influxFlags(server, db), '--influx-interval', '10']);
      expect(r.code, r.stderr).toBe(0);
      // tshark: frame bytes of TCP and UDP packets (not ICMP errors quoting them, nor a damaged TCP header earshot
      // skips; no fragments here), by the 10-s interval of their time
      const want = new Map<number, number>();
      const frames = execFileSync('tshark', ['-r', capture, '-Y', '(tcp or udp) && !icmp && !icmpv6 && !(tcp.hdr_len < 20)', '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'frame.len'], { encoding: 'utf8', maxBuffer: 1 << 26 });
      for (const line of frames.split('\n')) {
        if (!line) continue;
        const [t, len] = line.split('\t');
        const at = Math.floor(Number(t) / 10) * 10_000;
        want.set(at, (want.get(at) ?? 0) + Number(len));
      }
      expect([...want.values()].reduce((a, b) => a + b, 0)).toBe(tsharkFlowTotals(capture).bytes);
      const from = Math.min(...want.keys());
      const to = Math.max(...want.keys()) + 10_000;
      const rows = await server.rows(db, `SELECT sum(bytes_up) AS bu, sum(bytes_down) AS bd FROM traffic WHERE time >= ${from}ms AND time < ${to}ms GROUP BY time(10s)`);
      const got = new Map(rows.filter((x) => x.bu !== null).map((x) => [Number(x.time), Number(x.bu) + Number(x.bd)]));
      expect(want.size).toBeGreaterThan(15);
      expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
    });

    it('an activation whose verdict changes after its point was written counts once, under its new verdict', async () => {
      const db = newDb();
      const dir = tmp();
      // an empty wake-event source: every activation is suspected until a label says otherwise
      const wakeEvents = join(dir, 'wake.jsonl');
      writeFileSync(wakeEvents, '');
      const config = loadConfig({ flags: { 'influx-url': server.url, 'influx-db': db, 'influx-raw-retention': 'INF', 'influx-long-retention': 'INF', 'wake-events': wakeEvents } });
      const runtime = buildRuntime(config, { clock: 'packet', activity: false }, { log: pino({ level: 'silent' }) });
      const capture = CAPTURES[4];
      const stats = await runtime.run(buildSource({ kind: 'file', path: capture }, {}));
      const before = runtime.report.build(stats, runtime.collector.stats()).activations;
      expect(before.length).toBeGreaterThanOrEqual(3);
      expect(new Set(before.map((a) => a.verdict))).toEqual(new Set(['suspected']));
      const influx = runtime.influx as NonNullable<typeof runtime.influx>;
      // the points reach InfluxDB and are downsampled (as the continuous query does every 5 minutes)
      influx.writer.flush();
      await until('InfluxDB to take the points', () => influx.writer.pending().points === 0);
      await runContinuousQueries(server, db);
      const longBefore = await server.rows(db, 'SELECT sum("activations") AS n, sum("suspected") AS suspected, sum("confirmed") AS confirmed FROM earshot_long.activation');
      expect(longBefore.map(({ n, suspected, confirmed }) => ({ n, suspected, confirmed }))).toEqual([{ n: before.length, suspected: before.length, confirmed: 0 }]);
      // then the labels arrive: the second activation was intended, so were the ones in its 5 minutes
      // (so that no current point is left under the old verdict there)
      const bucket = (a: { start: string }) => Math.floor(Date.parse(a.start) / 300_000);
      const labelled = before.filter((a, i) => i === 1 || bucket(a) === bucket(before[1]));
      for (const a of labelled) expect(runtime.label(a.id, 'intended')?.verdict).toBe('confirmed');
      const left = await influx.deliver(20_000);
      expect(left.points).toBe(0);
      // the next runs of the continuous query (within its week) move the counts to the new verdict
      await runContinuousQueries(server, db);
      const longAfter = await server.rows(db, 'SELECT sum("activations") AS n, sum("suspected") AS suspected, sum("confirmed") AS confirmed FROM earshot_long.activation');
      expect(longAfter.map(({ n, suspected, confirmed }) => ({ n, suspected, confirmed })))
        .toEqual([{ n: before.length, suspected: before.length - labelled.length, confirmed: labelled.length }]);

      const after = JSON.parse(JSON.stringify(runtime.report.build(stats, runtime.collector.stats()))) as Report;
      expect(after.activations.map((a) => a.verdict)).toEqual(before.map((a) => (labelled.includes(a) ? 'confirmed' : 'suspected')));
      // what the dashboards read: each activation once, with the report's verdict
      expect(await activationsIn(server, db, 'WHERE "current" = true')).toEqual(reportActivations(after));
      // and the old point is still there, marked: InfluxDB has no way to take it back
      const all = await server.rows(db, 'SELECT "current", "duration_s" FROM activation WHERE "id" = \'' + before[1].id + '\' GROUP BY "verdict"');
      expect(all.map((r) => ({ verdict: r.verdict, current: r.current, hasFields: typeof r.duration_s === 'number' })).sort((a, b) => String(a.verdict).localeCompare(String(b.verdict))))
        .toEqual([{ verdict: 'confirmed', current: true, hasFields: true }, { verdict: 'suspected', current: false, hasFields: true }]);
    });

    it('creates the retention policies and continuous queries, and the downsampled sums equal the raw ones', async () => {
      const db = newDb();
      const capture = CAPTURES[1];
      const r = await runCli(['replay', capture, '--format', 'json', ...influxFlags(server, db), '--influx-long-retention', 'INF', '--site', 'flat-2']);
      expect(r.code).toBe(0);
      const [policies] = await server.query(db, 'SHOW RETENTION POLICIES');
      const byName = Object.fromEntries(policies[0].values.map((v) => [v[0], { duration: v[1], isDefault: v[4] }]));
      expect(byName.earshot_raw).toEqual({ duration: '0s', isDefault: true });
      expect(byName.earshot_long).toEqual({ duration: '0s', isDefault: false });
      const queries = await runContinuousQueries(server, db);
      expect(queries).toHaveLength(3);
      expect(queries.find((q) => q.includes('earshot_activation_5m'))).toMatch(/RESAMPLE FOR 1w/);
      // who each device talks to: the downsampled rows keep the raw sums, and every byte of the device's
      // flows is in some organisation's row (a replay ends every flow), as in the traffic measurement
      const endpointRaw = await server.rows(db, 'SELECT sum(bytes_up) AS bu, sum(bytes_down) AS bd FROM earshot_raw.endpoint GROUP BY device');
      const endpointLong = await server.rows(db, 'SELECT sum(bytes_up) AS bu, sum(bytes_down) AS bd FROM earshot_long.endpoint GROUP BY device');
      expect(endpointRaw.length).toBeGreaterThan(0);
      expect(endpointLong.map((x) => ({ ...x, time: 0 }))).toEqual(endpointRaw.map((x) => ({ ...x, time: 0 })));
      const trafficByDevice = await server.rows(db, 'SELECT sum(bytes_up) AS bu, sum(bytes_down) AS bd FROM earshot_raw.traffic WHERE device != \'none\' GROUP BY device');
      expect(endpointRaw.map((x) => ({ ...x, time: 0 }))).toEqual(trafficByDevice.map((x) => ({ ...x, time: 0 })));
      const raw = await server.rows(db, 'SELECT sum(bytes_up) AS bu, sum(bytes_down) AS bd, sum(packets_up) AS pu FROM earshot_raw.traffic GROUP BY device');
      const long = await server.rows(db, 'SELECT sum(bytes_up) AS bu, sum(bytes_down) AS bd, sum(packets_up) AS pu FROM earshot_long.traffic GROUP BY device');
      expect(long.map((x) => ({ ...x, time: 0 }))).toEqual(raw.map((x) => ({ ...x, time: 0 })));
      const [counted] = await server.rows(db, 'SELECT sum(activations) AS n FROM earshot_long.activation');
      const report = JSON.parse(r.stdout) as Report;
      expect(counted?.n ?? 0).toBe(report.activations.length);
      // every series of every measurement, raw and downsampled, carries the site (many sites share a database)
      for (const rp of ['earshot_raw', 'earshot_long']) {
        const [series] = await server.query(db, `SHOW SERIES ON "${db}" FROM "${rp}"./.*/`);
        const keys = series[0].values.map((v) => String(v[0]));
        expect(keys.length).toBeGreaterThan(10);
        expect(keys.filter((k) => !k.includes(',site=flat-2'))).toEqual([]);
      }
      const [measurements] = await server.query(db, 'SHOW MEASUREMENTS');
      expect(measurements[0].values.flat().sort()).toEqual(expect.arrayContaining(['activation', 'collector', 'device', 'endpoint', 'traffic']));
    });

    it('with another retention policy configured (--influx-rp autogen), the database\'s default stays: no empty earshot_raw in front of its data', async () => {
      // before: earshot_raw was made the default, so every query without a policy (the dashboards, other
      // tools' data in the same database) read an empty policy (found by an audit)
      const db = newDb();
      await server.query(null, `CREATE DATABASE ${db}`);
      const other = await fetch(`${server.url}/write?db=${db}&precision=s`, { method: 'POST', body: `cpu,host=a usage=1 ${Math.floor(Date.now() / 1000)}` });
      expect(other.status).toBe(204);
      const capture = CAPTURES[1];
      const r = await runCli(['replay', capture, '--format', 'json', ...influxFlags(server, db), '--influx-rp', 'autogen', '--influx-long-retention', 'INF']);
      expect(r.code, r.stderr).toBe(0);
      const [policies] = await server.query(db, 'SHOW RETENTION POLICIES');
      const byName = Object.fromEntries(policies[0].values.map((v) => [v[0], v[4]]));
      expect(byName).toEqual({ autogen: true, earshot_long: false });
      expect(await server.rows(db, 'SELECT count(usage) AS n FROM cpu')).toMatchObject([{ n: 1 }]);
      // earshot's points, read as the dashboards read them (no policy named), equal the report's flows
      const report = JSON.parse(r.stdout) as Report;
      const [sums] = await server.rows(db, 'SELECT sum(bytes_up) AS up, sum(bytes_down) AS down FROM traffic');
      expect({ up: sums.up, down: sums.down }).toEqual({ up: report.flows.reduce((n, f) => n + f.bytesUp, 0), down: report.flows.reduce((n, f) => n + f.bytesDown, 0) });
      const queries = await runContinuousQueries(server, db);
      expect(queries.length).toBe(3);
      for (const q of queries) expect(q).toMatch(/FROM "?[^ ]+"?\.autogen\./);
    });

    it('keeps every point when InfluxDB is stopped for seconds in the middle of a paced replay', async () => {
      const db = newDb();
      const capture = CAPTURES[0]; // 48 s of capture, paced at 4x: 12 s
      const run = startCli(['replay', capture, '--format', 'json', '--realtime-speed', '4', ...influxFlags(server, db), '--influx-flush-interval', '0.2', '--influx-interval', '1']);
      await sleep(3000);
      await server.stop();
      await sleep(4000);
      await server.start();
      const r = await run.done;
      expect(r.code).toBe(0);
      // away (refused connections), or caught while it shuts down (a 500 to the write in flight)
      expect(r.stderr).toMatch(/spooling until it answers again|did not take a write \(500 [^)]*\): spooling and retrying/);
      expect(r.stderr).toMatch(/answers again/);
      await expectMatches(server, db, JSON.parse(r.stdout) as Report, capture);
    }, 60_000);

    it('replays the spool of a killed earshot at the next start', async () => {
      const dataDir = tmp();
      const db = newDb();
      const first = CAPTURES[0];
      const second = CAPTURES[2];
      await server.stop();
      let report: Report;
      try {
        const run = startCli(['replay', first, '--format', 'json', '--data-dir', dataDir, ...influxFlags(server, db), '--influx-wait', '600']);
        // the report is out, InfluxDB's absence is noticed, and earshot waits: every point is in the spool on disk
        await until('the report and the spool', () => run.stdoutSoFar().includes('"stats"') && run.stderrSoFar().includes('spooling') && run.stderrSoFar().includes('waiting up to 600 s'));
        run.kill('SIGKILL');
        const killed = await run.done;
        expect(killed.code).toBe(null);
        report = JSON.parse(killed.stdout) as Report;
        const spooled = readdirSync(join(dataDir, 'spool', 'influx'));
        expect(spooled.length).toBeGreaterThan(0);
      } finally {
        await server.start();
      }
      // a later run with the same data directory writes the spool first, then its own points
      const next = await runCli(['replay', second, '--format', 'json', '--data-dir', dataDir, ...influxFlags(server, db)]);
      expect(next.code).toBe(0);
      expect(next.stderr).toMatch(/spool left by an earlier run/);
      expect(readdirSync(join(dataDir, 'spool', 'influx'))).toEqual([]);
      const range = (rep: Report) => `WHERE time >= ${Math.floor(Date.parse(rep.capture.first as string) / 10_000) * 10_000}ms AND time <= ${Date.parse(rep.capture.last as string)}ms`;
      await expectMatches(server, db, report, first, range(report));
      const nextReport = JSON.parse(next.stdout) as Report;
      await expectMatches(server, db, nextReport, second, range(nextReport));
    }, 90_000);
  });

  it('a missing database without setup: one line names the command that creates it, the points wait in the spool, exit 3', async () => {
    const db = newDb();
    const started = Date.now();
    const r = await runCli(['replay', join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng'), '--format', 'json', '--influx-url', server.url, '--influx-db', db, '--influx-setup', 'false', '--influx-wait', '2', '--log-format', 'text']);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.code).toBe(3);
    expect(r.stderr.match(/InfluxDB has no database/g)).toHaveLength(1);
    expect(r.stderr).toContain(`InfluxDB has no database "${db}" (404 database not found: "${db}"): points wait in the spool until it exists; create it with: influx -execute 'CREATE DATABASE "${db}"'`);
    expect(r.stderr).toMatch(/points were not written to InfluxDB: .*points wait in memory only \(no --data-dir\)/);
    expect(r.stderr).not.toMatch(/points were refused/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('InfluxDB away past the wait limit: exit 3 saying how many points wait in the spool; a bounded spool drops the oldest', async () => {
    const dataDir = tmp();
        await server.stop();
    try {
      const r = await runCli(['replay', join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng'), '--format', 'json', '--data-dir', dataDir,
        '--influx-url', server.url, '--influx-db', newDb(), '--influx-raw-retention', 'INF', '--influx-wait', '1', '--influx-batch-size', '5', '--influx-spool-max-mb', '0.001', '--log-format', 'text']);
      expect(r.code).toBe(3);
      const line = /earshot: error: (\d+) points were not written to InfluxDB: .* (\d+) points wait in the spool.*; (\d+) points were dropped because the spool was full/.exec(r.stderr);
      expect(line).not.toBeNull();
      const files = readdirSync(join(dataDir, 'spool', 'influx'));
      const waiting = files.reduce((n, f) => n + Number(/-(\d+)\.lp/.exec(f)?.[1]), 0);
      expect(waiting).toBe(Number(line?.[2]));
      expect(Number(line?.[3])).toBeGreaterThan(0);
      expect(Number(line?.[1])).toBe(Number(line?.[2]) + Number(line?.[3]));
      const bytes = files.reduce((n, f) => n + statSync(join(dataDir, 'spool', 'influx', f)).size, 0);
      expect(bytes).toBeLessThanOrEqual(0.001 * 1024 * 1024);
    } finally {
      await server.start();
    }
  }, 30_000);
});
