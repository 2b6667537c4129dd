#!/usr/bin/env node
// npm run plots [-- THRESHOLDS.json] [--out DIR]: the evidence figures of docs/detection.md, made from the
// labelled captures with tshark alone (never from earshot's output), and a text summary on stdout.
//   DIR/upload-timelines.svg  upload bytes per 100 ms over 5 s from the first packet of 4 voice uploads
//                             and 4 non-voice bursts, on the same axes
//   DIR/slots-vs-bytes.svg    every upload burst >= 3 kB of the speaker: occupied 100-ms slots vs bytes
// DIR defaults to docs/img. THRESHOLDS.json (default {"minStreamSlots": 12}): each number whose key ends in
// "Slots" is drawn as a vertical line, in "Bytes" as a horizontal one, so the lead's current detector
// thresholds sit on the scatter; other keys are ignored.
//
// What is measured (per capture, only the speaker's frames, found by its MAC):
// - an upload packet is a frame from the speaker to a public address (not RFC 1918, CGNAT, link-local,
//   loopback, multicast, broadcast, IPv6 ULA/link-local/multicast) that carries data: TCP payload > 0 or any
//   UDP datagram. Pure ACKs are left out: they follow the download, not the speaker's own sending.
// - bytes are frame lengths (frame.len), what a router counts;
// - a burst is a run of upload packets with no gap over 1 s, to any destination;
// - slots: the number of distinct 100-ms slots, counted from the burst's first packet, that hold at least
//   one of its packets; duration: last packet - first packet; packets per second: packets / max(duration,
//   0.1 s), so a burst inside one slot is not divided by zero.
// Times are kept in integer microseconds so slot boundaries do not depend on floating-point rounding.
//
// Which bursts are voice (ground truth from labels and from reading the packets, never from earshot):
// - cic-iot-2022-rebuilt: a burst is voice when it overlaps a labels.json run with `voice: true`
//   (first_pkt_epoch..last_pkt_epoch). Everything else (volume changes, posts after the answer) is not.
// - vcfp-haipeng: voice when it overlaps a reference burst widened by the labels' +-2 s
//   (start_epoch_s - 2 .. end_epoch_s + 1 + 2; end_epoch_s names a whole second). The 5 files where the
//   reference rule found 4 of the 5 commands each hold one more command, found by reading the packets
//   (UNLABELLED_COMMANDS below): an upload on the file's voice connection, 25-40 s from its neighbours as
//   the other commands are spaced, that opens with a ~284-byte frame and goes on in the 491-byte frames
//   (437-byte TLS records) of the Echo's audio cadence, as every reference upload does. A burst that
//   overlaps that window is voice. In four files the window holds one burst of 19-24 slots; in
//   tell_me_some_good_news it holds two (7 and 12 slots) split by a 1.04-s pause after an opening run of
//   MTU-size frames: both count as voice although neither reaches 15 slots. The same opening run and
//   pause split two labelled uploads (how_many_teaspoons 1540270966.7, what_time_is_sunset 1540269542.6):
//   the opening piece (6-7 slots, ~25 kB) overlaps the widened reference and counts as voice too.
// - the Dubois et al. Echo Dot 3 capture (real/amazon-echodot3_activation_neu.pcapng): one activation;
//   by reading, the upload to the voice server 52.94.233.109 from 1573894026.3 to 1573894031.8 (~223 kB).
//   A burst overlapping 1573894026.0..1573894032.0 is voice; the capture holds no other burst >= 3 kB.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { slotsVsBytesSvg, uploadTimelinesSvg } from './plots-svg.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.EARSHOT_SHARED ?? resolve(root, '..', 'shared');
const captures = join(shared, 'captures');
const US = 1_000_000;
const GAP_US = 1 * US;
const SLOT_US = 100_000;
const MIN_BURST_BYTES = 3000;
const TIMELINE_US = 5 * US;

