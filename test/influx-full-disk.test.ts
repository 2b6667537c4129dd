/**
 * A full disk under the InfluxDB spool, on a real full file system (a small tmpfs this test mounts; it
 * needs root, as CI has) with a real influxd stopped and started again: nothing crashes, what the disk
 * refuses is held in memory within a bound (the oldest dropped and counted), /health and `earshot
 * doctor` say so, and once space returns and InfluxDB answers every point arrives, counted in influxd
 * against the lines the test gave (or tshark's packets), never against earshot's own counters.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { buildWriteClient } from '../collector/sink/influx/client.js';
import { Spool } from '../collector/sink/influx/spool.js';
import { InfluxWriter } from '../collector/sink/influx/writer.js';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { describeInflux, useInfluxd } from './helpers/influxd.js';
import { tsharkLanAnswered } from './helpers/influx-sums.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { canMount, Tmpfs } from './helpers/tmpfs.js';
import { tsharkFlows } from './helpers/tshark.js';
import { freePort, until, untilValue } from './helpers/wait.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const T0 = Date.now() - 3_600_000;

const disks: Tmpfs[] = [];

/** A fresh tmpfs of `sizeKB`, unmounted after the file. */
function mountTmpfs(sizeKB: number): Tmpfs {
  if (!canMount()) throw new Error('this test mounts a tmpfs: run it as root (CI does)');
  const disk = Tmpfs.mount(sizeKB);
  disks.push(disk);
  return disk;
}

afterAll(() => {
  for (const disk of disks.splice(0)) disk.unmount();
});

interface LogLine {
  level: number;
  msg: string;
}

function tsharkPackets(file: string): number {
  let packets = 0;
  for (const flow of tsharkFlows(file).values()) for (const d of flow.dirs.values()) packets += d.packets;
  return packets;
}

