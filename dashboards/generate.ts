/**
 * `npm run dashboards`: writes deploy/grafana/dashboards/*.json and the alert rules' provisioning file
 * from dashboards/*.ts. With `--check` it writes nothing and exits 1 when a file is stale (the
 * test-suite checks the same).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from './index.js';

/** The project root: this runs as dist/dashboards/generate.js (npm run dashboards) or from dashboards/. */
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

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const root = projectRoot();
  let stale = 0;
  for (const { path, text } of generatedFiles()) {
    if (readOrNull(join(root, path)) === text) continue;
    if (check) {
      console.error(`${path} is stale: run npm run dashboards`);
      stale++;
    } else {
      writeFileSync(join(root, path), text);
      console.log(`wrote ${path}`);
    }
  }
  return stale > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
