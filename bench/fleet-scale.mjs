#!/usr/bin/env node
// The Fleet overview at a thousand sites: how long its queries take on a real influxd (Debian's 1.x) and
// whether it still names the right sites. The points' shape comes from earshot itself: a real capture is
// replayed into a template database, and one point of each measurement the Fleet overview reads
// (collector, device, activation) is read back with its tags, fields and field types. Then N sites are
// written from those templates for the last H hours, as live collectors write them: a `collector` point
// every influx.intervalS, a `device` point per assistant every influx.deviceIntervalS, a dozen activations a
// day (those in every fifth 4-hour slot suspected); every twentieth site stopped reporting an hour ago. Each query of the
// dashboard (its variable, then every panel, with Grafana's macros) runs --runs times (3): the median is printed,
// with what it returned against what was written.
//   node bench/fleet-scale.mjs [--sites 1000] [--hours 24] [--runs 3] [--capture FILE]   (after npm run build)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, scriptInfluxd } from './common.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    sites: { type: 'string', default: '1000' },
    hours: { type: 'string', default: '24' },
    capture: { type: 'string', default: join(root, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng') },
    runs: { type: 'string', default: '3' },
    packets: { type: 'string' }, // all.mjs passes its flags to every script
  },
});
const RUNS = Number(values.runs);
const SITES = Number(values.sites);
const HOURS = Number(values.hours);
if (!Number.isInteger(SITES) || SITES < 1 || !(HOURS > 0) || !Number.isInteger(RUNS) || RUNS < 1) {
  console.error('fleet-scale: --sites and --runs take a whole number >= 1, --hours a number > 0');
  process.exit(2);
}
if (spawnSync('influxd', ['version']).status !== 0) {
  console.error('fleet-scale: influxd not found; run deploy/setup.sh first');
  process.exit(2);
}
const { loadConfig } = await import(join(root, 'dist/collector/config.js'));
const { expandMacros, interpolateVariables, panelRange, queryIntervalMs } = await import(join(root, 'dist/dashboards/macros.js'));
const defaults = loadConfig({ flags: {} });
const INTERVAL_MS = defaults.influx.intervalS * 1000;
const DEVICE_INTERVAL_MS = defaults.influx.deviceIntervalS * 1000;

const influxd = await scriptInfluxd('fleet-scale');

async function query(db, q) {
  const res = await fetch(`${influxd.url}/query`, { method: 'POST', body: new URLSearchParams({ db, q, epoch: 'ms' }) });
  const body = await res.json();
  const result = body.results?.[0];
  if (!res.ok || body.error || result?.error) throw new Error(`${q}: ${body.error ?? result?.error ?? res.status}`);
  return result?.series ?? [];
}

// 1. the template: what earshot writes, read back
const TEMPLATE_DB = 'fleet_template';
const DB = 'fleet';
const replayed = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'replay', values.capture, '--influx-url', influxd.url, '--influx-db', TEMPLATE_DB,
  '--influx-raw-retention', 'INF', '--site', 'template', '--format', 'json', '-o', '/dev/null', '--no-progress', '--log-level', 'error'], { encoding: 'utf8' });
if (replayed.status !== 0) throw new Error(`replay exited ${replayed.status}: ${replayed.stderr.trim().split('\n').pop()}`);
const rawPolicy = defaults.influx.rawPolicy;

/** One point of `measurement` as earshot wrote it: tags, and fields with their InfluxDB types. */
async function template(measurement, where = '') {
  const types = new Map();
  for (const s of await query(TEMPLATE_DB, `SHOW FIELD KEYS FROM "${rawPolicy}"."${measurement}"`)) for (const [k, t] of s.values) types.set(k, t);
  const [series] = await query(TEMPLATE_DB, `SELECT * FROM "${rawPolicy}"."${measurement}" ${where} GROUP BY * ORDER BY time DESC LIMIT 1`);
  if (!series) throw new Error(`the replay wrote no ${measurement} point ${where}`);
  const fields = {};
  series.columns.forEach((c, i) => { if (c !== 'time' && series.values[0][i] !== null) fields[c] = { value: series.values[0][i], type: types.get(c) }; });
  return { tags: { ...series.tags }, fields };
}
const collectorT = await template('collector');
const deviceT = await template('device', 'WHERE "assistant" = true');
const activationT = await template('activation');

