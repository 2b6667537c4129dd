/**
 * -o: the report, imported wake events and exports are written whole or not at all, through links and
 * into devices, and never over what the command reads. Found by an audit as a careless (or hostile) user:
 * `replay x.pcap -o x.pcap` replaced the capture with its report (exit 0); `import -o` and `export -o`
 * renamed a regular file over a device (as root, `-o /dev/null` would have replaced /dev/null) or a link;
 * `replay -o` on a full disk destroyed the previous report and left a cut-off one.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, copyFileSync, existsSync, lstatSync, openSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { canMount, Tmpfs } from './helpers/tmpfs.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const HISTORY = join(PROJECT_ROOT, 'test/fixtures/wake-events/voice-history-rvh.json');
const dir = tempDir('earshot-cli-output-');
const original = readFileSync(CAPTURE);

/** The one line and exit code of a refused run. */
async function refused(args: string[]): Promise<string> {
  const result = await runCli(args);
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  return result.stderr.trim();
}

describe('-o never names what the command reads', () => {
  it('the capture (also through a link), the config file, the wake events, the import\'s input, the salt: one line, exit 2, the file intact', async () => {
    const capture = join(dir, 'victim.pcapng');
    copyFileSync(CAPTURE, capture);
    expect(await refused(['replay', capture, '--format', 'json', '-o', capture]))
      .toBe(`earshot: -o ${capture}: is the input file, which this command reads: writing there would destroy it (choose another file)`);
    const link = join(dir, 'report-link.json');
    symlinkSync(capture, link);
    expect(await refused(['replay', capture, '-o', link])).toContain(`-o ${link}: is the input file`);
    expect(await refused(['collect', '--file', capture, '--exit-when-done', '--api', 'false', '-o', capture])).toContain('is the capture file (--file)');
    const config = join(dir, 'keep.yaml');
    writeFileSync(config, 'flows: {maxFlows: 5000}\n');
    expect(await refused(['replay', capture, '-c', config, '-o', config])).toContain('is the config file');
    const wake = join(dir, 'wake.jsonl');
    writeFileSync(wake, '{"time":"2019-11-16T08:47:06Z"}\n');
    expect(await refused(['replay', capture, '--wake-events', wake, '-o', wake])).toContain('is the wake-events file (detect.wakeEvents)');
    const history = join(dir, 'history.json');
    copyFileSync(HISTORY, history);
    expect(await refused(['import', 'voice-history', history, '-o', history])).toContain('is the input file');
    const salt = join(dir, 'salt.txt');
    writeFileSync(salt, 'a-study-salt-of-32-characters-xx\n');
    // refused before InfluxDB is asked anything (none listens there)
    expect(await refused(['export', '--since', '7d', '--salt-file', salt, '--influx-url', 'http://127.0.0.1:9', '-o', salt])).toContain('is the salt file (--salt-file)');
    expect(readFileSync(capture).equals(original)).toBe(true);
    expect(readFileSync(config, 'utf8')).toBe('flows: {maxFlows: 5000}\n');
    expect(readFileSync(wake, 'utf8')).toBe('{"time":"2019-11-16T08:47:06Z"}\n');
    expect(readFileSync(history).equals(readFileSync(HISTORY))).toBe(true);
    expect(readFileSync(salt, 'utf8')).toBe('a-study-salt-of-32-characters-xx\n');
  });
});

describe('-o writes through links and into devices, never replacing them', () => {
  it('a link stays a link and the file it names gets the output; a FIFO stays a FIFO and its reader gets the output', async () => {
    for (const command of [['replay', CAPTURE, '--format', 'json'], ['import', 'voice-history', HISTORY]]) {
      const name = command[0];
      const link = join(dir, `${name}-link.out`);
      symlinkSync(`${name}-target.out`, link);
      const viaLink = await runCli([...command, '-o', link]);
      expect(viaLink.code, viaLink.stderr).toBe(0);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readlinkSync(link)).toBe(`${name}-target.out`);
      const written = readFileSync(join(dir, `${name}-target.out`), 'utf8');
      expect(written.length).toBeGreaterThan(100);

      const fifo = join(dir, `${name}.fifo`);
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
      let read = '';
      reader.stdout.on('data', (d: Buffer) => { read += d.toString(); });
      const readerDone = new Promise((resolve) => reader.on('close', resolve));
      const intoFifo = await runCli([...command, '-o', fifo]);
      await readerDone;
      expect(intoFifo.code, intoFifo.stderr).toBe(0);
      expect(lstatSync(fifo).isFIFO()).toBe(true);
      expect(read).toBe(written);
    }
  });
});

