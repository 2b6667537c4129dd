import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers/temp.js';
import { isDiskFull, quarantine, removeFile, writeFileAtomic } from './durable.js';

describe('writeFileAtomic', () => {
  it('writes the whole file with its mode and leaves no temporary file', () => {
    const dir = tempDir('earshot-durable-');
    const path = join(dir, 'token');
    writeFileAtomic(path, 'secret\n', { mode: 0o600 });
    expect(readFileSync(path, 'utf8')).toBe('secret\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    writeFileAtomic(path, Buffer.from('second'));
    expect(readFileSync(path, 'utf8')).toBe('second');
    expect(readdirSync(dir)).toEqual(['token']);
  });

  it('keeps the old file and removes the temporary one when the write fails', () => {
    const dir = tempDir('earshot-durable-');
    const path = join(dir, 'state.json');
    writeFileAtomic(path, '{"old":true}');
    // a directory where the temporary file would go makes the open fail (EISDIR)
    mkdirSync(`${path}.tmp-${process.pid}`);
    expect(() => writeFileAtomic(path, '{"new":true}')).toThrow();
    expect(readFileSync(path, 'utf8')).toBe('{"old":true}');
  });
});

describe('quarantine and removeFile', () => {
  it('moves a damaged file aside under a name that says so', () => {
    const dir = tempDir('earshot-durable-');
    const path = join(dir, 'batch.lp');
    writeFileSync(path, 'x');
    const aside = quarantine(path, null, 1234);
    expect(aside).toBe(`${path}.damaged-1234`);
    expect(existsSync(path)).toBe(false);
    expect(readFileSync(aside as string, 'utf8')).toBe('x');
    removeFile(aside as string);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('tells a full disk from other errors', () => {
    expect(isDiskFull(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe(true);
    expect(isDiskFull(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe(false);
    expect(isDiskFull(null)).toBe(false);
  });
});
