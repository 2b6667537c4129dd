#!/usr/bin/env node
// The InfluxDB part of `npm run bench`: a real influxd (Debian's 1.x) started here on a free port.
//  1. points per second into InfluxDB through earshot's writer (batches of influx.batchSize, gzip on and
//     off), measured from the first add() to the last acknowledged batch;
//  2. replay throughput with the sink against without it, on the benchmark capture, interleaved runs,
//     whole-process wall time (GNU time): the target is >= 70%. A third run of each round writes to a
//     server that takes every write and keeps nothing (a child process, so influxd's work is not in
//     it): what is left is earshot's own cost of the sink, and the rest influxd's on the same cores.
//   node bench/influx.mjs [--runs N] [--points N]   (after bench/run.mjs has built bench/out/*.pcap)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './common.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, points: { type: 'string', default: '200000' }, packets: { type: 'string', default: '1000000' } } });
const runs = Number(values.runs);
const wantPoints = Number(values.points);
const out = join(root, 'bench', 'out');
const capture = join(out, `bench-${values.packets}.pcap`);
if (!readdirSync(out).includes(`bench-${values.packets}.pcap`)) {
  console.error(`bench: ${capture} not found; run node bench/run.mjs first`);
  process.exit(2);
}
if (spawnSync('influxd', ['version']).status !== 0) {
  console.error('bench: influxd not found; run deploy/setup.sh first');
  process.exit(2);
}

