/**
 * The `earshot` executable as a user meets it: help, exit codes, one-line errors without stack traces,
 * the report on stdout matching its JSON Schema, stdin and gzip input, and live capture on loopback.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, describe, expect, it } from 'vitest';
import { configKeys } from '../collector/config.js';
import { classicHeader, classicRecord } from './helpers/capture-files.js';
import { EARSHOT_BIN, runCli, type CliResult } from './helpers/cli.js';
import { HOSTILE_DNS_NAME, HOSTILE_FRIENDLY, HOSTILE_HOST, HOSTILE_MODEL, hostileNamesPcap } from './helpers/hostile-names.js';
import { replayReport } from './helpers/replay.js';
import type { Report } from '../collector/sink/report.js';
import { haveTshark } from './helpers/capture-files.js';
import { describeShared, PROJECT_ROOT, realCapture } from './helpers/shared.js';
import { until } from './helpers/wait.js';
import { seeded } from './helpers/seeded.js';

const FIXTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const dir = mkdtempSync(join(tmpdir(), 'earshot-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const YAML_TOKENS = ['&a ', '*a', ' [*a]', '<<: *a\n', '? ', ': ', '{', '[', '\n  ', '!!binary ', '---\n', '*ataDir: '];


/** A bad-input failure: exit 2, exactly one line on stderr starting "earshot:", no stack trace. */
function expectOneLineError(r: CliResult, pattern: RegExp): void {
  expect(r.code).toBe(2);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^earshot: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}

const validateReport = (() => {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv.compile(JSON.parse(readFileSync(join(PROJECT_ROOT, 'docs/report.schema.json'), 'utf8')));
})();

