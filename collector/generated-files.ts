/**
 * The generators' one job (`npm run dashboards`, `npm run schemas`, ...): write each generated file
 * under the project root, or with `--check` write nothing and say which are stale (exit code 1).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './paths.js';

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Writes (or checks, with `--check` in argv) `files`; `command` is what regenerates them. Returns the exit code. */
export function writeGenerated(files: Iterable<{ path: string; text: string }>, argv: readonly string[], command: string): number {
  const check = argv.includes('--check');
  const root = packageRoot();
  let stale = 0;
  for (const { path, text } of files) {
    if (readOrNull(join(root, path)) === text) continue;
    if (check) {
      console.error(`${path} is stale: run ${command}`);
      stale++;
    } else {
      writeFileSync(join(root, path), text);
      console.log(`wrote ${path}`);
    }
  }
  return stale > 0 ? 1 : 0;
}
