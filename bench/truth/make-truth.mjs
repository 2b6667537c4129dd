#!/usr/bin/env node
// node bench/truth/make-truth.mjs [--json] [--labels FILE]
//
// Re-checks the hand-made ground truth in bench/truth/real.json against the packets, with tshark only (no
// earshot code, so the labels cannot inherit earshot's mistakes). For each capture it lists the
// assistant's upload bursts: data frames (TCP payload > 0 or UDP payload > 0) from the device's MAC to a
// public address, split where no data frame went up for more than 1 s. Per burst: start, end, frame bytes
// up (every frame from the device to a public address between the first and the last data frame, ACKs
// included, as the CIC labels count them), packets, 100-ms slots holding a data frame, the main server
// (most bytes) and its DNS name when the capture holds one, and what came down in the 5 s after: from the
// main server's address and from any public address (the spoken answer streams down then).
//
// Beside each burst it prints the labels that fall in it. It exits 1 when a label has no packets behind
// it (its first/last data frame, server or byte count do not match what tshark reads), when a burst holds >= 3 kB that no label covers, or when a capture has no entry; 2 when
// ../shared or tshark is missing.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const shared = process.env.EARSHOT_SHARED ?? resolve(root, '..', 'shared');
const realDir = join(shared, 'captures', 'real');
const labelsAt = process.argv.indexOf('--labels');
const labelsPath = labelsAt > 0 ? resolve(process.argv[labelsAt + 1] ?? '') : join(here, 'real.json');
const asJson = process.argv.includes('--json');

/** The captures that hold an assistant (or, for the app, the device that must get no activation). */
const FILES = [
  ['amazon-echo_alexa-time-query-0_xray.pcap', '88:71:e5:e9:9e:6c'],
  ['amazon-echo_alexa-time-query-1_xray.pcap', '88:71:e5:e9:9e:6c'],
  ['amazon-echo_alexa-timed2_xray.pcap', '88:71:e5:e9:9e:6c'],
  ['amazon-echodot2_normal-use_jhautry.pcap', '50:f5:da:23:43:df'],
  ['amazon-echodot3_activation_neu.pcapng', '68:db:f5:90:19:64'],
  ['amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap', '50:f5:da:23:43:df'],
  ['android-alexa-app_jhautry.pcap', '78:f8:82:d3:fb:c2'],
];

const GAP_S = 1; // a burst ends when no data frame went up for longer than this
const AFTER_S = 5; // how long after a burst to count what came down
const MIN_BURST = 3000; // bursts at least this big must be labelled
const EDGE_S = 0.0006; // labels carry 3 decimals: a frame within this of a labelled edge is that edge

const run = promisify(execFile);

/** tshark's output; a capture cut short (timed2) makes tshark exit 2 after printing what it read. */
async function tshark(args) {
  try {
    return (await run('tshark', args, { maxBuffer: 1 << 28 })).stdout;
  } catch (err) {
    if (err.code === 2 && /cut short in the middle of a packet/.test(err.stderr ?? '')) return err.stdout ?? '';
    const why = (err.stderr ?? '').split('\n').find((l) => l.trim() && !/Running as user/.test(l)) ?? err.message;
    throw new Error(`tshark ${args.slice(0, 2).join(' ')}: ${why.trim()}`);
  }
}

/** True for an address that is not on the home network (RFC 1918, link-local, multicast, ...). */
function isPublic(addr) {
  if (addr.includes(':')) return !/^(fe[89ab]|ff|f[cd]|::1$|::$)/i.test(addr);
  const [a, b] = addr.split('.').map(Number);
  return !(a === 10 || a === 127 || a === 0 || a >= 224 || (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127));
}

