/**
 * What collect tells before a live capture opens (collector/capture/interfaces.ts), checked against
 * libpcap and tcpdump themselves on this machine's real interfaces: tcpdump compiling the filter for the
 * real interface (`tcpdump -d -i IF`) says which filters are valid, `tcpdump -L` which link type it has.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/temp.js';
import { checkLiveCapture, filterProblem, hasNetRaw, interfaceFilterProblem, interfaceLinkType, interfaceList } from './interfaces.js';
import { LinkType } from './types.js';

const root = process.getuid?.() === 0;
const dir = tempDir('earshot-interfaces-');

const FILTERS = ['tcp port 443', 'not port 22 and (udp or icmp)', 'port port port', 'host', 'ether host 00:11:22:33:44:55', 'wlan addr1 00:11:22:33:44:55', 'vlan and tcp'];

describe('filters, compiled before the capture opens', () => {
  if (!root) console.warn('skipping the comparison with tcpdump -d -i lo: tcpdump opens the interface, which needs root');
  it.skipIf(!root)('are refused exactly when tcpdump refuses them on the real interface, with the addon and with tcpdump alone', () => {
    const linkType = interfaceLinkType('lo');
    // what tcpdump says lo's link type is
    const listed = spawnSync('tcpdump', ['-L', '-i', 'lo'], { encoding: 'utf8' });
    expect(`${listed.stdout}${listed.stderr}`).toMatch(/^\s+EN10MB/m);
    expect(linkType).toBe(LinkType.ETHERNET);
    let refused = 0;
    for (const filter of FILTERS) {
      const real = spawnSync('tcpdump', ['-d', '-i', 'lo', filter], { encoding: 'utf8' });
      const valid = real.status === 0;
      refused += valid ? 0 : 1;
      const withAddon = filterProblem(filter, linkType!);
      const withTcpdump = filterProblem(filter, linkType!, { pcapModule: 'earshot-no-such-module' });
      expect(withAddon === null, `${filter} (addon: ${withAddon})`).toBe(valid);
      expect(withTcpdump === null, `${filter} (tcpdump: ${withTcpdump})`).toBe(valid);
      // the reason is tcpdump's own words
      if (!valid) expect(real.stderr, filter).toContain(withTcpdump!);
    }
    expect(refused).toBe(3);
  });

  it('a temporary directory that cannot be written (full, read-only): tcpdump is asked through its standard input', () => {
    const before = process.env.TMPDIR;
    process.env.TMPDIR = join(dir, 'no-such-tmp', 'deeper');
    try {
      expect(filterProblem('port port port', LinkType.ETHERNET)).toBe("can't parse filter expression: syntax error");
      expect(filterProblem('tcp port 443', LinkType.ETHERNET)).toBeNull();
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
  });

  it('with neither the addon nor tcpdump there, nothing is said (the capture decides)', () => {
    expect(filterProblem('port port port', LinkType.ETHERNET, { pcapModule: 'earshot-no-such-module', tcpdumpPath: join(dir, 'no-tcpdump') })).toBeNull();
  });

  it('the link type sysfs tells: Ethernet, the loopback, `any`, and raw IP for ARPHRD_NONE (tun, WireGuard)', () => {
    const sysfs = join(dir, 'sys');
    for (const [name, type] of [['tun0', 65534], ['lo', 772], ['ppp0', 512]] as const) {
      mkdirSync(join(sysfs, name), { recursive: true });
      writeFileSync(join(sysfs, name, 'type'), `${type}\n`);
    }
    expect(interfaceLinkType('tun0', sysfs)).toBe(LinkType.RAW);
    expect(interfaceLinkType('lo', sysfs)).toBe(LinkType.ETHERNET);
    expect(interfaceLinkType('ppp0', sysfs)).toBeNull();
    expect(interfaceLinkType('any', sysfs)).toBe(LinkType.LINUX_SLL);
    expect(interfaceLinkType('../etc', sysfs)).toBeNull();
    // raw IP has no Ethernet addresses: libpcap refuses such a filter for it (test/live-tun.test.ts on a real tun)
    expect(filterProblem('ether host 00:11:22:33:44:55', LinkType.RAW)).toMatch(/ethernet addresses supported only on/);
  });

  it.skipIf(!root)('an interface of another link type is judged by tcpdump opening it, only when it opens without the filter', () => {
    // sysfs says lo is PPP (a type the table does not hold): tcpdump opens the real lo and compiles the filter
    const sysfs = join(dir, 'sys-ppp');
    for (const name of ['lo', 'ppp9']) {
      mkdirSync(join(sysfs, name), { recursive: true });
      writeFileSync(join(sysfs, name, 'type'), '512\n');
      writeFileSync(join(sysfs, name, 'flags'), '0x1009\n');
    }
    const real = spawnSync('tcpdump', ['-d', '-i', 'lo', 'port port port'], { encoding: 'utf8' });
    expect(real.status).not.toBe(0);
    expect(interfaceFilterProblem('lo', 'port port port', { sysfs })).toBe(real.stderr.trim().replace(/^tcpdump: /, ''));
    expect(interfaceFilterProblem('lo', 'tcp port 443', { sysfs })).toBeNull();
    // an interface tcpdump cannot open says nothing of the filter (the capture decides), nor a missing tcpdump
    expect(interfaceFilterProblem('ppp9', 'port port port', { sysfs })).toBeNull();
    expect(interfaceFilterProblem('lo', 'port port port', { sysfs, tcpdumpPath: join(dir, 'no-tcpdump') })).toBeNull();
    // the libpcap source's check before the start says it
    const procStatus = join(dir, 'status-with-net-raw');
    writeFileSync(procStatus, 'CapEff:\t0000000000002000\n');
    expect(() => checkLiveCapture('libpcap', 'lo', { sysfs, procStatus }, 'port port port')).toThrow(/cannot capture on lo: the filter "port port port" is not valid: can't parse filter expression: syntax error/);
  });
});

describe('the interface list and the capability', () => {
  it('names at most 12 interfaces, then how many more', () => {
    const names = Array.from({ length: 40 }, (_, i) => `veth${i}`);
    expect(interfaceList(names)).toBe(`${names.slice(0, 12).join(', ')} and 28 more`);
    expect(interfaceList([])).toBe('none');
  });

  it('reads CAP_NET_RAW from the capability set the kernel shows (capsh decodes the same mask)', () => {
    const status = (mask: string) => {
      const file = join(dir, `status-${mask}`);
      writeFileSync(file, `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${mask}\n`);
      return file;
    };
    // capsh --decode names the bits of a mask: cap_net_raw is in the first, not in the second
    const decode = (mask: string) => spawnSync('capsh', [`--decode=${mask}`], { encoding: 'utf8' }).stdout;
    for (const mask of ['000001fffeffffff', '000001fffeffdfff', '0000000000002000', '0000000000000000']) {
      expect(hasNetRaw(status(mask)), mask).toBe(decode(mask).includes('cap_net_raw'));
    }
    expect(hasNetRaw(join(dir, 'no-such-status'))).toBeNull();
  });
});
