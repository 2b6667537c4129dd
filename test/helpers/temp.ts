/**
 * Temporary directories that a test file removes when it ends: `tempDir('earshot-x-')` makes one under
 * the system's temp directory, and the file's afterAll (registered when a test file imports this
 * helper) removes every one it made, whatever the tests left in them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new empty directory named `prefix` + random characters, removed after the test file. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