/** The device's frames (to or from its MAC) and the DNS names its lookups gave addresses: one tshark pass. */
async function readCapture(file, mac) {
  const out = await tshark([
    '-r', file, '-Y', `eth.addr == ${mac} && (tcp || udp) && !icmp && !icmpv6`,
    '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=,',
    '-e', 'frame.time_epoch', '-e', 'frame.len', '-e', 'eth.src',
    '-e', 'ip.src', '-e', 'ip.dst', '-e', 'ipv6.src', '-e', 'ipv6.dst',
    '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'tcp.len', '-e', 'udp.srcport', '-e', 'udp.dstport', '-e', 'udp.length',
    '-e', 'dns.flags.response', '-e', 'dns.qry.name', '-e', 'dns.a',
  ]);
  const frames = [];
  const names = new Map();
  // with occurrence=a a field repeats for tunnelled headers; the outer one comes first
  const first = (v) => v.split(',')[0];
  for (const line of out.split('\n')) {
    if (!line) continue;
    const f = line.split('\t');
    const src = first(f[3] || f[5]);
    const dst = first(f[4] || f[6]);
    if (!src || !dst) continue;
    const tcp = f[7] !== '';
    frames.push({
      t: Number(f[0]), len: Number(f[1]), up: first(f[2]).toLowerCase() === mac,
      src, dst, sport: Number(first(tcp ? f[7] : f[10])), dport: Number(first(tcp ? f[8] : f[11])),
      data: tcp ? Number(first(f[9])) > 0 : Number(first(f[12])) > 8,
    });
    if (first(f[13]) === '1' && f[14] && f[15]) for (const addr of f[15].split(',')) names.set(addr, first(f[14]));
  }
  return { frames, names };
}

const fmt = (t) => t.toFixed(3);
const server = (f) => `${f.dst}:${f.dport}`;

/** The device's upload bursts as defined at the top of this file. */
function burstsOf(frames, names) {
  const ups = frames.filter((f) => f.up && isPublic(f.dst));
  const data = ups.filter((f) => f.data);
  const spans = [];
  for (const f of data) {
    const last = spans[spans.length - 1];
    if (last && f.t - last.end <= GAP_S) last.end = f.t;
    else spans.push({ start: f.t, end: f.t });
  }
  return spans.map(({ start, end }) => {
    const inside = ups.filter((f) => f.t >= start && f.t <= end);
    const perServer = new Map();
    for (const f of inside) perServer.set(server(f), (perServer.get(server(f)) ?? 0) + f.len);
    const main = [...perServer].sort((x, y) => y[1] - x[1])[0][0];
    const mainIp = main.slice(0, main.lastIndexOf(':'));
    const slots = new Set(data.filter((f) => f.t >= start && f.t <= end).map((f) => Math.floor((f.t - start) * 10)));
    const down = (f) => !f.up && isPublic(f.src);
    const during = frames.filter((f) => down(f) && f.src === mainIp && f.t >= start && f.t <= end);
    const after = frames.filter((f) => down(f) && f.t > end && f.t <= end + AFTER_S);
    return {
      start, end, bytes: inside.reduce((s, f) => s + f.len, 0), packets: inside.length, slots: slots.size,
      server: main, name: names.get(mainIp) ?? '', servers: perServer.size,
      downDuring: during.reduce((s, f) => s + f.len, 0),
      downMain: after.filter((f) => f.src === mainIp).reduce((s, f) => s + f.len, 0),
      downAll: after.reduce((s, f) => s + f.len, 0),
    };
  });
}

/** Problems with one file's labels, measured against its frames and bursts. */
function check(entry, frames, bursts) {
  const problems = [];
  const labels = [
    ...entry.voice_uploads.map((l) => ({ ...l, label: `voice ${l.kind} from ${fmt(l.start_epoch)}` })),
    ...entry.non_voice_bursts.map((l) => ({ ...l, label: `non-voice from ${fmt(l.start_epoch)}: ${l.what}` })),
  ];
  const ups = frames.filter((f) => f.up && isPublic(f.dst));
  for (const l of labels) {
    const id = `${l.label} ${fmt(l.start_epoch)}-${fmt(l.end_epoch)} ${l.server}`;
    const toServer = ups.filter((f) => server(f) === l.server);
    const dataToServer = toServer.filter((f) => f.data);
    if (!dataToServer.some((f) => Math.abs(f.t - l.start_epoch) <= EDGE_S)) problems.push(`${id}: no data frame to ${l.server} at its start`);
    if (!dataToServer.some((f) => Math.abs(f.t - l.end_epoch) <= EDGE_S)) problems.push(`${id}: no data frame to ${l.server} at its end`);
    const bytes = toServer.filter((f) => f.t >= l.start_epoch - EDGE_S && f.t <= l.end_epoch + EDGE_S).reduce((s, f) => s + f.len, 0);
    if (bytes !== l.bytes_up) problems.push(`${id}: bytes_up ${l.bytes_up}, tshark reads ${bytes}`);
    if (l.end_epoch < l.start_epoch) problems.push(`${id}: ends before it starts`);
  }
  for (const b of bursts) {
    // an upload that stalls for more than GAP_S (TCP retransmission timeouts) spans several bursts
    b.labels = labels.filter((l) => l.start_epoch <= b.end + EDGE_S && l.end_epoch >= b.start - EDGE_S).map((l) => l.label);
    // bytes of the burst that no label covers: a label covers its server between its edges
    const uncovered = ups.filter((f) => f.t >= b.start && f.t <= b.end && !labels.some((l) =>
      server(f) === l.server && f.t >= l.start_epoch - EDGE_S && f.t <= l.end_epoch + EDGE_S)).reduce((s, f) => s + f.len, 0);
    b.unlabelled = uncovered;
    if (uncovered >= MIN_BURST) problems.push(`burst ${fmt(b.start)}-${fmt(b.end)} (${b.bytes} B to ${b.server}): ${uncovered} B >= ${MIN_BURST} B not labelled`);
  }
  return problems;
}

