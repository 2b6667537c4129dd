/** The generators' write-or-check: --check writes nothing and fails on a stale file; equal files pass. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeGenerated } from './generated-files.js';
import { packageRoot } from './paths.js';

afterEach(() => vi.restoreAllMocks());

describe('writeGenerated', () => {
  it('--check: 1 and one line naming the file and the command when it differs, nothing written; 0 when equal', () => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: string) => errors.push(line));
    const path = 'package.json';
    const before = readFileSync(join(packageRoot(), path), 'utf8');
    expect(writeGenerated([{ path, text: '{}' }], ['--check'], 'npm run x')).toBe(1);
    expect(errors).toEqual(['package.json is stale: run npm run x']);
    expect(readFileSync(join(packageRoot(), path), 'utf8')).toBe(before);
    expect(writeGenerated([{ path, text: before }], ['--check'], 'npm run x')).toBe(0);
  });
});