describeInflux('InfluxDB spool on a full disk (real tmpfs, real influxd)', () => {
  const server = useInfluxd();

  it('the writer: no throw on ENOSPC, batches held in memory and logged once, written to disk when space returns, all delivered when InfluxDB does', async () => {
    const db = `full${process.pid}_1`;
    await server.query(null, `CREATE DATABASE ${db}`);
    await server.stop();
    const disk = mountTmpfs(256);
    const mnt = disk.dir;
    const dir = join(mnt, 'spool', 'influx');
    const logs: LogLine[] = [];
    const log = pino({ level: 'info', base: undefined }, { write: (text: string) => { logs.push(JSON.parse(text) as LogLine); } });
    const spool = new Spool(dir, 100 * 1024 * 1024, { log });
    const client = buildWriteClient({ url: new URL(server.url), database: db, token: null, username: null, password: null, timeoutMs: 2000 });
    const writer = new InfluxWriter({ batchSize: 100, flushIntervalMs: 50, gzip: false, retentionPolicy: null, maxQueuedBatches: 4, retryMinMs: 50, retryMaxMs: 300 }, client, spool, log);
    let given = 0;
    const add = (n: number) => {
      for (let i = 0; i < n; i++, given++) writer.add(`m,run=full id=${given}i ${T0 + given}`);
    };
    // InfluxDB away: batches go to the spool on disk
    add(2000);
    await until('the writer to find InfluxDB away', () => writer.inOutage());
    await until('the batches to reach the spool', () => spool.stats.points === 2000 && !spool.stats.heldPoints);
    const onDisk = readdirSync(dir).length;
    // then the disk fills up
    disk.fill();
    add(4000);
    writer.flush();
    await until('the disk to refuse', () => spool.stats.heldPoints > 0);
    await until('every batch to be in the spool', () => writer.pending().points === 6000 && writer.pending().spooled === 6000);
    expect(spool.stats.writeError).toMatch(/disk full \(ENOSPC\)/);
    expect(spool.stats.writeErrors).toBeGreaterThan(1);
    expect(spool.stats.droppedPoints).toBe(0);
    // logged once, not once per batch
    expect(logs.filter((l) => /cannot write to/.test(l.msg))).toHaveLength(1);
    expect(readdirSync(dir).filter((n) => !n.includes('.tmp'))).toHaveLength(onDisk);

    // space returns: the held batches go to disk by themselves (the writer's retries), in order
    disk.free();
    await until('the held batches to be written to disk', () => spool.stats.heldPoints === 0, 10_000);
    expect(spool.stats.writeError).toBeNull();
    expect(readdirSync(dir)).toHaveLength(60);
    expect(logs.filter((l) => /the disk takes writes again;/.test(l.msg))).toHaveLength(1);

    // InfluxDB returns: every point arrives
    await server.start();
    const left = await writer.close(30_000);
    expect(left).toEqual({ points: 0, spooled: 0 });
    const [row] = await server.rows(db, 'SELECT count(id) AS n FROM m');
    expect(row.n).toBe(given);
    expect(readdirSync(dir)).toEqual([]);
  }, 90_000);

  it('held in memory beyond its bound, the oldest held batches are dropped and counted (logged once); the newest kept', () => {
    const disk = mountTmpfs(64);
    const mnt = disk.dir;
    disk.fill();
    const logs: LogLine[] = [];
    const log = pino({ level: 'info', base: undefined }, { write: (text: string) => { logs.push(JSON.parse(text) as LogLine); } });
    const spool = new Spool(join(mnt, 'spool'), 1e9, { log, maxHeldBytes: 10_000 });
    const body = (b: number) => Buffer.from(Array.from({ length: 10 }, (_, i) => `m id=${b * 10 + i}i ${T0 + i}`).join('\n').padEnd(3000, ' '));
    for (let b = 0; b < 10; b++) spool.push({ body: body(b), points: 10, gzip: false });
    expect(spool.stats).toMatchObject({ heldBatches: 3, heldPoints: 30, batches: 3, droppedPoints: 70 });
    expect(spool.peek()?.body).toEqual(body(7));
    expect(logs.filter((l) => /memory bound/.test(l.msg))).toHaveLength(1);
    // space returns: the held batches are written (the directory made if the full disk refused it at start)
    disk.free();
    expect(spool.writeHeld()).toBe(true);
    expect(readdirSync(join(mnt, 'spool')).sort()).toEqual(['000000000008-10.lp', '000000000009-10.lp', '000000000010-10.lp']);
    expect(spool.stats).toMatchObject({ heldBatches: 0, batches: 3, writeError: null });
  });

  it('earshot collect: a full data disk with InfluxDB down keeps capturing and serving; /health and doctor say so; it recovers and every packet is counted', async () => {
    const db = `full${process.pid}_2`;
    await server.stop();
    // above the 1 MiB /health calls full once the filler is gone
    const disk = mountTmpfs(4096);
    const mnt = disk.dir;
    const dataDir = join(mnt, 'data');
    mkdirSync(dataDir);
    const port = await freePort();
    const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--source', 'stdin', '--format', 'json', '--log-format', 'json',
      '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--influx-url', server.url, '--influx-db', db, '--influx-interval', '1'],
    { cwd: PROJECT_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.resume();
    child.stdin.on('error', () => {});
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let exitCode: number | null | undefined;
    void exited.then((c) => { exitCode = c; });
    const base = `http://127.0.0.1:${port}`;
    type Health = { status: string; problems: string[]; influx: Record<string, unknown> };
    const health = async (): Promise<Health | null> => {
      if (exitCode !== undefined) throw new Error(`earshot exited with ${exitCode}: ${stderr.slice(-2000)}`);
      try {
        const res = await fetch(`${base}/api/v1/health`);
        return res.ok ? (await res.json()) as Health : null;
      } catch {
        return null;
      }
    };
    try {
      await untilValue('the API', health, 20_000);
      disk.fill();
      child.stdin.write(readFileSync(CAPTURE));
      const full = await untilValue('/health to report the full disk', async () => {
        const h = await health();
        return h && h.status === 'degraded' && h.problems?.some((p) => /spool cannot write to disk \(disk full/.test(p)) && Number(h.influx.spoolHeldPoints) > 0 ? h : null;
      }, 30_000);
      expect(full.influx).toMatchObject({ reachable: false, spoolWriteError: 'disk full (ENOSPC)' });
      expect(full.problems).toContain('InfluxDB unreachable: points wait in the spool');

      const doctor = await runCli(['doctor', '--format', 'json', '--seconds', '1', '--data-dir', dataDir, '--influx-url', server.url]);
      const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ check: string; status: string; message: string }> }).checks;
      expect(checks.find((c) => c.check === 'data disk')).toMatchObject({ status: 'FAIL', message: expect.stringMatching(/does not take writes: ENOSPC/) });

      // the capture goes on meanwhile: every packet read
      await until('every packet to be read', async () => {
        const h = await fetch(`${base}/api/v1/health`).then((r) => r.json() as Promise<{ capture: { packets: number } }>);
        return h.capture.packets === 2778;
      });

      // the `collector` point is made once per interval (1 s here): the disk stays full for two more, so
      // that one of them records the held points whatever the phase of the ticks (the space came back
      // between two ticks, and the points never said so, once the API started ~0.2 s sooner)
      await new Promise((resolve) => setTimeout(resolve, 2100));
      // space returns, then InfluxDB: the state clears by itself and the spool empties
      disk.free();
      await untilValue('the held batches to reach the disk', async () => {
        const h = await health();
        return h && h.influx.spoolHeldPoints === 0 && h.influx.spoolWriteError === null ? h : null;
      }, 30_000);
      await server.start();
      await untilValue('/health to be ok again', async () => {
        const h = await health();
        return h && h.status === 'ok' && h.influx.spoolPoints === 0 ? h : null;
      }, 60_000);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const [sum] = await server.rows(db, 'SELECT sum(packets_up) + sum(packets_down) AS p FROM traffic');
    // every frame once, a LAN conversation's once more for the device that answered it
    expect(sum.p).toBe(tsharkPackets(CAPTURE) + tsharkLanAnswered(CAPTURE).packets);
    const [errors] = await server.rows(db, 'SELECT max(spool_write_errors) AS e, max(spool_held_points) AS h FROM collector');
    expect(Number(errors.e)).toBeGreaterThan(0);
    expect(Number(errors.h)).toBeGreaterThan(0);
    expect(stderr.match(/cannot write to/g)).toHaveLength(1);
  }, 180_000);
});