/** vcfp commands the reference rule missed, found by reading the packets (see the header). */
const UNLABELLED_COMMANDS = {
  'help_5_30s.pcap': [1540180621.9, 1540180624.3],
  'tell_me_a_barbecue_joke_5_30s.pcap': [1540274288.8, 1540274291.4],
  'tell_me_some_good_news_5_30s.pcap': [1540290526.9, 1540290531.1],
  'what_is_trending_5_30s.pcap': [1540194934.9, 1540194937.2],
  'when_is_hanukkah_5_30s.pcap': [1540486779.9, 1540486782.0],
};
const DUBOIS = { file: 'amazon-echodot3_activation_neu.pcapng', mac: '68:db:f5:90:19:64', voice: [1573894026.0, 1573894032.0] };

/** The panels of upload-timelines.svg: a file and the epoch second its burst starts in. */
const TIMELINE_PICKS = [
  { voice: true, title: 'Echo Dot: "volume off"', dir: 'cic-iot-2022-rebuilt', file: 'echodot2/echodot2VOICEVOLUMEOFF_1.pcap', second: 1633627624 },
  { voice: true, title: 'Echo Spot: "volume off"', dir: 'cic-iot-2022-rebuilt', file: 'echospot/echospotVOICEVOLUMEOFF_1.pcap', second: 1633629239 },
  { voice: true, title: 'Nest Mini: "volume on" (QUIC)', dir: 'cic-iot-2022-rebuilt', file: 'nestmini/nestminiVOICEVOLUMEON_1.pcap', second: 1634054338 },
  { voice: true, title: 'Echo (vcfp): "good morning"', dir: 'vcfp-haipeng', file: 'good_morning_5_30s.pcap', second: 1540179995 },
  { voice: false, title: 'Echo Spot: volume from the app', dir: 'cic-iot-2022-rebuilt', file: 'echospot/echospotLANVOLUMEON_2.pcap', second: 1633609717 },
  { voice: false, title: 'Nest Mini: volume button', dir: 'cic-iot-2022-rebuilt', file: 'nestmini/nestminiLOCALVOLUMEOFF_2.pcap', second: 1634050628 },
  { voice: false, title: 'Echo (vcfp): post after answer', dir: 'vcfp-haipeng', file: 'help_5_30s.pcap', second: 1540180607 },
  { voice: false, title: 'Echo Spot: post after answer', dir: 'cic-iot-2022-rebuilt', file: 'echospot/echospotVOICEVOLUMEON_2.pcap', second: 1633629281 },
];

function fail(message) {
  console.error(`plots: ${message}`);
  process.exit(2);
}

function parseArgs(argv) {
  let out = join(root, 'docs', 'img');
  let thresholds = { minStreamSlots: 12 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') {
      if (!argv[i + 1]) fail('--out needs a directory');
      out = resolve(argv[++i]);
    } else if (argv[i].startsWith('-')) {
      fail(`unknown option ${argv[i]} (usage: plots.mjs [THRESHOLDS.json] [--out DIR])`);
    } else {
      let text;
      try {
        text = readFileSync(argv[i], 'utf8');
      } catch (err) {
        fail(`cannot read thresholds ${argv[i]}: ${err.code ?? err.message}`);
      }
      try {
        thresholds = JSON.parse(text);
      } catch (err) {
        fail(`thresholds ${argv[i]} is not JSON: ${err.message}`);
      }
      if (thresholds === null || typeof thresholds !== 'object' || Array.isArray(thresholds)) fail(`thresholds ${argv[i]} must be a JSON object`);
    }
  }
  return { out, thresholds };
}

/** "1540290526.964000000" -> integer microseconds, without passing through a float. */
function epochUs(text) {
  const [sec, frac = ''] = text.split('.');
  return Number(sec) * US + Number((frac + '000000').slice(0, 6));
}

const PRIVATE_V4 = /^(0\.|10\.|127\.|169\.254\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.|22[4-9]\.|2[3-5]\d\.)/;
const PRIVATE_V6 = /^(f[c-f]|::1?$)/i;
const isPublic = (v4, v6) => (v4 ? !PRIVATE_V4.test(v4) : v6 ? !PRIVATE_V6.test(v6) : false);

