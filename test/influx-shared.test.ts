/**
 * A shared InfluxDB 1.x (the real influxd, 1.6.7 here) with authentication on, as a fleet runs it: an
 * admin owns the schema, each site has a user with WRITE on its database and nothing more. Such a user
 * cannot run earshot's setup (CREATE DATABASE needs admin): earshot says what an admin runs instead,
 * keeps the points in the spool while the database is missing, names the exact command that creates it,
 * and writes everything once the admin has run it. The `collector` measurement (which sites are alive)
 * comes every interval without traffic, with setup off. The commands in the messages are checked by
 * running them: the admin sends exactly the quoted InfluxQL of the message.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, expect, it } from 'vitest';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { describeInflux, useInfluxd } from './helpers/influxd.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { until } from './helpers/wait.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');

interface LogLine {
  level: number;
  msg: string;
  code?: string;
}
const logLines = (stderr: string): LogLine[] => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

/** The lines of every batch in a spool directory, by measurement (read from the files, not through earshot). */
function spooledByMeasurement(dir: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const name of readdirSync(dir)) {
    if (!/\.lp(\.gz)?$/.test(name)) continue;
    const raw = readFileSync(join(dir, name));
    for (const line of (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8').split('\n')) {
      const measurement = /^((?:[^,\\ ]|\\.)+)/.exec(line)?.[1];
      if (measurement) counts.set(measurement, (counts.get(measurement) ?? 0) + 1);
    }
  }
  return counts;
}

/** A pcap file header (Ethernet) and no packet: a live feed where nothing happens. */
const EMPTY_PCAP = Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex');

