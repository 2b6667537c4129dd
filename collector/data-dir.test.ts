import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, lockDataDir, sealJson, unsealJson } from './data-dir.js';
import { isEarshotError } from './errors.js';
import { canMount, Tmpfs } from '../test/helpers/tmpfs.js';

describe('sealed JSON', () => {
  const text = JSON.stringify({ version: 1, devices: { a: 1 } });
  const sealed = sealJson(text);

  it('gives back the text, and reads a file from before seals as it is', () => {
    expect(unsealJson(sealed)).toBe(text);
    expect(unsealJson(text)).toBe(text);
  });

  it('no single flipped byte passes unseal and parse: in the text, the digest, or the seal\'s own key', () => {
    for (let i = 0; i < sealed.length; i++) {
      const flipped = sealed.slice(0, i) + String.fromCharCode(sealed.charCodeAt(i) ^ 0x01) + sealed.slice(i + 1);
      // what a reader does: unseal, then parse; either step may refuse, neither may pass a changed file
      let read: unknown = null;
      try {
        read = JSON.parse(unsealJson(flipped));
      } catch {
        read = null;
      }
      expect(read, `byte ${i} (${JSON.stringify(sealed[i])})`).toBeNull();
    }
  });
});

describe('the data directory lock (earshot.pid)', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'earshot-lock-'));
    dirs.push(d);
    return d;
  };
  // what /proc says of a process, read here without earshot's code
  const boot = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const ticks = (pid: number) => { const s = readFileSync(`/proc/${pid}/stat`, 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' ')[19]; };
  const writeLock = (dir: string, holder: object) => writeFileSync(join(dir, LOCK_FILE), `${JSON.stringify(holder)}\n`);
  const held = (dir: string) => JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number };

  it('is taken, names this process, and goes at release', () => {
    const dir = newDir();
    const lock = lockDataDir(dir);
    expect(lock.warning).toBeNull();
    expect(held(dir)).toMatchObject({ pid: process.pid, boot: boot(), start: ticks(process.pid) });
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('held by another process that runs: refused with one line naming it; the lock stays that process\'s', () => {
    const dir = newDir();
    const other = spawn('sleep', ['30']);
    try {
      const pid = other.pid as number;
      writeLock(dir, { pid, boot: boot(), start: ticks(pid), sinceMs: Date.parse('2026-12-01T10:00:00Z') });
      let error: unknown = null;
      try {
        lockDataDir(dir);
      } catch (err) {
        error = err;
      }
      expect(isEarshotError(error) && error.code).toBe('EARSHOT_ERR_DATA_DIR_IN_USE');
      expect((error as Error).message).toBe(`${dir}: data directory in use by another earshot (PID ${pid}, since 2026-12-01T10:00:00.000Z): two runs on one data directory overwrite each other's spool and state; stop that one, or give this run a data directory of its own (--data-dir)`);
      expect(held(dir).pid).toBe(pid);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('left by a process gone, by a PID now another process\'s (another start time, another boot), or damaged: taken over', async () => {
    const gone = spawn('true');
    await new Promise((resolve) => gone.on('exit', resolve));
    const other = spawn('sleep', ['30']);
    try {
      const pid = other.pid as number;
      const stale = [
        { pid: gone.pid, boot: boot(), start: '1', sinceMs: 1 },
        { pid, boot: boot(), start: String(Number(ticks(pid)) - 1000), sinceMs: 1 },
        { pid, boot: '00000000-0000-0000-0000-000000000000', start: ticks(pid), sinceMs: 1 },
      ];
      for (const holder of stale) {
        const dir = newDir();
        writeLock(dir, holder);
        const lock = lockDataDir(dir);
        expect(held(dir).pid, JSON.stringify(holder)).toBe(process.pid);
        lock.release();
      }
      const dir = newDir();
      writeFileSync(join(dir, LOCK_FILE), '\u0000\u0001garbage');
      lockDataDir(dir).release();
      expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('on a full disk: the run goes on unlocked, with a warning, and leaves no empty lock behind', () => {
    if (!canMount()) throw new Error('this test mounts a tmpfs: run it as root (CI does)');
    const fs = Tmpfs.mount(64);
    try {
      fs.fill();
      const lock = lockDataDir(fs.dir);
      expect(lock.warning).toBe(`${fs.dir}: the disk is full: no lock (earshot.pid) is taken, and another earshot on this data directory would not be noticed`);
      expect(existsSync(join(fs.dir, LOCK_FILE))).toBe(false);
      lock.release();
    } finally {
      fs.unmount();
    }
  });

  it('release leaves a lock that another process has taken since', () => {
    const dir = newDir();
    const lock = lockDataDir(dir);
    writeLock(dir, { pid: 1, boot: boot(), start: ticks(1), sinceMs: 1 });
    lock.release();
    expect(held(dir).pid).toBe(1);
  });
});
