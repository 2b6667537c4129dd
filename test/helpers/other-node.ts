/**
 * Another Node.js build than the one running the tests, for what earshot does under a Node it was not
 * built with: the official binary of `version` as the npm registry has it (the `node-<platform>-<arch>`
 * package, ~42 MB), fetched once into node_modules/.cache/earshot-test-node/ (the registry is the one
 * `npm ci` installs from). Two test files asking at once each unpack into a directory of their own
 * and the first rename wins.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './shared.js';

/** The path of the `node` executable of Node.js `version` (e.g. "20.19.0"). */
export function otherNode(version: string): string {
  const root = join(PROJECT_ROOT, 'node_modules', '.cache', 'earshot-test-node');
  const dir = join(root, version);
  const bin = join(dir, 'package', 'bin', 'node');
  if (existsSync(bin)) return bin;
  const work = join(root, `${version}.${process.pid}.tmp`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    execFileSync('npm', ['pack', `node-${process.platform}-${process.arch}@${version}`, '--pack-destination', work, '--silent'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack node-${process.platform}-${process.arch}@${version} left no tarball`);
    execFileSync('tar', ['xzf', join(work, tarball), '-C', work]);
    rmSync(join(work, tarball));
    try {
      renameSync(work, dir);
    } catch (err) {
      // another test file unpacked it first
      if (!existsSync(bin)) throw err;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}
