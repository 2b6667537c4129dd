/**
 * `earshot replay old.pcap --influx-url URL`: InfluxDB drops points older than the raw retention (30 d),
 * so a replay of a 2018 capture used to run to its end and exit 3 with nothing written. Now it is
 * refused before the capture is read, in one line naming the flag; with that flag its points land in
 * the database's default policy, where the shipped dashboards read them. Expected values come from
 * tshark and from InfluxDB itself (plain HTTP queries), not from earshot.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { describeInflux, useInfluxd, type Influxd } from './helpers/influxd.js';
import { describeShared, realCapture } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { tsharkLanAnswered } from './helpers/influx-sums.js';
import { tsharkFlows } from './helpers/tshark.js';

const OLD = realCapture('amazon-echo_alexa-time-query-0_xray.pcap');

/** tshark's time of the first packet, epoch ms. */
function tsharkFirstMs(file: string): number {
  const out = execFileSync('tshark', ['-r', file, '-c', '1', '-T', 'fields', '-e', 'frame.time_epoch'], { encoding: 'utf8' });
  return Math.floor(Number(out.trim()) * 1000);
}

async function databases(server: Influxd): Promise<string[]> {
  const [series] = await server.query(null, 'SHOW DATABASES');
  // a server without databases answers a series without values
  return series.flatMap((s) => (s.values as unknown[][] | undefined ?? []).map((row) => String(row[0])));
}

describeInflux('a replay of an old capture into InfluxDB (real influxd)', () => {
  const server = useInfluxd();

  describeShared('2018 capture', () => {
    it('into a new database with the default 30-day raw retention: refused before the capture is read, one line naming the flag', async () => {
      const start = new Date(tsharkFirstMs(OLD)).toISOString().slice(0, 16).replace('T', ' ');
      const gz = join(tempDir('earshot-old-'), 'old.pcap.gz');
      writeFileSync(gz, gzipSync(readFileSync(OLD)));
      for (const file of [OLD, gz]) {
        const r = await runCli(['replay', file, '--influx-url', server.url, '--influx-db', 'old_refused', '--format', 'json']);
        expect(r.code).toBe(2);
        expect(r.stderr).toBe(`earshot: replay: the capture starts ${start} UTC, but InfluxDB keeps raw points 30d (influx.rawRetention) and would drop every older one; ` +
          'add --influx-raw-retention INF to keep them in the retention policy "earshot_raw" of database "old_refused", where the dashboards read them\n');
        // no report: the pipeline never ran; and InfluxDB was not touched
        expect(r.stdout).toBe('');
      }
      expect(await databases(server)).not.toContain('old_refused');
    });

    it('with the flag it names: exit 0, and the points are where the dashboards read them (the default policy), summing to tshark\'s bytes', async () => {
      const r = await runCli(['replay', OLD, '--influx-url', server.url, '--influx-db', 'old_kept', '--influx-raw-retention', 'INF', '--format', 'json', '--log-format', 'json']);
      expect(r.stderr).not.toMatch(/"level":(40|50)/);
      expect(r.code).toBe(0);
      // the dashboards' queries name no retention policy (dashboards/influxql.ts): they read the default one
      const [policy] = (await server.rows('old_kept', 'SHOW RETENTION POLICIES')).filter((p) => p.default === true);
      expect(policy).toMatchObject({ name: 'earshot_raw', duration: '0s' });
      const [sums] = await server.rows('old_kept', 'SELECT sum(bytes_up) AS up, sum(bytes_down) AS down, min(bytes_up) FROM traffic');
      let bytes = 0;
      for (const flow of tsharkFlows(OLD).values()) for (const d of flow.dirs.values()) bytes += d.bytes;
      // every frame once, a LAN conversation's once more for the device that answered it
      expect(Number(sums.up) + Number(sums.down)).toBe(bytes + tsharkLanAnswered(OLD).bytes);
      const [first] = await server.rows('old_kept', 'SELECT first(bytes_up) FROM traffic');
      // traffic points carry the start of their 10-s interval
      expect(first.time).toBe(Math.floor(tsharkFirstMs(OLD) / 10_000) * 10_000);
    });

    it('a policy of the user\'s own (--influx-rp) is not second-guessed: InfluxDB\'s refusal is logged with the flag to use', async () => {
      await server.query(null, 'CREATE DATABASE "old_own"');
      await server.query(null, 'CREATE RETENTION POLICY "week" ON "old_own" DURATION 1w REPLICATION 1');
      const r = await runCli(['replay', OLD, '--influx-url', server.url, '--influx-db', 'old_own', '--influx-setup', 'false', '--influx-rp', 'week', '--influx-wait', '5', '--format', 'json', '--log-format', 'json']);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/points beyond retention policy dropped=\d+ \(points older than the retention policy: replaying an old capture\? keep them with --influx-raw-retention INF, or --influx-rp naming a policy of your own that keeps them\)/);
    });
  });
});