async function main() {
  if (!existsSync(realDir)) {
    console.error(`make-truth: ${realDir} not found (set EARSHOT_SHARED)`);
    process.exit(2);
  }
  let truth;
  try {
    truth = JSON.parse(readFileSync(labelsPath, 'utf8'));
    if (!Array.isArray(truth)) throw new Error('not a JSON array of file entries');
  } catch (err) {
    console.error(`make-truth: ${labelsPath}: ${err.message}`);
    process.exit(2);
  }
  const results = await Promise.all(FILES.map(async ([file, mac]) => {
    const entry = truth.find((e) => e.file === file);
    const { frames, names } = await readCapture(join(realDir, file), mac);
    const bursts = burstsOf(frames, names);
    const problems = [];
    if (!entry) problems.push('no entry in real.json');
    else if (entry.device_mac !== mac) problems.push(`device_mac ${entry.device_mac}, expected ${mac}`);
    if (entry) problems.push(...check(entry, frames, bursts));
    return {
      file, mac, bursts, problems,
      voice: entry?.voice_uploads.length ?? 0,
      uncertain: entry?.voice_uploads.filter((v) => v.kind === 'uncertain').length ?? 0,
      nonVoice: entry?.non_voice_bursts.length ?? 0,
    };
  }));
  for (const e of truth) if (!FILES.some(([f]) => f === e.file)) results.push({ file: e.file, bursts: [], problems: ['in real.json but not checked here'] });
  if (asJson) {
    console.log(JSON.stringify(results.map((r) => ({ ...r, bursts: r.bursts.map((b) => ({ ...b })) })), null, 1));
  } else {
    for (const r of results) {
      console.log(`\n${r.file}  (${r.mac}; labelled: ${r.voice} voice, ${r.uncertain} of them uncertain, ${r.nonVoice} non-voice)`);
      console.log('  down: frame bytes from the main server during the burst / in the 5 s after it; from any public address in the 5 s after');
      console.log(`  ${'start'.padEnd(14)} ${'end'.padEnd(14)} ${'bytes'.padStart(7)} ${'pkts'.padStart(4)} ${'slots'.padStart(5)} ${'server'.padEnd(22)} ${'down during/after/all'.padStart(24)}  labels [DNS name]`);
      for (const b of r.bursts) {
        const flag = b.bytes >= MIN_BURST && b.labels.length === 0 ? '  <-- UNLABELLED' : '';
        console.log(`  ${fmt(b.start)} ${fmt(b.end)} ${String(b.bytes).padStart(7)} ${String(b.packets).padStart(4)} ${String(b.slots).padStart(5)} ` +
          `${b.server.padEnd(22)} ${`${b.downDuring}/${b.downMain}/${b.downAll}`.padStart(24)}  ${b.labels.join('; ')}${b.name ? ` [${b.name}]` : ''}${flag}`);
      }
      for (const p of r.problems) console.log(`  PROBLEM: ${p}`);
    }
  }
  const bad = results.reduce((s, r) => s + r.problems.length, 0);
  if (!asJson) console.log(bad ? `\n${bad} problem(s)` : '\nall labels match the packets');
  process.exitCode = bad ? 1 : 0;
}

main().catch((err) => {
  console.error(`make-truth: ${err.message}`);
  process.exit(2);
});
