#!/usr/bin/env node
// npm run bench (inputs part): the bench capture replayed from the plain file, from a gzip-compressed
// copy and as a stream on stdin (`cat bench.pcap | earshot replay -`), interleaved, median of N runs:
// whole-process wall time, CPU time (user + system) and peak RSS (GNU time %M, earshot's process only:
// cat is not counted), each against the plain file. Target (issue 16): .gz and stdin peak within 1.10x
// of the plain file.
//   node bench/inputs.mjs [--runs N] [--packets N] [--cli dist/cli/main.js]
// The capture is run.mjs's (bench/out/bench-N.pcap); its .gz copy is made once, beside it, with zlib's
// default level (what `gzip` does).
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, renameSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { median } from './common.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    packets: { type: 'string', default: '1000000' },
    cli: { type: 'string', default: join(root, 'dist/cli/main.js') },
  },
  strict: false,
});
const runs = Number(values.runs);
const capture = join(root, 'bench', 'out', `bench-${values.packets}.pcap`);
const cli = resolve(String(values.cli));
if (!existsSync(capture)) {
  console.error(`inputs: ${capture} not found; node bench/run.mjs makes it`);
  process.exit(2);
}
if (!existsSync('/usr/bin/time')) {
  console.error('inputs: GNU time (/usr/bin/time) not found; run deploy/setup.sh first');
  process.exit(2);
}
const gz = `${capture}.gz`;
if (!existsSync(gz) || statSync(gz).mtimeMs < statSync(capture).mtimeMs) {
  await pipeline(createReadStream(capture), createGzip(), createWriteStream(`${gz}.tmp`));
  renameSync(`${gz}.tmp`, gz);
}

/** earshot replaying `file` ('-': stdin), as argv after node. */
const replay = (file) => [cli, 'replay', file, '--format', 'json', '--no-progress', '-o', '/dev/null'];
const timeFormat = '@@%e %U %S %M';
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
const inputs = [
  { name: 'plain file', cmd: '/usr/bin/time', args: ['-f', timeFormat, process.execPath, ...replay(capture)] },
  { name: '.gz file', cmd: '/usr/bin/time', args: ['-f', timeFormat, process.execPath, ...replay(gz)] },
  {
    name: 'stdin (cat | replay -)',
    cmd: 'sh',
    args: ['-c', `cat ${q(capture)} | /usr/bin/time -f '${timeFormat}' ${[process.execPath, ...replay('-')].map(q).join(' ')}`],
  },
];

const results = new Map(inputs.map((i) => [i.name, { wall: [], cpu: [], rss: [] }]));
for (let r = 0; r < runs; r++) {
  // interleaved, so a noisy moment hits every input alike
  for (const input of inputs) {
    const res = spawnSync(input.cmd, input.args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
    const m = /@@([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(res.stderr ?? '');
    if (res.status !== 0 || !m) {
      console.error(`inputs: ${input.name} failed (${res.status}): ${(res.stderr ?? '').slice(-500)}`);
      process.exit(1);
    }
    const out = results.get(input.name);
    out.wall.push(Number(m[1]));
    out.cpu.push(Number(m[2]) + Number(m[3]));
    out.rss.push(Number(m[4]) / 1024);
  }
}

console.log('');
console.log(`Inputs: ${capture.replace(`${root}/`, '')} (${(statSync(capture).size / 1e6).toFixed(0)} MB; .gz ${(statSync(gz).size / 1e6).toFixed(0)} MB), ${cli.replace(`${root}/`, '')}`);
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; median of ${runs} runs`);
const row = (cols) => console.log(cols.map((c, i) => (i === 0 ? String(c).padEnd(26) : String(c).padStart(11))).join(''));
row(['input', 'wall s', 'cpu s', 'peak MB', 'peak range', 'peak/plain', 'wall/plain']);
const plain = results.get(inputs[0].name);
let worst = 0;
for (const input of inputs) {
  const r = results.get(input.name);
  const ratio = median(r.rss) / median(plain.rss);
  if (input !== inputs[0]) worst = Math.max(worst, ratio);
  row([input.name, median(r.wall).toFixed(2), median(r.cpu).toFixed(2), median(r.rss).toFixed(0),
    `${Math.min(...r.rss).toFixed(0)}-${Math.max(...r.rss).toFixed(0)}`, `${ratio.toFixed(2)}x`, `${(median(r.wall) / median(plain.wall)).toFixed(2)}x`]);
}
console.log(`streamed inputs' peak against the plain file's: at most ${worst.toFixed(2)}x (target <= 1.10x)`);
