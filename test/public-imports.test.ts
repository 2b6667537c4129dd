/**
 * Packages are used through their public entry points only: a file deep inside a package (once
 * `influx/lib/src/backoff/backoff.js`, and `influx/lib/src/pool.js` with a cast) can move or change in
 * any minor release. A bare import with a subpath must be one the package's `exports` declares, or one
 * its documentation names (listed below with where).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from './helpers/shared.js';

/** Subpaths of packages without an `exports` map that their own documentation tells users to import. */
const DOCUMENTED: Record<string, string> = {
  // ajv.js.org/json-schema.html#draft-2020-12: import Ajv2020 from "ajv/dist/2020"
  'ajv/dist/2020.js': 'ajv documents it for JSON Schema draft 2020-12',
};

const FOLDERS = ['cli', 'collector', 'api', 'dashboards', 'bench', 'test', 'deploy', 'scripts'];
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)['"]([@\w][\w@./-]*)['"]/g;

function sources(dir: string, out: string[] = []): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name === 'fixtures') continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) sources(path, out);
    else if (/\.(ts|mts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The package name and subpath of a bare specifier ('@scope/pkg/a/b' -> ['@scope/pkg', './a/b']). */
function splitSpecifier(specifier: string): { name: string; subpath: string } | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return null;
  const parts = specifier.split('/');
  const nameParts = specifier.startsWith('@') ? 2 : 1;
  if (parts.length <= nameParts) return null;
  return { name: parts.slice(0, nameParts).join('/'), subpath: `./${parts.slice(nameParts).join('/')}` };
}

/** True when the package's `exports` map declares the subpath (as it is, or by a `*` pattern). */
function exported(name: string, subpath: string): boolean {
  let manifest: { exports?: unknown };
  try {
    manifest = JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { exports?: unknown };
  } catch {
    return false;
  }
  if (typeof manifest.exports !== 'object' || manifest.exports === null) return false;
  return Object.keys(manifest.exports).some((key) => {
    if (!key.includes('*')) return key === subpath;
    const [before, after] = key.split('*');
    return subpath.startsWith(before) && subpath.endsWith(after);
  });
}

/** The bare imports with a subpath that no `exports` map declares and no documentation names. */
function privateImports(files: string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(SPECIFIER)) {
      const specifier = match[1];
      const split = splitSpecifier(specifier);
      if (split === null || specifier in DOCUMENTED || exported(split.name, split.subpath)) continue;
      found.push(`${relative(PROJECT_ROOT, file)}: ${specifier}`);
    }
  }
  return found;
}

describe('packages are imported through their public entry points', () => {
  it('no source file imports a file inside a package that the package does not export', () => {
    // this file names private paths on purpose
    const self = fileURLToPath(import.meta.url);
    const files = FOLDERS.flatMap((f) => sources(join(PROJECT_ROOT, f))).filter((f) => f !== self);
    expect(files.length).toBeGreaterThan(100);
    expect(privateImports(files)).toEqual([]);
  });

  it('would catch the influx package\'s private files, also in a type-only import', () => {
    expect(splitSpecifier('influx/lib/src/pool.js')).toEqual({ name: 'influx', subpath: './lib/src/pool.js' });
    expect(exported('influx', './lib/src/backoff/backoff.js')).toBe(false);
    expect(exported('@sinclair/typebox', './value')).toBe(true);
    expect(exported('@grafana/grafana-foundation-sdk', './dashboard')).toBe(true);
    const text = "import type { IBackoffStrategy } from 'influx/lib/src/backoff/backoff.js';\nconst p = require('influx/lib/src/pool.js');";
    expect([...text.matchAll(SPECIFIER)].map((m) => m[1])).toEqual(['influx/lib/src/backoff/backoff.js', 'influx/lib/src/pool.js']);
  });
});