describe('earshot CLI', () => {
  it('--help lists the commands; each command --help-all lists its flags and every config key', async () => {
    const main = await runCli(['--help']);
    expect(main.code).toBe(0);
    expect(main.stdout).toMatch(/replay/);
    expect(main.stdout).toMatch(/collect/);
    for (const command of ['replay', 'collect']) {
      const r = await runCli([command, '--help-all']);
      expect(r.code).toBe(0);
      for (const key of configKeys()) {
        expect(r.stdout).toContain(`--${key.flag}`);
        expect(r.stdout).toContain(key.env);
      }
    }
    expect((await runCli(['replay', '--help'])).stdout).toMatch(/--realtime-speed/);
    expect((await runCli(['collect', '--help'])).stdout).toMatch(/--duration/);
    const version = await runCli(['--version']);
    expect(version.stdout).toMatch(/^earshot \d+\.\d+\.\d+/);
  });

  it('replay --format json prints a report that matches docs/report.schema.json', async () => {
    const r = await runCli(['replay', FIXTURE, '--format', 'json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const ok = validateReport(report);
    expect(validateReport.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
    expect(report.capture.packets).toBe(2778);
    // the streamed JSON says exactly what the in-process report says
    expect(report).toEqual(JSON.parse(JSON.stringify(await replayReport(FIXTURE))));
    expect(report.flows.find((f: { server: string }) => f.server === '52.94.233.109')).toMatchObject({ proto: 'tcp', serverPort: 443, device: '68:db:f5:90:19:64' });
  });

  it('reads gzip-compressed captures, from a file and from stdin, with the same report', async () => {
    const gz = join(dir, 'echo.pcapng.gz');
    writeFileSync(gz, gzipSync(readFileSync(FIXTURE)));
    const plain = await runCli(['replay', FIXTURE, '--format', 'json']);
    const fromGz = await runCli(['replay', gz, '--format', 'json']);
    const fromStdin = await runCli(['replay', '-', '--format', 'json'], { input: readFileSync(gz) });
    expect(fromGz.code).toBe(0);
    expect(fromStdin.code).toBe(0);
    expect(JSON.parse(fromGz.stdout)).toEqual(JSON.parse(plain.stdout));
    expect(JSON.parse(fromStdin.stdout)).toEqual(JSON.parse(plain.stdout));
  });

  it('writes text tables with --format text and the report to a file with --output', async () => {
    const text = await runCli(['replay', FIXTURE, '--format', 'text']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Site: [a-z0-9][a-z0-9_-]*\nCapture: 2778 packets/);
    expect(text.stdout).toMatch(/Devices \(4\)/);
    // every activation a row: when, how long, where to, how much, the verdict and why (the text report
    // listed only their number), as the JSON report has them
    const json = JSON.parse((await runCli(['replay', FIXTURE, '--format', 'json'])).stdout) as Report;
    expect(json.activations.length).toBeGreaterThan(0);
    const section = text.stdout.slice(text.stdout.indexOf('\nActivations ('), text.stdout.indexOf('\nCalls ('));
    expect(section).toMatch(/^\nActivations \(\d+\)\ndevice +name +start +duration +server +up +down +verdict +reasons\n/);
    for (const a of json.activations) {
      const row = section.split('\n').find((l) => l.startsWith(a.device) && l.includes(a.start));
      expect(row, a.id).toBeDefined();
      expect(row).toMatch(new RegExp(` ${((Date.parse(a.end) - Date.parse(a.start)) / 1000).toFixed(1)} s .* ${a.verdict} +${a.reasons.join(', ')}$`));
    }
    // counts read as English: one of a thing is singular ("1 endpoints, 1 organisations" before). Told by
    // tshark: the DNS answers name one host, and 192.168.12.114 talks to one peer only
    const asked = new Set(execFileSync('tshark', ['-r', FIXTURE, '-Y', 'dns.flags.response == 1 && dns.count.answers > 0', '-T', 'fields', '-e', 'dns.qry.name'], { encoding: 'utf8' }).split('\n').filter(Boolean));
    expect(asked.size).toBe(1);
    expect(text.stdout).toMatch(/\nDNS answers \(\d+, 1 name\)\n/);
    const peers = new Set(execFileSync('tshark', ['-r', FIXTURE, '-Y', '(tcp || udp) && ip.src == 192.168.12.114', '-T', 'fields', '-e', 'ip.dst'], { encoding: 'utf8' }).split('\n').filter(Boolean));
    expect([...peers]).toEqual(['192.168.12.112']);
    expect(text.stdout).toContain(`  ${json.devices.find((d) => d.ips.includes('192.168.12.114'))!.mac}, amazon: 1 endpoint, 1 organisation, `);
    const out = join(dir, 'report.json');
    const toFile = await runCli(['replay', FIXTURE, '-o', out]);
    expect(toFile.code).toBe(0);
    expect(toFile.stdout).toBe('');
    expect(JSON.parse(readFileSync(out, 'utf8')).schema).toBe('earshot.report/1');
    // the whole report, byte for byte, as on standard output
    const plain = await runCli(['replay', FIXTURE, '--format', 'json']);
    expect(readFileSync(out, 'utf8')).toBe(plain.stdout);
  });

  it('a capture without MAC addresses (raw IP): one warning saying no device can come from it, and none for the same packets on Ethernet', async () => {
    // the fixture's IP packets without their Ethernet headers, as a tun interface gives them
    const classic = join(dir, 'ethernet.pcap');
    execFileSync('editcap', ['-F', 'pcap', FIXTURE, classic]);
    const bytes = readFileSync(classic);
    expect(bytes.readUInt32LE(0)).toBe(0xa1b2c3d4);
    const records: Buffer[] = [classicHeader({ linkType: 101 })];
    for (let at = 24; at + 16 <= bytes.length;) {
      const included = bytes.readUInt32LE(at + 8);
      const frame = bytes.subarray(at + 16, at + 16 + included);
      const ethertype = frame.length > 14 ? frame.readUInt16BE(12) : 0;
      if (ethertype === 0x0800 || ethertype === 0x86dd) {
        records.push(classicRecord({ seconds: bytes.readUInt32LE(at), fraction: bytes.readUInt32LE(at + 4), data: frame.subarray(14), wireLen: bytes.readUInt32LE(at + 12) - 14 }));
      }
      at += 16 + included;
    }
    const raw = join(dir, 'raw.pcap');
    writeFileSync(raw, Buffer.concat(records));
    const r = await runCli(['replay', raw, '--format', 'json', '--log-format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^packets without MAC addresses \(raw IP: .*no device, assistant or activation comes from them; capture on the LAN side/);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.capture.packets).toBe(records.length - 1);
    expect(report.devices).toEqual([]);
    // the same packets with their Ethernet headers: devices, and no such warning
    const ethernet = await runCli(['replay', classic, '--format', 'json', '--log-format', 'json']);
    expect(ethernet.stderr).not.toContain('without MAC addresses');
    expect((JSON.parse(ethernet.stdout) as Report).devices.length).toBeGreaterThan(0);
  });

  it.runIf(process.platform === 'linux')('fails with one line and exit 2 when the --output file cannot be written (a full disk: /dev/full)', async () => {
    expectOneLineError(await runCli(['replay', FIXTURE, '-o', '/dev/full']), /\/dev\/full: cannot write: no space left on device$/);
  });

  it('bad input: one line naming the problem, exit 2, no stack trace', async () => {
    expectOneLineError(await runCli(['replay', join(dir, 'missing.pcap')]), /missing\.pcap: no such file/);
    expectOneLineError(await runCli(['replay', dir]), /is a directory/);
    expectOneLineError(await runCli(['replay', join(PROJECT_ROOT, 'README.md')]), /README\.md: not a pcap or pcapng capture/);
    const usb = join(dir, 'usb.pcap');
    writeFileSync(usb, classicHeader({ snaplen: 65535, linkType: 189 })); // LINKTYPE_USB_LINUX
    expectOneLineError(await runCli(['replay', usb]), /usb\.pcap: link type 189 is not supported/);
    expectOneLineError(await runCli(['replay']), /missing argument/);
    // an empty file or directory name (an unset shell variable) said "earshot: : no such file"
    expectOneLineError(await runCli(['replay', '']), /^earshot: replay: an empty argument \(an unset variable\?\) \(usage: earshot replay FILE/);
    for (const [flag, kind] of [['-o', 'output'], ['--data-dir', 'data-dir'], ['--wake-events', 'wake-events'], ['--config', 'config']]) {
      expectOneLineError(await runCli(['replay', FIXTURE, flag, '']), new RegExp(`^earshot: replay: --${kind}: an empty ${kind === 'data-dir' ? 'directory' : 'file'} name \\(an unset variable\\?\\)$`));
    }
    expectOneLineError(await runCli(['replay', FIXTURE, '--frobnicate']), /--frobnicate/);
    expectOneLineError(await runCli(['replay', FIXTURE, '--format', 'xml']), /--format: must be json or text/);
    expectOneLineError(await runCli(['replay', FIXTURE, '--realtime-speed', 'fast']), /--realtime-speed: expected a number/);
    expectOneLineError(await runCli(['replay', FIXTURE, '--max-flows', '0']), /--max-flows: must be >= 1|--max-flows.*1/);
    expectOneLineError(await runCli(['replay', FIXTURE], { env: { EARSHOT_LOG_LEVEL: 'loud' } }), /EARSHOT_LOG_LEVEL: must be one of/);
    const badConfig = join(dir, 'bad.yaml');
    writeFileSync(badConfig, 'flows:\n  maxflows: 3\n');
    expectOneLineError(await runCli(['replay', FIXTURE, '--config', badConfig]), /bad\.yaml: flows: unknown key "maxflows"/);
    expectOneLineError(await runCli(['frob']), /unknown command "frob"/);
    expectOneLineError(await runCli(['collect']), /--interface is required/);
    // live-capture flags beside --file were ignored without a word (found by an audit)
    expectOneLineError(await runCli(['collect', '--interface', 'lo', '--file', FIXTURE, '--exit-when-done']), /^earshot: collect: --file reads a capture file; --interface is for live capture$/);
    expectOneLineError(await runCli(['collect', '--source', 'tcpdump', '--filter', 'port 1', '--file', FIXTURE, '--exit-when-done']), /^earshot: collect: --file reads a capture file; --source, --filter are for live capture$/);
  });

  it('config from a file, the environment and flags, flags winning', async () => {
    const config = join(dir, 'small.yaml');
    writeFileSync(config, 'flows:\n  maxFlows: 1\n');
    const r = await runCli(['replay', FIXTURE, '--config', config, '--format', 'json']);
    expect(JSON.parse(r.stdout).stats.flowsEvicted).toBeGreaterThan(0);
    const env = await runCli(['replay', FIXTURE, '--format', 'json'], { env: { EARSHOT_CONFIG: config, EARSHOT_FLOWS_MAX_FLOWS: '1000' } });
    expect(JSON.parse(env.stdout).stats.flowsEvicted).toBe(0);
    const flag = await runCli(['replay', FIXTURE, '--format', 'json', '--max-flows', '2'], { env: { EARSHOT_FLOWS_MAX_FLOWS: '1000' } });
    expect(JSON.parse(flag.stdout).stats.flowsEvicted).toBeGreaterThan(0);
  });

  it('names from the network reach the terminal escaped with --format text, and unchanged in JSON', async () => {
    const capture = join(dir, 'hostile-names.pcap');
    writeFileSync(capture, hostileNamesPcap());
    if (haveTshark()) {
      // the oracle agrees that the capture carries the escape sequences (tshark shows ESC as \033)
      const tshark = execFileSync('tshark', ['-r', capture, '-T', 'fields', '-e', 'dns.resp.name'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      expect(tshark).toContain('Kitchen\\033[2J\\033[H');
      expect(tshark).toContain('evil\\033[2J.example.com');
    }
    const text = await runCli(['replay', capture, '--format', 'text']);
    expect(text.code).toBe(0);
    // nothing a terminal acts on: no C0 control but the line feeds, no DEL, no C1, no bidi override
    // eslint-disable-next-line no-control-regex -- what must never reach a terminal
    expect(text.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(text.stdout).toContain('Echo\\u202eevil\\x0d\\x0aearshot: fake log line\\x1b[31m');
    expect(text.stdout).toContain('  evil\\x1b[2J.example.com -> A 203.0.113.7');
    expect(text.stdout).toContain('  host\\x1b[5m.local -> A 192.168.1.50');
    // JSON is data: the names as sent (JSON escapes them), for programs to judge
    const json = JSON.parse((await runCli(['replay', capture, '--format', 'json'])).stdout) as { devices: Array<{ name: string | null; model: string | null }>; dns: Array<{ name: string }> };
    expect(json.devices.find((d) => d.name !== null)).toMatchObject({ name: HOSTILE_FRIENDLY, model: HOSTILE_MODEL });
    expect(json.dns.map((a) => a.name)).toEqual([`${HOSTILE_HOST}.local`, HOSTILE_DNS_NAME]);
  });

  it('a recursive YAML alias, a devices key that is not a MAC: one line, exit 2', async () => {
    const alias = join(dir, 'alias.yaml');
    writeFileSync(alias, 'a: &a [*a]\n');
    expectOneLineError(await runCli(['replay', FIXTURE, '--config', alias]), /alias\.yaml: invalid YAML: a\.0: an alias refers to the anchor it is inside/);
    const devices = join(dir, 'devices.yaml');
    writeFileSync(devices, 'devices:\n  "Kitchen Echo": { name: Kitchen }\n');
    expectOneLineError(await runCli(['replay', FIXTURE, '--config', devices]), /devices\.yaml: devices: "Kitchen Echo" is not a MAC address/);
    const ambiguous = join(dir, 'ambiguous.yaml');
    writeFileSync(ambiguous, '*ataDir: null\n');
    expectOneLineError(await runCli(['replay', FIXTURE, '--config', ambiguous]), /ambiguous\.yaml: invalid YAML/);
  });

  it('config files truncated or with flipped bytes: the executable exits 0, or 2 with one "earshot:" line', async () => {
    const base = readFileSync(join(PROJECT_ROOT, 'deploy/earshot.example.yaml'));
    const file = join(dir, 'fuzzed.yaml');
    // a fixed sample (seeded): the in-process fuzz in collector/config.test.ts runs many more
    const random = seeded(14);
    for (let run = 0; run < 16; run++) {
      const bytes = Buffer.from(base.subarray(0, run % 3 === 0 ? Math.floor(random() * base.length) : base.length));
      for (let flip = 0; flip < 1 + (run % 4); flip++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      // and one piece of YAML syntax (an anchor, an alias, a complex key...) where a random byte rarely makes one
      const token = YAML_TOKENS[Math.floor(random() * YAML_TOKENS.length)];
      const at = Math.floor(random() * bytes.length);
      writeFileSync(file, Buffer.concat([bytes.subarray(0, at), Buffer.from(token), bytes.subarray(at)]));
      const r = await runCli(['catalog', '--config', file, '--format', 'text', '--vendor', 'sonos']);
      expect([0, 2]).toContain(r.code);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at |Warning/);
      if (r.code === 2) expectOneLineError({ ...r, stdout: '' }, /fuzzed\.yaml: /);
      else expect(r.stderr).toBe('');
    }
  });

  it('paces a replay with --realtime-speed', async () => {
    // the fixture spans 47.9 s of capture time: at 40x that is ~1.2 s of wall time
    const started = Date.now();
    const r = await runCli(['replay', FIXTURE, '--format', 'json', '--realtime-speed', '40']);
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1100);
  });
});

describeShared('earshot CLI on real captures', () => {
  it('a reader slow to start gets the whole report through a pipe (more than the pipe holds)', async () => {
    const file = realCapture('android-alexa-app_jhautry.pcap');
    // the reader: a shell that waits a second before it reads, as a python3 starting on a busy machine
    const out = execFileSync('sh', ['-c', `"${process.execPath}" "${EARSHOT_BIN}" replay "${file}" --format json 2>/dev/null | (sleep 1; cat)`], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(out.length).toBeGreaterThan(1 << 16);
    expect(JSON.parse(out).dns.length).toBeGreaterThan(0);
  });

  it('--data-dir keeps names learned from DHCP across runs, and sets a damaged state file aside', async () => {
    const dataDir = join(dir, 'state');
    const boot = await runCli(['replay', realCapture('amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap'), '--format', 'json', '--data-dir', dataDir]);
    expect(boot.code).toBe(0);
    // the later capture has no DHCP: the name comes from the saved inventory
    const later = await runCli(['replay', realCapture('amazon-echodot2_normal-use_jhautry.pcap'), '--format', 'json', '--data-dir', dataDir]);
    const echo = JSON.parse(later.stdout).devices.find((d: { mac: string }) => d.mac === '50:f5:da:23:43:df');
    expect(echo).toMatchObject({ name: 'amazon-0d0fb5957', assistant: true });
    const without = await runCli(['replay', realCapture('amazon-echodot2_normal-use_jhautry.pcap'), '--format', 'json']);
    expect(JSON.parse(without.stdout).devices.find((d: { mac: string }) => d.mac === '50:f5:da:23:43:df').name).toBeNull();
    writeFileSync(join(dataDir, 'state.json'), '{"schema":"earshot.state/1","devices":');
    const damaged = await runCli(['replay', FIXTURE, '--format', 'json', '--data-dir', dataDir, '--log-format', 'text']);
    expect(damaged.code).toBe(0);
    expect(damaged.stderr).toMatch(/^earshot: warn: .*state\.json is damaged .*kept as .*state\.json\.damaged-\d+/);
    expectOneLineError(await runCli(['replay', FIXTURE, '--data-dir', join(PROJECT_ROOT, 'README.md', 'x')]), /data directory is not usable/);
  });

  it('a capture cut off mid-record: everything before it, truncated, one warning, exit 0', async () => {
    const file = realCapture('amazon-echo_alexa-timed2_xray.pcap');
    const r = await runCli(['replay', file, '--format', 'json', '--log-format', 'text']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.capture).toMatchObject({ packets: 3281, truncated: true });
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^earshot: warn: .*timed2_xray\.pcap: capture cut short at offset 1507284/);
  });

  it('a report past its bounds keeps the newest flows and says what it left out, in one warning', async () => {
    const file = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
    const whole = JSON.parse((await runCli(['replay', file, '--format', 'json'])).stdout);
    const r = await runCli(['replay', file, '--format', 'json', '--log-format', 'text', '--report-max-flows', '3']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.flows).toHaveLength(3);
    expect(report.stats.reportFlowsDropped).toBe(whole.flows.length - 3);
    expect(report.devices).toEqual(whole.devices);
    expect(r.stderr).toBe(`earshot: warn: the report leaves out ${whole.flows.length - 3} older flows (report.maxFlows 3); device totals count every flow\n`);
  });
});

const isRoot = process.getuid?.() === 0;
const haveTcpdump = (() => {
  try {
    execFileSync('which', ['tcpdump'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!isRoot) console.warn('skipping live capture CLI tests: they need root (CAP_NET_RAW) to capture on lo');

describe.skipIf(!isRoot)('earshot collect on loopback', () => {
  // with the API (the default, as the systemd unit runs it: the pipeline on its own thread) and without.
  // The API on, the libpcap source's every stop aborted the process (exit 134, a native stack trace):
  // node_pcap leaves its poll handle open, and a worker thread's end checks for open handles; the
  // session then stayed on the main thread with the pipeline, and now hands its packets over
  for (const [source, api] of [['libpcap', true], ['libpcap', false], ['tcpdump', true], ['tcpdump', false]] as const) {
    it.skipIf(source === 'tcpdump' && !haveTcpdump)(`--source ${source}${api ? ' with the API' : ', no API'}: sees a UDP exchange on lo, reports its flow, exits 0 at the end of --duration`, async () => {
      const port = 40000 + Math.floor(Math.random() * 20000);
      const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--interface', 'lo', '--source', source, '--filter', `udp port ${port}`, '--duration', '4', '--format', 'json',
        ...(api ? ['--listen', '127.0.0.1:0', '--log-format', 'json', '--log-level', 'debug'] : ['--api', 'false'])], { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.stdout.on('data', (d: Buffer) => out.push(d));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      // the capture is open (libpcap opened lo, tcpdump said it listens): a fixed wait lost the packets on a busy machine
      await until('the capture to open', () => stderr.includes('"capture open"'), 20_000);
      const server = createSocket('udp4');
      const client = createSocket('udp4');
      await new Promise<void>((r) => server.bind(port, '127.0.0.1', () => r()));
      server.on('message', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
      for (let i = 0; i < 5; i++) {
        client.send(Buffer.alloc(100), port, '127.0.0.1');
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 300));
      client.close();
      server.close();
      expect({ code: await exited, stderr: stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n') }).toEqual({ code: 0, stderr: '' });
      // with the API, the pipeline ran on its own thread (its first log line), whatever the source
      if (api) expect(stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('the pipeline thread started');
      const report = JSON.parse(Buffer.concat(out).toString('utf8'));
      const flow = report.flows.find((f: { serverPort: number }) => f.serverPort === port);
      // 100 bytes of payload + 8 UDP + 20 IP + 14 link (loopback is Ethernet-framed on Linux)
      expect(flow).toMatchObject({ proto: 'udp', client: '127.0.0.1', server: '127.0.0.1', packetsUp: 5, packetsDown: 5, bytesUp: 5 * 142, bytesDown: 5 * 142 });
    });
  }

  const haveIp = spawnSync('ip', ['-V'], { stdio: 'ignore' }).status === 0;
  for (const source of ['libpcap', 'tcpdump'] as const) {
    it.skipIf(!haveIp || (source === 'tcpdump' && !haveTcpdump))(`--source ${source}: an interface that disappears ends the capture with exit 2, after the report`, async () => {
      // a veth pair of our own, with an address to send from
      const name = `es${process.pid % 100000}${source === 'libpcap' ? 'a' : 'b'}`;
      spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
      execFileSync('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
      execFileSync('ip', ['link', 'set', name, 'up']);
      execFileSync('ip', ['link', 'set', `${name}p`, 'up']);
      execFileSync('ip', ['addr', 'add', '169.254.213.1/24', 'dev', name]);
      try {
        // with the API on, as the systemd unit runs it
        const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--interface', name, '--source', source, '--format', 'json', '--listen', '127.0.0.1:0', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        const out: Buffer[] = [];
        child.stdout.on('data', (d: Buffer) => out.push(d));
        child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
        const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
        await until('the capture to open', () => stderr.includes('"capture open"'), 20_000);
        // a few datagrams out of the interface (broadcast from its own address: no DAD to wait for)
        const sender = createSocket('udp4');
        await new Promise<void>((resolve) => sender.bind(0, '169.254.213.1', () => resolve()));
        sender.setBroadcast(true);
        for (let i = 0; i < 3; i++) {
          await new Promise<void>((resolve, reject) => sender.send(Buffer.alloc(20), 9, '169.254.213.255', (err) => (err ? reject(err) : resolve())));
        }
        sender.close();
        // tcpdump (no --immediate-mode) hands packets over when libpcap's 1-s buffer timeout ends
        await new Promise((r) => setTimeout(r, 1500));
        execFileSync('ip', ['link', 'del', name]);
        expect(await exited).toBe(2);
        expect(stderr).toMatch(new RegExp(`earshot: capture on ${name} failed: .*[Tt]he interface disappeared\n$`));
        // what came before is reported
        const report = JSON.parse(Buffer.concat(out).toString('utf8'));
        expect(report.flows.find((f: { server: string; serverPort: number }) => f.server === '169.254.213.255' && f.serverPort === 9)).toMatchObject({ proto: 'udp', packetsUp: 3 });
      } finally {
        spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
      }
    }, 20_000);
  }

  /** `earshot collect --source tcpdump` on lo, for UDP to a port of its own; its output and stderr as they come. */
  function collectTcpdumpOnLo() {
    const port = 40000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--interface', 'lo', '--source', 'tcpdump', '--filter', `udp port ${port}`, '--format', 'json', '--api', 'false', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    return { port, child, out, stderr: () => err, exited };
  }

  it.skipIf(!haveTcpdump)('--source tcpdump: the packets of the last second before a stop are in the report (they were thrown away with tcpdump\'s buffer)', async () => {
    const { port, child, out, stderr, exited } = collectTcpdumpOnLo();
    await until('tcpdump listening', () => stderr().includes('"capture open"'), 20_000);
    const client = createSocket('udp4');
    for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => client.send(Buffer.alloc(100), port, '127.0.0.1', () => resolve()));
    client.close();
    // stopped at once, well inside libpcap's 1-s buffer timeout
    child.kill('SIGTERM');
    expect(await exited, stderr()).toBe(0);
    const report = JSON.parse(Buffer.concat(out).toString('utf8'));
    expect(report.flows.find((f: { serverPort: number }) => f.serverPort === port)).toMatchObject({ proto: 'udp', packetsUp: 20 });
  });

  for (const [signal, ended] of [['TERM', 'exit 0'], ['KILL', 'signal SIGKILL']] as const) it.skipIf(!haveTcpdump)(`--source tcpdump: a tcpdump that ends by itself (SIG${signal}) is a failure (exit 2) that says how, after the report with what it captured`, async () => {
    const { port, child, out, stderr, exited } = collectTcpdumpOnLo();
    await until('the capture to open', () => stderr().includes('"capture open"'), 20_000);
    const client = createSocket('udp4');
    for (let i = 0; i < 3; i++) {
      client.send(Buffer.alloc(100), port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
    }
    client.close();
    // tcpdump hands packets over within libpcap's 1-s buffer timeout (no --immediate-mode: docs/install.md)
    await new Promise((r) => setTimeout(r, 1500));
    // somebody else stops earshot's tcpdump (SIGTERM: tcpdump exits 0; SIGKILL: it says nothing, "tcpdump
    // exited without saying why" before)
    execFileSync('pkill', [`-${signal}`, '-P', String(child.pid), 'tcpdump']);
    expect(await exited).toBe(2);
    expect(stderr()).toMatch(new RegExp(`earshot: capture on lo failed: tcpdump ended by itself \\(${ended}\\) after 3 packets\n$`));
    const report = JSON.parse(Buffer.concat(out).toString('utf8'));
    expect(report.flows.find((f: { serverPort: number }) => f.serverPort === port)).toMatchObject({ proto: 'udp', packetsUp: 3, packetsDown: 0 });
  });
});
