import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS, earshotError } from './errors.js';
import { PROJECT_ROOT } from '../test/helpers/shared.js';

describe('coded errors', () => {
  it('every code is documented in docs/errors.md', () => {
    const doc = readFileSync(join(PROJECT_ROOT, 'docs/errors.md'), 'utf8');
    const missing = Object.keys(ERRORS).filter((code) => !doc.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });

  it('fills the message template and keeps the code and exit code', () => {
    const e = earshotError('EARSHOT_ERR_FILE_NOT_FOUND', 'x.pcap');
    expect(e.message).toBe('x.pcap: no such file');
    expect(e.code).toBe('EARSHOT_ERR_FILE_NOT_FOUND');
    expect(e.exitCode).toBe(2);
  });
});