describeInflux('a shared InfluxDB 1.x with authentication: a write-only user per site', () => {
  const server = useInfluxd({ env: { INFLUXDB_HTTP_AUTH_ENABLED: 'true' } });
  beforeAll(async () => {
    await server.createAdmin();
  });

  it('cannot run the setup: says what an admin runs; a missing database keeps the points and names the command, which works', async () => {
    const db = 'site_a';
    await server.query(null, `CREATE USER "site_a" WITH PASSWORD 'pw-a'`);
    const dataDir = tempDir('earshot-shared-');
    const args = ['replay', CAPTURE, '--influx-url', server.url, '--influx-db', db, '--influx-username', 'site_a', '--influx-raw-retention', 'INF',
      '--data-dir', dataDir, '--influx-wait', '2', '--format', 'json', '-o', '/dev/null', '--log-format', 'json'];
    const env = { EARSHOT_INFLUX_PASSWORD: 'pw-a' };
    const first = await runCli(args, { env });
    expect(first.code).toBe(3);
    expect(first.stderr).not.toMatch(/\n\s+at /);
    const logs = logLines(first.stderr);
    const denied = logs.filter((l) => l.code === 'EARSHOT_ERR_INFLUX_SETUP_DENIED');
    expect(denied).toHaveLength(1);
    expect(denied[0].msg).toContain(`user "site_a" may not run the database setup (403 error authorizing query: site_a not authorized to execute statement 'CREATE DATABASE site_a', requires admin privilege); writing without it. An admin can run it: influx -execute 'CREATE DATABASE "site_a"; CREATE RETENTION POLICY "earshot_raw" ON "site_a" DURATION INF REPLICATION 1 DEFAULT; CREATE RETENTION POLICY "earshot_long" ON "site_a" DURATION 104w REPLICATION 1; CREATE CONTINUOUS QUERY "earshot_traffic_5m" ON "site_a" `);
    expect(denied[0].msg.match(/CREATE CONTINUOUS QUERY/g)).toHaveLength(3);
    expect(denied[0].msg).toMatch(/; GRANT WRITE ON "site_a" TO "site_a"'; then set influx.setup to false$/);
    // one line, however many retries: the database does not exist, the points wait
    const missing = logs.filter((l) => l.code === 'EARSHOT_ERR_INFLUX_MISSING');
    expect(missing.map((l) => l.msg)).toEqual([
      `InfluxDB has no database "site_a" (404 database not found: "site_a"): points wait in the spool until it exists; create it with: influx -execute 'CREATE DATABASE "site_a"; CREATE RETENTION POLICY "earshot_raw" ON "site_a" DURATION INF REPLICATION 1 DEFAULT; GRANT WRITE ON "site_a" TO "site_a"'`,
    ]);
    const spooled = spooledByMeasurement(join(dataDir, 'spool', 'influx'));
    expect(spooled.get('traffic')).toBeGreaterThan(0);
    expect(spooled.get('collector')).toBeGreaterThan(0);

    // the admin runs the command of the message, as it is
    const statements = /-execute '(.*)'$/.exec(missing[0].msg)?.[1] ?? '';
    await server.query(null, statements);
    const second = await runCli(args, { env });
    expect(second.code).toBe(0);
    expect(logLines(second.stderr).filter((l) => l.code === 'EARSHOT_ERR_INFLUX_MISSING')).toEqual([]);
    expect(readdirSync(join(dataDir, 'spool', 'influx')).filter((n) => /\.lp/.test(n))).toEqual([]);
    // the second run writes the same points again (same series and times): InfluxDB holds each once
    const [[traffic]] = await server.query(db, 'SELECT count("bytes_up") FROM "earshot_raw"."traffic"');
    expect(traffic.values[0][1]).toBe(spooled.get('traffic'));
    // the user writes and cannot read (the grant is WRITE only)
    const read = await fetch(`${server.url}/query?db=${db}&q=${encodeURIComponent('SELECT * FROM traffic LIMIT 1')}`, { headers: { Authorization: `Basic ${Buffer.from('site_a:pw-a').toString('base64')}` } });
    expect(read.status).toBe(403);
  }, 60_000);

  it('earshot doctor, setup off, the database missing: FAIL with the command an admin runs', async () => {
    await server.query(null, `CREATE USER "site_c" WITH PASSWORD 'pw-c'`);
    const r = await runCli(['doctor', '--source', 'stdin', '--influx-url', server.url, '--influx-db', 'site_c', '--influx-username', 'site_c', '--influx-setup', 'false', '--format', 'json'],
      { env: { EARSHOT_INFLUX_PASSWORD: 'pw-c' } });
    const checks = (JSON.parse(r.stdout) as { checks: Array<{ check: string; status: string; message: string; fix?: string }> }).checks;
    expect(checks.find((c) => c.check === 'influxdb write')).toEqual({
      check: 'influxdb write', status: 'FAIL', message: 'database not found: "site_c" (and influx.setup is off)',
      fix: `create it (influx -execute 'CREATE DATABASE "site_c"; GRANT WRITE ON "site_c" TO "site_c"') or fix --influx-db`,
    });
  }, 30_000);

  it('a wrong password or a missing grant keeps the points (401/403), says what to check, and a fixed credential writes them', async () => {
    const db = 'site_d';
    await server.query(null, `CREATE DATABASE "site_d"; CREATE RETENTION POLICY "earshot_raw" ON "site_d" DURATION INF REPLICATION 1 DEFAULT; CREATE USER "site_d" WITH PASSWORD 'pw-d'`);
    const dataDir = tempDir('earshot-shared-');
    const args = ['replay', CAPTURE, '--influx-url', server.url, '--influx-db', db, '--influx-username', 'site_d', '--influx-setup', 'false',
      '--data-dir', dataDir, '--influx-wait', '1', '--format', 'json', '-o', '/dev/null', '--log-format', 'json'];
    // a mistyped password: 401
    const wrong = await runCli(args, { env: { EARSHOT_INFLUX_PASSWORD: 'typo' } });
    expect(wrong.code).toBe(3);
    const auth = logLines(wrong.stderr).filter((l) => l.code === 'EARSHOT_ERR_INFLUX_AUTH');
    expect(auth.map((l) => l.msg)).toEqual([
      'InfluxDB refused the credentials (401 authorization failed): check influx.username "site_d" and its password (EARSHOT_INFLUX_PASSWORD), and its rights (GRANT WRITE ON "site_d" TO "site_d"); points wait in the spool and are retried',
    ]);
    const spooled = spooledByMeasurement(join(dataDir, 'spool', 'influx'));
    expect(spooled.get('traffic')).toBeGreaterThan(0);
    // the right password, no grant yet: 403, still kept
    const env = { EARSHOT_INFLUX_PASSWORD: 'pw-d' };
    const ungranted = await runCli(args, { env });
    expect(ungranted.code).toBe(3);
    expect(logLines(ungranted.stderr).filter((l) => l.code === 'EARSHOT_ERR_INFLUX_AUTH').map((l) => l.msg)[0]).toMatch(/^InfluxDB refused the credentials \(403 /);
    expect(spooledByMeasurement(join(dataDir, 'spool', 'influx')).get('traffic')).toBeGreaterThanOrEqual(spooled.get('traffic') as number);
    // the admin grants: everything spooled arrives
    await server.query(null, `GRANT WRITE ON "${db}" TO "site_d"`);
    const fixed = await runCli(args, { env });
    expect(fixed.code).toBe(0);
    expect(readdirSync(join(dataDir, 'spool', 'influx')).filter((n) => /\.lp/.test(n))).toEqual([]);
    const [[traffic]] = await server.query(db, 'SELECT count("bytes_up") FROM "earshot_raw"."traffic"');
    expect(traffic.values[0][1]).toBe(spooled.get('traffic'));
  }, 60_000);

  it('a wrong password with the setup on: one line about the credentials, not the admin\'s setup command; the right one runs the setup', async () => {
    // before: "user may not run the database setup (401 ...)" and a 1-kB command for an admin, and the
    // setup skipped for the rest of the run (found by an audit)
    const db = 'site_e';
    const args = (password: string) => ['replay', CAPTURE, '--influx-url', server.url, '--influx-db', db, '--influx-username', 'admin', '--influx-password', password,
      '--influx-raw-retention', 'INF', '--influx-wait', '1', '--format', 'json', '-o', '/dev/null', '--log-format', 'json'];
    const wrong = await runCli(args('nope'));
    expect(wrong.code).toBe(3);
    const logs = logLines(wrong.stderr);
    expect(logs.filter((l) => l.code === 'EARSHOT_ERR_INFLUX_SETUP_DENIED')).toEqual([]);
    expect(logs.filter((l) => l.code === 'EARSHOT_ERR_INFLUX_AUTH').map((l) => l.msg)).toEqual([
      'InfluxDB refused the credentials (401 authorization failed): check influx.username "admin" and its password (EARSHOT_INFLUX_PASSWORD), and its rights (GRANT WRITE ON "site_e" TO "admin"); points wait in the spool and are retried',
    ]);
    const right = await runCli(args('admin-password'));
    expect(right.code, right.stderr).toBe(0);
    const [policies] = await server.query(db, 'SHOW RETENTION POLICIES');
    expect(policies[0].values.map((v) => v[0]).sort()).toEqual(['autogen', 'earshot_long', 'earshot_raw']);
  }, 60_000);

  it('the `collector` measurement comes every interval with no traffic at all, setup off, from a write-only user', async () => {
    const db = 'site_b';
    await server.query(null, `CREATE DATABASE "site_b"; CREATE USER "site_b" WITH PASSWORD 'pw-b'; GRANT WRITE ON "site_b" TO "site_b"`);
    const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--source', 'stdin', '--api', 'false', '--log-format', 'json', '--format', 'json',
      '--influx-url', server.url, '--influx-db', db, '--influx-username', 'site_b', '--influx-setup', 'false', '--influx-interval', '1'],
    { cwd: PROJECT_ROOT, env: { ...process.env, EARSHOT_INFLUX_PASSWORD: 'pw-b' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.resume();
    child.stdin.on('error', () => {});
    child.stdin.write(EMPTY_PCAP);
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const times = async () => ((await server.query(db, 'SELECT packets FROM collector'))[0][0]?.values ?? []).map((v) => v[0] as number);
      await until('four collector points', async () => (await times()).length >= 4, 20_000);
      const t = await times();
      // one a second, each at its own time, no packet ever seen
      for (let i = 1; i < t.length; i++) expect(t[i] - t[i - 1]).toBeGreaterThanOrEqual(500);
      expect(((await server.query(db, 'SELECT max(packets) FROM collector'))[0][0].values[0][1])).toBe(0);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const logs = logLines(stderr);
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
    expect(logs.filter((l) => /setup/i.test(l.msg))).toEqual([]);
  }, 40_000);
});
