/**
 * Live sources on the loopback interface: a real UDP and TCP exchange on 127.0.0.1 must reach the sink
 * through tcpdump and through libpcap. Capturing needs root; without it those tests are skipped.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type Server } from 'node:net';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { isEarshotError, type ErrorCode } from '../errors.js';
import { buildDropWatch } from './drops.js';
import { buildSource } from './index.js';
import { buildLibpcapSource, interfaceIndex, linkTypeFromPcapName } from './libpcap.js';
import { buildTcpdumpSource, tcpdumpDrops, tcpdumpErrorText } from './tcpdump.js';
import { LinkType, type CaptureSource } from './types.js';

const isRoot = process.getuid?.() === 0;
const haveTcpdump = !spawnSync('tcpdump', ['--version'], { stdio: 'ignore' }).error;
const havePcap = (() => {
  try {
    createRequire(import.meta.url)('pcap');
    return true;
  } catch {
    return false;
  }
})();
if (!isRoot) console.warn('skipping live capture on lo: needs root');
if (!haveTcpdump) console.warn('skipping tcpdump capture: tcpdump not installed');
if (!havePcap) console.warn('skipping libpcap capture: the optional pcap package is not installed');

const MARK = `earshot-${process.pid}`;
const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()?.();
});

/** A UDP socket and a TCP server on 127.0.0.1, and a function sending one datagram and one TCP message. */
async function loopbackTraffic(): Promise<{ udpPort: number; tcpPort: number; send: () => void }> {
  const udp = createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const server: Server = createServer((socket) => socket.on('data', () => {}).on('error', () => {}));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const udpPort = udp.address().port;
  const address = server.address();
  const tcpPort = typeof address === 'object' && address !== null ? address.port : 0;
  cleanups.push(() => {
    udp.close();
    server.close();
  });
  return {
    udpPort,
    tcpPort,
    send() {
      udp.send(`${MARK}-udp`, udpPort, '127.0.0.1');
      const client = connect(tcpPort, '127.0.0.1', () => client.end(`${MARK}-tcp`));
      client.on('error', () => {});
    },
  };
}

/** Captures until both a UDP and a TCP packet carrying MARK arrived (or 15 s); returns what was seen. */
async function captureExchange(build: (filter: string) => CaptureSource): Promise<{ udp: boolean; tcp: boolean; linkTypes: Set<number> }> {
  const traffic = await loopbackTraffic();
  const source = build(`host 127.0.0.1 and (udp port ${traffic.udpPort} or tcp port ${traffic.tcpPort})`);
  const seen = { udp: false, tcp: false, linkTypes: new Set<number>() };
  // the capture takes a moment to start: keep talking until it hears us
  const talker = setInterval(traffic.send, 100);
  const deadline = setTimeout(() => source.stop(), 15_000);
  cleanups.push(() => {
    clearInterval(talker);
    clearTimeout(deadline);
  });
  const stats = await source.run((buf, offset, capLen, _wireLen, timeMs, linkType) => {
    expect(offset + capLen).toBeLessThanOrEqual(buf.length);
    expect(Math.abs(timeMs - Date.now())).toBeLessThan(60_000);
    seen.linkTypes.add(linkType);
    const text = buf.toString('latin1', offset, offset + capLen);
    if (text.includes(`${MARK}-udp`)) seen.udp = true;
    if (text.includes(`${MARK}-tcp`)) seen.tcp = true;
    if (seen.udp && seen.tcp) source.stop();
  });
  expect(stats.packets).toBeGreaterThan(1);
  expect(stats.kernelDrops).toBeGreaterThanOrEqual(0);
  return seen;
}

async function expectRejects(source: CaptureSource, code: ErrorCode, fragment?: string): Promise<void> {
  const error = await source.run(() => {}).then(() => null, (err: unknown) => err);
  expect(isEarshotError(error), String(error)).toBe(true);
  if (!isEarshotError(error)) return;
  expect(error.code).toBe(code);
  if (fragment !== undefined) expect(error.message).toContain(fragment);
}