/** How many interfaces (IDBs) a capture declares: one for pcap, a count of blocks for pcapng. */
function interfaceCount(path) {
  const data = readFileSync(path);
  if (data.length < 12 || data.readUInt32BE(0) !== 0x0a0d0d0a) return 1;
  let count = 0;
  let little = true;
  for (let at = 0; at + 12 <= data.length;) {
    if (data.readUInt32BE(at) === 0x0a0d0d0a) little = data.readUInt32LE(at + 8) === 0x1a2b3c4d;
    const type = little ? data.readUInt32LE(at) : data.readUInt32BE(at);
    const length = little ? data.readUInt32LE(at + 4) : data.readUInt32BE(at + 4);
    if (length < 12) break;
    if (type === 1) count += 1;
    at += length;
  }
  return count;
}

/** Runs a command and resolves with its stdout; rejects with its stderr's first line. */
function run(command, args) {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    let stderr = '';
    child.stdout.on('data', (chunk) => chunks.push(chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', (err) => rejectRun(err.code === 'ENOENT' ? new Error(`${command} not found (apt-get install tshark)`) : err));
    child.on('close', (code) => (code === 0 ? resolveRun(Buffer.concat(chunks).toString('utf8')) : rejectRun(new Error(`${command} exited ${code}: ${stderr.trim().split('\n').filter((l) => !/^Running as user/.test(l))[0] ?? ''}`))));
  });
}

/**
 * Every input's upload packets in time order, from one tshark run: tshark spends ~0.4 s starting up, so
 * one run per capture would take most of the time budget. mergecap concatenates the captures keeping each
 * one's interfaces apart (-I none), so frame.interface_id says which capture a frame came from.
 */
