#!/usr/bin/env node
// The flood part of `npm run bench` (issue 14, fault 7): 1M forged DHCP/mDNS/SSDP announcements, a new
// random MAC each, 300 packets/s of packet time from one host (test/helpers/flood.ts, bundled here with
// esbuild), replayed with everything on into a real influxd and a real mosquitto. Per run: packets/s
// (whole process: packets / wall time, and per second of CPU time, GNU time), peak RSS, InfluxDB series and `device` tag values,
// retained messages on the broker, assistants in the report; median of N runs. Beside it, when
// bench/run.mjs built it, a plain replay of the same-size real capture (bench/out/bench-N.pcap).
// Targets (issue 14): memory under 200 MB, series under 10,000, above 500k packets/s, no assistant.
// Then a flood of new flows (test/helpers/flood.ts writeFlowFloodPcap): the collector and replay beside
// tshark and tcpdump on the same file, wall and CPU time and peak RSS; and a flood of forged DNS answers
// with new names (writeDnsFloodPcap), replay beside tshark's DNS statistics and tcpdump.
//   node bench/flood.mjs [--runs N] [--packets N]   (the flood capture is cached in bench/out/)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './common.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, packets: { type: 'string', default: '1000000' } } });
const runs = Number(values.runs);
const packets = Number(values.packets);
const out = join(root, 'bench', 'out');
mkdirSync(out, { recursive: true });
if (!existsSync(join(root, 'dist/cli/main.js'))) spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
const bin = join(root, 'dist/cli/main.js');

// the generator is the tests' own (TypeScript): bundled once into bench/out
const generator = join(out, 'flood-gen.mjs');
const source = join(root, 'test/helpers/flood.ts');
if (!existsSync(generator) || statSync(generator).mtimeMs < statSync(source).mtimeMs) {
  const { build } = await import('esbuild');
  await build({ entryPoints: [source], bundle: true, platform: 'node', format: 'esm', outfile: generator, logLevel: 'warning' });
}
const flood = join(out, `flood-${packets}.pcap`);
if (!existsSync(flood)) {
  const { writeFloodPcap } = await import(generator);
  const summary = writeFloodPcap(flood, { packets, seed: 14, rate: 300 });
  console.log(`flood capture: ${summary.packets} packets (${summary.dhcp} DHCP, ${summary.mdns} mDNS, ${summary.ssdp} SSDP), ${summary.macs} forged MACs, ${summary.lastSeconds - summary.firstSeconds} s of packet time`);
}

const haveTime = spawnSync('/usr/bin/time', ['-f', '%e', 'true']).status === 0;
if (!haveTime) {
  console.error('bench: GNU time (/usr/bin/time) not found; run deploy/setup.sh first');
  process.exit(2);
}

// a real influxd and a real mosquitto, when installed (series and retained messages are measured there)
const { freePort, startInfluxd } = await import(join(root, 'dist/collector/influxd.js'));
const dir = mkdtempSync(join(tmpdir(), 'earshot-bench-flood-'));
let influxd = null;
if (spawnSync('influxd', ['version']).status === 0) influxd = await startInfluxd({ dir: join(dir, 'influxd'), httpPort: await freePort(), rpcPort: await freePort() });
let mosquitto = null;
let mqttUrl = null;
if (spawnSync('sh', ['-c', 'command -v mosquitto || test -x /usr/sbin/mosquitto']).status === 0) {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const { spawn } = await import('node:child_process');
  const path = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto';
  mosquitto = spawn(path, ['-c', conf], { stdio: 'ignore' });
  mqttUrl = `mqtt://127.0.0.1:${port}`;
  await new Promise((r) => setTimeout(r, 500));
}
process.on('exit', () => {
  influxd?.child.kill('SIGTERM');
  mosquitto?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});
const query = async (db, q) => (await (await fetch(`${influxd.url}/query`, { method: 'POST', body: new URLSearchParams({ db, q }) })).json());

/** Retained messages with a payload on the broker now, as a new subscriber gets them. */
async function retainedCount(db) {
  const { connectAsync } = await import('mqtt');
  const client = await connectAsync(mqttUrl, { reconnectPeriod: 0 });
  let n = 0;
  client.on('message', (_t, payload, packet) => { if (packet.retain && payload.length > 0) n++; });
  await client.subscribeAsync([`ha-${db}/#`, `earshot-${db}/#`], { qos: 1 });
  await client.publishAsync('bench/ping', 'x', { qos: 1 });
  await new Promise((r) => setTimeout(r, 500));
  await client.endAsync();
  return n;
}

