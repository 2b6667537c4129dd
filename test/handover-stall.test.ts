/**
 * The libpcap source with the API: the main thread holds the capture and hands its packets over to the
 * pipeline's thread in chunks, at most HANDOVER_MAX_IN_FLIGHT bytes in flight (collector/capture/handover.ts).
 * When the pipeline's thread stalls, the hand-over drops what it cannot hold and counts the drops with the
 * kernel's. Here the stall is real: the pipeline's thread (its id from the debug log) is pinned to one CPU
 * and a real-time busy loop takes that CPU while a UDP flood crosses the loopback (until it sent three
 * times what the hand-over holds); /health must say so
 * while it lasts, and the capture must go on afterwards.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HANDOVER_MAX_IN_FLIGHT } from '../collector/capture/handover.js';
import { EARSHOT_BIN } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { freePort, until } from './helpers/wait.js';

const root = process.getuid?.() === 0;
const haveTools = ['chrt', 'taskset'].every((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0);
const cpus = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
const dir = tempDir('earshot-handover-stall-');
if (!root || !haveTools || cpus < 2) console.warn('skipping the hand-over stall: it needs root, chrt and taskset (util-linux) and two CPUs');

interface Health { status: string; problems: string[]; capture: { packets: number; kernelDrops: number; running: boolean } }

describe.skipIf(!root || !haveTools || cpus < 2)('the pipeline\'s thread starved while libpcap captures', () => {
  it('the hand-over drops what it cannot hold, /health counts them and says degraded, and the capture goes on', async () => {
    const api = await freePort();
    const udp = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--interface', 'lo', '--filter', `udp port ${udp}`, '--listen', `127.0.0.1:${api}`,
      '--data-dir', join(dir, 'data'), '--log-level', 'debug', '--log-format', 'json', '--format', 'json', '--output', '/dev/null'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const health = async () => (await (await fetch(`http://127.0.0.1:${api}/api/v1/health`)).json()) as Health;
    const sender = createSocket('udp4');
    /** Sends 1,200-byte datagrams until `done(bytes sent)`; returns the bytes sent. */
    const flood = async (done: (bytes: number) => boolean) => {
      const payload = Buffer.alloc(1200);
      let sent = 0;
      while (!done(sent * 1200)) {
        for (let i = 0; i < 200; i++) sender.send(payload, udp, '127.0.0.1');
        sent += 200;
        await new Promise((r) => setImmediate(r));
      }
      return sent * 1200;
    };
    try {
      await until('the capture to open', () => stderr.includes('"capture open"'), 20_000);
      const started = stderr.split('\n').find((l) => l.includes('the pipeline thread started'));
      const tid = (JSON.parse(started!) as { tid: number }).tid;
      expect(tid).toBeGreaterThan(0);
      // every thread of earshot on CPU 0, the pipeline's on CPU 1, then a real-time loop takes CPU 1
      execFileSync('taskset', ['-a', '-p', '-c', '0', String(child.pid)], { stdio: 'ignore' });
      execFileSync('taskset', ['-p', '-c', '1', String(tid)], { stdio: 'ignore' });
      const before = await health();
      expect(before.capture.kernelDrops).toBe(0);
      // the loop holds the pipeline's CPU until the flood has sent three times what the hand-over holds
      // (on a busy machine that takes longer), 8 s at most
      const hog = spawn('chrt', ['-f', '50', 'taskset', '-c', '1', process.execPath, '-e', 'const end = Date.now() + 8000; while (Date.now() < end);'], { stdio: 'ignore' });
      let hogEnded = false;
      const hogDone = new Promise((resolve) => hog.on('close', resolve)).then(() => { hogEnded = true; });
      await new Promise((r) => setTimeout(r, 300));
      const sent = await flood((bytes) => hogEnded || bytes > 3 * HANDOVER_MAX_IN_FLIGHT);
      hog.kill('SIGKILL');
      await hogDone;
      expect(sent).toBeGreaterThan(2 * HANDOVER_MAX_IN_FLIGHT);
      // the pipeline's thread runs again: the drops reach /health (the main thread posts them once a second)
      let during: Health | null = null;
      await until('the drops in /health', async () => {
        during = await health();
        return during.capture.kernelDrops > 0;
      }, 20_000, 200);
      expect(during!.status).toBe('degraded');
      expect(during!.problems.join(' ')).toMatch(/drop/i);
      // the capture goes on: what comes after the stall is counted
      execFileSync('taskset', ['-a', '-p', '-c', `0-${cpus - 1}`, String(child.pid)], { stdio: 'ignore' });
      const packets = (await health()).capture.packets;
      for (let i = 0; i < 20; i++) sender.send(Buffer.alloc(100), udp, '127.0.0.1');
      await until('the packets after the stall', async () => (await health()).capture.packets >= packets + 20, 20_000, 200);
      // the log says the drops, once
      expect(stderr).toMatch(/"level":40[^\n]*drop/);
    } finally {
      sender.close();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 90_000);
});
