/**
 * The data directory through the `earshot` executable: a place where no directory can be made
 * (/proc, /sys, below a file) fails at once with exit 2 and one line, instead of hanging in node's
 * recursive mkdir; a run leaves no probe (`.write-test*`) or temporary (`*.tmp-PID`) file behind, and
 * a start removes those a killed run left.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TMP_SUFFIX } from '../collector/durable.js';
import { runCli } from './helpers/cli.js';
import { startCollect } from './helpers/collect.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { canMount, Tmpfs } from './helpers/tmpfs.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');

/** Every path under `dir`, relative to it. */
function walk(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? [relative(base, path), ...walk(path, base)] : [relative(base, path)];
  });
}

describe('a data directory that cannot be made', () => {
  const file = join(tempDir('earshot-datadir-'), 'a-file');
  writeFileSync(file, 'x');
  for (const where of ['/proc/earshot', '/proc/earshot/deeper', '/sys/earshot', join(file, 'sub'), file]) {
    it(`--data-dir ${where.startsWith('/tmp') ? where.replace(/.*earshot-datadir-[^/]+/, '<tmp>') : where}: exit 2 at once, one line naming it`, async () => {
      const began = Date.now();
      const r = await runCli(['replay', CAPTURE, '--data-dir', where], { timeoutMs: 15_000 });
      expect(Date.now() - began).toBeLessThan(10_000);
      expect(r.code).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`${where}: data directory is not usable`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }
});

describe('a data directory another user owns', () => {
  const root = process.getuid?.() === 0;
  if (!root) console.warn('skipping the data directory of another user: it needs root to run earshot as nobody (setpriv)');
  it.skipIf(!root)('says so for the user earshot runs as, with the command that makes it theirs; the command works', async () => {
    const parent = tempDir('earshot-datadir-owner-');
    chmodSync(parent, 0o755);
    // a name the shell would split: the command quotes it
    const dir = join(parent, 'earshot data');
    const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    const r = await runCli(['replay', CAPTURE, '--data-dir', dir, '-o', '/dev/null'], { prefix: asNobody, timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    // before: "EACCES: permission denied, mkdir '...'"
    const command = `sudo install -d -o nobody '${dir}'`;
    expect(r.stderr).toBe(`earshot: ${dir}: data directory is not usable: permission denied for nobody (uid 65534); make it theirs: ${command}\n`);
    // what it says to run, run by a shell as it stands (as root here, without sudo), makes the run work
    execFileSync('sh', ['-c', command.replace(/^sudo /, '')]);
    const again = await runCli(['replay', CAPTURE, '--data-dir', dir, '-o', '/dev/null'], { prefix: asNobody, timeoutMs: 30_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(readdirSync(dir)).toContain('state.json');
  }, 60_000);
});

describe('temporary files in the data directory', () => {
  it('a run leaves none, and removes those a killed run left', async () => {
    const dataDir = tempDir('earshot-leftovers-');
    // a PID that ran and is gone: what a killed earshot leaves
    const gone = spawnSync(process.execPath, ['-e', '0']).pid as number;
    const outbox = join(dataDir, 'outbox', 'webhooks');
    mkdirSync(outbox, { recursive: true });
    const leftovers = ['.write-test', `.write-test-${gone}`, `state.json.tmp-${gone}`, join('outbox', 'webhooks', `000000000007.json.tmp-${gone}`), join('outbox', 'webhooks', '000000000008.json.tmp')];
    for (const name of leftovers) writeFileSync(join(dataDir, name), '{"half":');
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const hooks = JSON.stringify([{ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, on: 'all' }]);
      const r = await runCli(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir, '--webhooks', hooks]);
      expect(r.code).toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    const after = walk(dataDir);
    expect(after).toContain('state.json');
    expect(after.filter((p) => /(^|\/)\.write-test/.test(p) || TMP_SUFFIX.test(p))).toEqual([]);
  });
});

describe('one earshot per data directory', () => {
  // two runs on one directory numbered their spool batches alike and renamed them over each other (two
  // paced collects with InfluxDB away kept 33 of their 66 points) and overwrote each other's state
  it('a second run refuses with one line naming the first (which keeps its directory); a killed run\'s lock is taken over', async () => {
    const dataDir = tempDir('earshot-lock-');
    const first = await startCollect(CAPTURE, ['--data-dir', dataDir, '--realtime-speed', '1']);
    try {
      const lock = JSON.parse(readFileSync(join(dataDir, 'earshot.pid'), 'utf8')) as { pid: number };
      expect(lock.pid).toBe(first.pid);
      const before = walk(dataDir).sort();
      for (const args of [['replay', CAPTURE], ['collect', '--file', CAPTURE, '--exit-when-done', '--api', 'false']]) {
        const second = await runCli([...args, '--format', 'json', '--data-dir', dataDir]);
        expect(second.code).toBe(2);
        expect(second.stderr.trim().split('\n')).toHaveLength(1);
        expect(second.stderr.trim()).toMatch(new RegExp(`^earshot: ${dataDir}: data directory in use by another earshot \\(PID ${first.pid}, since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\): `));
      }
      // nothing of the refused runs was written there
      expect(walk(dataDir).sort()).toEqual(before);
    } finally {
      // a crash: the lock stays behind, naming a process that is gone
      expect(await first.kill('SIGKILL')).toBe('SIGKILL');
    }
    expect(readdirSync(dataDir)).toContain('earshot.pid');
    const next = await runCli(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir]);
    expect(next.code, next.stderr).toBe(0);
    expect(readdirSync(dataDir)).not.toContain('earshot.pid');
  }, 60_000);
});

describe('a data directory on a full disk', () => {
  it('a run whose state file cannot be written warns and ends well; the last saved state stays', async () => {
    if (!canMount()) throw new Error('this test mounts a tmpfs: run it as root (CI does)');
    const disk = Tmpfs.mount(256);
    try {
      const dataDir = join(disk.dir, 'data');
      const first = await runCli(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir]);
      expect(first.code, first.stderr).toBe(0);
      const saved = readFileSync(join(dataDir, 'state.json'), 'utf8');
      disk.fill();
      // before: exit 2, "cannot write state.json: ENOSPC", and the report of a finished run lost
      const r = await runCli(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir, '--log-format', 'text']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).capture.packets).toBeGreaterThan(0);
      expect(r.stderr).toMatch(/cannot write state\.json.*ENOSPC.*the last saved state is kept/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(readFileSync(join(dataDir, 'state.json'), 'utf8')).toBe(saved);
      expect(walk(dataDir).filter((p) => TMP_SUFFIX.test(p))).toEqual([]);
    } finally {
      disk.unmount();
    }
  });
});

describe('/health on a full data disk', () => {
  it('says degraded and why while the disk is full, ok once there is room, with no InfluxDB involved', async () => {
    if (!canMount()) throw new Error('this test mounts a tmpfs: run it as root (CI does)');
    const disk = Tmpfs.mount(2048);
    const run = await startCollect(CAPTURE, ['--data-dir', join(disk.dir, 'data'), '--api-token', 'health-disk-token-0123456789']);
    try {
      const healthNow = async () => (await (await fetch(`${run.base}/api/v1/health`)).json()) as { status: string; problems: string[]; dataDisk: { freeBytes: number } };
      expect((await healthNow()).status).toBe('ok');
      disk.fill();
      // before: "ok" (only the InfluxDB spool reported a disk), while alerts and labels could not be kept
      const full = await healthNow();
      expect(full.status).toBe('degraded');
      expect(full.problems).toEqual([expect.stringMatching(/^the data disk is full \(\d+ bytes free in .*\/data\)/)]);
      expect(full.dataDisk.freeBytes).toBeLessThan(1024 * 1024);
      expect(await (await fetch(`${run.base}/metrics`)).text()).toMatch(/^earshot_data_disk_free_bytes \d+$/m);
      disk.free();
      expect((await healthNow()).status).toBe('ok');
    } finally {
      await run.stop();
      disk.unmount();
    }
  });
});

describe('a damaged state.json with readable rows', () => {
  it('is replaced at start by what could be read (a copy of the damaged one kept); the next start reads it clean', async () => {
    const dataDir = tempDir('earshot-state-fix-');
    expect((await runCli(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir])).code).toBe(0);
    const path = join(dataDir, 'state.json');
    // one changed character in a MAC keeps it JSON: only the checksum tells
    writeFileSync(path, readFileSync(path, 'utf8').replace('68:db:f5:90:19:64', '68:db:f5:90:19:65'));
    const second = await runCli(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir, '--log-format', 'text']);
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/state\.json is damaged \(checksum mismatch.*a copy kept as .*state\.json\.damaged-\d+, the readable rows were kept/);
    const third = await runCli(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir, '--log-format', 'text']);
    expect(third.code).toBe(0);
    expect(third.stderr).not.toMatch(/damaged/);
  });
});
