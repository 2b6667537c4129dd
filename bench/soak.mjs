#!/usr/bin/env node
// npm run bench (soak part): 24 hours of a home's traffic through `earshot collect --file X
// --realtime-speed N` with the API on (the pipeline on its own thread) while a status page polls it,
// sampling the collector's RSS all along: does memory stay flat over a day?
//
// The day: the packets of the bench capture (bench/out/bench-1000000.pcap: every real Ethernet capture in
// ../shared laid end to end), in their order and with their own timing, except that silences longer than
// 1 s are cut to 1 s (the captures were recorded hours apart; laid end to end they idle for 57 of their
// 66 hours). That is 29 packets/s on average, a quiet home: an Echo alone idles at a few packets/s and
// the captures include a busy LAN slice. The rounds repeat, each shifted past the one before, until 24
// hours of capture time are covered (about 2.4M packets). Written once to bench/out/soak-24h.pcap.
//
// Start: the median RSS over the second hour of capture time (after the first hour's warm-up: tables,
// caches and JIT filled); end: the median over the last hour. Target (issue 16): end within 10% of start.
//   node bench/soak.mjs [--minutes M] [--hours H] [--poll-ms MS]
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '4' },
    hours: { type: 'string', default: '24' },
    'poll-ms': { type: 'string', default: '1000' },
    // more flags for `earshot collect` (e.g. "--api-thread false"), split on spaces
    extra: { type: 'string', default: '' },
    runs: { type: 'string' }, // all.mjs passes its flags to every script
    packets: { type: 'string' },
  },
  strict: false,
});
const hours = Number(values.hours);
const minutes = Number(values.minutes);
const MAX_GAP_US = 1_000_000;
const source = join(root, 'bench', 'out', 'bench-1000000.pcap');
const target = join(root, 'bench', 'out', `soak-${hours}h.pcap`);
const cli = join(root, 'dist/cli/main.js');
if (!existsSync(source)) {
  console.error(`soak: ${source} not found; run node bench/run.mjs first`);
  process.exit(2);
}

/** Writes the day: rounds of the bench capture's records with silences cut to 1 s, until `hours`. */
function buildDay() {
  if (existsSync(target)) return;
  const input = readFileSync(source);
  if (input.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${source}: not a little-endian microsecond pcap`);
  const fd = openSync(`${target}.tmp`, 'w');
  writeSync(fd, input, 0, 24);
  const want = hours * 3600 * 1e6;
  let clock = input.readUInt32LE(24) * 1e6 + input.readUInt32LE(28); // microseconds
  const start = clock;
  const out = Buffer.alloc(1 << 22);
  let used = 0;
  const flush = () => {
    writeSync(fd, out, 0, used);
    used = 0;
  };
  for (let round = 0; clock - start < want; round++) {
    let prev = -1;
    for (let off = 24; off + 16 <= input.length && clock - start < want;) {
      const t = input.readUInt32LE(off) * 1e6 + input.readUInt32LE(off + 4);
      const len = input.readUInt32LE(off + 8);
      if (prev >= 0) clock += Math.min(Math.max(t - prev, 0), MAX_GAP_US);
      else if (round > 0) clock += MAX_GAP_US;
      prev = t;
      if (used + 16 + len > out.length) flush();
      out.writeUInt32LE(Math.floor(clock / 1e6), used);
      out.writeUInt32LE(clock % 1e6, used + 4);
      input.copy(out, used + 8, off + 8, off + 16 + len);
      used += 16 + len;
      off += 16 + len;
    }
  }
  flush();
  closeSync(fd);
  renameSync(`${target}.tmp`, target);
}

const freePort = () => new Promise((res) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => res(port));
  });
});
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rssMb = (pid) => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
};

buildDay();
// how many packets and over how long (the first and last record)
const day = readFileSync(target);
let packets = 0;
let first = 0;
let last = 0;
for (let off = 24; off + 16 <= day.length; packets++) {
  const t = day.readUInt32LE(off) + day.readUInt32LE(off + 4) / 1e6;
  if (packets === 0) first = t;
  last = t;
  off += 16 + day.readUInt32LE(off + 8);
}
const spanS = last - first;
const speed = spanS / (minutes * 60);
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const child = spawn(process.execPath, [cli, 'collect', '--file', target, '--realtime-speed', String(speed), '--exit-when-done',
  '--listen', `127.0.0.1:${port}`, '--format', 'json', '-o', '/dev/null', '--log-format', 'json', ...String(values.extra).split(' ').filter(Boolean)], { stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
child.stderr.on('data', (d) => { stderr += d; });
const exited = new Promise((res) => child.on('close', res));
let startedMs = null;
const samples = []; // [capture seconds since the start, MB]
let polls = 0;
let pollErrors = 0;
const failures = new Map();
const pollMs = Number(values['poll-ms']);
const timer = setInterval(async () => {
  if (startedMs === null) {
    if (!/"msg":"(API on |capturing)/.test(stderr)) return;
    startedMs = Date.now();
  }
  const mb = rssMb(child.pid);
  if (mb !== null && !/capture ended/.test(stderr)) samples.push([((Date.now() - startedMs) / 1000) * speed, mb]);
  if (pollMs <= 0 || /capture ended/.test(stderr)) return;
  // a status page open all day: what it reads every poll
  for (const route of ['health', 'devices', 'activations?limit=20', 'flows?limit=50']) {
    let why = null;
    try {
      polls++;
      const res = await fetch(`${base}/api/v1/${route}`);
      if (!res.ok) why = `${route} ${res.status}`;
      await res.arrayBuffer();
    } catch (err) {
      why = `${route} ${err.cause?.code ?? err.message}`;
    }
    if (why !== null) {
      pollErrors++;
      failures.set(why, (failures.get(why) ?? 0) + 1);
    }
  }
}, Math.max(pollMs, 1000));
const code = await exited;
clearInterval(timer);
if (code !== 0) {
  console.error(`soak: earshot exited with ${code}: ${stderr.slice(-2000)}`);
  process.exit(1);
}
const within = (fromH, toH) => samples.filter(([s]) => s >= fromH * 3600 && s < toH * 3600).map(([, mb]) => mb);
const startMb = median(within(1, 2));
const endMb = median(within(hours - 1, hours + 1));
const peak = Math.max(...samples.map(([, mb]) => mb));
console.log('');
console.log(`Soak (${cpus().length} x ${cpus()[0]?.model ?? '?'}): ${packets.toLocaleString('en')} packets, ${(spanS / 3600).toFixed(1)} h of capture time (${(packets / spanS).toFixed(0)} packets/s on average), replayed at ${speed.toFixed(0)}x in ${minutes} min with the API polled every ${values['poll-ms']} ms (${polls} requests, ${pollErrors} failed${failures.size ? `: ${[...failures].map(([k, n]) => `${k} x${n}`).join(', ')}` : ''})${values.extra ? `, collect ${values.extra}` : ''}`);
console.log(`  RSS: ${startMb.toFixed(0)} MB over hour 2 (start), ${endMb.toFixed(0)} MB over the last hour (end), peak ${peak.toFixed(0)} MB: end/start ${(endMb / startMb).toFixed(3)} (target <= 1.10)`);
const byHour = [];
for (let h = 0; h < Math.ceil(hours); h += 4) byHour.push(`${h}h ${median(within(h, h + 1)).toFixed(0)}`);
console.log(`  by capture hour (MB, median of the hour): ${byHour.join(', ')}`);
