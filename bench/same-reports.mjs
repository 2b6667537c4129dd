#!/usr/bin/env node
// Checks that a change to earshot's speed left its output alone: `save` writes the JSON report of
// `earshot replay --format json` for the bench capture and every real capture into DIR; `check`
// makes them again with the current build and compares them byte for byte with the saved ones.
//   node bench/same-reports.mjs save DIR     (with the build before the change)
//   node bench/same-reports.mjs check DIR    (with the build after it; exit 1 on any difference)
// The report has no timing fields, so equal bytes are expected; --output and standard output are both
// used, alternately, so each path of the report's writer is compared.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.EARSHOT_SHARED ?? resolve(root, '..', 'shared');
const [mode, dir] = process.argv.slice(2);
if ((mode !== 'save' && mode !== 'check') || !dir) {
  console.error('usage: node bench/same-reports.mjs save|check DIR');
  process.exit(2);
}
const captures = readdirSync(join(shared, 'captures', 'real')).filter((n) => /\.pcap(ng)?(\.gz)?$/.test(n)).sort().map((n) => join(shared, 'captures', 'real', n));
const bench = join(root, 'bench', 'out', 'bench-1000000.pcap');
if (existsSync(bench)) captures.unshift(bench);
else console.error('same-reports: no bench capture (node bench/run.mjs builds it); comparing the real captures only');
mkdirSync(dir, { recursive: true });
const tmp = join(tmpdir(), `earshot-same-reports-${process.pid}.json`);
let differ = 0;
captures.forEach((capture, i) => {
  const toFile = i % 2 === 0;
  const args = [join(root, 'dist', 'cli', 'main.js'), 'replay', capture, '--format', 'json', '--no-progress', ...(toFile ? ['-o', tmp] : [])];
  const res = spawnSync(process.execPath, args, { encoding: 'buffer', maxBuffer: 1 << 30 });
  const report = toFile && res.status === 0 ? readFileSync(tmp) : res.stdout;
  const saved = join(dir, `${basename(capture)}.json`);
  const text = Buffer.concat([Buffer.from(`exit ${res.status}\n`), report]);
  if (mode === 'save') {
    writeFileSync(saved, text);
  } else if (!existsSync(saved) || !readFileSync(saved).equals(text)) {
    differ++;
    console.log(`DIFFERS: ${basename(capture)}`);
  }
});
rmSync(tmp, { force: true });
console.log(`${mode === 'save' ? 'saved' : 'compared'} ${captures.length} reports${mode === 'check' ? `: ${differ} differ` : ''}`);
process.exit(differ > 0 ? 1 : 0);
