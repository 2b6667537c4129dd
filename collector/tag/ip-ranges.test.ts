/**
 * buildVendorRanges: the voice addresses of FACTS.md and the captures, Apple's and Google's blocks,
 * addresses of nobody; most-specific-prefix lookups over nested prefixes checked against a naive scan
 * (fast-check); the snapshot files' provenance and canonical form; and update-ranges.mjs's conversion
 * of the upstream formats (service filter, sorting, duplicates, host bits).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEarshotError } from '../errors.js';
import { parseAddr } from '../flow/local-nets.js';
import { buildVendorRanges, RANGE_VENDORS } from './ip-ranges.js';
// @ts-expect-error a plain .mjs script without type declarations
import * as updater from './data/update-ranges.mjs';

interface Snapshot { vendor: string; label: string; source: Record<string, string>; ipv4: string[]; ipv6: string[] }
const update = updater as {
  amazonSnapshot(upstream: unknown, from: string): Snapshot;
  googleSnapshot(upstream: unknown, from: string): Snapshot;
  sortPrefixes(prefixes: string[]): string[];
  parsePrefix(text: string): unknown;
};

const DATA_DIR = fileURLToPath(new URL('./data/', import.meta.url));
const ranges = buildVendorRanges();

function find(address: string) {
  const parsed = parseAddr(address);
  if (!parsed) throw new Error(`bad test address ${address}`);
  return ranges.lookup(parsed.version, parsed.words);
}
const vendorOf = (address: string) => find(address)?.vendor ?? null;

describe('buildVendorRanges on the bundled snapshots', () => {
  it('tags the Echo voice servers of FACTS.md and the captures as amazon', () => {
    // Dubois Echo Dot 3 AVS; Xray Echo AVS (two runs); Echo Dot 2 pindorama; api.amazonalexa.com;
    // device-metrics-us.amazon.com
    for (const address of ['52.94.233.109', '52.95.112.20', '52.94.219.213', '205.251.242.52', '54.239.29.151', '72.21.207.109']) {
      expect(vendorOf(address), address).toBe('amazon');
    }
    expect(find('52.94.233.109')).toEqual({ vendor: 'amazon', prefix: '52.94.224.0/20', source: 'amazon ip-ranges.json 2017-07-20' });
  });

  it('tags 17/8 as apple and Google\'s blocks as google, IPv4 and IPv6', () => {
    expect(find('17.253.144.10')).toMatchObject({ vendor: 'apple', prefix: '17.0.0.0/8' });
    for (const address of ['8.8.8.8', '142.250.74.100', '216.58.192.1', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e']) {
      expect(vendorOf(address), address).toBe('google');
    }
    expect(vendorOf('2620:149:a44::1')).toBe('apple');
    expect(vendorOf('2600:9000:2000::1')).toBe('amazon'); // CloudFront, in AMAZON's 2600:9000::/28
  });

  it('tags nothing for private, other companies\' and edge addresses', () => {
    for (const address of ['192.168.1.1', '1.1.1.1', '10.0.0.1', '0.0.0.0', '255.255.255.255', '16.255.255.255', '18.0.0.0',
      '2001:db8::1', '::', 'fe80::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']) {
      expect(vendorOf(address), address).toBeNull();
    }
    expect(ranges.lookup(0, [0, 0, 0, 0])).toBeNull();
  });

  it('knows the first and last address of a prefix', () => {
    expect(vendorOf('17.0.0.0')).toBe('apple');
    expect(vendorOf('17.255.255.255')).toBe('apple');
    expect(vendorOf('52.94.239.255')).toBe('amazon');
    expect(vendorOf('2620:149:a44:ffff:ffff:ffff:ffff:ffff')).toBe('apple');
    expect(vendorOf('2620:149:a45::')).toBeNull();
  });

  it('describes each snapshot with its upstream date', () => {
    expect(ranges.snapshots.map((s) => s.vendor)).toEqual(['amazon', 'apple', 'google']);
    expect(ranges.snapshots[0]).toMatchObject({ url: 'https://ip-ranges.amazonaws.com/ip-ranges.json', createDate: '2017-07-20-22-42-233' });
    expect(ranges.snapshots[2]).toMatchObject({ url: 'https://www.gstatic.com/ipranges/goog.json' });
    for (const s of ranges.snapshots) expect(s.ipv4Prefixes, s.vendor).toBeGreaterThan(0);
  });
});

describe('the snapshot files', () => {
  for (const vendor of RANGE_VENDORS) {
    it(`${vendor}: says where it came from and lists valid, sorted, distinct prefixes`, () => {
      const snapshot = JSON.parse(readFileSync(join(DATA_DIR, `${vendor}-ip-ranges.json`), 'utf8')) as Snapshot;
      expect(snapshot.vendor).toBe(vendor);
      expect(snapshot.source.url).toMatch(/^https:\/\//);
      expect(snapshot.source.retrievedFrom.length).toBeGreaterThan(10);
      expect(snapshot.source.createDate).not.toBe('');
      expect(update.sortPrefixes(snapshot.ipv4)).toEqual(snapshot.ipv4);
      expect(update.sortPrefixes(snapshot.ipv6)).toEqual(snapshot.ipv6);
    });
  }
});

describe('most specific prefix wins (synthetic snapshots)', () => {
  it('handles nesting across vendors and prefixes listed twice', () => {
    const dir = writeSnapshots({
      amazon: { ipv4: ['10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.2.0/24'], ipv6: ['2001:db8::/32'] },
      apple: { ipv4: ['10.1.2.128/25', '10.0.0.0/8'], ipv6: ['2001:db8:1::/48'] },
      google: { ipv4: ['10.2.0.0/16', '11.0.0.0/8'], ipv6: [] },
    });
    try {
      const r = buildVendorRanges({ dataDir: dir });
      const at = (address: string) => { const p = parseAddr(address); return p ? r.lookup(p.version, p.words) : null; };
      expect(at('10.0.0.1')).toMatchObject({ vendor: 'amazon', prefix: '10.0.0.0/8' }); // amazon listed it first
      expect(at('10.1.3.1')).toMatchObject({ vendor: 'amazon', prefix: '10.1.0.0/16' });
      expect(at('10.1.2.1')).toMatchObject({ vendor: 'amazon', prefix: '10.1.2.0/24' });
      expect(at('10.1.2.200')).toMatchObject({ vendor: 'apple', prefix: '10.1.2.128/25' });
      expect(at('10.2.255.255')).toMatchObject({ vendor: 'google', prefix: '10.2.0.0/16' });
      expect(at('10.3.0.0')).toMatchObject({ vendor: 'amazon', prefix: '10.0.0.0/8' });
      expect(at('11.255.255.255')).toMatchObject({ vendor: 'google' });
      expect(at('12.0.0.0')).toBeNull();
      expect(at('2001:db8:1::5')).toMatchObject({ vendor: 'apple' });
      expect(at('2001:db8:2::5')).toMatchObject({ vendor: 'amazon' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('agrees with a naive longest-prefix scan on random prefix sets (fast-check)', () => {
    const prefix = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 32 }))
      .map(([address, bits]) => {
        const start = bits === 32 ? address >>> 0 : (address & ~(0xffffffff >>> bits)) >>> 0;
        return `${start >>> 24}.${(start >>> 16) & 255}.${(start >>> 8) & 255}.${start & 255}/${bits}`;
      });
    fc.assert(fc.property(fc.array(prefix, { maxLength: 30 }), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 20 }), (prefixes, probes) => {
      const dir = writeSnapshots({ amazon: { ipv4: prefixes, ipv6: [] } }, ['amazon']);
      try {
        const r = buildVendorRanges({ dataDir: dir, vendors: ['amazon'] });
        // probe the prefixes' edges too, where off-by-one mistakes live
        const edges = prefixes.flatMap((p) => {
          const [a, b] = p.split('/');
          const start = parseAddr(a)?.words[3] ?? 0;
          const size = 2 ** (32 - Number(b));
          return [start, start + size - 1, start - 1, start + size].filter((x) => x >= 0 && x <= 0xffffffff);
        });
        for (const address of [...probes, ...edges]) {
          let best: string | null = null;
          let bestBits = -1;
          for (const p of prefixes) {
            const [a, b] = p.split('/');
            const bits = Number(b);
            const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
            if (((address & mask) >>> 0) === parseAddr(a)?.words[3] && bits > bestBits) { best = p; bestBits = bits; }
          }
          expect(r.lookup(4, [0, 0, 0, address])?.prefix ?? null).toBe(best);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }), { numRuns: 200 });
  });

  it('rejects damaged snapshots with a coded error', () => {
    for (const ipv4 of [['10.0.0.1/8'], ['10.0.0.0/33'], ['fd00::/8'], ['banana']]) {
      const dir = writeSnapshots({ amazon: { ipv4, ipv6: [] } }, ['amazon']);
      try {
        let caught: unknown;
        try { buildVendorRanges({ dataDir: dir, vendors: ['amazon'] }); } catch (err) { caught = err; }
        expect(isEarshotError(caught) && caught.code === 'EARSHOT_ERR_FILE_UNREADABLE', ipv4[0]).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    let caught: unknown;
    try { buildVendorRanges({ dataDir: join(tmpdir(), 'earshot-no-such-dir') }); } catch (err) { caught = err; }
    expect(isEarshotError(caught)).toBe(true);
  });
});

describe('update-ranges.mjs', () => {
  it('keeps Amazon\'s AMAZON service only, sorted and without duplicates, with the upstream date', () => {
    const snapshot = update.amazonSnapshot({
      syncToken: '1', createDate: '2019-01-02-03-04-05',
      prefixes: [
        { ip_prefix: '52.95.112.0/20', region: 'eu-west-1', service: 'AMAZON' },
        { ip_prefix: '52.94.224.0/20', region: 'us-east-1', service: 'AMAZON' },
        { ip_prefix: '52.94.224.0/20', region: 'us-east-1', service: 'AMAZON' },
        { ip_prefix: '52.94.224.0/20', region: 'us-east-1', service: 'EC2' },
        { ip_prefix: '13.32.0.0/15', region: 'GLOBAL', service: 'CLOUDFRONT' },
      ],
      ipv6_prefixes: [
        { ipv6_prefix: '2600:9000::/28', region: 'GLOBAL', service: 'AMAZON' },
        { ipv6_prefix: '2600:1f00::/24', region: 'GLOBAL', service: 'AMAZON' },
        { ipv6_prefix: '2400:6500::/32', region: 'x', service: 'S3' },
      ],
    }, 'test');
    expect(snapshot).toMatchObject({
      vendor: 'amazon', label: 'amazon ip-ranges.json 2019-01-02',
      source: { url: 'https://ip-ranges.amazonaws.com/ip-ranges.json', createDate: '2019-01-02-03-04-05', syncToken: '1', retrievedFrom: 'test' },
      ipv4: ['52.94.224.0/20', '52.95.112.0/20'],
      ipv6: ['2600:1f00::/24', '2600:9000::/28'],
    });
  });

  it('keeps all of goog.json', () => {
    const snapshot = update.googleSnapshot({
      syncToken: '2', creationTime: '2020-05-06T07:08:09',
      prefixes: [{ ipv4Prefix: '8.8.8.0/24' }, { ipv6Prefix: '2001:4860::/32' }, { ipv4Prefix: '8.8.4.0/24' }],
    }, 'test');
    expect(snapshot).toMatchObject({ vendor: 'google', label: 'google goog.json 2020-05-06', ipv4: ['8.8.4.0/24', '8.8.8.0/24'], ipv6: ['2001:4860::/32'] });
  });

  it('refuses prefixes with host bits set and files of the wrong kind', () => {
    expect(() => update.parsePrefix('8.8.8.1/24')).toThrow(/host bits/);
    expect(() => update.parsePrefix('2001:db8::1/32')).toThrow(/host bits/);
    expect(() => update.parsePrefix('1:2:3/32')).toThrow();
    expect(() => update.amazonSnapshot({ prefixes: [] }, 'x')).toThrow(/AMAZON/);
    expect(() => update.googleSnapshot({ prefixes: [] }, 'x')).toThrow(/goog\.json/);
  });
});

/** Writes VENDOR-ip-ranges.json files into a new temporary directory. */
function writeSnapshots(lists: Partial<Record<string, { ipv4: string[]; ipv6: string[] }>>, vendors = ['amazon', 'apple', 'google']): string {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-ranges-'));
  for (const vendor of vendors) {
    const { ipv4, ipv6 } = lists[vendor] ?? { ipv4: [], ipv6: [] };
    writeFileSync(join(dir, `${vendor}-ip-ranges.json`), JSON.stringify({ vendor, label: `${vendor} test`, source: { url: 'https://example.invalid/' }, ipv4, ipv6 }));
  }
  return dir;
}
