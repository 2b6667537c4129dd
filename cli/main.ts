#!/usr/bin/env node
/**
 * The `earshot` executable. `npm run build` also bundles earshot into a few files (deploy/bundle.mjs,
 * into dist/collector/bin/): loading them instead of ~90 modules starts every command ~50 ms sooner.
 * The bundle runs when it is at least as new as the compiled modules, so a `tsc` run without
 * bundling never leaves an older bundle in charge; the modules run otherwise.
 */
import { statSync } from 'node:fs';

const bundle = new URL('../collector/bin/start.js', import.meta.url);
const modules = new URL('./start.js', import.meta.url);
const bundleTime = statSync(bundle, { throwIfNoEntry: false })?.mtimeMs ?? -1;
await import(bundleTime >= (statSync(modules, { throwIfNoEntry: false })?.mtimeMs ?? Infinity) ? bundle.href : modules.href);
