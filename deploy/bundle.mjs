#!/usr/bin/env node
// Part of `npm run build`, after tsc: bundles earshot's compiled modules and its runtime dependencies
// into dist/collector/bin/ with esbuild. The `earshot` executable (dist/cli/main.js) runs the bundle
// when it is there and up to date: one file to load instead of ~90 modules and the ~40 files of the
// logger and the config schema's builder starts every command ~50 ms sooner. The bundle is one
// CommonJS file (start.cjs) run by a small loader (start.js, from deploy/bundle-loader.mjs) with a V8
// code cache (start.cjs.v8cache) made here by a replay of the demo capture: ~40-70 ms less again, as
// Node 20 offers a code cache to CommonJS through node:vm only. The pipeline's thread runs its own
// ES module bundle (pipeline-worker.js). Only the dependencies every command loads (pino, TypeBox)
// and every replay (tldts, loaded at the first DNS name) are bundled; the rest (the API server, MQTT,
// InfluxDB, YAML, the optional native capture package) load from node_modules when a command needs
// them, as they would without the bundle. Also writes dist/collector/bin/THIRD-PARTY-LICENSES.txt:
// each bundled package with its licence.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
/** Dependencies every command (or every replay) loads: bundled. */
const BUNDLED = new Set(['pino', '@sinclair/typebox', 'tldts']);
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const external = Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies }).filter((name) => !BUNDLED.has(name));
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const common = { bundle: true, platform: 'node', target: 'node20', external, legalComments: 'inline', metafile: true, logLevel: 'warning' };
const results = await Promise.all([
  esbuild.build({
    ...common,
    entryPoints: [entry],
    format: 'cjs',
    outfile: join(outdir, 'start.cjs'),
    // ES module semantics (strict mode), and import.meta.url as the bundle's own URL, as in an ES module bundle
    define: { 'import.meta.url': '__earshotBundleUrl' },
    banner: { js: '"use strict";var __earshotBundleUrl=require("node:url").pathToFileURL(__filename).href;' },
  }),
  esbuild.build({
    ...common,
    entryPoints: [workerEntry],
    format: 'esm',
    outfile: join(outdir, 'pipeline-worker.js'),
    // CommonJS dependencies inside an ES module bundle call require() for Node's own modules
    banner: { js: "import { createRequire as earshotCreateRequire } from 'node:module'; const require = earshotCreateRequire(import.meta.url);" },
  }),
]);
copyFileSync(join(root, 'deploy', 'bundle-loader.mjs'), join(outdir, 'start.js'));

// the code cache: what a replay compiles (the demo capture exercises decoding, flows, tagging,
// detection, the report), saved by the loader at exit. Without the builder's EARSHOT_* settings
// (EARSHOT_CONFIG, EARSHOT_INFLUX_URL, ...): the demo's points, alerts and messages go nowhere
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('EARSHOT_')));
const training = spawnSync(process.execPath, [join(outdir, 'start.js'), 'replay', join(root, 'deploy', 'demo', 'household.pcap'), '--format', 'json', '--no-progress', '-o', '/dev/null'], {
  cwd: root, encoding: 'utf8', env: { ...env, EARSHOT_WRITE_CODE_CACHE: '1' },
});
if (training.status !== 0 || !existsSync(join(outdir, 'start.cjs.v8cache'))) {
  console.error(`earshot build: no code cache (the bundle runs without it, ~50 ms slower to start): the demo replay ended with ${training.status}: ${(training.stderr ?? '').trim().split('\n')[0]}`);
}

// the packages the bundle holds, with their licences
const packages = new Map();
for (const input of results.flatMap((r) => Object.keys(r.metafile.inputs))) {
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
