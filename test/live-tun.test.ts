/**
 * A live capture on a tun interface (raw IP, no link header: WireGuard, OpenVPN, a router's VPN), which
 * libpcap gives the RAW link type. The check before the start knew Ethernet, the loopback, radiotap and
 * `any` only: a filter libpcap refuses for raw IP (`ether host ...`) got past it, the API started and
 * wrote its token, and then the capture failed. Needs root (a tun interface of its own), python3 (to be
 * the tun's other end: Node.js has no ioctl), tcpdump and tshark.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WITHOUT_MAC_WARNING } from '../collector/runtime.js';
import type { Report } from '../collector/sink/report.js';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { describeNeeding, PROJECT_ROOT } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { flowKey, tsharkFlows } from './helpers/tshark.js';
import { until } from './helpers/wait.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const runs = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const have = process.getuid?.() === 0 && existsSync('/dev/net/tun') && runs('ip', ['-V']) && runs('tcpdump', ['--version'])
  && runs('python3', ['--version']) && runs('tshark', ['--version']) && runs('editcap', ['-h']);
const dir = tempDir('earshot-tun-');

describeNeeding('a live capture on a tun interface (raw IP)', have, 'root, /dev/net/tun, ip, tcpdump, python3, tshark and editcap (apt-get install tcpdump tshark)', () => {
  const name = `estun${process.pid % 100000}`;
  beforeAll(() => {
    spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
    execFileSync('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tun']);
    execFileSync('ip', ['link', 'set', name, 'up']);
  });
  afterAll(() => {
    spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
  });

  it('a filter libpcap refuses for raw IP: one line before anything starts, in the words tcpdump says on the interface, for either source', async () => {
    const filter = 'ether host 02:00:00:00:00:01';
    // the oracle: tcpdump opening the interface itself and compiling the filter for what libpcap gives it
    const said = spawnSync('tcpdump', ['-i', name, '-d', filter], { encoding: 'utf8' });
    expect(said.status).not.toBe(0);
    const words = said.stderr.trim().replace(/^tcpdump: /, '');
    expect(words).toMatch(/ethernet addresses supported only on/);
    for (const source of ['libpcap', 'tcpdump']) {
      const data = join(dir, `filter-${source}`);
      const r = await runCli(['collect', '--interface', name, '--source', source, '--filter', filter, '--data-dir', data], { timeoutMs: 30_000 });
      expect(r.code, source).toBe(2);
      expect(r.stderr, source).toBe(`earshot: cannot capture on ${name}: the filter "${filter}" is not valid: ${words}\n`);
      // nothing was started: the API's token was never written
      expect(existsSync(join(data, 'api-token')), source).toBe(false);
    }
  }, 60_000);

  it('captures what is written to it: every flow of the capture with tshark\'s packets, and its bytes without the Ethernet header', async () => {
    const classic = join(dir, 'echo.pcap');
    execFileSync('editcap', ['-F', 'pcap', CAPTURE, classic]);
    // the kernel's own packets on the interface (router solicitations) are not the capture's
    const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--interface', name, '--filter', 'tcp or udp', '--duration', '8', '--api', 'false', '--format', 'json', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await until('the capture to open', () => stderr.includes('"capture open"'), 20_000);
    const written = Number(execFileSync('python3', [join(PROJECT_ROOT, 'test/helpers/tun-write.py'), name, classic], { encoding: 'utf8' }).trim());
    expect(await exited, stderr).toBe(0);
    // said once: no packet of a tun has a MAC address, so no device can come from them
    const warnings = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
    expect(warnings.map((w) => w.msg)).toEqual([WITHOUT_MAC_WARNING]);
    const report = JSON.parse(Buffer.concat(out).toString('utf8')) as Report;
    const expected = tsharkFlows(classic);
    expect(written).toBeGreaterThan(2000);
    expect(report.devices).toEqual([]);
    expect(report.flows.length).toBe(expected.size);
    for (const f of report.flows) {
      const key = flowKey(f.proto, f.client, f.clientPort, f.server, f.serverPort);
      const want = expected.get(key);
      expect(want, key).toBeDefined();
      const up = want!.dirs.get(`${f.client}|${f.clientPort}`) ?? { packets: 0, bytes: 0 };
      const down = want!.dirs.get(`${f.server}|${f.serverPort}`) ?? { packets: 0, bytes: 0 };
      expect([f.packetsUp, f.packetsDown, f.bytesUp, f.bytesDown], key).toEqual([up.packets, down.packets, up.bytes - 14 * up.packets, down.bytes - 14 * down.packets]);
    }
  }, 60_000);

  it('earshot doctor says the interface has no MAC addresses, and where to capture instead', async () => {
    const r = await runCli(['doctor', '--interface', name, '--seconds', '1'], { timeoutMs: 30_000 });
    expect(r.stdout.split('\n').filter((l) => l.startsWith('warn interface: '))).toEqual([
      `warn interface: ${name} carries raw IP without MAC addresses: earshot tells devices apart by MAC, so no device, assistant or activation comes from it — capture on the LAN side: the bridge, Wi-Fi or Ethernet interface the assistants are on (--interface)`,
    ]);
    // an Ethernet interface gets no such line
    expect((await runCli(['doctor', '--interface', 'lo', '--seconds', '1'], { timeoutMs: 30_000 })).stdout).not.toContain('without MAC addresses');
  }, 60_000);
});
