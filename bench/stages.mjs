#!/usr/bin/env node
// Where a replay's time goes: runs the pipeline on the bench capture in this process, one stage more each
// time (file reading, + decoding, + the flow table, + identify/tag/payloads/detection, + the run's sinks,
// + the JSON report), and prints the median wall time of each with the cost it adds. Runs interleaved,
// each in a fresh process, so another load on the machine spreads over all of them alike.
//   node bench/stages.mjs [--runs N] [--capture PATH]   (after `npm run build` and `npm run bench`)
// It uses dist/'s internal modules: when they change shape, this script follows them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, capture: { type: 'string' }, stage: { type: 'string' } } });
const capture = values.capture ?? join(root, 'bench', 'out', 'bench-1000000.pcap');

const STAGES = [
  ['read', 'read the file, parse pcap records'],
  ['decode', '+ decode (link, IP, TCP/UDP)'],
  ['flows', '+ flow table (accounting, expiry)'],
  ['collector-no-tagging', '+ payloads, identify (tagging false)'],
  ['collector-no-detect', '+ tagging (detect false)'],
  ['collector', '+ detection: the whole pipeline'],
  ['runtime', '+ flow records, device totals, report kept'],
  ['report', '+ the JSON report written to /dev/null'],
];

if (values.stage !== undefined) {
  process.stdout.write(`${await runStage(values.stage)}\n`);
  process.exit(0);
}

if (!existsSync(capture)) {
  console.error(`stages: ${capture} not found: run npm run bench first (it builds the capture)`);
  process.exit(2);
}
const runs = Number(values.runs);
const times = new Map(STAGES.map(([name]) => [name, []]));
for (let i = 0; i < runs; i++) {
  for (const [name] of STAGES) {
    const res = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--stage', name, '--capture', capture], { encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`stage ${name} failed: ${res.stderr.slice(-500)}`);
    times.get(name).push(Number(res.stdout.trim()));
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[(a.length - 1) >> 1];
console.log(`earshot stages: ${capture.replace(`${root}/`, '')}, median of ${runs} (ms, in-process, after startup)`);
let previous = 0;
for (const [name, what] of STAGES) {
  const ms = median(times.get(name));
  console.log(`${name.padEnd(22)} ${String(Math.round(ms)).padStart(6)} ms  ${(ms - previous >= 0 ? '+' : '') + Math.round(ms - previous)} ms  ${what}`);
  previous = ms;
}

/** Runs one stage on the capture; returns its wall time in ms. */
async function runStage(stage) {
  const dist = (p) => import(pathToFileURL(join(root, 'dist', p)).href);
  const { performance } = await import('node:perf_hooks');
  const { buildFileSource } = await dist('collector/capture/pcap-file.js');
  const { loadConfig } = await dist('collector/config.js');
  const config = globalThis.structuredClone(loadConfig({}));
  if (stage === 'collector-no-tagging') config.tagging.enabled = false;
  if (stage === 'collector-no-detect') config.detect.enabled = false;
  const source = buildFileSource({ path: capture }, {});
  const t0 = performance.now();
  if (stage === 'read') {
    await source.run(() => {});
  } else if (stage === 'decode' || stage === 'flows') {
    const { buildDecoder } = await dist('collector/decode/index.js');
    const decoder = buildDecoder();
    let table = null;
    if (stage === 'flows') {
      const { FlowTable } = await dist('collector/flow/table.js');
      const { buildLocalNets } = await dist('collector/flow/local-nets.js');
      const f = config.flows;
      table = new FlowTable({ maxFlows: f.maxFlows, tcpIdleTimeoutMs: f.tcpIdleTimeoutS * 1000, udpIdleTimeoutMs: f.udpIdleTimeoutS * 1000 }, buildLocalNets([]), () => {});
    }
    let nextExpire = 0;
    await source.run((buf, offset, capLen, wireLen, timeMs, linkType) => {
      const p = decoder.decode(buf, offset, capLen, wireLen, timeMs, linkType);
      if (table === null || p === null || p.srcPort < 0 || (p.proto !== 6 && p.proto !== 17)) return;
      table.account(p);
      if (timeMs >= nextExpire) {
        table.expire(timeMs);
        nextExpire = timeMs + 1000;
      }
    });
    table?.flush();
  } else if (stage.startsWith('collector')) {
    const { buildCollector } = await dist('collector/index.js');
    await buildCollector(config, {}).run(source);
  } else {
    const { buildRuntime } = await dist('collector/runtime.js');
    const log = { info() {}, warn() {}, error() {}, debug() {}, child: () => log };
    const run = buildRuntime(config, { clock: 'packet', activity: false }, { log });
    const stats = await run.run(source);
    if (stage === 'report') {
      const { createWriteStream } = await import('node:fs');
      const chunks = run.report.jsonChunks(stats, run.collector.stats(), { devices: run.collector.inventory?.all() });
      const out = createWriteStream('/dev/null', { highWaterMark: 1 << 20 });
      await new Promise((done) => {
        const it = chunks[Symbol.iterator]();
        const pump = () => {
          for (let s = it.next(); !s.done; s = it.next()) {
            if (!out.write(s.value)) {
              out.once('drain', pump);
              return;
            }
          }
          out.end(done);
        };
        pump();
      });
    }
  }
  return performance.now() - t0;
}