async function uploadPackets(list) {
  const firstInterface = [];
  let interfaces = 0;
  for (const input of list) {
    firstInterface.push(interfaces);
    interfaces += interfaceCount(input.path);
  }
  const inputOf = (interfaceId) => {
    let index = 0;
    while (index + 1 < list.length && firstInterface[index + 1] <= interfaceId) index += 1;
    return index;
  };
  const macs = [...new Set(list.map((input) => input.mac))].sort();
  // a temporary file, not a pipe: tshark refuses to read a socket, which is what Node would hand it
  const work = mkdtempSync(join(tmpdir(), 'earshot-plots-'));
  const merged = join(work, 'merged.pcapng');
  let stdout;
  try {
    await run('mergecap', ['-a', '-I', 'none', '-F', 'pcapng', '-w', merged, ...list.map((input) => input.path)]);
    stdout = await run('tshark', ['-r', merged, '-n', '-Y', macs.map((mac) => `eth.src == ${mac}`).join(' || '), '-T', 'fields', '-E', 'separator=,', '-E', 'occurrence=f',
      '-e', 'frame.interface_id', '-e', 'eth.src', '-e', 'frame.time_epoch', '-e', 'ip.dst', '-e', 'ipv6.dst', '-e', 'frame.len', '-e', 'tcp.len', '-e', 'udp.length']);
  } catch (err) {
    fail(err.message);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const packets = list.map(() => []);
  for (const row of stdout.split('\n')) {
    if (!row) continue;
    const [interfaceId, mac, time, v4, v6, frameLen, tcpLen, udpLen] = row.split(',');
    const index = inputOf(Number(interfaceId));
    if (list[index].mac !== mac || !isPublic(v4, v6)) continue;
    const carriesData = tcpLen !== '' ? Number(tcpLen) > 0 : udpLen !== '';
    if (!carriesData) continue;
    packets[index].push({ us: epochUs(time), bytes: Number(frameLen) });
  }
  for (const list of packets) list.sort((a, b) => a.us - b.us);
  return packets;
}

/** Runs of upload packets with no gap over 1 s. */
function burstsOf(packets) {
  const bursts = [];
  let current = null;
  for (const p of packets) {
    if (!current || p.us - current.lastUs > GAP_US) {
      current = { firstUs: p.us, lastUs: p.us, bytes: 0, packets: 0, slots: new Set() };
      bursts.push(current);
    }
    current.lastUs = p.us;
    current.bytes += p.bytes;
    current.packets += 1;
    current.slots.add(Math.floor((p.us - current.firstUs) / SLOT_US));
  }
  return bursts.map((b) => {
    const durationS = (b.lastUs - b.firstUs) / US;
    return { firstUs: b.firstUs, lastUs: b.lastUs, bytes: b.bytes, packets: b.packets, slots: b.slots.size, durationS, pps: b.packets / Math.max(durationS, 0.1) };
  });
}

const overlaps = (burst, fromS, toS) => burst.lastUs >= fromS * US && burst.firstUs <= toS * US;

/** Every labelled capture: path, speaker MAC, device model and how to tell its voice bursts. */
function inputs() {
  const list = [];
  const cicDir = join(captures, 'cic-iot-2022-rebuilt');
  const cicLabels = JSON.parse(readFileSync(join(cicDir, 'labels.json'), 'utf8'));
  for (const label of cicLabels) {
    const runs = label.runs.filter((r) => r.voice).map((r) => [r.first_pkt_epoch, r.last_pkt_epoch]);
    list.push({ set: 'cic', rel: `${label.dir}/${label.file}`, path: join(cicDir, label.dir, label.file), mac: label.device_mac, model: cicModel(label.device_model), voiceWindows: runs });
  }
  const vcfpDir = join(captures, 'vcfp-haipeng');
  const vcfpLabels = JSON.parse(readFileSync(join(vcfpDir, 'labels.json'), 'utf8'));
  for (const label of vcfpLabels) {
    const windows = label.reference_bursts.map((r) => [r.start_epoch_s - 2, r.end_epoch_s + 1 + 2]);
    const missed = label.commands - label.reference_bursts.length;
    if (missed > 0) {
      if (missed !== 1 || !UNLABELLED_COMMANDS[label.file]) fail(`vcfp-haipeng/${label.file}: ${missed} unlabelled commands, but UNLABELLED_COMMANDS knows ${UNLABELLED_COMMANDS[label.file] ? 1 : 0}`);
      windows.push(UNLABELLED_COMMANDS[label.file]);
    }
    list.push({ set: 'vcfp', rel: label.file, path: join(vcfpDir, label.file), mac: label.echo_mac, model: 'Echo (vcfp)', voiceWindows: windows });
  }
  list.push({ set: 'dubois', rel: DUBOIS.file, path: join(captures, 'real', DUBOIS.file), mac: DUBOIS.mac, model: 'Echo Dot 3 (Dubois)', voiceWindows: [DUBOIS.voice] });
  for (const input of list) if (!existsSync(input.path)) fail(`${input.path} is missing`);
  return list.sort((a, b) => (a.set + a.rel < b.set + b.rel ? -1 : 1));
}

function cicModel(name) {
  if (/Echo Dot/.test(name)) return 'Echo Dot (CIC)';
  if (/Echo Spot/.test(name)) return 'Echo Spot (CIC)';
  if (/Nest Mini/.test(name)) return 'Nest Mini (CIC)';
  fail(`cic-iot-2022-rebuilt/labels.json: unknown device_model "${name}"`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function summary(bursts) {
  const lines = ['class      model                  n  slots min/med/max   kB min/med/max           duration s min/med/max  packets/s min/med/max'];
  const groups = new Map();
  for (const b of bursts) {
    const key = `${b.voice ? 'voice' : 'not voice'}\t${b.model}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(b);
  }
  const fmt = (xs, digits, width) => {
    const parts = [Math.min(...xs), median(xs), Math.max(...xs)].map((x) => x.toFixed(digits));
    return parts.join(' / ').padEnd(width);
  };
  for (const key of [...groups.keys()].sort((a, b) => (a.startsWith('voice') === b.startsWith('voice') ? (a < b ? -1 : 1) : a.startsWith('voice') ? -1 : 1))) {
    const group = groups.get(key);
    const [cls, model] = key.split('\t');
    lines.push(`${cls.padEnd(10)} ${model.padEnd(20)} ${String(group.length).padStart(3)}  ${fmt(group.map((b) => b.slots), 0, 19)} ${fmt(group.map((b) => b.bytes / 1000), 1, 24)} ${fmt(group.map((b) => b.durationS), 2, 23)} ${fmt(group.map((b) => b.pps), 0, 20)}`.trimEnd());
  }
  return lines.join('\n');
}

async function main() {
  const { out, thresholds } = parseArgs(process.argv.slice(2));
  if (!existsSync(captures)) fail(`${captures} not found (set EARSHOT_SHARED)`);
  const list = inputs();
  const packets = await uploadPackets(list);
  const perFile = list.map((input, index) => ({ input, packets: packets[index] }));

  const bursts = [];
  for (const { input, packets } of perFile) {
    for (const b of burstsOf(packets)) {
      if (b.bytes < MIN_BURST_BYTES) continue;
      const voice = input.voiceWindows.some(([from, to]) => overlaps(b, from, to));
      bursts.push({ ...b, voice, model: input.model, set: input.set, file: input.rel });
    }
  }

  // every labelled upload must show up as a burst: a label that no longer matches its capture is an error
  for (const { input, packets } of perFile) {
    const inputBursts = burstsOf(packets);
    for (const [from, to] of input.voiceWindows) {
      if (!inputBursts.some((b) => b.bytes >= MIN_BURST_BYTES && overlaps(b, from, to))) fail(`${input.set}/${input.rel}: no upload burst >= ${MIN_BURST_BYTES} B in the voice window ${from}..${to}`);
    }
  }

  const panels = TIMELINE_PICKS.map((pick) => {
    const found = perFile.find(({ input }) => input.path === join(captures, pick.dir, pick.file));
    if (!found) fail(`timeline pick ${pick.file} is not among the inputs`);
    const burst = burstsOf(found.packets).find((b) => Math.floor(b.firstUs / US) === pick.second);
    if (!burst) fail(`timeline pick ${pick.file}: no burst starts in second ${pick.second}`);
    const label = bursts.find((b) => b.file === found.input.rel && b.firstUs === burst.firstUs);
    if (!label || label.voice !== pick.voice) fail(`timeline pick ${pick.file} @${pick.second} is not labelled ${pick.voice ? 'voice' : 'not voice'}`);
    // bytes per slot over the whole window, split into the burst's own packets and any that follow it
    const slots = new Map();
    for (const p of found.packets) {
      if (p.us < burst.firstUs || p.us >= burst.firstUs + TIMELINE_US) continue;
      const slot = Math.floor((p.us - burst.firstUs) / SLOT_US);
      const own = p.us <= burst.lastUs;
      const cell = slots.get(slot) ?? { slot, own: 0, other: 0 };
      if (own) cell.own += p.bytes;
      else cell.other += p.bytes;
      slots.set(slot, cell);
    }
    return { ...pick, file: basename(pick.file), startUs: burst.firstUs, burst, slots: [...slots.values()].sort((a, b) => a.slot - b.slot) };
  });

  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'upload-timelines.svg'), uploadTimelinesSvg(panels, { slotMs: SLOT_US / 1000, windowS: TIMELINE_US / US }));
  writeFileSync(join(out, 'slots-vs-bytes.svg'), slotsVsBytesSvg(bursts, thresholds));

  const voiceCount = bursts.filter((b) => b.voice).length;
  console.error(`plots: figures written to ${out}`);
  console.log(`${bursts.length} upload bursts >= ${MIN_BURST_BYTES} B in ${list.length} captures (${voiceCount} voice, ${bursts.length - voiceCount} not voice)`);
  console.log(summary(bursts));
}

await main();
