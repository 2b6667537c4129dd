#!/usr/bin/env node
// The evidence for docs/architecture.md's choice of libpcap binding: `pcap` (node_pcap, what
// collector/capture/libpcap.ts uses) against `cap` (mscdex/cap), on the same veth pair fed by tcpreplay
// with the bench capture. For each library and rate: packets received, packets lost (what reached the
// interface minus what the callback saw; libpcap's ps_drop too where the library exposes it: `cap`
// does not), CPU time of the capture process while it captures, its peak RSS, and what tcpreplay really
// sent. Each capture runs in its own child process doing what earshot's source does per packet (header
// fields out, buffer and fields to a callback, nothing decoded or copied). Runs are interleaved (the
// library that goes first alternates each round) and the medians are reported.
//
// Not part of `npm run bench`: it takes about 5 minutes at 3 runs. `cap` is not a dependency of earshot:
// install it in a scratch directory and name it (`npm install cap@0.2.1` there).
//   node bench/capture-libs.mjs [--runs 3] [--rates 50000,100000,200000] [--cap-dir /tmp/captest]
//                               [--pcap bench/out/bench-1000000.pcap]
// Needs root (it creates and removes the veth pair es-lib0/es-lib1), tcpreplay and both libraries;
// without one of them it says which and exits 0.
import { execFileSync, fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, endianness, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const self = fileURLToPath(import.meta.url);
const root = resolve(dirname(self), '..');
const SENDER = 'es-lib0';
const RECEIVER = 'es-lib1';
/** Both libraries get earshot's kernel buffer (collector/capture/libpcap.ts DEFAULT_BUFFER). */
const KERNEL_BUFFER = 16 * 1024 * 1024;

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    rates: { type: 'string', default: '50000,100000,200000' },
    'cap-dir': { type: 'string', default: process.env.EARSHOT_BENCH_CAP_DIR ?? '/tmp/captest' },
    pcap: { type: 'string', default: join(root, 'bench', 'out', 'bench-1000000.pcap') },
    child: { type: 'string' },
    ownership: { type: 'boolean', default: false },
    'ownership-child': { type: 'string' },
    iface: { type: 'string', default: RECEIVER },
  },
});