/** One replay of `file` with the sinks on; whole-process wall time and peak RSS from GNU time. */
async function replay(file, db, run) {
  const report = join(dir, 'report.json');
  const args = ['-f', '%e %M %U %S', process.execPath, bin, 'replay', file, '--format', 'json', '-o', report, '--no-progress'];
  if (influxd) args.push('--influx-url', influxd.url, '--influx-db', db, '--influx-raw-retention', 'INF');
  // each run its own topics: what a run leaves retained is counted apart from the others
  if (mqttUrl) args.push('--mqtt-url', mqttUrl, '--mqtt-client-id', `bench-${db}-${run}`, '--mqtt-prefix', `earshot-${db}`, '--mqtt-discovery-prefix', `ha-${db}`);
  const res = spawnSync('/usr/bin/time', args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (res.status !== 0) throw new Error(`replay failed: ${res.stderr.slice(-2000)}`);
  const [wall, rssKb, user, system] = res.stderr.trim().split('\n').pop().split(' ').map(Number);
  const parsed = JSON.parse(readFileSync(report, 'utf8'));
  const row = { packets: parsed.capture.packets, wall, cpu: user + system, rssMb: rssKb / 1024, assistants: parsed.devices.filter((d) => d.assistant).length, devices: parsed.devices.length, series: null, deviceTags: null, retained: null };
  if (influxd) {
    const series = await query(db, 'SHOW SERIES');
    row.series = (series.results[0].series ?? []).reduce((n, s) => n + s.values.length, 0);
    const tags = await query(db, 'SHOW TAG VALUES WITH KEY = "device"');
    row.deviceTags = new Set((tags.results[0].series ?? []).flatMap((s) => s.values.map((v) => v[1]))).size;
  }
  if (mqttUrl) row.retained = await retainedCount(db);
  return row;
}

const plain = join(out, `bench-${packets}.pcap`);
const cases = [['flood', flood], ...(existsSync(plain) ? [['real capture', plain]] : [])];
const results = new Map(cases.map(([name]) => [name, []]));
for (let r = 0; r < runs; r++) {
  for (const [name, file] of cases) results.get(name).push(await replay(file, `flood_${name === 'flood' ? 'f' : 'r'}_${r}`, r));
}

console.log(`\nFlood of forged announcements (${packets} packets), median of ${runs} runs${influxd ? ', real influxd' : ''}${mqttUrl ? ', real mosquitto' : ''}:\n`);
console.log('| capture | packets/s | wall time | CPU time | packets per CPU second | peak RSS | assistants | InfluxDB series | `device` tag values | retained MQTT messages |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const [name, rows] of results) {
  const m = (k) => median(rows.map((x) => x[k]));
  const pps = median(rows.map((x) => x.packets / x.wall));
  console.log(`| ${name} | ${Math.round(pps).toLocaleString('en')} | ${m('wall').toFixed(2)} s | ${m('cpu').toFixed(2)} s | ${Math.round(median(rows.map((x) => x.packets / x.cpu))).toLocaleString('en')} | ${m('rssMb').toFixed(0)} MB | ${m('assistants')} | ${influxd ? m('series') : 'n/a'} | ${influxd ? m('deviceTags') : 'n/a'} | ${mqttUrl ? m('retained') : 'n/a'} |`);
}
const f = results.get('flood');
const verdict = (ok) => (ok ? 'met' : 'NOT met');
console.log(`\ntargets: memory < 200 MB ${verdict(median(f.map((x) => x.rssMb)) < 200)}; series < 10,000 ${influxd ? verdict(median(f.map((x) => x.series)) < 10_000) : 'not measured (no influxd)'}; ` +
  `> 500k packets/s ${verdict(median(f.map((x) => x.packets / x.wall)) > 500_000)}; no assistant ${verdict(f.every((x) => x.assistants === 0))}`);
if (!existsSync(plain)) console.log(`(no ${plain}: run node bench/run.mjs first for the plain replay beside it)`);

// a flood of new flows: one UDP datagram from one LAN host to each of 1M addresses (a scan, or a host
// exhausting the table); earshot's collector (API on: the pipeline's thread and the API's, as installed)
// and replay, beside tshark's conversation table of the same file and tcpdump's read (GNU time each)
const flowFlood = join(out, `flow-flood-${packets}.pcap`);
if (!existsSync(flowFlood)) {
  const { writeFlowFloodPcap } = await import(generator);
  writeFlowFloodPcap(flowFlood, { flows: packets });
}
/** Wall time, CPU time and peak RSS of one command (GNU time). */
function timed(cmd, args) {
  const res = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (res.status !== 0) throw new Error(`${cmd} failed: ${res.stderr.slice(-2000)}`);
  const [wall, rssKb, user, system] = res.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { wall, cpu: user + system, rssMb: rssKb / 1024 };
}
const flowCases = [
  ['earshot collect --file (API on)', process.execPath, [bin, 'collect', '--file', flowFlood, '--exit-when-done', '--listen', '127.0.0.1:0', '--format', 'json', '-o', '/dev/null']],
  ['earshot replay', process.execPath, [bin, 'replay', flowFlood, '--format', 'json', '-o', '/dev/null', '--no-progress']],
  ['tshark -q -z conv,udp (peer)', 'tshark', ['-n', '-q', '-r', flowFlood, '-z', 'conv,udp']],
  ['tcpdump -r -w /dev/null (floor)', 'tcpdump', ['-r', flowFlood, '-w', '/dev/null']],
].filter(([, cmd]) => cmd === process.execPath || spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0);
const flowRows = new Map(flowCases.map(([name]) => [name, []]));
for (let r = 0; r < runs; r++) for (const [name, cmd, args] of flowCases) flowRows.get(name).push(timed(cmd, args));
console.log(`\nFlood of new flows (${packets} one-datagram UDP flows from one host), median of ${runs} runs:\n`);
console.log('| command | wall time | CPU time | peak RSS |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, rows] of flowRows) {
  const m = (k) => median(rows.map((x) => x[k]));
  console.log(`| ${name} | ${m('wall').toFixed(2)} s | ${m('cpu').toFixed(2)} s | ${m('rssMb').toFixed(0)} MB |`);
}
// a flood of forged DNS answers (test/helpers/flood.ts writeDnsFloodPcap): every answer a new name, so
// every cache of names (the tagger's DNS cache, the catalogue's) fills and evicts; tshark's DNS
// statistics (it parses every answer) and tcpdump's read beside earshot
const dnsPackets = Math.max(1, Math.round(packets / 20));
const dnsFlood = join(out, `dns-flood-${dnsPackets}.pcap`);
if (!existsSync(dnsFlood)) {
  const { writeDnsFloodPcap } = await import(generator);
  writeDnsFloodPcap(dnsFlood, { packets: dnsPackets });
}
const tsharkAnswers = spawnSync('sh', ['-c', 'command -v tshark']).status === 0
  ? spawnSync('tshark', ['-n', '-r', dnsFlood, '-T', 'fields', '-e', 'dns.count.answers'], { encoding: 'utf8', maxBuffer: 1 << 28 }).stdout.split('\n').reduce((sum, line) => sum + (Number(line) || 0), 0)
  : null;
const dnsCases = [
  ['earshot replay', process.execPath, [bin, 'replay', dnsFlood, '--format', 'json', '-o', '/dev/null', '--no-progress']],
  ['tshark -q -z dns,tree (peer)', 'tshark', ['-n', '-q', '-r', dnsFlood, '-z', 'dns,tree']],
  ['tcpdump -r -w /dev/null (floor)', 'tcpdump', ['-r', dnsFlood, '-w', '/dev/null']],
].filter(([, cmd]) => cmd === process.execPath || spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0);
const dnsRows = new Map(dnsCases.map(([name]) => [name, []]));
for (let r = 0; r < runs; r++) for (const [name, cmd, args] of dnsCases) dnsRows.get(name).push(timed(cmd, args));
console.log(`\nFlood of forged DNS answers (${dnsPackets.toLocaleString('en')} responses of 30 new names each${tsharkAnswers === null ? '' : `: ${tsharkAnswers.toLocaleString('en')} answers by tshark's count`}), median of ${runs} runs:\n`);
console.log('| command | wall time | CPU time | responses per CPU second | peak RSS |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [name, rows] of dnsRows) {
  const m = (k) => median(rows.map((x) => x[k]));
  console.log(`| ${name} | ${m('wall').toFixed(2)} s | ${m('cpu').toFixed(2)} s | ${Math.round(dnsPackets / m('cpu')).toLocaleString('en')} | ${m('rssMb').toFixed(0)} MB |`);
}
// the same collector over a small real capture: what the flood adds to its peak
const idle = median(Array.from({ length: runs }, () => timed(process.execPath, [bin, 'collect', '--file', join(root, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng'), '--exit-when-done', '--listen', '127.0.0.1:0', '--format', 'json', '-o', '/dev/null']).rssMb));
const collectRss = median(flowRows.get(flowCases[0][0]).map((x) => x.rssMb));
console.log(`\ncollector under the flow flood: ${collectRss.toFixed(0)} MB peak, ${(collectRss - idle).toFixed(0)} MB over the same collector on a 2,778-packet real capture (${idle.toFixed(0)} MB)`);
process.exit(0);