// 2. N sites from the templates
const esc = (s) => String(s).replace(/([ ,=\\])/g, '\\$1');
const fieldText = ({ value, type }) => (type === 'string' ? `"${String(value).replace(/(["\\])/g, '\\$1')}"` : type === 'integer' ? `${Math.round(Number(value))}i` : type === 'boolean' ? String(value) : String(Number(value)));
function line(measurement, t, tags, fields, ms) {
  const allTags = { ...t.tags, ...tags };
  const tagText = Object.keys(allTags).sort().filter((k) => allTags[k] !== '').map((k) => `,${esc(k)}=${esc(allTags[k])}`).join('');
  const allFields = { ...t.fields };
  for (const [k, v] of Object.entries(fields)) if (allFields[k]) allFields[k] = { ...allFields[k], value: v };
  return `${esc(measurement)}${tagText} ${Object.entries(allFields).map(([k, v]) => `${esc(k)}=${fieldText(v)}`).join(',')} ${ms}`;
}
await query(DB, `CREATE DATABASE "${DB}"`);
await query(DB, `CREATE RETENTION POLICY "${rawPolicy}" ON "${DB}" DURATION INF REPLICATION 1 DEFAULT`);
let batch = [];
let written = 0;
async function flush() {
  if (batch.length === 0) return;
  const res = await fetch(`${influxd.url}/write?db=${DB}&rp=${rawPolicy}&precision=ms`, { method: 'POST', body: batch.join('\n') });
  if (res.status !== 204) throw new Error(`write: ${res.status} ${await res.text()}`);
  written += batch.length;
  batch = [];
}
/** Adds a point; a full batch is written (the caller awaits that only then). */
const push = (l) => {
  batch.push(l);
  return batch.length >= 50_000 ? flush() : null;
};
const NOW = Math.floor(Date.now() / 1000) * 1000;
const FROM = NOW - HOURS * 3600_000;
// today, as the panels with "now/d" see it
const MIDNIGHT = panelRange({ fromMs: FROM, toMs: NOW }, 'now/d').fromMs;
const site = (i) => `site-${String(i).padStart(4, '0')}`;
const stopped = (i) => i % 20 === 19;
const expected = { stopped: [], activationsToday: 0, suspectedToday: 0, assistants: 2 };
const started = performance.now();
for (let i = 0; i < SITES; i++) {
  const end = stopped(i) ? NOW - 3600_000 : NOW - (i % 10) * 1000;
  if (stopped(i)) expected.stopped.push(site(i));
  let packets = 0;
  for (let t = FROM + (i % 10) * 1000; t <= end; t += INTERVAL_MS) {
    packets += 500 + (i % 7) * 100;
    await push(line('collector', collectorT, { site: site(i) }, { packets, instance: `i${i}` }, t));
  }
  for (let d = 0; d < 2; d++) {
    const hex = (n) => n.toString(16).padStart(2, '0');
    const mac = `68:54:fd:${hex((i >> 8) & 0xff)}:${hex(i & 0xff)}:0${d}`;
    for (let t = FROM + d * 1000; t <= end; t += DEVICE_INTERVAL_MS) await push(line('device', deviceT, { site: site(i), device: mac }, { last_seen_ms: t }, t));
    // six activations a day per assistant, those in every fifth 4-hour slot suspected
    for (let t = FROM + 600_000 + d * 60_000 + i * 997; t <= end; t += 4 * 3600_000) {
      const n = Math.round((t - FROM) / (4 * 3600_000));
      const verdict = n % 5 === 4 ? 'suspected' : 'confirmed';
      await push(line('activation', activationT, { site: site(i), device: mac, verdict, current: 'true' }, {}, t));
      if (t >= MIDNIGHT) {
        expected.activationsToday++;
        if (verdict === 'suspected') expected.suspectedToday++;
      }
    }
  }
}
await flush();
const writeS = (performance.now() - started) / 1000;
let series = 0;
for (const s of await query(DB, 'SHOW SERIES EXACT CARDINALITY')) series += Number(s.values?.[0]?.[0] ?? 0);

