#!/usr/bin/env node
/**
 * The `earshot` executable. `npm run build` also bundles earshot into a few files (deploy/bundle.mjs,
 * into dist/collector/bin/): loading them instead of ~90 modules starts every command ~50 ms sooner.
 * The bundle runs when it is at least as new as the compiled modules, so a `tsc` run without
 * bundling never leaves an older bundle in charge; the modules run otherwise.
 */
import { statSync } from 'node:fs';

// The API's packages load ES modules with require() (fastify's static files: content-disposition 3),
// which Node.js does from 20.19 and 22.12 on; an older Node ended `collect` with an internal error.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19) || major === 21 || (major === 22 && minor < 12)) {
  process.stderr.write(`earshot: Node.js ${process.versions.node} is too old: earshot needs 20.19 or later (22.12 or later on 22; 24 is what the installer sets up)\n`);
  process.exit(2);
}

const bundle = new URL('../collector/bin/start.js', import.meta.url);
const modules = new URL('./start.js', import.meta.url);
const bundleTime = statSync(bundle, { throwIfNoEntry: false })?.mtimeMs ?? -1;
await import(bundleTime >= (statSync(modules, { throwIfNoEntry: false })?.mtimeMs ?? Infinity) ? bundle.href : modules.href);
