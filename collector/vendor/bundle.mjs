#!/usr/bin/env node
// Part of `npm run build`: bundles TypeBox (the config schema's builder and validator) into one file,
// dist/collector/vendor/typebox.cjs. Loading TypeBox from its ~250 files takes ~110 ms of every start
// of `earshot`; the bundle loads in ~35 ms. collector/config.ts uses the bundle when it is there and the
// package otherwise (tests from the sources, or an install without dev dependencies).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'dist', 'collector', 'vendor', 'typebox.cjs');
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('earshot build: esbuild not installed (a production install): TypeBox loads from its package');
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
await esbuild.build({
  stdin: {
    contents: "module.exports = { Type: require('@sinclair/typebox').Type, Value: require('@sinclair/typebox/value').Value };",
    resolveDir: root,
    loader: 'js',
  },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: out,
  legalComments: 'inline',
  logLevel: 'warning',
});
