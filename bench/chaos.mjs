#!/usr/bin/env node
// The soak part of `npm run bench` (issue 14): the seeded chaos run of test/chaos.test.ts (kill -9, a full
// tmpfs, InfluxDB and webhook receiver outages, labels through the API, over a real Echo capture) with many
// more seeds than CI runs. Prints one line per seed and the count of seeds that held. Needs root (tmpfs).
//   node bench/chaos.mjs [--seeds N]   (default 20; EARSHOT_CHAOS_SEED=S runs one)
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { seeds: { type: 'string', default: '20' }, runs: { type: 'string' }, packets: { type: 'string' } } });
const res = spawnSync(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', 'test/chaos.test.ts', '--reporter', 'dot'], {
  cwd: root, encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, EARSHOT_CHAOS_SEEDS: values.seeds, NO_COLOR: '1', FORCE_COLOR: '0' },
});
const output = `${res.stdout}${res.stderr}`;
const lines = output.split('\n').map((l) => l.trim().replace(/^.*?(chaos seed)/, '$1')).filter((l) => /^chaos seed \d+:/.test(l));
console.log(`\nChaos soak: ${values.seeds} seeds of test/chaos.test.ts\n`);
for (const l of lines) console.log(`  ${l.trim()}`);
const failed = /Tests\s+(\d+) failed/.exec(output);
console.log(`\n${lines.length} of ${values.seeds} seeds held${failed ? `; ${failed[1]} failed (rerun one with EARSHOT_CHAOS_SEED=S npx vitest run test/chaos.test.ts)` : ''}`);
if (failed) {
  // what failed, as vitest told it: the failing seed's name and the first lines of its error
  const report = output.slice(output.indexOf('Failed Tests'));
  console.log(report.split('\n').filter((l) => /FAIL|Error|expected|seed \d+|round|alert|points|label/.test(l)).slice(0, 30).map((l) => `  ${l.trim().slice(0, 400)}`).join('\n'));
}
process.exit(res.status ?? 1);
