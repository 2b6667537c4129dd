/**
 * Files that survive a power cut, seen from the kernel's side: the `earshot` executable run under
 * strace, every write of state.json, of an outbox delivery and of `earshot import voice-history`
 * output is fsynced under its temporary name, renamed over the target, and the directory fsynced
 * after the rename; a delivered alert's removal is followed by an fsync of its directory. Then the
 * reading side: an import output torn by a power cut is refused with the line, never read as fewer
 * events (the wake-event parser already refused these; pinned here). The strace part needs strace
 * (deploy/setup.sh installs it): missing, it fails in CI and is skipped with a message elsewhere.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readWakeEventsFile } from '../collector/detect/wake-events.js';
import { isEarshotError } from '../collector/errors.js';
import { EARSHOT_BIN } from './helpers/cli.js';
import { describeNeeding, PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';

const STRACE = spawnSync('strace', ['-V']).status === 0;
const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const VOICE_HISTORY = join(PROJECT_ROOT, 'test/fixtures/wake-events/voice-history-rvh.json');

/** Runs earshot under strace; returns its fsync, rename and unlink calls, fds shown as paths (-y). */
async function traced(args: string[]): Promise<string[]> {
  const out = join(tempDir('earshot-strace-'), 'trace');
  // asynchronously: the test's own receiver must answer while earshot runs
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('strace', ['-f', '-y', '-qq', '-o', out, '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat', process.execPath, EARSHOT_BIN, ...args], { cwd: PROJECT_ROOT, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', resolve);
  });
  expect(code).toBe(0);
  // strace -f splits calls across threads: "<unfinished ...>" and "<... resumed>" halves; keep whole calls
  return readFileSync(out, 'utf8').split('\n').map((l) => l.replace(/^\d+\s+/, '')).filter((l) => /^(fsync|fdatasync|rename|renameat2?|unlink|unlinkat)\(/.test(l));
}

/** Checks the durable-write pattern for `target`: fsync(tmp) < rename(tmp, target) < fsync(dir). */
function expectDurableWrite(calls: string[], target: string): void {
  const renamed = calls.findIndex((c) => c.includes(`"${target}"`) && /^rename/.test(c));
  expect(renamed, `rename to ${target}`).toBeGreaterThan(0);
  const tmp = /"([^"]+\.tmp-\d+)"/.exec(calls[renamed])?.[1] as string;
  expect(tmp, `a temporary name for ${target}`).toBeDefined();
  expect(calls.slice(0, renamed).some((c) => /^f(data)?sync\(\d+</.test(c) && c.includes(`<${tmp}>`)), `fsync of ${tmp} before its rename`).toBe(true);
  expect(calls.slice(renamed + 1).some((c) => /^fsync\(\d+</.test(c) && c.includes(`<${dirname(target)}>`)), `fsync of ${dirname(target)} after the rename`).toBe(true);
}

describeNeeding('durable writes, under strace', STRACE, 'strace is missing: apt-get install strace (deploy/setup.sh installs it)', () => {
  it('earshot import voice-history: the output file', async () => {
    const output = join(tempDir('earshot-import-'), 'wake.jsonl');
    expectDurableWrite(await traced(['import', 'voice-history', VOICE_HISTORY, '-o', output]), output);
  });

  it('a replay with a data directory: state.json, an outbox delivery, and its removal once delivered', async () => {
    const dataDir = tempDir('earshot-durable-run-');
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    let calls: string[];
    try {
      const hooks = JSON.stringify([{ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, on: 'all' }]);
      calls = await traced(['replay', CAPTURE, '--format', 'json', '--data-dir', dataDir, '--webhooks', hooks]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expectDurableWrite(calls, join(dataDir, 'state.json'));
    const outbox = join(dataDir, 'outbox', 'webhooks');
    const delivery = join(outbox, '000000000001.json');
    expectDurableWrite(calls, delivery);
    const removed = calls.findIndex((c) => /^unlink/.test(c) && c.includes(`"${delivery}"`));
    expect(removed, 'the delivered alert is removed').toBeGreaterThan(0);
    expect(calls.slice(removed + 1).some((c) => c.startsWith('fsync(') && c.includes(`<${outbox}>`)), 'fsync of the outbox after the removal').toBe(true);
    expect(existsSync(delivery)).toBe(false);
  });
});

describe('an import output torn by a power cut is refused, never read as fewer events', () => {
  const tears: Record<string, (path: string) => void> = {
    'truncated mid-line': (path) => truncateSync(path, readFileSync(path, 'utf8').lastIndexOf('"')),
    'zero-filled': (path) => writeFileSync(path, Buffer.alloc(readFileSync(path).length)),
    'NUL-padded': (path) => writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.alloc(4096)])),
  };
  for (const [kind, tear] of Object.entries(tears)) {
    it(kind, () => {
      const output = join(tempDir('earshot-import-'), 'wake.jsonl');
      execFileSync(process.execPath, [EARSHOT_BIN, 'import', 'voice-history', VOICE_HISTORY, '-o', output], { stdio: 'pipe' });
      expect(readWakeEventsFile(output)).toHaveLength(6);
      tear(output);
      let error: unknown = null;
      try {
        readWakeEventsFile(output);
      } catch (err) {
        error = err;
      }
      expect(isEarshotError(error) && error.code).toBe('EARSHOT_ERR_WAKE_EVENTS');
      expect((error as Error).message).toMatch(new RegExp(`^${output.replace(/[.]/g, '\\.')}:\\d+: `));
    });
  }
});
