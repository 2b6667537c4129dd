/**
 * `earshot doctor` as a user runs it (the built dist/ executable): a capture blocked by permission or a
 * missing interface exits 2 with a FAIL line saying what to do; InfluxDB down is reported but does not
 * block; a real influxd is reachable and writable (an empty write, nothing stored).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EARSHOT_BIN, runCli, type CliResult } from './helpers/cli.js';
import { startCollect } from './helpers/collect.js';
import { describeInflux, freePort, Influxd } from './helpers/influxd.js';
import { PROJECT_ROOT } from './helpers/shared.js';

const isRoot = process.getuid?.() === 0;
const haveSetpriv = spawnSync('/usr/bin/setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
const haveTcpdump = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).status === 0;

/** Runs the CLI as nobody (uid/gid 65534, no groups, no capabilities) through setpriv. */
function runCliAsNobody(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, EARSHOT_BIN, ...args], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The text line of `check`, or undefined. */
const lineOf = (stdout: string, check: string) => stdout.split('\n').find((l) => l.slice(5).startsWith(`${check}: `));

interface JsonCheck { check: string; status: string; message: string; fix?: string; blocking?: boolean }

describe('earshot doctor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-doctor-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is listed in the help', async () => {
    const r = await runCli(['--help']);
    expect(r.stdout).toMatch(/^ {2}doctor +Checks what collect needs/m);
    const h = await runCli(['doctor', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('--seconds N');
  });

  it('an --api-url that is not an http(s) URL: one line, exit 2, no check run (it was tried, as "no running collector at notaurl")', async () => {
    for (const url of ['notaurl', 'ftp://127.0.0.1:8377', '127.0.0.1:8377']) {
      const r = await runCli(['doctor', '--api-url', url]);
      expect(r.code, url).toBe(2);
      expect(r.stdout, url).toBe('');
      expect(r.stderr, url).toBe(`earshot: --api-url: expected the collector's API as http://HOST:PORT (e.g. http://127.0.0.1:8377), got "${url}"\n`);
    }
  });

  describe.skipIf(!isRoot || !haveSetpriv)('without permission to capture (as nobody)', () => {
    it.skipIf(!haveTcpdump)('tcpdump: FAIL capture permission with the setcap advice, exit 2', async () => {
      const r = await runCliAsNobody(['doctor', '--interface', 'lo', '--source', 'tcpdump', '--seconds', '1']);
      expect(r.code).toBe(2);
      expect(lineOf(r.stdout, 'capture')).toMatch(/^ok {3}capture: tcpdump available/);
      const fail = lineOf(r.stdout, 'capture permission');
      expect(fail).toMatch(/^FAIL capture permission: no permission to capture on lo \(tcpdump, uid 65534\)/);
      expect(fail).toContain('— run as root or: sudo setcap cap_net_raw+eip $(readlink -f $(which tcpdump))');
      expect(r.stdout).toMatch(/capture is blocked/);
    });

    it('libpcap: FAIL capture permission naming node, exit 2 (json)', async () => {
      const r = await runCliAsNobody(['doctor', '--interface', 'lo', '--source', 'libpcap', '--seconds', '1', '--format', 'json']);
      expect(r.code).toBe(2);
      const out = JSON.parse(r.stdout) as { exitCode: number; captureBlocked: boolean; checks: JsonCheck[] };
      expect(out).toMatchObject({ exitCode: 2, captureBlocked: true });
      const capture = out.checks.find((c) => c.check === 'capture');
      if (capture?.status !== 'ok') return; // the optional pcap package is not installed here: covered by tcpdump
      const perm = out.checks.find((c) => c.check === 'capture permission');
      expect(perm).toMatchObject({ status: 'FAIL', blocking: true });
      expect(perm?.message).toMatch(/not permitted|permission/i);
      expect(perm?.fix).toContain('$(which node)');
    });
  });

  it.skipIf(!isRoot)('an interface that is down, or a filter libpcap refuses: FAIL saying so, before any capture, exit 2', async () => {
    const name = `esdd${process.pid % 100000}`;
    spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
    expect(spawnSync('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]).status).toBe(0);
    try {
      const down = await runCli(['doctor', '--interface', name, '--seconds', '1']);
      expect(down.code).toBe(2);
      expect(lineOf(down.stdout, 'interface')).toBe(`FAIL interface: ${name} is down — ip link set ${name} up (or wait for the bridge or access point that brings it up)`);
    } finally {
      spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
    }
    const filter = await runCli(['doctor', '--interface', 'lo', '--filter', 'port port port', '--seconds', '1']);
    expect(filter.code).toBe(2);
    expect(lineOf(filter.stdout, 'filter')).toMatch(/^FAIL filter: the filter "port port port" is not valid on lo: can't parse filter expression: syntax error/);
  });

  it('no such interface: FAIL naming it and listing those that exist, exit 2', async () => {
    const r = await runCli(['doctor', '--interface', 'earshot-nope0', '--seconds', '1']);
    expect(r.code).toBe(2);
    const fail = lineOf(r.stdout, 'interface');
    expect(fail).toMatch(/^FAIL interface: no such interface "earshot-nope0" \(interfaces here: .*\blo\b/);
    expect(lineOf(r.stdout, 'traffic')).toMatch(/^skip/);
  });

  it.skipIf(!isRoot)('InfluxDB down, webhook and MQTT unreachable, a spool waiting: reported, exit 0', async () => {
    const port = await freePort();
    const spool = join(dir, 'data', 'spool', 'influx');
    mkdirSync(spool, { recursive: true });
    writeFileSync(join(spool, '000000000001-42.lp'), Array.from({ length: 42 }, (_, i) => `x v=${i} ${i}`).join('\n'));
    // a batch torn by a power cut (NUL-padded) and one set aside by an earlier run
    writeFileSync(join(spool, '000000000002-5.lp'), Buffer.concat([Buffer.from('x v=1 1\nx v='), Buffer.alloc(4096)]));
    mkdirSync(join(spool, 'quarantine'));
    writeFileSync(join(spool, 'quarantine', '000000000000-1.lp.refused-1'), 'x v=');
    const r = await runCli([
      'doctor', '--interface', 'lo', '--seconds', '1',
      '--influx-url', `http://127.0.0.1:${port}`,
      '--data-dir', join(dir, 'data'),
      '--webhooks', JSON.stringify([{ url: `http://127.0.0.1:${port}/secret-path`, name: 'phone' }]),
      '--mqtt-url', `mqtt://127.0.0.1:${port}`,
    ]);
    expect(r.code).toBe(0);
    expect(lineOf(r.stdout, 'capture permission')).toMatch(/^ok {3}capture permission: opened lo/);
    expect(lineOf(r.stdout, 'influxdb')).toMatch(new RegExp(`^FAIL influxdb: not reachable at http://127.0.0.1:${port}: ECONNREFUSED — start InfluxDB`));
    expect(lineOf(r.stdout, 'spool')).toMatch(/^warn spool: 42 points \(1 batches/);
    expect(lineOf(r.stdout, 'spool files')).toMatch(/^warn spool files: 1 damaged: 000000000002-5\.lp \(NUL bytes in the text \(a torn write\)\) — collect moves them to .*quarantine/);
    expect(lineOf(r.stdout, 'spool quarantine')).toMatch(/^warn spool quarantine: 1 batches set aside in /);
    expect(lineOf(r.stdout, 'data disk')).toMatch(/^ok {3}data disk: .*spool\/influx takes writes \(\d+\.\d MB free\)/);
    const hook = lineOf(r.stdout, 'webhook phone');
    expect(hook).toMatch(/^FAIL webhook phone: http:\/\/127\.0\.0\.1:\d+ not reachable: ECONNREFUSED/);
    expect(hook).not.toContain('secret-path');
    expect(lineOf(r.stdout, 'mqtt')).toMatch(/^FAIL mqtt: broker mqtt:\/\/127\.0\.0\.1:\d+ not reachable/);
    expect(lineOf(r.stdout, 'clock')).toMatch(/^ok {3}clock: system clock/);
    expect(r.stdout).toMatch(/nothing blocks capture \(3 FAIL, [3-9] warn/);
  });

  it.skipIf(!isRoot)('names the earshot that uses the data directory, and a lock left by one that no longer runs', async () => {
    const data = join(dir, 'locked');
    const run = await startCollect(join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng'), ['--data-dir', data, '--realtime-speed', '1']);
    const doctor = () => runCli(['doctor', '--interface', 'lo', '--seconds', '1', '--data-dir', data]);
    try {
      const r = await doctor();
      expect(lineOf(r.stdout, 'data dir lock')).toMatch(new RegExp(`^ok {3}data dir lock: in use by earshot PID ${run.pid} since \\d{4}-[\\d-]+T[\\d:.]+Z: another collect or replay on ${data} is refused while it runs$`));
    } finally {
      expect(await run.kill('SIGKILL')).toBe('SIGKILL');
    }
    expect(lineOf((await doctor()).stdout, 'data dir lock')).toMatch(new RegExp(`^ok {3}data dir lock: left by PID ${run.pid} since .*, which no longer runs \\(killed, or a power cut\\): the next run takes it over$`));
  }, 60_000);

  it('the API\'s address: free is ok; in use by the running collector is ok; in use by another program or not an address is a blocking FAIL', async () => {
    const doctor = (listen: string) => runCli(['doctor', '--interface', 'lo', '--seconds', '1', '--listen', listen]);
    const freeAddress = `127.0.0.1:${await freePort()}`;
    expect(lineOf((await doctor(freeAddress)).stdout, 'api')).toBe(`ok   api: ${freeAddress} is free for the API and the status page`);
    // another program on the port (a web server of something else): collect could not start
    const other = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const taken = `127.0.0.1:${(other.address() as AddressInfo).port}`;
    try {
      const r = await doctor(taken);
      expect(r.code).toBe(2);
      expect(lineOf(r.stdout, 'api')).toBe(`FAIL api: ${taken} is in use by another program (nothing there answers as earshot) — stop that program, or give the API another address: --listen (api.listen)`);
    } finally {
      other.close();
    }
    // the service itself holds it: what doctor is often run beside
    const run = await startCollect(join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng'), []);
    try {
      const listen = run.base.replace('http://', '');
      const r = await doctor(listen);
      expect(lineOf(r.stdout, 'api')).toBe(`ok   api: ${listen}: the running collector answers there (earshot ${JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).version})`);
    } finally {
      await run.stop();
    }
    const bad = await doctor('127.0.0.1:99999');
    expect(bad.code).toBe(2);
    expect(lineOf(bad.stdout, 'api')).toMatch(/^FAIL api: --listen: expected HOST:PORT .* got "127\.0\.0\.1:99999"/);
  }, 60_000);

  it('rejects a bad --seconds', async () => {
    const r = await runCli(['doctor', '--interface', 'lo', '--seconds', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^earshot: --seconds: expected/);
  });
});

describeInflux('earshot doctor with a real InfluxDB', () => {
  let influxd: Influxd;
  beforeAll(async () => {
    influxd = await Influxd.start();
  });
  afterAll(async () => {
    await influxd?.close();
  });

  // stdin as the source: the InfluxDB checks run without needing capture rights
  const doctor = (db: string) => runCli(['doctor', '--source', 'stdin', '--influx-url', influxd.url, '--influx-db', db, '--format', 'json']);

  it('a missing database: reachable, and collect will create it (setup on)', async () => {
    const r = await doctor('earshot_missing');
    expect(r.code).toBe(0);
    const checks = (JSON.parse(r.stdout) as { checks: JsonCheck[] }).checks;
    expect(checks.find((c) => c.check === 'capture')?.status).toBe('skip');
    expect(checks.find((c) => c.check === 'influxdb')).toMatchObject({ status: 'ok', message: expect.stringMatching(/^reachable: InfluxDB 1\./) as unknown });
    expect(checks.find((c) => c.check === 'influxdb write')).toMatchObject({ status: 'warn', message: expect.stringContaining('does not exist yet') as unknown });
  });

  it('an existing database: ok lines, and the empty write stores nothing', async () => {
    await influxd.query(null, 'CREATE DATABASE earshot_doc');
    const r = await runCli(['doctor', '--source', 'stdin', '--influx-url', influxd.url, '--influx-db', 'earshot_doc']);
    expect(r.code).toBe(0);
    expect(lineOf(r.stdout, 'influxdb')).toMatch(/^ok {3}influxdb: reachable: InfluxDB 1\.\S+ at http:\/\/127\.0\.0\.1:\d+/);
    expect(lineOf(r.stdout, 'influxdb write')).toMatch(/^ok {3}influxdb write: database earshot_doc accepts writes from anonymous \(checked with an empty write: nothing stored\)/);
    const [measurements] = await influxd.query('earshot_doc', 'SHOW MEASUREMENTS');
    expect(measurements).toEqual([]);
  });
});
