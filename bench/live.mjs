#!/usr/bin/env node
// npm run bench (live part): the bench capture replayed with tcpreplay onto a veth pair this script
// creates and removes, at several packet rates, captured on the other end by each live source of earshot
// side by side with `tcpdump -w /dev/null` (the anchor): packets seen, kernel drops, peak RSS (VmHWM of
// the capturing process), CPU time. (The peak RSS of a streamed input, .gz file or stdin, against the
// plain file's replay is measured in one place: inputs.mjs.) Needs root and tcpreplay (apt-get install -y tcpreplay); skips with a message
// otherwise.
//   node bench/live.mjs [--rates 10000,50000,100000,200000] [--limit N] [--only libpcap,tcpdump,stdin,anchor] [--api]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '10000,50000,100000,200000' },
    limit: { type: 'string', default: '0' },
    only: { type: 'string', default: 'libpcap,tcpdump,stdin,anchor' },
    // earshot's sources with the API on (a free port), as installed: the libpcap source then shares its
    // thread with the API, the others run the pipeline on its own thread
    api: { type: 'boolean', default: false },
    runs: { type: 'string' }, // all.mjs passes its flags to every script
    packets: { type: 'string' },
  },
  strict: false,
});
const rates = String(values.rates).split(',').map(Number);
const limit = Number(values.limit);
const only = new Set(String(values.only).split(','));
const capture = join(root, 'bench', 'out', 'bench-1000000.pcap');
const cli = join(root, 'dist/cli/main.js');
const node = process.execPath;
const OUT_IF = 'es-live0'; // tcpreplay writes here
const IN_IF = 'es-live1'; // the capture listens here
const BUFFER_KIB = 16384; // the tcpdump source's -B, for the anchor too

const skip = (why) => {
  console.log(`live bench skipped: ${why}`);
  process.exit(0);
};
const have = (tool) => !spawnSync('which', [tool], { stdio: 'ignore' }).status;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Peak RSS (VmHWM) in MB and CPU seconds of a running process, from /proc; null once it is gone. */
function procUsage(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwmLine = /VmHWM:\s+(\d+) kB/.exec(status);
    if (hwmLine === null) return null; // exiting: its memory is gone already
    const hwm = Number(hwmLine[1]) / 1024;
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
    return { rssMB: hwm, cpuS: ticks / 100 };
  } catch {
    return null;
  }
}

/** Starts `cmd`, keeps the last /proc reading while it runs; stop() sends SIGTERM and waits. */
function watched(cmd, args, opts = {}, { feeds = false } = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let stdout = '';
  let stderr = '';
  // a feeder's stdout goes to the next process, not here
  if (!feeds) child.stdout?.on('data', (d) => { stdout += d; });
  child.stderr?.on('data', (d) => { stderr += d; });
  let usage = { rssMB: 0, cpuS: 0 };
  const poll = setInterval(() => { usage = procUsage(child.pid) ?? usage; }, 100);
  // a feeder's stdout never ends here (nothing reads it): its 'close' would never come
  const closed = new Promise((r) => child.on(feeds ? 'exit' : 'close', (code, signal) => { clearInterval(poll); r({ code, signal }); }));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    usage: () => usage,
    closed,
    async stop() {
      usage = procUsage(child.pid) ?? usage;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const res = await closed;
      clearTimeout(t);
      return res;
    },
  };
}

/** tcpdump's closing statistics. */
function tcpdumpStats(stderr) {
  const num = (re) => Number(re.exec(stderr)?.[1] ?? NaN);
  return { packets: num(/(\d+) packets? captured\n/), drops: num(/(\d+) packets? dropped by kernel\n/) };
}

/** Waits until `test()` or `ms` passed. */
async function until(test, ms) {
  const end = Date.now() + ms;
  while (!test() && Date.now() < end) await sleep(50);
}

const earshotArgs = (extra, report) => [cli, 'collect', ...extra, ...(values.api ? ['--listen', '127.0.0.1:0'] : ['--api', 'false']), '--format', 'json', '-o', report, '--log-format', 'text'];

