#!/usr/bin/env node
// What plain JavaScript costs before earshot does anything: the whole process reading a classic pcap in
// 1-MiB reads and walking its records ("walk"); the same with a Map of IPv4 TCP/UDP 5-tuples with
// string keys, packets and bytes per flow ("map"); and with the same flows in an open-addressing table of
// typed arrays, compared on numbers as earshot's flow table is ("table"); beside tcpdump's read. Issue
// 16's floor for the whole-process target (README, Performance).
//   node bench/floor.mjs [--runs N] [FILE]   (default: bench/out/bench-1000000.pcap)
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './common.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values, positionals } = parseArgs({ options: { runs: { type: 'string', default: '5' }, mode: { type: 'string' } }, allowPositionals: true });
const file = positionals[0] ?? join(root, 'bench', 'out', 'bench-1000000.pcap');

if (values.mode !== undefined) {
  // the measured program itself
  const fd = openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let have = readSync(fd, buf, 0, buf.length, 0);
  let pos = have;
  let at = 24;
  let packets = 0;
  const flows = new Map();
  // "table": linear probing over typed arrays (2^18 slots; the bench capture has 5,953 such flows)
  const SLOTS = 1 << 18;
  const MASK = SLOTS - 1;
  const tProto = new Int32Array(SLOTS);
  const tLo = new Int32Array(SLOTS);
  const tHi = new Int32Array(SLOTS);
  const tPorts = new Int32Array(SLOTS);
  const tPackets = new Float64Array(SLOTS);
  const tBytes = new Float64Array(SLOTS);
  let tFlows = 0;
  const refill = () => {
    buf.copy(buf, 0, at, have);
    have -= at;
    at = 0;
    const n = readSync(fd, buf, have, buf.length - have, pos);
    have += n;
    pos += n;
    return n > 0;
  };
  for (;;) {
    if (have - at < 16 && !refill()) break;
    if (have - at < 16) continue;
    const cap = buf.readUInt32LE(at + 8);
    const wire = buf.readUInt32LE(at + 12);
    if (have - at < 16 + cap) {
      if (!refill()) break;
      continue;
    }
    const p = at + 16;
    packets++;
    if (values.mode === 'map' && cap >= 34 && buf[p + 12] === 8 && buf[p + 13] === 0) {
      const ihl = (buf[p + 14] & 15) * 4;
      const proto = buf[p + 23];
      if ((proto === 6 || proto === 17) && cap >= 14 + ihl + 4) {
        const s = buf.readUInt32BE(p + 26);
        const d = buf.readUInt32BE(p + 30);
        const sp = buf.readUInt16BE(p + 14 + ihl);
        const dp = buf.readUInt16BE(p + 16 + ihl);
        const key = s < d ? `${proto}|${s}|${sp}|${d}|${dp}` : `${proto}|${d}|${dp}|${s}|${sp}`;
        const f = flows.get(key);
        if (f === undefined) flows.set(key, { packets: 1, bytes: wire });
        else {
          f.packets++;
          f.bytes += wire;
        }
      }
    } else if (values.mode === 'table' && cap >= 34 && buf[p + 12] === 8 && buf[p + 13] === 0) {
      const ihl = (buf[p + 14] & 15) * 4;
      const proto = buf[p + 23];
      if ((proto === 6 || proto === 17) && cap >= 14 + ihl + 4) {
        const s = buf.readInt32BE(p + 26);
        const d = buf.readInt32BE(p + 30);
        const sp = buf.readUInt16BE(p + 14 + ihl);
        const dp = buf.readUInt16BE(p + 16 + ihl);
        // one orientation for both directions: the lower address first
        const lo = s < d ? s : d;
        const hi = s < d ? d : s;
        const ports = s < d ? (sp << 16) | dp : (dp << 16) | sp;
        let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1) ^ Math.imul(ports, 0x85ebca6b) ^ proto, 0xc2b2ae35);
        h = (h ^ (h >>> 15)) & MASK;
        for (;;) {
          if (tProto[h] === 0) {
            tProto[h] = proto;
            tLo[h] = lo;
            tHi[h] = hi;
            tPorts[h] = ports;
            tPackets[h] = 1;
            tBytes[h] = wire;
            tFlows++;
            break;
          }
          if (tLo[h] === lo && tHi[h] === hi && tPorts[h] === ports && tProto[h] === proto) {
            tPackets[h]++;
            tBytes[h] += wire;
            break;
          }
          h = (h + 1) & MASK;
        }
      }
    }
    at = p + cap;
  }
  closeSync(fd);
  console.log(`${packets} packets, ${values.mode === 'table' ? tFlows : flows.size} flows`);
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
const timed = (cmd, args) => {
  const r = spawnSync('/usr/bin/time', ['-f', '@@%e %M', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const m = /@@([\d.]+) (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.slice(-300)}`);
  return { wall: Number(m[1]), rssMb: Number(m[2]) / 1024 };
};
const cases = [
  ['tcpdump -r FILE -w /dev/null', 'tcpdump', ['-r', file, '-w', '/dev/null']],
  ['node: walk the records', process.execPath, [self, '--mode', 'walk', file]],
  ['node: walk + Map of 5-tuples', process.execPath, [self, '--mode', 'map', file]],
  ['node: walk + typed-array table', process.execPath, [self, '--mode', 'table', file]],
  ['earshot replay --format json', process.execPath, [join(root, 'dist/cli/main.js'), 'replay', file, '--format', 'json', '--no-progress', '-o', '/dev/null']],
];
const rows = new Map(cases.map(([name]) => [name, []]));
for (let i = 0; i < Number(values.runs); i++) for (const [name, cmd, args] of cases) rows.get(name).push(timed(cmd, args));
const floor = median(rows.get(cases[0][0]).map((r) => r.wall));
console.log(`${file}: median of ${values.runs} runs, Node ${process.version}, tcpdump ${execFileSync('tcpdump', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`);
for (const [name] of cases) {
  const wall = median(rows.get(name).map((r) => r.wall));
  console.log(`${name.padEnd(34)} ${wall.toFixed(2)} s  ${(wall / floor).toFixed(2)}x tcpdump  ${median(rows.get(name).map((r) => r.rssMb)).toFixed(0)} MB`);
}