const { freePort, startInfluxd } = await import(join(root, 'dist/collector/influxd.js'));
const dir = mkdtempSync(join(tmpdir(), 'earshot-bench-influxd-'));
const influxd = await startInfluxd({ dir, httpPort: await freePort(), rpcPort: await freePort() });
const url = influxd.url;
process.on('exit', () => {
  influxd.child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

const query = async (db, q) => (await (await fetch(`${url}/query`, { method: 'POST', body: new URLSearchParams({ db, q }) })).json());

// 1. points per second through the writer
const { InfluxWriter } = await import(join(root, 'dist/collector/sink/influx/writer.js'));
const { buildWriteClient, influxTarget } = await import(join(root, 'dist/collector/sink/influx/client.js'));
const { Spool } = await import(join(root, 'dist/collector/sink/influx/spool.js'));
const { pointLine, int } = await import(join(root, 'dist/collector/sink/influx/line-protocol.js'));
const silent = { info() {}, warn() {}, error() {}, debug() {} };
const rates = { gzip: [], plain: [] };
for (let r = 0; r < runs; r++) {
  for (const gzip of [true, false]) {
    const db = `pts_${r}_${gzip ? 'gz' : 'plain'}`;
    await query(db, `CREATE DATABASE ${db}`);
    const target = influxTarget({ url, database: db, token: null, username: null, password: null, timeoutS: 30 });
    const writer = new InfluxWriter({ batchSize: 5000, flushIntervalMs: 1000, gzip, retentionPolicy: null, maxQueuedBatches: 64, retryMinMs: 500, retryMaxMs: 10_000 },
      buildWriteClient(target), new Spool(null, 512 * 2 ** 20), silent);
    const t0 = performance.now();
    // traffic-shaped points: 50 devices x 4 services, 10-s intervals
    for (let i = 0; i < wantPoints; i++) {
      const dev = i % 50;
      writer.add(pointLine('traffic', { device: `aa:bb:cc:00:00:${String(dev).padStart(2, '0')}`, service: ['voice', 'telemetry', 'media', 'other'][(i / 50 | 0) % 4], vendor: 'amazon' },
        { bytes_up: int(i * 7), bytes_down: int(i * 13), packets_up: int(i % 100), packets_down: int(i % 77) }, 1_700_000_000_000 + Math.floor(i / 200) * 10_000));
      if (i % 20_000 === 0) await new Promise((res) => setImmediate(res));
    }
    const left = await writer.close(120_000);
    const seconds = (performance.now() - t0) / 1000;
    if (left.points !== 0 || writer.stats.pointsWritten !== wantPoints) throw new Error(`writer left ${left.points} points`);
    rates[gzip ? 'gzip' : 'plain'].push(wantPoints / seconds);
  }
}

// 2. replay with and without the sink
const cli = join(root, 'dist/cli/main.js');
const timed = (args) => {
  const res = spawnSync('/usr/bin/time', ['-f', '@@%e %M', process.execPath, cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  const m = /@@([\d.]+) (\d+)/.exec(res.stderr ?? '');
  if (res.status !== 0 || !m) throw new Error(`earshot ${args.join(' ')} failed (${res.status}): ${(res.stderr ?? '').slice(-500)}`);
  return { wall: Number(m[1]), rss: Number(m[2]) / 1024 };
};
// a server that answers as InfluxDB 1.x does and keeps nothing: /ping, /query (empty results), /write
const discardCode = `
const server = require('node:http').createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const path = req.url.split('?')[0];
    if (path === '/query') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Influxdb-Version': '1.6.7' });
      res.end(JSON.stringify({ results: [{ statement_id: 0 }] }));
    } else {
      res.writeHead(path === '/ping' || path === '/write' ? 204 : 404, { 'X-Influxdb-Version': '1.6.7' });
      res.end();
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
const discard = spawn(process.execPath, ['-e', discardCode], { stdio: ['ignore', 'pipe', 'inherit'] });
process.on('exit', () => discard.kill('SIGTERM'));
const discardUrl = await new Promise((res, rej) => {
  discard.stdout.once('data', (d) => res(`http://127.0.0.1:${String(d).trim()}`));
  discard.once('exit', (code) => rej(new Error(`bench: the discarding server exited (${code})`)));
});
const base = ['replay', capture, '--format', 'json', '--no-progress', '-o', '/dev/null'];
const without = { wall: [], rss: [] };
const withSink = { wall: [], rss: [] };
const discarded = { wall: [], rss: [] };
let points = 0;
for (let r = 0; r < runs; r++) {
  const a = timed(base);
  without.wall.push(a.wall);
  without.rss.push(a.rss);
  const db = `replay_${r}`;
  const b = timed([...base, '--influx-url', url, '--influx-db', db, '--influx-raw-retention', 'INF', '--log-level', 'warn']);
  withSink.wall.push(b.wall);
  withSink.rss.push(b.rss);
  const c = timed([...base, '--influx-url', discardUrl, '--influx-db', db, '--influx-setup', 'false', '--log-level', 'warn']);
  discarded.wall.push(c.wall);
  discarded.rss.push(c.rss);
  const res = await query(db, 'SELECT count(bytes_up) FROM traffic');
  points = res.results?.[0]?.series?.[0]?.values?.[0]?.[1] ?? 0;
}

console.log('');
console.log(`InfluxDB sink (influxd ${spawnSync('influxd', ['version'], { encoding: 'utf8' }).stdout.trim()}, same machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}), median of ${runs} runs`);
console.log(`  writer, ${wantPoints.toLocaleString('en')} traffic points in batches of 5000: ${Math.round(median(rates.gzip)).toLocaleString('en')} points/s with gzip, ${Math.round(median(rates.plain)).toLocaleString('en')} points/s without`);
const row = (cols) => console.log(cols.map((c, i) => (i === 0 ? String(c).padEnd(40) : String(c).padStart(12))).join(''));
row(['  replay of the bench capture', 'wall s', 'peak MB']);
row(['  without InfluxDB', median(without.wall).toFixed(3), median(without.rss).toFixed(0)]);
row([`  --influx-url (${points.toLocaleString('en')} traffic points)`, median(withSink.wall).toFixed(3), median(withSink.rss).toFixed(0)]);
row(['  --influx-url, a server that discards', median(discarded.wall).toFixed(3), median(discarded.rss).toFixed(0)]);
const ratio = median(without.wall) / median(withSink.wall);
console.log(`  replay throughput with the sink: ${(ratio * 100).toFixed(0)}% of without (target >= 70%)`);
const own = median(discarded.wall) - median(without.wall);
const total = median(withSink.wall) - median(without.wall);
console.log(`  of the sink's ${total.toFixed(2)} s: earshot's own work ${own.toFixed(2)} s (${(median(without.wall) / median(discarded.wall) * 100).toFixed(0)}% throughput with a server that discards), influxd's on the same cores ${(total - own).toFixed(2)} s`);
process.exit(0);
