/**
 * The API token from each of its sources, through the real `earshot collect --file` executable: a token
 * shorter than 16 bytes (flag, EARSHOT_API_TOKEN, the config file, api.tokenFile, or a damaged
 * DATA_DIR/api-token such as the 0-byte file a start that died mid-write leaves) refuses the start with
 * exit 2 and one line naming where it came from; a generated token is kept with mode 0600; and a fuzzed
 * token file (random bytes, truncations, NUL padding) never crashes a start with a stack trace.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../collector/config.js';
import { EarshotError } from '../collector/errors.js';
import { resolveToken } from '../api/server.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { canMount } from './helpers/tmpfs.js';

// the smallest bundled capture: a start that works exits 0 at its end (--exit-when-done)
const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/sonos_local-tls_ndpi.pcapng');

const collect = (extra: string[], env: Record<string, string> = {}) =>
  runCli(['collect', '--file', CAPTURE, '--listen', '127.0.0.1:0', '--exit-when-done', '--format', 'json', '--log-level', 'warn', ...extra], { env: { EARSHOT_API_TOKEN: '', ...env } });

/** Exit 2 and exactly one line on stderr (no stack trace), matching `pattern`. */
function expectRefused(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('API token sources (earshot collect --file)', () => {
  it('a 0-byte DATA_DIR/api-token (a start that died writing it) refuses the start and says to delete it', async () => {
    const dataDir = tempDir('earshot-token-');
    writeFileSync(join(dataDir, 'api-token'), '');
    const result = await collect(['--data-dir', dataDir]);
    expectRefused(result, /api-token: .*0 bytes.*delete the file/);
  });

  it('a short or NUL-padded DATA_DIR/api-token refuses the start too', async () => {
    for (const content of ['abc\n', '\0'.repeat(32), 'abcdefgh\0\0\0\0\0\0\0\0\0\0\0\0']) {
      const dataDir = tempDir('earshot-token-');
      writeFileSync(join(dataDir, 'api-token'), content);
      expectRefused(await collect(['--data-dir', dataDir]), /api-token: .*delete the file/);
    }
  });

  it('a token shorter than 16 bytes from the flag, the environment, the config file or api.tokenFile refuses the start, naming its source', async () => {
    const short = 'fifteen-bytes-x';
    expect(Buffer.byteLength(short)).toBe(15);
    expectRefused(await collect(['--api-token', short]), /^earshot: --api-token: .*15 bytes.*at least 16/);
    expectRefused(await collect([], { EARSHOT_API_TOKEN: short }), /^earshot: EARSHOT_API_TOKEN: .*15 bytes.*at least 16/);
    const dir = tempDir('earshot-token-');
    const config = join(dir, 'earshot.yaml');
    writeFileSync(config, `api:\n  token: "${short}"\n`);
    expectRefused(await collect(['--config', config]), new RegExp(`^earshot: ${config}: api\\.token: .*15 bytes.*at least 16`));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${short}\n`);
    expectRefused(await collect(['--api-token-file', tokenFile]), new RegExp(`^earshot: ${tokenFile}: .*15 bytes.*at least 16`));
    // an empty file and a missing one: one line each
    writeFileSync(tokenFile, '');
    expectRefused(await collect(['--api-token-file', tokenFile]), new RegExp(`^earshot: ${tokenFile}: .*0 bytes`));
    expectRefused(await collect(['--api-token-file', join(dir, 'missing')]), /no such file/);
  }, 60_000);

  it('a generated token is 16 bytes or more, kept with mode 0600 and no temporary file left, and read again by the next start', async () => {
    const dataDir = tempDir('earshot-token-');
    const first = await collect(['--data-dir', dataDir]);
    expect(first.code, first.stderr).toBe(0);
    const file = join(dataDir, 'api-token');
    const token = readFileSync(file, 'utf8').trim();
    expect(Buffer.byteLength(token)).toBeGreaterThanOrEqual(16);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dataDir).filter((f) => f.startsWith('api-token'))).toEqual(['api-token']);
    const second = await collect(['--data-dir', dataDir]);
    expect(second.code, second.stderr).toBe(0);
    expect(readFileSync(file, 'utf8').trim()).toBe(token);
  });
});

describe('API token on a full disk', () => {
  it('a token that cannot be kept (a real full tmpfs) is warned about, POSTs are refused, nothing half-written is left', () => {
    if (!canMount()) throw new Error('this test mounts a tmpfs: run it as root (CI does)');
    const dataDir = tempDir('earshot-token-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', dataDir]);
    try {
      // fill it to the last byte
      try {
        for (let i = 0; ; i++) writeFileSync(join(dataDir, `fill-${i}`), Buffer.alloc(4096, 1));
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      }
      const warnings: string[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
      expect(resolveToken(loadConfig({}).api, dataDir, log)).toBeNull();
      expect(warnings.join('')).toMatch(/cannot keep a generated API token in .*api-token \(ENOSPC\): POST routes are refused/);
      expect(readdirSync(dataDir).filter((f) => f.startsWith('api-token'))).toEqual([]);
    } finally {
      execFileSync('umount', [dataDir]);
    }
  });
});

describe('API token file fuzzing', () => {
  const log = pino({ level: 'silent' });
  const api = (over: Partial<ReturnType<typeof loadConfig>['api']> = {}) => ({ ...loadConfig({}).api, ...over });

  /** What a start does with `content` in DATA_DIR/api-token: a token of 16 bytes or more, or one coded error of one line. */
  function outcome(dataDir: string): { token: string } | { error: string } {
    try {
      const token = resolveToken(api(), dataDir, log);
      return { token: token ?? '' };
    } catch (err) {
      if (!(err instanceof EarshotError)) throw err;
      return { error: err.message };
    }
  }

  it('random bytes, truncations and NUL padding of DATA_DIR/api-token: a valid token or one coded line, never a crash (in-process, 2,000 cases)', () => {
    const dataDir = tempDir('earshot-token-fuzz-');
    const good = `${randomBytes(24).toString('base64url')}\n`;
    const contents = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.nat({ max: good.length }).map((n) => Buffer.from(good.slice(0, n))),
      fc.tuple(fc.nat({ max: good.length }), fc.nat({ max: 64 })).map(([n, pad]) => Buffer.concat([Buffer.from(good.slice(0, n)), Buffer.alloc(pad)])),
      fc.tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
        const b = Buffer.from(good);
        b[at] = byte;
        return b;
      }),
    );
    fc.assert(fc.property(contents, (content) => {
      writeFileSync(join(dataDir, 'api-token'), content);
      const result = outcome(dataDir);
      if ('token' in result) {
        expect(Buffer.byteLength(result.token)).toBeGreaterThanOrEqual(16);
        // what a client can send in a header: printable ASCII, nothing to trim
        expect(result.token).toMatch(/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/);
      } else {
        expect(result.error).not.toContain('\n');
        expect(result.error).toMatch(/api-token: .*delete the file/);
      }
    }), { numRuns: 2000, seed: 14 });
  });

  it('through the executable: random token files end in exit 2 with one line, or a start with a valid token (12 cases)', async () => {
    const cases = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 16, maxLength: 40 }).map((b) => Buffer.from(Buffer.from(b).toString('base64url')))), { numRuns: 12, seed: 14 });
    for (const content of cases) {
      const dataDir = tempDir('earshot-token-fuzz-');
      const file = join(dataDir, 'api-token');
      writeFileSync(file, content);
      const result = await collect(['--data-dir', dataDir]);
      expect(result.stderr).not.toMatch(/\n\s+at |internal error/);
      if (result.code === 0) {
        expect(existsSync(file)).toBe(true);
        expect(Buffer.byteLength(readFileSync(file, 'utf8').trim())).toBeGreaterThanOrEqual(16);
      } else {
        expectRefused(result, /api-token: .*delete the file/);
      }
    }
  }, 120_000);
});
