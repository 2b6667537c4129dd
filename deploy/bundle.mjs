#!/usr/bin/env node
// Part of `npm run build`, after tsc: bundles earshot's compiled modules and its runtime dependencies
// into a few files in dist/collector/bin/ with esbuild. The `earshot` executable (dist/cli/
// main.js) runs the bundle when it is there and up to date: one file to load instead of ~90 modules and
// the ~40 files of the logger and the config schema's builder starts every command ~50 ms sooner. Only
// the dependencies every command loads are bundled (pino, TypeBox); the rest (the API server, MQTT,
// InfluxDB, YAML, the optional native capture package) load from node_modules when a command needs
// them, as they would without the bundle. Also writes dist/collector/bin/THIRD-PARTY-LICENSES.txt:
// each bundled package with its licence.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'collector', 'bin');
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('earshot build: esbuild is not installed (an install without dev dependencies): earshot runs from its modules');
  process.exit(0);
}
const entry = join(root, 'dist', 'cli', 'start.js');
// the pipeline's thread starts from its own file beside the bundle (cli/pipeline-thread.ts)
const workerEntry = join(root, 'dist', 'cli', 'pipeline-worker.js');
for (const file of [entry, workerEntry]) {
  if (!existsSync(file)) {
    console.error(`earshot build: ${relative(root, file)} is missing: run tsc -p tsconfig.build.json first`);
    process.exit(2);
  }
}
/** Dependencies every command loads: bundled. */
const BUNDLED = new Set(['pino', '@sinclair/typebox']);
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const external = Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies }).filter((name) => !BUNDLED.has(name));
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const result = await esbuild.build({
  entryPoints: [entry, workerEntry],
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir,
  external,
  // CommonJS dependencies inside an ES module bundle call require() for Node's own modules
  banner: { js: "import { createRequire as earshotCreateRequire } from 'node:module'; const require = earshotCreateRequire(import.meta.url);" },
  legalComments: 'inline',
  metafile: true,
  logLevel: 'warning',
});

// the packages the bundle holds, with their licences
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (match) packages.set(match[1], join(root, input.slice(0, match.index + match[0].length)));
}
const sections = [...packages].sort(([a], [b]) => a.localeCompare(b)).map(([name, dir]) => {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const licenceFile = readdirSync(dir).find((f) => /^(licen[sc]e|copying)(\.(md|txt))?$/i.test(f));
  const text = licenceFile ? readFileSync(join(dir, licenceFile), 'utf8').trim() : '(no licence file in the package)';
  return `${name}@${pkg.version} (${pkg.license ?? 'licence not stated'})${pkg.homepage ? ` ${pkg.homepage}` : ''}\n\n${text}\n`;
});
writeFileSync(join(outdir, 'THIRD-PARTY-LICENSES.txt'),
  `The earshot bundle in this directory (deploy/bundle.mjs) holds code of these ${sections.length} packages:\n\n${sections.join(`\n${'-'.repeat(72)}\n\n`)}`);
