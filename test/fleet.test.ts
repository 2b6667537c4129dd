/**
 * Many homes, one InfluxDB (docs/fleet.md): three collectors, each with its own site name and its own
 * write-only user, replay three different real captures at the same time into one database of a real
 * influxd with authentication on; InfluxDB is stopped in the middle and started again. Each site's totals
 * in the shared database must equal its own report (and tshark's count of its capture), and no site's
 * points may land under another's name.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { EARSHOT_BIN } from './helpers/cli.js';
import { activationsIn, reportActivations, reportByDevice, trafficByDevice, tsharkFlowTotals } from './helpers/influx-sums.js';
import { describeInflux, useInfluxd } from './helpers/influxd.js';
import { describeShared, PROJECT_ROOT, realCapture, VCFP_CAPTURES } from './helpers/shared.js';

const DB = 'fleet';
const ADMIN = { username: 'admin', password: 'admin-secret' };

/** Three homes: a capture each, paced so every replay takes about 12 s (capinfos durations: 48, 216, 123 s). */
const SITES = [
  { site: 'flat-a', capture: realCapture('amazon-echodot3_activation_neu.pcapng'), speed: 4 },
  { site: 'house-b', capture: realCapture('amazon-echodot2_normal-use_jhautry.pcap'), speed: 18 },
  { site: 'lab-c', capture: join(VCFP_CAPTURES, 'good_morning_5_30s.pcap'), speed: 10 },
];

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
    it('every site\'s totals equal its own report, across an outage of InfluxDB, each written by a write-only user', async () => {
      // the database's admin prepares it once (earshot's setup statements, docs/influxdb.md); the sites only write
      await server.query(null, `CREATE USER "${ADMIN.username}" WITH PASSWORD '${ADMIN.password}' WITH ALL PRIVILEGES`);
      server.auth = ADMIN;
      await server.query(null, `CREATE DATABASE "${DB}"`);
      await server.query(null, `CREATE RETENTION POLICY "earshot_raw" ON "${DB}" DURATION INF REPLICATION 1 DEFAULT`);
      for (const { site } of SITES) {
        await server.query(null, `CREATE USER "${site}" WITH PASSWORD '${site}-pw'`);
        await server.query(null, `GRANT WRITE ON "${DB}" TO "${site}"`);
      }

      const runs = SITES.map(({ site, capture, speed }) => replay([
        'replay', capture, '--format', 'json', '--site', site, '--realtime-speed', String(speed),
        '--influx-url', server.url, '--influx-db', DB, '--influx-username', site, '--influx-password', `${site}-pw`, '--influx-setup', 'false',
        '--influx-flush-interval', '0.2', '--influx-interval', '1', '--log-format', 'json',
      ]));
      // InfluxDB away for 4 s in the middle of every replay: their points wait in the spool
      await sleep(3000);
      await server.stop();
      await sleep(4000);
      await server.start();
      const results = await Promise.all(runs);

      const sites = await server.rows(DB, 'SELECT count(packets) AS n FROM collector GROUP BY site');
      expect(sites.map((r) => r.site).sort()).toEqual(SITES.map((s) => s.site).sort());
      for (const [i, { site, capture }] of SITES.entries()) {
        const r = results[i];
        expect(r.code, `${site}: ${r.stderr.slice(-2000)}`).toBe(0);
        // the outage was seen (and survived) by every collector
        expect(r.stderr, site).toContain('InfluxDB answers again: writing the spool');
        const report = JSON.parse(r.stdout) as Report;
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
        expect({ packets, bytes }, site).toEqual(tsharkFlowTotals(capture));
        expect(await activationsIn(server, DB, `${where} AND "current" = true`), site).toEqual(reportActivations(report));
      }
      // nothing without a site: every series names one of the three
      const [series] = await server.query(DB, `SHOW SERIES ON "${DB}"`);
      const keys = series[0].values.map((v) => String(v[0]));
      expect(keys.filter((k) => !SITES.some(({ site }) => k.includes(`,site=${site}`)))).toEqual([]);
    }, 120_000);

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
