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
import { checkLiveCapture, filterProblem, hasNetRaw, interfaceLinkType, interfaceList } from './interfaces.js';
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

  it('an interface whose link type is not known for certain is not judged', () => {
    const sysfs = join(dir, 'sys');
    mkdirSync(join(sysfs, 'tun0'), { recursive: true });
    writeFileSync(join(sysfs, 'tun0', 'type'), '65534\n');
    mkdirSync(join(sysfs, 'lo'), { recursive: true });
    writeFileSync(join(sysfs, 'lo', 'type'), '772\n');
    expect(interfaceLinkType('tun0', sysfs)).toBeNull();
    expect(interfaceLinkType('lo', sysfs)).toBe(LinkType.ETHERNET);
    expect(interfaceLinkType('any', sysfs)).toBe(LinkType.LINUX_SLL);
    expect(interfaceLinkType('../etc', sysfs)).toBeNull();
    // the libpcap source's check (the tcpdump source asks tcpdump, which opens the real interface)
    const procStatus = join(dir, 'status-with-net-raw');
    writeFileSync(procStatus, 'CapEff:\t0000000000002000\n');
    expect(() => checkLiveCapture('libpcap', 'tun0', { sysfs, procStatus }, 'port port port')).not.toThrow();
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
