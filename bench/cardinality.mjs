#!/usr/bin/env node
// Series cardinality per site, measured: each real capture is replayed by the earshot executable
// (`earshot replay FILE --influx-url ...`) into a fresh database of a real influxd (Debian's 1.x), and
// the series InfluxDB holds are counted per measurement (SHOW SERIES, cross-checked with SHOW SERIES
// EXACT CARDINALITY). Then every assistant capture goes into ONE database, as a home with several
// assistants would. docs/fleet.md has the numbers and the budget drawn from them.
//   node bench/cardinality.mjs [--json bench/out/cardinality.json] [FILE ...]   (after npm run build)
// Without FILEs: the labelled Echo/Nest captures (real/amazon-*, vcfp-haipeng/, cic-iot-2022-rebuilt/)
// and the real captures of 500 kB or more, from ../shared/captures.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { scriptInfluxd } from './common.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const captures = resolve(root, '../shared/captures');
const { values, positionals } = parseArgs({ allowPositionals: true, options: { json: { type: 'string', default: join(root, 'bench/out/cardinality.json') } } });
if (spawnSync('influxd', ['version']).status !== 0) {
  console.error('cardinality: influxd not found; run deploy/setup.sh first');
  process.exit(2);
}

// the speakers of the rebuilt CIC captures have no names in their packets: declared, as the tests do
const cicLabels = JSON.parse(readFileSync(join(captures, 'cic-iot-2022-rebuilt/labels.json'), 'utf8'));
const cicDevices = {};
for (const l of cicLabels) cicDevices[l.device_mac] = { assistant: true, vendor: l.dir === 'nestmini' ? 'google' : 'amazon', name: l.dir };

function defaultFiles() {
  const files = [];
  const real = join(captures, 'real');
  for (const name of readdirSync(real).sort()) {
    if (!/\.pcap(ng)?$/.test(name)) continue;
    if (name.startsWith('amazon-') || statSync(join(real, name)).size >= 500_000) files.push(join(real, name));
  }
  for (const dir of ['vcfp-haipeng', 'cic-iot-2022-rebuilt/echodot2', 'cic-iot-2022-rebuilt/echospot', 'cic-iot-2022-rebuilt/nestmini']) {
    for (const name of readdirSync(join(captures, dir)).sort()) if (/\.pcap(ng)?$/.test(name)) files.push(join(captures, dir, name));
  }
  return files;
}
const files = positionals.length > 0 ? positionals.map((f) => resolve(f)) : defaultFiles();
const isAssistantCapture = (f) => /\/(vcfp-haipeng|cic-iot-2022-rebuilt)\//.test(f) || /\/amazon-echo/.test(f);

// a replay that fails ends the script: influxd and its directory go with it
const influxd = await scriptInfluxd('cardinality');

async function query(db, q) {
  const res = await fetch(`${influxd.url}/query`, { method: 'POST', body: new URLSearchParams({ db, q }) });
  const body = await res.json();
  const result = body.results?.[0];
  if (!res.ok || body.error || result?.error) throw new Error(`${q}: ${body.error ?? result?.error ?? res.status}`);
  return result?.series ?? [];
}

/** The measurement of a series key: up to the first comma that is not escaped. */
const measurementOf = (key) => /^((?:[^,\\]|\\.)*)/.exec(key)[1].replace(/\\(.)/g, '$1');

/** Series per measurement (SHOW SERIES), the devices and assistants seen in `traffic` tags, and InfluxDB's own exact count. */
async function count(db) {
  const perMeasurement = {};
  let total = 0;
  const devices = new Set();
  const assistants = new Set();
  for (const s of await query(db, 'SHOW SERIES')) {
    for (const [key] of s.values ?? []) {
      const m = measurementOf(key);
      perMeasurement[m] = (perMeasurement[m] ?? 0) + 1;
      total++;
      const device = /,device=((?:[^,\\]|\\.)*)/.exec(key)?.[1];
      if (m === 'traffic' && device !== undefined && device !== 'none' && device !== 'other') {
        devices.add(device);
        if (/,assistant=true(,|$)/.test(key)) assistants.add(device);
      }
    }
  }
  let exact = 0;
  for (const s of await query(db, 'SHOW SERIES EXACT CARDINALITY')) exact += Number(s.values?.[0]?.[0] ?? 0);
  return { perMeasurement, total, exact, devices: devices.size, assistants: assistants.size };
}

function replay(file, db) {
  const args = [join(root, 'dist/cli/main.js'), 'replay', file, '--influx-url', influxd.url, '--influx-db', db,
    '--influx-raw-retention', 'INF', '--format', 'json', '-o', '/dev/null', '--no-progress', '--log-level', 'error'];
  if (file.includes('/cic-iot-2022-rebuilt/')) args.push('--devices', JSON.stringify(cicDevices));
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`replay ${file} exited ${r.status}: ${r.stderr.trim().split('\n').pop()}`);
}

const MEASUREMENTS = ['traffic', 'endpoint', 'activation', 'call', 'notice', 'wake_event', 'device', 'collector'];
const rows = [];
let n = 0;
for (const file of files) {
  const db = `card_${n++}`;
  replay(file, db);
  const c = await count(db);
  if (c.total !== c.exact) console.error(`cardinality: ${basename(file)}: SHOW SERIES counted ${c.total}, EXACT CARDINALITY says ${c.exact}`);
  rows.push({ file: relative(captures, file), ...c });
  console.error(`${relative(captures, file)}: ${c.total} series (${c.devices} devices, ${c.assistants} assistants)`);
}

// one home: every assistant capture into one database, as one collector would write them over time
const home = files.filter(isAssistantCapture);
let homeRow = null;
if (home.length > 1) {
  for (const file of home) replay(file, 'card_home');
  homeRow = { file: `ONE database: ${home.length} assistant captures`, ...(await count('card_home')) };
}

const line = (r) => `| ${r.file} | ${r.devices} | ${r.assistants} | ${MEASUREMENTS.map((m) => r.perMeasurement[m] ?? 0).join(' | ')} | ${r.total} |`;
console.log(`| capture | devices | assistants | ${MEASUREMENTS.join(' | ')} | series |`);
console.log(`| --- | ---: | ---: | ${MEASUREMENTS.map(() => '---:').join(' | ')} | ---: |`);
for (const r of rows) console.log(line(r));
if (homeRow) console.log(line(homeRow));
const totals = rows.map((r) => r.total).sort((a, b) => a - b);
const perDevice = rows.filter((r) => r.devices > 0).map((r) => r.total / r.devices).sort((a, b) => a - b);
const summary = {
  captures: rows.length,
  seriesMax: totals.at(-1),
  seriesMedian: totals[Math.floor(totals.length / 2)],
  seriesPerDeviceMax: perDevice.at(-1),
  seriesPerDeviceMedian: perDevice[Math.floor(perDevice.length / 2)],
  home: homeRow,
  influxd: spawnSync('influxd', ['version'], { encoding: 'utf8' }).stdout.trim(),
};
console.log(`\n${JSON.stringify(summary)}`);
mkdirSync(dirname(values.json), { recursive: true });
writeFileSync(values.json, JSON.stringify({ rows, summary }, null, 1));
// influxd's pipes keep the event loop alive: stop it, then leave
await influxd.stop();
process.exit(0);