// 3. the dashboard's queries, as Grafana runs them over the last H hours (test/helpers/dashboard-queries.ts)
const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/dashboards/earshot-fleet.json'), 'utf8'));
const range = { fromMs: FROM, toMs: NOW };
const variables = {};
const expand = (q, r = range) => expandMacros(interpolateVariables(q, variables), r, queryIntervalMs(r.fromMs, r.toMs, 1000, INTERVAL_MS)).replaceAll('now()', `${NOW}ms`);
async function timed(q) {
  const times = [];
  let out;
  for (let k = 0; k < RUNS; k++) {
    const t = performance.now();
    out = await query(DB, q);
    times.push(performance.now() - t);
  }
  return { ms: median(times), series: out };
}
const rows = [];
for (const v of dashboard.templating.list ?? []) {
  const { ms, series: s } = await timed(expand(v.query));
  const got = (s[0]?.values ?? []).map((r) => String(r[r.length - 1]));
  rows.push({ what: `variable $${v.name}`, ms, got: `${got.length} values`, want: `${SITES} values`, ok: got.length === SITES });
  variables[v.name] = v.includeAll && v.allValue ? { raw: v.allValue } : got;
}
const count = (s) => s.reduce((n, x) => n + Number(x.values?.[0]?.[1] ?? 0), 0);
for (const p of dashboard.panels) {
  const results = [];
  let ms = 0;
  for (const t of p.targets ?? []) {
    const r = await timed(expand(t.query, panelRange(range, p.timeFrom)));
    ms += r.ms;
    results.push(r.series);
  }
  let got;
  let want;
  const [a, b] = results;
  if (/^Stopped reporting$|^Sites that stopped/.test(p.title)) {
    const recent = new Set(b.map((x) => x.tags.site));
    const names = a.map((x) => x.tags.site).filter((s) => !recent.has(s)).sort();
    got = `${names.length} stopped`;
    want = `${expected.stopped.length} stopped`;
    got = JSON.stringify(names) === JSON.stringify(expected.stopped) ? want : `${got} (other names)`;
  } else if (p.title === 'Activations today') {
    got = count(a);
    want = expected.activationsToday;
  } else if (p.title === 'Suspected today') {
    got = count(a);
    want = expected.suspectedToday;
  } else if (/Assistants and activations today/.test(p.title)) {
    const assistants = new Set(a.filter((x) => Number(x.values[0][1]) === expected.assistants).map((x) => x.tags.site)).size;
    got = `${a.length} sites, ${assistants} with 2 assistants, ${count(b)} activations`;
    // the stopped sites reported earlier today too
    want = `${SITES} sites, ${SITES} with 2 assistants, ${expected.activationsToday} activations`;
  } else if (/Collectors per site/.test(p.title)) {
    const ones = a.filter((x) => Number(x.values[0][1]) === 1).length;
    got = `${a.length} sites with a collector, ${ones} with one`;
    want = `${SITES - expected.stopped.length} sites with a collector, ${SITES - expected.stopped.length} with one`;
  } else {
    got = `${a.length} series`;
    want = `${SITES} series`;
  }
  rows.push({ what: `panel ${p.id} "${p.title}"${p.timeFrom ? ` (${p.timeFrom})` : ''}`, ms, got: String(got), want: String(want), ok: String(got) === String(want) });
}
const rss = Number(readFileSync(`/proc/${influxd.child.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)?.[1] ?? 0) / 1024;
console.log(`fleet-scale: ${SITES} sites, ${HOURS} h, ${written.toLocaleString('en-US')} points in ${writeS.toFixed(0)} s, ${series.toLocaleString('en-US')} series; influxd ${spawnSync('influxd', ['version'], { encoding: 'utf8' }).stdout.trim()}, peak RSS ${rss.toFixed(0)} MB`);
console.log(`\n| query | median of ${RUNS} | returned | written | |\n| --- | ---: | --- | --- | --- |`);
for (const r of rows) console.log(`| ${r.what} | ${r.ms.toFixed(0)} ms | ${r.got} | ${r.want} | ${r.ok ? 'ok' : 'DIFFERS'} |`);
process.exit(rows.every((r) => r.ok) ? 0 : 1);