describe('-o into a FIFO that nobody reads yet', () => {
  /** Starts `args` and resolves once it said on stderr that it waits for a reader. */
  function startWaiting(args: string[]) {
    const child = spawn(process.execPath, [EARSHOT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const waiting = new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('nobody reads yet: waiting for a reader')) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { child, waiting, exited, stderr: () => stderr };
  }

  it('waits for a reader, which gets the whole output; SIGTERM or SIGINT while it waits ends it with one line (open() was deaf to both: only SIGKILL ended it)', async () => {
    const commands = [
      ['replay', CAPTURE, '--format', 'json'],
      ['import', 'voice-history', HISTORY],
      // the report written by the pipeline's thread, which gets the signals the main thread forwards
      ['collect', '--file', CAPTURE, '--exit-when-done', '--listen', '127.0.0.1:0', '--format', 'json', '--log-level', 'warn'],
    ];
    for (const command of commands) {
      const name = command[0];
      const expected = await runCli(command);
      expect(expected.code, expected.stderr).toBe(0);
      const fifo = join(dir, `${name}-late.fifo`);
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      const run = startWaiting([...command, '-o', fifo]);
      await run.waiting;
      // a reader comes later
      const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
      let read = '';
      reader.stdout.on('data', (d: Buffer) => { read += d.toString(); });
      const readerDone = new Promise((resolve) => reader.on('close', resolve));
      expect(await run.exited, run.stderr()).toBe(0);
      await readerDone;
      expect(read).toBe(expected.stdout);

      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        const stopped = startWaiting([...command, '-o', fifo]);
        await stopped.waiting;
        const sentMs = Date.now();
        stopped.child.kill(signal);
        expect(await stopped.exited, stopped.stderr()).toBe(2);
        expect(Date.now() - sentMs).toBeLessThan(5_000);
        // the last line says why it stopped (before it: the log's, or import's own line that it waits)
        expect(stopped.stderr().trim().split('\n').at(-1)).toBe(`earshot: ${fifo}: cannot write: a FIFO that nobody read: stopped by ${signal} while waiting for a reader`);
        expect(lstatSync(fifo).isFIFO()).toBe(true);
      }
    }
  });
});

describe('-o -', () => {
  it('is standard output, as for import and export (replay wrote a file named "-")', async () => {
    const r = await runCli(['replay', CAPTURE, '--format', 'json', '-o', '-']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { capture: { packets: number } }).capture.packets).toBeGreaterThan(0);
    expect(existsSync(join(PROJECT_ROOT, '-'))).toBe(false);
  });

  it('standard output that cannot be written (a full device) is one line, exit 2, and says "cannot write" (it said "cannot read")', () => {
    const full = openSync('/dev/full', 'w');
    try {
      const r = spawnSync(process.execPath, [EARSHOT_BIN, 'replay', CAPTURE, '--format', 'json'], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr.trim()).toMatch(/^earshot: stdout: cannot write: ENOSPC: no space left on device, write$/);
    } finally {
      closeSync(full);
    }
  });
});

describe('-o on a full disk', () => {
  const mounted: Tmpfs[] = [];
  afterAll(() => mounted.forEach((m) => m.unmount()));

  it('keeps the report that was there and leaves no temporary file: one line, exit 2', async () => {
    if (!canMount()) throw new Error('this test mounts a tmpfs: run it as root (CI does)');
    const fs = Tmpfs.mount(64);
    mounted.push(fs);
    const report = join(fs.dir, 'report.json');
    writeFileSync(report, '{"an":"earlier report"}\n');
    fs.fill();
    const result = await runCli(['replay', CAPTURE, '--format', 'json', '-o', report]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toMatch(new RegExp(`^earshot: ${report}: cannot write: no space left on device$`));
    expect(readFileSync(report, 'utf8')).toBe('{"an":"earlier report"}\n');
    expect(spawnSync('ls', ['-A', fs.dir], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).sort()).toEqual(['.filler', 'report.json']);
  });
});

describe('-o over an existing file', () => {
  it('keeps its owner and mode (a replaced report was 0644 and root\'s)', async () => {
    const report = join(dir, 'kept-mode.json');
    writeFileSync(report, 'old\n');
    chmodSync(report, 0o640);
    // root may give the file away; the replaced file keeps the old owner
    chownSync(report, 4321, 4322);
    const r = await runCli(['replay', CAPTURE, '--format', 'json', '-o', report]);
    expect(r.code, r.stderr).toBe(0);
    const st = statSync(report);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, 4321, 4322]);
    expect(JSON.parse(readFileSync(report, 'utf8')).capture.packets).toBeGreaterThan(0);
  });

  it('removes the temporary file a killed writer left beside it (its process gone); a live one\'s stays', async () => {
    const report = join(dir, 'left-behind.json');
    // a pid that is no process: above the kernel's pid_max
    const dead = `${report}.tmp-4194305`;
    const live = `${report}.tmp-${process.pid}`;
    writeFileSync(dead, 'half a report');
    writeFileSync(live, 'being written');
    const r = await runCli(['replay', CAPTURE, '--format', 'json', '-o', report]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });
});