/** One contender at one rate: starts the capture, replays, stops, reads what was seen. */
async function measure(kind, rate) {
  const report = join(tmpdir(), `earshot-live-${process.pid}.json`);
  rmSync(report, { force: true });
  let capturer;
  let feeder = null;
  const ready = () => /capturing|listening on/.test(capturer.stderr() + (feeder?.stderr() ?? ''));
  if (kind === 'anchor') {
    capturer = watched('tcpdump', ['-i', IN_IF, '-n', '-B', String(BUFFER_KIB), '-w', '/dev/null']);
  } else if (kind === 'stdin') {
    feeder = watched('tcpdump', ['-i', IN_IF, '-n', '-U', '-B', String(BUFFER_KIB), '-w', '-'], {}, { feeds: true });
    capturer = watched(node, earshotArgs(['--source', 'stdin'], report), { stdio: [feeder.child.stdout, 'pipe', 'pipe'] });
    feeder.child.stdout.destroy(); // earshot holds its own copy of the pipe
  } else {
    capturer = watched(node, earshotArgs(['--source', kind, '--interface', IN_IF], report));
  }
  await until(() => ready() && (feeder === null || /listening on/.test(feeder.stderr())), 15_000);
  await sleep(kind === 'anchor' ? 300 : 1000);
  if (process.env.LIVE_DEBUG) console.error('replaying', kind, rate);
  const replay = spawnSync('tcpreplay', ['-i', OUT_IF, `--pps=${rate}`, '--preload-pcap', ...(limit > 0 ? [`--limit=${limit}`] : []), capture], { encoding: 'utf8' });
  const sent = Number(/Successful packets:\s+(\d+)/.exec(replay.stdout)?.[1] ?? NaN);
  const actual = /Actual: \d+ packets \(\d+ bytes\) sent in ([\d.]+) seconds/.exec(replay.stdout);
  const achieved = actual ? sent / Number(actual[1]) : NaN;
  await sleep(2000); // the last block leaves the kernel after libpcap's timeout
  let seen;
  let drops;
  let usage;
  if (kind === 'anchor') {
    usage = capturer.usage();
    await capturer.stop();
    ({ packets: seen, drops } = tcpdumpStats(capturer.stderr()));
  } else {
    if (feeder !== null) {
      if (process.env.LIVE_DEBUG) console.error('stopping feeder');
      await feeder.stop(); // earshot then reads to the end of the stream and stops by itself
      await capturer.closed;
    } else {
      await capturer.stop();
    }
    usage = capturer.usage();
    let json = null;
    try {
      json = JSON.parse(readFileSync(report, 'utf8'));
    } catch {
      console.error(`${kind} at ${rate}/s: no report; stderr: ${capturer.stderr().slice(-600)}`);
    }
    seen = json?.capture?.packets ?? NaN;
    drops = feeder !== null ? tcpdumpStats(feeder.stderr()).drops : json?.stats?.kernelDrops ?? NaN;
    const warned = /packets dropped/.test(capturer.stderr());
    // stdin: the drops are the feeding tcpdump's, which earshot cannot see
    if (drops > 0 && !warned && feeder === null) console.error(`${kind} at ${rate}/s: ${drops} drops and no warning in the log`);
  }
  rmSync(report, { force: true });
  return { sent, achieved, seen, drops, rssMB: usage.rssMB, cpuS: usage.cpuS };
}

if (process.getuid?.() !== 0) skip('needs root (a veth pair, capture)');
for (const tool of ['tcpreplay', 'tcpdump', 'ip']) if (!have(tool)) skip(`${tool} not found (apt-get install -y tcpreplay tcpdump iproute2)`);
if (!existsSync(capture)) skip(`${capture} not found: run node bench/run.mjs first, which builds it`);
if (!existsSync(cli)) execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });

console.log(`earshot live bench: ${capture.replace(root + '/', '')} (${(statSync(capture).size / 1e6).toFixed(0)} MB) replayed by tcpreplay on a veth pair`);
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
console.log(`earshot's sources with the API ${values.api ? 'on (--api: as installed)' : 'off (--api for on)'}`);
console.log('');

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const removeVeth = () => { try { ip('link', 'del', OUT_IF); } catch { /* not there */ } };
removeVeth();
ip('link', 'add', OUT_IF, 'type', 'veth', 'peer', 'name', IN_IF);
process.on('exit', removeVeth);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
for (const name of [OUT_IF, IN_IF]) {
  // jumbo frames in the capture must fit; no IPv6 chatter of the host's own on the bench link
  ip('link', 'set', name, 'mtu', '9000');
  spawnSync('sysctl', ['-q', '-w', `net.ipv6.conf.${name}.disable_ipv6=1`], { stdio: 'ignore' });
  ip('link', 'set', name, 'up');
}

const kinds = [
  ['anchor', 'tcpdump -w /dev/null'],
  ['libpcap', 'earshot --source libpcap'],
  ['tcpdump', 'earshot --source tcpdump'],
  ['stdin', 'tcpdump -U -w - | earshot --source stdin'],
].filter(([kind]) => only.has(kind));
const row = (cols) => console.log(cols.map((c, i) => (i === 0 ? String(c).padEnd(42) : String(c).padStart(11))).join(''));
row(['capture', 'packets/s', 'achieved', 'sent', 'seen', 'drops', 'drops %', 'peak MB', 'cpu s']);
for (const rate of rates) {
  for (const [kind, label] of kinds) {
    const r = await measure(kind, rate);
    row([label, rate.toLocaleString('en'), Math.round(r.achieved).toLocaleString('en'), r.sent, r.seen, r.drops,
      `${((100 * r.drops) / r.sent).toFixed(2)}`, r.rssMB.toFixed(0), r.cpuS.toFixed(1)]);
  }
}
console.log('');
console.log('targets: tcpdump and stdin sources 0 kernel drops at 100k packets/s, peak under 150 MB; libpcap 0 drops at 200k');
