/**
 * Where earshot's own files are: the project (or installed package) root, found once by walking up
 * from this module to package.json, so data files resolve the same from sources (tests) and dist/.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

/** The directory holding earshot's package.json. */
export function packageRoot(): string {
  if (root !== null) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('earshot: package.json not found above collector/');
    dir = parent;
  }
  root = dir;
  return dir;
}

/** A path inside the package, e.g. packagePath('collector/tag/catalog'). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