/** Loads `pcap` from earshot's node_modules or `cap` from the scratch directory; null when absent. */
function loadLib(lib) {
  try {
    const req = createRequire(lib === 'cap' ? join(resolve(values['cap-dir']), 'package.json') : self);
    return req(lib);
  } catch (err) {
    return { missing: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
}

// ---------------------------------------------------------------------------------------------------
// The child: one capture, what earshot's libpcap source does per packet, reported over IPC.

async function child(lib, iface) {
  const mod = loadLib(lib);
  let packets = 0;
  let bytes = 0;
  let lastTime = 0;
  let wireBytes = 0;
  // earshot's PacketSink signature: (data, offset, capLen, wireLen, timeMs, linkType)
  const sink = (data, offset, capLen, wireLen, timeMs, linkType) => {
    packets++;
    bytes += capLen;
    wireBytes += wireLen;
    if (timeMs > lastTime && linkType >= 0) lastTime = timeMs;
  };
  let stats = () => null;
  let close = () => {};
  if (lib === 'pcap') {
    mod.warningHandler = () => {}; // "no IPv4 address" on the veth: expected, nothing to see
    const session = mod.createSession(iface, { filter: '', snap_length: 262_144, buffer_size: KERNEL_BUFFER, buffer_timeout: 100, promiscuous: true });
    const little = endianness() === 'LE';
    // the same header reads as collector/capture/libpcap.ts onPacket
    session.on('packet', (packet) => {
      const header = packet.header;
      const timeMs = little ? header.readUInt32LE(0) * 1000 + header.readUInt32LE(4) / 1000 : header.readUInt32BE(0) * 1000 + header.readUInt32BE(4) / 1000;
      const capLen = Math.min(little ? header.readUInt32LE(8) : header.readUInt32BE(8), packet.buf.length);
      const wireLen = little ? header.readUInt32LE(12) : header.readUInt32BE(12);
      sink(packet.buf, 0, capLen, wireLen, timeMs, 1);
    });
    stats = () => session.stats();
    close = () => session.close();
  } else {
    const c = new mod.Cap();
    // cap keeps only a raw pointer to this buffer (src/binding.cc Open): it must stay referenced for as
    // long as the handle is open, or libpcap's packets are copied into freed memory. Snap length is fixed
    // at 65535 inside cap, so a larger buffer would never be filled.
    const buffer = Buffer.alloc(65_535);
    globalThis.capBuffer = buffer;
    c.open(iface, '', KERNEL_BUFFER, buffer);
    // cap hands over (nbytes, truncated): no timestamp and no wire length, so the clock and the captured
    // length stand in for them, as a cap-based source would have to
    c.on('packet', (nbytes) => sink(buffer, 0, nbytes, nbytes, Date.now(), 1));
    close = () => c.close();
  }
  const startCpu = process.cpuUsage();
  const startWakeups = process.resourceUsage().voluntaryContextSwitches;
  process.on('message', (msg) => {
    if (msg === 'count') process.send({ packets });
    else if (msg === 'stop') {
      const cpu = process.cpuUsage(startCpu);
      let libStats = null;
      try { libStats = stats(); } catch { libStats = null; }
      const usage = process.resourceUsage();
      const ring = ringMiB(); // before close(): cap unmaps the ring at once
      close();
      process.send({
        packets, bytes, wireBytes, libStats, cpuMs: (cpu.user + cpu.system) / 1000, maxRssMB: usage.maxRSS / 1024,
        wakeups: usage.voluntaryContextSwitches - startWakeups, ringMiB: ring,
      }, () => process.exit(0));
    }
  });
  process.send('ready');
}

/** Size of libpcap's memory-mapped packet ring: the socket mapping in /proc/self/maps (Linux). */
function ringMiB() {
  try {
    let total = 0;
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      if (!/socket:\[/.test(line)) continue;
      const [from, to] = line.split(' ')[0].split('-').map((x) => parseInt(x, 16));
      total += to - from;
    }
    return total / 2 ** 20;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// --ownership: what `cap` does when the Buffer given to open() is no longer referenced. Its binding keeps
// only Buffer::Data() (src/binding.cc, Open), no reference, and copies every packet there. Each try runs
// in a child with --expose-gc: open on lo with a buffer that is dropped (or kept: the control), collect
// it (a FinalizationRegistry says when V8 has freed it), send 100 UDP packets, report how the child ended.

async function ownershipChild(mode) {
  const mod = loadLib('cap');
  const { createSocket } = await import('node:dgram');
  let collected = false;
  const registry = new FinalizationRegistry(() => { collected = true; });
  const c = new mod.Cap();
  (() => {
    const buffer = Buffer.alloc(65_535);
    registry.register(buffer.buffer, 'cap buffer');
    if (mode === 'keep') globalThis.keptBuffer = buffer;
    c.open('lo', 'udp and dst port 39999', 1 << 20, buffer);
  })();
  let packets = 0;
  let afterCollect = 0;
  c.on('packet', () => { packets++; if (collected) afterCollect++; });
  for (let i = 0; i < 10 && !collected; i++) { globalThis.gc(); await sleep(50); }
  const sock = createSocket('udp4');
  for (let i = 0; i < 100; i++) { sock.send(Buffer.alloc(200, 0x5c), 39999, '127.0.0.1'); await sleep(2); }
  await sleep(300);
  sock.close();
  c.close();
  console.log(JSON.stringify({ collected, packets, afterCollect }));
}

function ownership() {
  if (process.getuid?.() !== 0) skip('needs root to capture on lo');
  const mod = loadLib('cap');
  if (mod.missing) skip(`cap cannot be loaded (${mod.missing})`);
  for (const mode of ['keep', 'drop']) {
    for (let i = 1; i <= 3; i++) {
      const res = spawnSync(process.execPath, ['--expose-gc', self, '--ownership-child', mode, '--cap-dir', values['cap-dir']], { encoding: 'utf8', timeout: 30_000 });
      const out = res.stdout.trim();
      const ended = res.signal ? `killed by ${res.signal}` : `exit ${res.status}`;
      console.log(`  buffer ${mode === 'keep' ? 'kept   ' : 'dropped'} try ${i}: ${ended}${out ? `, ${out}` : ''}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The parent: the veth pair, tcpreplay, the interleaved runs, the medians.

function sh(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function skip(why) {
  console.log(`capture-libs: skipped: ${why}`);
  process.exit(0);
}

function counter(iface, name) {
  return Number(readFileSync(`/sys/class/net/${iface}/statistics/${name}`, 'utf8'));
}

function removeVeth() {
  try { sh('ip', ['link', 'del', SENDER]); } catch { /* not there */ }
}

function makeVeth() {
  removeVeth();
  sh('ip', ['link', 'add', SENDER, 'type', 'veth', 'peer', 'name', RECEIVER]);
  for (const dev of [SENDER, RECEIVER]) {
    // no IPv6 router solicitations or neighbour discovery counted as traffic; the capture's largest
    // frame is 8291 bytes
    try { sh('sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]); } catch { /* no IPv6 */ }
    sh('ip', ['link', 'set', dev, 'mtu', '9000', 'up']);
  }
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function ask(proc, msg, timeoutMs = 30_000) {
  return new Promise((resolveAsk, reject) => {
    const timer = setTimeout(() => reject(new Error(`capture child did not answer "${msg}" in ${timeoutMs} ms`)), timeoutMs);
    proc.once('message', (reply) => { clearTimeout(timer); resolveAsk(reply); });
    proc.send(msg);
  });
}

function tcpreplay(rate, file) {
  return new Promise((resolveRun, reject) => {
    const p = spawn('tcpreplay', ['-i', SENDER, `--pps=${rate}`, '--preload-pcap', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`tcpreplay exited ${code}: ${out.trim().split('\n').pop()}`));
      const actual = /Actual: (\d+) packets .* sent in ([\d.]+) seconds/.exec(out);
      const failed = /Failed packets:\s+(\d+)/.exec(out);
      resolveRun({ sent: actual ? Number(actual[1]) : null, seconds: actual ? Number(actual[2]) : null, failed: failed ? Number(failed[1]) : null });
    });
  });
}

async function oneRun(lib, rate, file) {
  const proc = fork(self, ['--child', lib, '--iface', RECEIVER, '--cap-dir', values['cap-dir']], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  // cap warns on stderr that the veth has no IPv4 address (pcap_lookupnet): expected here, anything else is shown
  proc.stderr.on('data', (d) => {
    const text = String(d).split('\n').filter((l) => l && !/no IPv4 address assigned/.test(l)).join('\n');
    if (text) process.stderr.write(`${text}\n`);
  });
  try {
    const ready = await new Promise((res, rej) => {
      proc.once('message', res);
      proc.once('exit', (code) => rej(new Error(`${lib} capture exited ${code} before it was ready`)));
    });
    if (ready !== 'ready') throw new Error(`${lib}: unexpected ${JSON.stringify(ready)}`);
    await sleep(300); // let the poll watcher settle before the first packet
    const rx0 = counter(RECEIVER, 'rx_packets');
    const txDrop0 = counter(SENDER, 'tx_dropped');
    const load = loadavg()[0];
    const replay = await tcpreplay(rate, file);
    // wait until the capture has drained libpcap's ring: its count stable for a second (10 s at most)
    let last = -1;
    for (let i = 0; i < 40; i++) {
      await sleep(250);
      const { packets } = await ask(proc, 'count');
      if (packets === last && i >= 4) break;
      last = packets;
    }
    const arrived = counter(RECEIVER, 'rx_packets') - rx0;
    const vethDrops = counter(SENDER, 'tx_dropped') - txDrop0;
    const r = await ask(proc, 'stop');
    return {
      lib, rate, load, ...replay, arrived, vethDrops,
      received: r.packets, lost: arrived - r.packets,
      psRecv: r.libStats?.ps_recv ?? null, psDrop: r.libStats?.ps_drop ?? null,
      cpuMs: r.cpuMs, maxRssMB: r.maxRssMB, wakeups: r.wakeups, ringMiB: r.ringMiB,
    };
  } finally {
    if (proc.exitCode === null) proc.kill();
  }
}

async function main() {
  if (process.getuid?.() !== 0) skip('needs root to create the veth pair');
  try { sh('which', ['tcpreplay']); } catch { skip('tcpreplay not found (apt-get install tcpreplay)'); }
  const file = resolve(values.pcap);
  if (!existsSync(file)) skip(`${file} not found (bench/run.mjs builds it)`);
  for (const lib of ['pcap', 'cap']) {
    const mod = loadLib(lib);
    if (mod.missing) skip(`${lib} cannot be loaded (${mod.missing})${lib === 'cap' ? `; npm install cap@0.2.1 in ${values['cap-dir']} or pass --cap-dir` : ''}`);
  }
  const runs = Number(values.runs);
  const rates = values.rates.split(',').map(Number);

  const cleanup = () => removeVeth();
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });

  makeVeth();
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${sh('uname', ['-r']).trim()}`;
  console.log(`capture-libs: ${machine}; ${file}; ${runs} runs per library and rate, interleaved`);
  const results = [];
  try {
    for (const rate of rates) {
      for (let i = 0; i < runs; i++) {
        const order = i % 2 === 0 ? ['pcap', 'cap'] : ['cap', 'pcap'];
        for (const lib of order) {
          const r = await oneRun(lib, rate, file);
          results.push(r);
          console.log(`  ${lib.padEnd(4)} ${rate}/s run ${i + 1}: sent ${r.sent} in ${r.seconds} s, arrived ${r.arrived}, received ${r.received}, lost ${r.lost}` +
            `${r.psDrop !== null ? ` (ps_drop ${r.psDrop})` : ''}, veth drops ${r.vethDrops}, CPU ${(r.cpuMs / 1000).toFixed(2)} s, ${r.wakeups} wakeups, ring ${r.ringMiB} MiB, RSS ${r.maxRssMB.toFixed(0)} MB, load ${r.load.toFixed(1)}`);
        }
      }
    }
  } finally {
    removeVeth();
  }

  console.log('\n| packets/s | library | sent/s (tcpreplay) | received | lost (%) | libpcap ps_drop | CPU s | µs CPU/packet | wakeups | ring MiB | peak RSS MB | load avg |');
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const summary = [];
  for (const rate of rates) {
    for (const lib of ['pcap', 'cap']) {
      const rs = results.filter((r) => r.lib === lib && r.rate === rate);
      const m = {
        rate, lib, runs: rs.length,
        sentPerS: median(rs.map((r) => (r.sent && r.seconds ? r.sent / r.seconds : null))),
        received: median(rs.map((r) => r.received)),
        lost: median(rs.map((r) => r.lost)),
        lostPct: median(rs.map((r) => (100 * r.lost) / r.arrived)),
        psDrop: median(rs.map((r) => r.psDrop)),
        cpuS: median(rs.map((r) => r.cpuMs / 1000)),
        maxRssMB: median(rs.map((r) => r.maxRssMB)),
        usPerPacket: median(rs.map((r) => (r.received ? (r.cpuMs * 1000) / r.received : null))),
        wakeups: median(rs.map((r) => r.wakeups)),
        ringMiB: median(rs.map((r) => r.ringMiB)),
        load: median(rs.map((r) => r.load)),
      };
      summary.push(m);
      console.log(`| ${rate / 1000}k | ${lib} | ${Math.round(m.sentPerS)} | ${m.received} | ${m.lost} (${m.lostPct.toFixed(2)} %) | ${m.psDrop ?? 'n/a'} | ${m.cpuS.toFixed(2)} | ${m.usPerPacket.toFixed(2)} | ${m.wakeups} | ${m.ringMiB} | ${m.maxRssMB.toFixed(0)} | ${m.load.toFixed(1)} |`);
    }
  }
  const outDir = join(root, 'bench', 'out');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, 'capture-libs.json');
  writeFileSync(outFile, JSON.stringify({ machine, file, runs, when: new Date().toISOString(), summary, results }, null, 2));
  console.log(`\n(medians; every run in ${outFile})`);
}

if (values.child) await child(values.child, values.iface);
else if (values['ownership-child']) await ownershipChild(values['ownership-child']);
else if (values.ownership) ownership();
else await main();
