#!/usr/bin/env node
// npm run bench: the pipeline against tcpdump and tshark (run.mjs), plain JavaScript's floor (floor.mjs), the plain file against .gz and stdin (inputs.mjs),
// a 24-h soak (soak.mjs), live capture on a veth pair (live.mjs), then the InfluxDB sink (influx.mjs), a flood
// of forged announcements and of new flows (flood.mjs, which builds the flow flood api.mjs reads under), the
// API under load (api.mjs), a chaos soak (chaos.mjs) and the Fleet
// overview at a thousand sites (fleet-scale.mjs), one after the other on the same machine; flags go to each.
//   node bench/all.mjs [--runs N]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
for (const script of ['run.mjs', 'floor.mjs', 'inputs.mjs', 'soak.mjs', 'live.mjs', 'influx.mjs', 'flood.mjs', 'api.mjs', 'chaos.mjs', 'fleet-scale.mjs']) {
  const res = spawnSync(process.execPath, [join(here, script), ...args], { stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