describe.runIf(isRoot && haveTcpdump)('tcpdump source on lo', () => {
  it('delivers a UDP and a TCP exchange on 127.0.0.1', async () => {
    const seen = await captureExchange((filter) => buildTcpdumpSource({ interface: 'lo', filter }, {}));
    expect(seen).toEqual({ udp: true, tcp: true, linkTypes: new Set([LinkType.ETHERNET]) });
  });

  it('an interface that does not exist is EARSHOT_ERR_CAPTURE_OPEN with tcpdump\'s reason', async () => {
    await expectRejects(buildTcpdumpSource({ interface: 'earshot-nope0' }, {}), 'EARSHOT_ERR_CAPTURE_OPEN', 'earshot-nope0');
  });

  it('a filter tcpdump rejects is EARSHOT_ERR_CAPTURE_OPEN', async () => {
    await expectRejects(buildTcpdumpSource({ interface: 'lo', filter: 'port port port' }, {}), 'EARSHOT_ERR_CAPTURE_OPEN', 'syntax error');
  });

  it('a lone packet on a quiet link arrives within about a second (no --immediate-mode, libpcap\'s timeout)', async () => {
    const traffic = await loopbackTraffic();
    const source = buildTcpdumpSource({ interface: 'lo', filter: `udp port ${traffic.udpPort}` }, {});
    let sentAt = 0;
    let delayMs = -1;
    const running = source.run((buf, offset, capLen) => {
      if (buf.toString('latin1', offset, offset + capLen).includes(`${MARK}-udp`)) {
        delayMs = Date.now() - sentAt;
        source.stop();
      }
    });
    // tcpdump is listening once its pcap header came through; then one datagram, and nothing else
    const deadline = Date.now() + 10_000;
    while (source.stats().bytesRead < 24 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    sentAt = Date.now();
    traffic.send();
    const stopper = setTimeout(() => source.stop(), 5000);
    await running;
    clearTimeout(stopper);
    expect(delayMs).toBeGreaterThanOrEqual(0);
    expect(delayMs).toBeLessThan(2500);
  });

  it('kernel drops show in stats() and in one warning while tcpdump runs, not only at the end', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => udp.close());
    const port = udp.address().port;
    const warnings: string[] = [];
    // a small kernel buffer and a sink that stalls: the ring fills and the kernel drops
    const source = buildTcpdumpSource({ interface: 'lo', filter: `udp port ${port}`, bufferSize: 256 * 1024 }, { onWarning: (m) => warnings.push(m) });
    let stalled = false;
    const running = source.run(() => {
      if (stalled) return;
      stalled = true;
      const until = Date.now() + 1500;
      while (Date.now() < until) { /* a stalled pipeline */ }
    });
    const deadline = Date.now() + 10_000;
    while (source.stats().bytesRead < 24 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // another process floods, so the flood goes on while this one stalls
    const flood = spawn(process.execPath, ['-e', `
      const s = require('node:dgram').createSocket('udp4');
      const payload = Buffer.alloc(1000, 1);
      const end = Date.now() + 2500;
      (function burst() { for (let i = 0; i < 200; i++) s.send(payload, ${port}, '127.0.0.1'); if (Date.now() < end) setImmediate(burst); else s.close(); })();
    `], { stdio: 'ignore' });
    await new Promise((resolve) => flood.on('close', resolve));
    let liveDrops = 0;
    while (liveDrops === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      liveDrops = source.stats().kernelDrops;
    }
    const liveWarnings = [...warnings];
    source.stop();
    const final = await running;
    expect(liveDrops).toBeGreaterThan(0);
    expect(final.kernelDrops).toBeGreaterThanOrEqual(liveDrops);
    expect(liveWarnings).toHaveLength(1);
    expect(liveWarnings[0]).toMatch(/^interface lo \(tcpdump\): \d+ packets dropped \(\d+ since capture began; kernel \d+, interface 0\)/);
  });

  it('stop() right after run() resolves with an empty capture', async () => {
    const source = buildTcpdumpSource({ interface: 'lo', filter: 'udp port 9' }, {});
    const running = source.run(() => {});
    source.stop();
    expect((await running).packets).toBe(0);
  });
});

describe.runIf(isRoot && havePcap)('libpcap source on lo', () => {
  it('delivers a UDP and a TCP exchange on 127.0.0.1', async () => {
    const seen = await captureExchange((filter) => buildLibpcapSource({ interface: 'lo', filter }, {}));
    expect(seen).toEqual({ udp: true, tcp: true, linkTypes: new Set([LinkType.ETHERNET]) });
  });

  it('an interface that does not exist is EARSHOT_ERR_CAPTURE_OPEN', async () => {
    await expectRejects(buildLibpcapSource({ interface: 'earshot-nope0' }, {}), 'EARSHOT_ERR_CAPTURE_OPEN', 'earshot-nope0');
  });

  it('a bad filter is EARSHOT_ERR_CAPTURE_OPEN', async () => {
    await expectRejects(buildLibpcapSource({ interface: 'lo', filter: 'port port port' }, {}), 'EARSHOT_ERR_CAPTURE_OPEN');
  });
});

