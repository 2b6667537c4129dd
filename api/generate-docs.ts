/**
 * `npm run schemas`: writes docs/report.schema.json and docs/openapi.json from the schemas (see
 * docs-files.ts). With `--check` it writes nothing and exits 1 when a file is stale (the test-suite
 * checks the same).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedDocFiles } from './docs-files.js';

/** The project root: this runs as dist/api/generate-docs.js (npm run schemas) or from api/. */
function projectRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(dirname(here)) === 'dist' ? resolve(here, '..', '..') : resolve(here, '..');
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

async function main(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const root = projectRoot();
  let stale = 0;
  for (const { path, text } of await generatedDocFiles()) {
    if (readOrNull(join(root, path)) === text) continue;
    if (check) {
      console.error(`${path} is stale: run npm run schemas`);
      stale++;
    } else {
      writeFileSync(join(root, path), text);
      console.log(`wrote ${path}`);
    }
  }
  return stale > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
