/**
 * Inputs that never end, and inputs that have not begun (found by an audit): /dev/zero given as the config,
 * wake-event, voice-history or salt file was read into memory without bound (6 GB in 40 s); a capture
 * path that is a FIFO with no writer blocked the thread in open(), so Ctrl-C and SIGTERM did nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { describeNeeding, PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { tsharkTotals } from './helpers/tshark.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const dir = tempDir('earshot-cli-inputs-');

describe('inputs without an end', () => {
  it('/dev/zero as the config, wake-event, voice-history or salt file: one line, exit 2, bounded', async () => {
    const cases: Array<[string[], string]> = [
      [['replay', CAPTURE, '-c', '/dev/zero'], 'earshot: /dev/zero: cannot read config: larger than 1 MiB'],
      [['replay', CAPTURE, '--wake-events', '/dev/zero'], 'earshot: /dev/zero: cannot read: larger than 64 MiB'],
      [['import', 'voice-history', '/dev/zero'], 'earshot: /dev/zero: cannot read: larger than 64 MiB'],
      [['export', '--since', '7d', '--salt-file', '/dev/zero', '--influx-url', 'http://127.0.0.1:9'], 'earshot: export: --salt-file: cannot read /dev/zero: larger than 65536 bytes'],
    ];
    for (const [args, line] of cases) {
      const r = await runCli(args, { timeoutMs: 30_000 });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`${line}\n`);
    }
  }, 120_000);
});

const haveScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
describeNeeding('standard input that is a terminal', haveScript, 'script (util-linux: apt-get install bsdutils)', () => {
  it('replay -, collect --source stdin and collect --file - from a terminal: one line, exit 2 (they waited for a capture nobody types)', async () => {
    // script(1) runs the command on a pseudo-terminal; its own input is empty, so without the check the
    // command read the terminal's end of input and said "empty input" (and on a real terminal waited)
    for (const args of [['replay', '-'], ['collect', '--source', 'stdin', '--api', 'false'], ['collect', '--file', '-', '--api', 'false']]) {
      const command = [process.execPath, EARSHOT_BIN, ...args].map((a) => `'${a}'`).join(' ');
      const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
      const which = args[0] === 'replay' ? 'replay -' : args[1] === '--file' ? 'collect --file -' : 'collect --source stdin';
      expect(r.status, args.join(' ')).toBe(2);
      // the terminal writes the line with a carriage return
      expect(r.stdout.replace(/\r/g, ''), args.join(' ')).toBe(`earshot: ${which}: standard input is a terminal; pipe a capture into it (e.g. tcpdump -i IF -U -w - | earshot collect --source stdin, or earshot replay - < FILE)\n`);
    }
    // a pipe is read as before
    const piped = await runCli(['replay', '-', '--format', 'json'], { input: readFileSync(CAPTURE) });
    expect(piped.code, piped.stderr).toBe(0);
  }, 60_000);
});

describe('a capture path that is a FIFO', () => {
  /** Runs `earshot replay FIFO --format json`; `then` acts on the child once it started. */
  async function replayFifo(fifo: string, then: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stdout: string }> {
    const child = spawn(process.execPath, [EARSHOT_BIN, 'replay', fifo, '--format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    const code = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    then(child);
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      return { code: await code, stdout };
    } finally {
      clearTimeout(killer);
    }
  }

  it('with no writer, SIGTERM ends the run with its (empty) report, which says it was interrupted (exit 143)', async () => {
    const fifo = join(dir, 'nobody-writes.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = await replayFifo(fifo, (child) => setTimeout(() => child.kill('SIGTERM'), 1_500));
    expect(r.code).toBe(143);
    expect((JSON.parse(r.stdout) as { capture: { packets: number; interrupted?: boolean } }).capture).toMatchObject({ packets: 0, interrupted: true });
  }, 30_000);

  it('with a writer, it is read like the file (tshark counts the packets)', async () => {
    const fifo = join(dir, 'written.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = await replayFifo(fifo, () => setTimeout(() => createReadStream(CAPTURE).pipe(createWriteStream(fifo)), 500));
    expect(r.code).toBe(0);
    const capture = (JSON.parse(r.stdout) as { capture: { packets: number; interrupted?: boolean } }).capture;
    expect(capture.packets).toBe(tsharkTotals(CAPTURE).packets);
    expect(capture.interrupted).toBeUndefined();
  }, 30_000);
});

describe('a replay stopped before the end of its input', () => {
  // it exited 0 with a partial report that said nothing of it (found by an audit): `timeout 600 earshot
  // replay big.pcap > r.json && publish r.json` published half a capture as the whole
  for (const [signal, exit] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    it(`by ${signal}: the report of what was read says capture.interrupted, the text report too, exit ${exit}`, async () => {
      const total = tsharkTotals(CAPTURE).packets;
      for (const format of ['json', 'text']) {
        // paced at capture speed, the capture lasts ~48 s: stopped after 2
        const child = spawn(process.execPath, [EARSHOT_BIN, 'replay', CAPTURE, '--format', format, '--realtime-speed', '1', '--no-progress'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
        child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
        const code = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
        setTimeout(() => child.kill(signal), 2_000);
        expect(await code, stderr).toBe(exit);
        expect(stderr).toMatch(new RegExp(`the replay was stopped \\(${signal}\\) before the end of its input`));
        if (format === 'json') {
          const capture = (JSON.parse(stdout) as { capture: { packets: number; interrupted?: boolean } }).capture;
          expect(capture.interrupted).toBe(true);
          expect(capture.packets).toBeGreaterThan(0);
          expect(capture.packets).toBeLessThan(total);
        } else {
          expect(stdout).toMatch(/^Capture: \d+ packets, .*, INTERRUPTED \(stopped before the end of its input\)$/m);
        }
      }
    }, 30_000);
  }
});

describe('a wrong --influx-url with an old capture', () => {
  // the capture is years older than the default 30-day raw retention: the retention refusal used to come
  // first, and its advice (--influx-raw-retention INF) led only to the URL error
  it('is named first: the URL, not the retention advice', async () => {
    for (const [url, line] of [
      ['notaurl', 'earshot: influx.url (--influx-url): not a URL: "notaurl" (e.g. http://127.0.0.1:8086)'],
      ['ftp://x', 'earshot: influx.url (--influx-url): must be http:// or https://, got "ftp:"'],
    ]) {
      const r = await runCli(['replay', CAPTURE, '--influx-url', url], { timeoutMs: 30_000 });
      expect(r.code, url).toBe(2);
      expect(r.stderr, url).toBe(`${line}\n`);
    }
  }, 60_000);
});

describe('one line that says what is wrong, in words (found by an audit)', () => {
  it('names the file for what it is, says a write is a write, and leaves out library advice', async () => {
    const multi = join(dir, 'multi.yaml');
    writeFileSync(multi, '---\nsite: a\n---\nsite: b\n');
    const nullJson = join(dir, 'null.json');
    writeFileSync(nullJson, 'null');
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '');
    const cases: Array<[string[], string]> = [
      [['replay', CAPTURE, '-o', '/proc/earshot-no-such-dir/out.json'], 'earshot: /proc/earshot-no-such-dir/out.json: cannot write: no such directory: /proc/earshot-no-such-dir'],
      // a directory that takes no new file (the temporary file beside the target): it said "no such file or directory"
      [['replay', CAPTURE, '-o', '/proc/version'], 'earshot: /proc/version: cannot write: no new file can be made in /proc'],
      [['replay', CAPTURE, '--wake-events', dir], `earshot: ${dir}: is a directory, not a file`],
      [['replay', CAPTURE, '-c', multi], `earshot: ${multi}: invalid YAML: it holds several YAML documents (a second "---" at line 3); earshot reads one`],
      [['import', 'voice-history', nullJson], `earshot: ${nullJson}:1: JSON of no known shape: a voice-history export is an object or a list of records`],
      [['import', 'voice-history', empty], `earshot: ${empty}:1: empty: no voice-history records (Amazon's JSON or a CSV with a header)`],
      // before anything starts: the line came after "capturing" and the API's lines
      [['collect', '--file', CAPTURE, '--exit-when-done', '--api-token-file', join(dir, 'no-token'), '--listen', '127.0.0.1:0'], `earshot: ${join(dir, 'no-token')} (api.tokenFile): cannot read: no such file`],
      [['collect', '--file', join(dir, 'no-capture.pcap'), '--exit-when-done', '--listen', '127.0.0.1:0'], `earshot: ${join(dir, 'no-capture.pcap')}: no such file`],
    ];
    for (const [args, line] of cases) {
      const r = await runCli(args, { timeoutMs: 30_000 });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(`${line}\n`);
    }
  }, 120_000);
});

describe('what a line on the terminal shows of a name it was given', () => {
  it('escapes control characters in file names and commands: one line, no ESC sequence acted on', async () => {
    // a capture named by whoever fills a directory (`earshot replay captures/*`): an ESC sequence that
    // would turn the terminal red, a line break that would forge a second line
    const red = join(dir, '\x1b[31mred\nearshot: all fine.pcap');
    const r = await runCli(['replay', red], { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`earshot: ${dir}/\\x1b[31mred\\x0aearshot: all fine.pcap: no such file\n`);
    const unknown = await runCli(['\x1b]0;title\x07'], { timeoutMs: 30_000 });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^earshot: unknown command "\\x1b\]0;title\\x07" \(commands: [^\n]*\n$/);
  }, 60_000);
});

describe('a configuration error found after loading names where the value came from (errors.md promises it)', () => {
  it('the flag, the environment variable or the file', async () => {
    const file = join(dir, 'mars.yaml');
    writeFileSync(file, 'detect:\n  timeZone: Mars\n');
    const cases: Array<[string[], Record<string, string>, string]> = [
      [['--time-zone', 'Mars'], {}, '--time-zone'],
      [[], { EARSHOT_DETECT_TIME_ZONE: 'Mars' }, 'EARSHOT_DETECT_TIME_ZONE'],
      [['-c', file], {}, file],
    ];
    for (const [args, env, origin] of cases) {
      const r = await runCli(['replay', CAPTURE, ...args], { env, timeoutMs: 30_000 });
      expect(r.code, origin).toBe(2);
      expect(r.stderr, origin).toBe(`earshot: detect.timeZone (${origin}): "Mars" is not an IANA time zone such as Europe/Berlin\n`);
    }
  }, 60_000);
});

describe('collect --file with --duration', () => {
  it('ends at the duration: the API stops serving after the capture (it served until a signal)', async () => {
    const started = Date.now();
    const r = await runCli(['collect', '--file', CAPTURE, '--listen', '127.0.0.1:0', '--duration', '3', '--format', 'json'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    expect(r.stderr).toContain('until SIGTERM, SIGINT or SIGHUP or the end of --duration');
    const report = JSON.parse(r.stdout) as { capture: { packets: number; bytes: number } };
    const totals = tsharkTotals(CAPTURE);
    expect({ packets: report.capture.packets, bytes: report.capture.bytes }).toEqual(totals);
  }, 60_000);
});

describe('a usage error of a command with two forms (found by trying it: the line break between them was shown as \\x0a)', () => {
  it('names both forms on one line', async () => {
    const r = await runCli(['collect', 'port', 'port']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('earshot: collect: unexpected argument "port" (usage: earshot collect --interface IF [--filter BPF] [options], or earshot collect --file CAPTURE [--realtime-speed N] [--exit-when-done] [options])\n');
    const doctor = await runCli(['doctor', 'x']);
    expect(doctor.stderr).toMatch(/^earshot: doctor: unexpected argument "x" \(usage: earshot doctor \[--interface IF\][^\n]*, or earshot doctor --capture FILE [^\n]*\)\n$/);
  });
});

describe('a file whose name is not UTF-8 (found by trying it: it said "no such file" for a file that is there)', () => {
  it('says why it cannot be named and how to give it anyway; standard input reads it', () => {
    // the name's byte 0xff is not UTF-8: Node.js receives U+FFFD in its place, and no such name exists
    const sub = join(dir, 'latin1');
    mkdirSync(sub);
    const name = Buffer.concat([Buffer.from(`${sub}/cap`), Buffer.from([0xff]), Buffer.from('.pcapng')]);
    writeFileSync(name, readFileSync(CAPTURE));
    const viaShell = (args: string) => spawnSync('bash', ['-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(EARSHOT_BIN)} ${args}`], { encoding: 'utf8', cwd: sub });
    const named = viaShell("replay $'cap\\xff.pcapng' --format json");
    expect(named.status).toBe(2);
    expect(named.stderr).toBe('earshot: cap\uFFFD.pcapng: no such file as given: the name on the command line has bytes that are not UTF-8, which Node.js cannot pass on (shown as \uFFFD); rename the file, or give it on standard input as - (earshot replay - < FILE)\n');
    const piped = viaShell("replay - --format json < $'cap\\xff.pcapng'");
    expect(piped.status, piped.stderr).toBe(0);
    expect((JSON.parse(piped.stdout) as { capture: { packets: number } }).capture.packets).toBe(tsharkTotals(CAPTURE).packets);
    // a name that is simply not there is still "no such file"
    expect(viaShell('replay nothing-here.pcap').stderr).toBe('earshot: nothing-here.pcap: no such file\n');
  });
});

describe('a live capture that cannot open is said before anything starts (found by trying it)', () => {
  // Before: "capturing" was logged and the API started (its token written, its port taken), then the
  // capture failed with "SIOCGIFADDR: No such device" or "socket: Operation not permitted"
  const linkNames = () => spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout
    .split('\n').map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  const names = linkNames();

  it('an interface this machine does not have: one line naming those it has, exit 2, for either source', async () => {
    expect(names).toContain('lo');
    for (const source of ['libpcap', 'tcpdump']) {
      const before = linkNames();
      const r = await runCli(['collect', '--interface', 'earshot-nope0', '--source', source, '--data-dir', join(dir, `nope-${source}`)], { timeoutMs: 30_000 });
      expect(r.code, source).toBe(2);
      expect(r.stderr, source).toMatch(/^earshot: cannot capture on earshot-nope0: no such network interface \(interfaces here: [^\n]*\)\n$/);
      // the list is the machine's (ip link), with libpcap's "any": the interfaces there before and after
      // the run (other test files make and remove veth and tun interfaces while this one runs)
      const after = new Set(linkNames());
      const stable = before.filter((n) => after.has(n));
      expect(stable).toContain('lo');
      for (const name of [...stable.slice(0, 11), 'any']) expect(r.stderr, source).toContain(name);
    }
  }, 60_000);

  const root = process.getuid?.() === 0;
  if (!root) console.warn('skipping the CAP_NET_RAW cases: they need root to drop the capability (setpriv)');
  it.skipIf(!root)('a process without CAP_NET_RAW (another user, or root with the capability dropped): one line with the fix, exit 2', async () => {
    const data = join(dir, 'no-net-raw');
    mkdirSync(data, { mode: 0o777 });
    chmodSync(data, 0o777);
    const cases: Array<[string[], string]> = [
      [['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], 'uid 65534) lacks CAP_NET_RAW; run as root or: sudo setcap cap_net_raw+eip'],
      [['setpriv', '--inh-caps=-net_raw', '--bounding-set=-net_raw'], 'uid 0) lacks CAP_NET_RAW; root here without it'],
    ];
    for (const [prefix, text] of cases) {
      const r = await runCli(['collect', '--interface', 'lo', '--data-dir', data], { prefix, timeoutMs: 30_000 });
      expect(r.code, prefix.join(' ')).toBe(2);
      expect(r.stderr.split('\n'), prefix.join(' ')).toHaveLength(2);
      expect(r.stderr, prefix.join(' ')).toContain(`earshot: cannot capture on lo: no permission: this process (${text}`);
    }
    // the tcpdump source: tcpdump's own permission, asked of tcpdump (-d opens the interface, captures nothing)
    const viaTcpdump = await runCli(['collect', '--interface', 'lo', '--source', 'tcpdump', '--data-dir', data], { prefix: cases[0]![0], timeoutMs: 30_000 });
    expect(viaTcpdump.code).toBe(2);
    expect(viaTcpdump.stderr).toBe('earshot: cannot capture on lo: You don\'t have permission to perform this capture on that device (socket: Operation not permitted); run as root or: sudo setcap cap_net_raw+eip $(readlink -f $(which tcpdump))\n');
    // nothing was started: the API's token was never written
    expect(existsSync(join(data, 'api-token'))).toBe(false);
  }, 60_000);

  it('a filter libpcap does not compile for the interface: one line with libpcap\'s reason, exit 2, for either source', async () => {
    for (const source of ['libpcap', 'tcpdump']) {
      const r = await runCli(['collect', '--interface', 'lo', '--source', source, '--filter', 'port port port', '--data-dir', join(dir, `filter-${source}`)], { timeoutMs: 30_000 });
      expect(r.code, source).toBe(2);
      expect(r.stderr, source).toBe('earshot: cannot capture on lo: the filter "port port port" is not valid: can\'t parse filter expression: syntax error\n');
    }
  }, 60_000);

  it.skipIf(!root)('an interface that is down: one line, exit 2; up without an address (a mirror port): captures, without a warning', async () => {
    const name = `esd${process.pid % 100000}`;
    spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
    expect(spawnSync('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]).status).toBe(0);
    try {
      for (const source of ['libpcap', 'tcpdump']) {
        const r = await runCli(['collect', '--interface', name, '--source', source, '--data-dir', join(dir, `down-${source}`)], { timeoutMs: 30_000 });
        expect(r.code, source).toBe(2);
        expect(r.stderr, source).toBe(`earshot: cannot capture on ${name}: the interface is down (ip link set ${name} up; a bridge or access point may still be coming up)\n`);
      }
      expect(spawnSync('ip', ['link', 'set', name, 'up']).status).toBe(0);
      // before: "libpcap on IF: IF: no IPv4 address assigned" at every start on a mirror port
      const r = await runCli(['collect', '--interface', name, '--duration', '1', '--api', 'false', '--format', 'json', '--data-dir', join(dir, 'mirror')], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['capturing', 'capture open']);
    } finally {
      spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
    }
  }, 60_000);

  it('"any", and an interface that exists, with a valid filter, still capture', async () => {
    for (const iface of ['any', 'lo']) {
      const r = await runCli(['collect', '--interface', iface, '--filter', 'not port 22', '--duration', '1', '--api', 'false', '--format', 'json', '--data-dir', join(dir, `live-${iface}`)], { timeoutMs: 30_000 });
      expect(r.code, `${iface}: ${r.stderr}`).toBe(0);
      expect((JSON.parse(r.stdout) as { schema: string }).schema).toBe('earshot.report/1');
    }
  }, 60_000);
});