describe('live sources without what they need', () => {
  it('a missing tcpdump binary is EARSHOT_ERR_NO_TCPDUMP', async () => {
    await expectRejects(buildTcpdumpSource({ interface: 'lo', tcpdumpPath: '/nonexistent/tcpdump' }, {}), 'EARSHOT_ERR_NO_TCPDUMP');
  });

  it('a missing pcap package is EARSHOT_ERR_NO_LIBPCAP', async () => {
    await expectRejects(buildLibpcapSource({ interface: 'lo', moduleName: 'earshot-no-such-module' }, {}), 'EARSHOT_ERR_NO_LIBPCAP');
  });

  it('reads tcpdump\'s closing statistics and errors', () => {
    const stderr = 'tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n'
      + '120 packets captured\n130 packets received by filter\n7 packets dropped by kernel\n2 packets dropped by interface\n';
    expect(tcpdumpDrops(stderr)).toEqual({ kernel: 7, interface: 2 });
    // what tcpdump prints on SIGUSR1 (tcpdump.c info(0)): one line; the last one counts
    const polled = 'tcpdump: 10 packets captured, 14 packets received by filter, 3 packets dropped by kernel\n'
      + 'tcpdump: 20 packets captured, 30 packets received by filter, 5 packets dropped by kernel, 1 packet dropped by interface\n';
    expect(tcpdumpDrops(polled)).toEqual({ kernel: 5, interface: 1 });
    expect(tcpdumpDrops('tcpdump: listening on eth0\n')).toBeNull();
    expect(tcpdumpErrorText(`${polled}tcpdump: pcap_loop: The interface disappeared\n`)).toBe('pcap_loop: The interface disappeared');
    expect(tcpdumpErrorText('tcpdump: eth9: No such device exists\n(SIOCGIFHWADDR: No such device)\n'))
      .toBe('eth9: No such device exists (SIOCGIFHWADDR: No such device)');
    // libpcap's repetition of the line before, and the interface the message names already, are left out
    expect(tcpdumpErrorText('tcpdump: nonexist0: No such device exists\n(No such device exists)\n', 'nonexist0')).toBe('No such device exists');
  });

  it('warns of drops once when they start, then at most once a minute with the count since', () => {
    const warnings: string[] = [];
    const watch = buildDropWatch('interface eth0 (libpcap)', (m) => warnings.push(m));
    watch.update(0, 0, 1000);
    expect(warnings).toEqual([]);
    watch.update(5, 0, 2000);
    watch.update(50, 1, 30_000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^interface eth0 \(libpcap\): 5 packets dropped \(5 since capture began; kernel 5, interface 0\)/);
    watch.update(80, 1, 62_000);
    expect(warnings[1]).toMatch(/^interface eth0 \(libpcap\): 76 packets dropped in the last 60 s \(81 since capture began/);
    watch.update(80, 1, 200_000);
    expect(warnings).toHaveLength(2);
    // when they last went up (for /health: dropping now, not once at some time since the start)
    expect(watch.lastDropMs).toBe(62_000);
  });

  it('maps node_pcap link type names', () => {
    expect(linkTypeFromPcapName('LINKTYPE_ETHERNET')).toBe(1);
    expect(linkTypeFromPcapName('LINKTYPE_LINUX_SLL')).toBe(113);
    expect(linkTypeFromPcapName('Unknown linktype 276')).toBe(276);
    expect(linkTypeFromPcapName('something else')).toBe(-1);
  });
});

describe('buildSource', () => {
  it('needs an interface for live kinds and a path for files', () => {
    expect(() => buildSource({ kind: 'tcpdump' }, {})).toThrowError(expect.objectContaining({ code: 'EARSHOT_ERR_USAGE' }));
    expect(() => buildSource({ kind: 'libpcap', interface: '' }, {})).toThrowError(expect.objectContaining({ code: 'EARSHOT_ERR_USAGE' }));
    expect(() => buildSource({ kind: 'file' }, {})).toThrowError(expect.objectContaining({ code: 'EARSHOT_ERR_USAGE' }));
  });

  it('builds each kind without doing any I/O', () => {
    expect(buildSource({ kind: 'file', path: '/nonexistent.pcap' }, {}).description).toBe('file /nonexistent.pcap');
    expect(buildSource({ kind: 'stdin' }, {}).description).toBe('stdin');
    expect(buildSource({ kind: 'tcpdump', interface: 'eth0' }, {}).description).toBe('interface eth0 (tcpdump)');
    expect(buildSource({ kind: 'libpcap', interface: 'eth0' }, {}).description).toBe('interface eth0 (libpcap)');
  });
});

describe('interfaceIndex (how the libpcap source notices an interface that went away)', () => {
  it('reads the index from sysfs; -1 when the interface is gone; null when it cannot tell', () => {
    const sysfs = mkdtempSync(join(tmpdir(), 'earshot-sysfs-'));
    cleanups.push(() => rmSync(sysfs, { recursive: true, force: true }));
    for (const [name, index] of [['lo', 1], ['wlan0', 7]] as const) {
      mkdirSync(join(sysfs, name));
      writeFileSync(join(sysfs, name, 'ifindex'), `${index}\n`);
    }
    expect(interfaceIndex('wlan0', sysfs)).toBe(7);
    expect(interfaceIndex('eth9', sysfs)).toBe(-1);
    expect(interfaceIndex('any', join(sysfs, 'none'))).toBeNull();
    expect(interfaceIndex('../wlan0', sysfs)).toBeNull();
    expect(interfaceIndex('..', sysfs)).toBeNull();
    // the real one, where there is sysfs
    if (process.platform === 'linux') expect(interfaceIndex('lo')).toBe(1);
  });
});
