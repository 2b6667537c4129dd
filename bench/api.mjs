#!/usr/bin/env node
// The API part of `npm run bench`: `earshot collect --file` replays the benchmark capture as fast as it
// can while autocannon loads GET /api/v1/activations on loopback; printed: requests/s and latency
// percentiles, and the replay's own packets/s with and without that load (same command, interleaved),
// and how long `collect` takes to start (from the spawn to the API's first answer); then how long the
// API's reads take while the flow table is full (the flow-flood capture).
//   node bench/api.mjs [--runs N] [--connections N] [--reads-only]   (after bench/run.mjs and bench/flood.mjs built bench/out/*.pcap)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { freePort, median } from './common.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { 'reads-only': { type: 'boolean', default: false }, runs: { type: 'string', default: '3' }, connections: { type: 'string', default: '10' }, packets: { type: 'string', default: '1000000' } } });
const runs = Number(values.runs);
const capture = join(root, 'bench', 'out', `bench-${values.packets}.pcap`);
if (!existsSync(capture)) {
  console.error(`bench: ${capture} not found; run node bench/run.mjs first`);
  process.exit(2);
}
const cli = join(root, 'dist/cli/main.js');


/** One `collect --file` run; with `load`, autocannon hits the API while the capture runs. */
async function once(load, extra = []) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const spawnedMs = performance.now();
  const child = spawn(process.execPath, [cli, 'collect', '--file', capture, '--listen', `127.0.0.1:${port}`, '--format', 'json', '-o', '/dev/null', '--log-format', 'json', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((res) => child.on('close', res));
  // the API listens before the capture starts
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/api/v1/health`)).ok) break;
    } catch { /* starting */ }
    if (i > 400) throw new Error(`API did not come up: ${stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  // from the spawn to the API's first answer (polled every 10 ms): the start a user waits for
  const startS = (performance.now() - spawnedMs) / 1000;
  let result = null;
  if (load) {
    const instance = autocannon({ url: `${base}/api/v1/activations`, connections: Number(values.connections), duration: 120 });
    const ended = new Promise((res) => instance.on('done', res));
    // load until the capture has ended
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      if (/capture ended/.test(stderr)) break;
    }
    instance.stop();
    result = await ended;
  } else {
    while (!/capture ended/.test(stderr)) await new Promise((r) => setTimeout(r, 20));
  }
  const health = await (await fetch(`${base}/api/v1/health`)).json();
  child.kill('SIGTERM');
  await exited;
  // the capture's own duration, from the collector's log lines
  const times = stderr.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
  const start = times.find((t) => /^API on /.test(t.msg))?.time;
  const end = times.find((t) => /capture ended/.test(t.msg))?.time;
  return { seconds: (end - start) / 1000, packets: health.capture.packets, result, startS };
}

// the pipeline on its own thread (the default) and on the API's thread (--api-thread false), interleaved
const variants = [
  { name: 'pipeline thread', extra: [] },
  { name: 'one thread', extra: ['--api-thread', 'false'] },
];
const results = new Map(variants.map((v) => [v.name, { plain: [], loaded: [], starts: [], rps: [], p50: [], p99: [], errors: 0, packets: 0 }]));
for (let r = 0; r < (values['reads-only'] ? 0 : runs); r++) {
  for (const v of variants) {
    const m = results.get(v.name);
    const plain = await once(false, v.extra);
    m.plain.push(plain.seconds);
    m.starts.push(plain.startS);
    const { seconds, result, packets: n } = await once(true, v.extra);
    m.packets = n;
    m.loaded.push(seconds);
    m.rps.push(result.requests.average);
    m.p50.push(result.latency.p50);
    m.p99.push(result.latency.p99);
    m.errors += result.errors + result.non2xx;
  }
}
console.log('');
if (!values['reads-only']) console.log(`API under load during a replay (${cpus().length} x ${cpus()[0]?.model ?? '?'}, autocannon, ${values.connections} connections, loopback), median of ${runs} runs`);
for (const v of values['reads-only'] ? [] : variants) {
  const m = results.get(v.name);
  console.log(`  ${v.name}: GET /api/v1/activations ${Math.round(median(m.rps)).toLocaleString('en')} requests/s, latency p50 ${median(m.p50)} ms, p99 ${median(m.p99)} ms, ${m.errors} errors or non-2xx`);
  console.log(`    the replay (earshot collect --file, ${m.packets.toLocaleString('en')} packets): ${median(m.plain).toFixed(2)} s without load, ${median(m.loaded).toFixed(2)} s under load: ${(median(m.loaded) / median(m.plain)).toFixed(2)}x (target <= 1.3x)`);
  console.log(`    the start (from the spawn to the API's first answer, without load): ${median(m.starts).toFixed(2)} s`);
}

// The API's reads while the flow table is full: `collect --file` of the flow-flood capture (bench/flood.mjs)
// at twice its speed; after 6 s, one GET of each kind every 300 ms (past the view's 250 ms, so each is made
// again by the pipeline's thread): the status page's /devices (every 3 s per open page), and /flows
const flowFlood = join(root, 'bench', 'out', `flow-flood-${values.packets}.pcap`);
if (!existsSync(flowFlood)) {
  console.log(`  the API's reads under a flow flood: skipped (${flowFlood} not found; node bench/flood.mjs builds it)`);
} else {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}/api/v1`;
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-bench-api-'));
  const child = spawn(process.execPath, [cli, 'collect', '--file', flowFlood, '--realtime-speed', '2', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--format', 'json', '--output', '/dev/null'], { stdio: 'ignore' });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; ; i++) {
    try {
      await fetch(`${base}/health`);
      break;
    } catch {
      if (i > 300) throw new Error('the collector did not answer');
      await sleep(50);
    }
  }
  await sleep(6000);
  const reads = { '/devices?limit=1000': [], '/flows?limit=1000': [], '/flows?device=D&limit=100': [] };
  let device = null;
  let open = 0;
  for (let i = 0; i < 15; i++) {
    for (const path of Object.keys(reads)) {
      await sleep(300);
      const t = performance.now();
      const body = await (await fetch(`${base}${path.replace('D', device ?? '')}`)).json();
      reads[path].push(performance.now() - t);
      if (path.startsWith('/devices')) device = body.devices[0]?.mac ?? null;
    }
    open = (await (await fetch(`${base}/health`)).json()).capture.flowsActive ?? open;
  }
  child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
  console.log(`  the API's reads under a flow flood (collect --file ${flowFlood.split('/').pop()} at 2x, ${typeof open === 'number' ? `${open.toLocaleString('en')} open flows` : 'the table full'}), median of 15 each:`);
  for (const [path, ms] of Object.entries(reads)) console.log(`    GET /api/v1${path}: ${median(ms).toFixed(1)} ms`);
}
process.exit(0);
