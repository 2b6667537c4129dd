import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/temp.js';
import { HOSTILE_NAMES } from '../../test/helpers/hostile-names.js';
import { isEarshotError } from '../errors.js';
import { packagePath } from '../paths.js';
import { buildCatalog, loadCatalogFiles } from '../tag/catalog.js';
import type { VendorRanges } from '../tag/ip-ranges.js';
import { buildOrgLookup, loadOrganisationData, partyOf, registrableDomain } from './orgs.js';

const DATA = packagePath('collector', 'privacy', 'data');

describe('organisation lookup', () => {
  it('by name: the most specific entry of the curated table, under the registrable domain', () => {
    const orgs = buildOrgLookup();
    expect(orgs.lookup('avs-alexa-4-na.amazon.com', '52.94.233.109')).toEqual({ name: 'Amazon', key: 'amazon', category: 'assistant-vendor', domain: 'amazon.com', source: 'domains' });
    expect(orgs.lookup('D3P8ZR0FFA9T17.cloudfront.net.', '99.84.240.39')).toMatchObject({ key: 'amazon', category: 'cdn', domain: 'cloudfront.net' });
    // a full-name entry wins over its registrable domain: Siri's CNAME is Apple's, other akadns.net is Akamai's
    expect(orgs.lookup('origin.guzzoni-apple.com.akadns.net', '17.1.2.3')).toMatchObject({ key: 'apple', domain: 'akadns.net' });
    expect(orgs.lookup('a1896.g.akadns.net', null)).toMatchObject({ key: 'akamai', category: 'cdn' });
    // public suffix list: amazon.co.uk, not co.uk
    expect(orgs.lookup('www.amazon.co.uk', null)).toMatchObject({ key: 'amazon', domain: 'amazon.co.uk' });
    expect(orgs.lookup('2.android.pool.ntp.org', null)).toMatchObject({ key: 'ntp-pool', category: 'connectivity', domain: 'ntp.org' });
    expect(orgs.lookup('fireoscaptiveportal.com', null)).toMatchObject({ key: 'amazon', category: 'connectivity' });
    expect(orgs.lookup('amazon.com.evil.example', null)).toBeNull();
    expect(registrableDomain('foo.s3.amazonaws.com')).toBe('amazonaws.com');
  });

  it('by the catalogue when the table lacks the name (here a user entry)', () => {
    const orgs = buildOrgLookup({ catalog: buildCatalog([{ pattern: '*.skill.example', service: 'api', vendor: 'sonos' }]) });
    expect(orgs.lookup('a.skill.example', null)).toEqual({ name: 'Sonos', key: 'sonos', category: 'assistant-vendor', domain: 'skill.example', source: 'catalogue' });
    expect(orgs.stats.byCatalogue).toBe(1);
  });

  it('by address: the vendor ranges, then the ASN table; an unknown name is hosted by the network', () => {
    const orgs = buildOrgLookup();
    expect(orgs.lookup(null, '52.94.233.109')).toMatchObject({ key: 'amazon', category: 'assistant-vendor', domain: null, source: 'ip-ranges' });
    expect(orgs.lookup(null, '2620:149:a44::1')).toMatchObject({ key: 'apple', source: 'ip-ranges' });
    // AS20940 (Akamai International) and AS13335 (Cloudflare), both not in any vendor snapshot
    expect(orgs.lookup(null, '92.122.192.168')).toMatchObject({ key: 'akamai', source: 'asn' });
    expect(orgs.lookup(null, '1.1.1.1')).toMatchObject({ key: 'cloudflare', source: 'asn' });
    expect(orgs.lookup(null, '2606:4700:4700::1111')).toMatchObject({ key: 'cloudflare', source: 'asn' });
    // AS14618 (AMAZON-AES) is EC2: cloud
    expect(orgs.lookup(null, '100.24.249.116')).toMatchObject({ key: 'amazon', category: 'cloud', source: 'asn' });
    // a skill's own name on AWS: Amazon hosts it, the name stays the skill's
    expect(orgs.lookup('api.some-skill.example', '100.24.249.116')).toEqual({ name: 'Amazon', key: 'amazon', category: 'cloud', domain: 'some-skill.example', source: 'asn' });
    // server names that are not names: an ip-range label (the report's serverName for unnamed flows), an IP literal
    expect(orgs.lookup('amazon 52.94.0.0/16', '52.94.233.109')).toMatchObject({ domain: null, source: 'ip-ranges' });
    expect(orgs.lookup('192.168.1.70', '192.168.1.70')).toBeNull();
    expect(orgs.lookup(null, '10.0.0.1')).toBeNull();
    expect(orgs.lookup(null, 'not an address')).toBeNull();
    expect(orgs.stats).toMatchObject({ byIpRanges: 3, byAsn: 5, unnamed: 3 });
  });

  it('the ASN table loads on the first address lookup only, and quickly', () => {
    const orgs = buildOrgLookup();
    orgs.lookup('www.google.com', null);
    expect(orgs.stats.asnLoaded).toBe(false);
    orgs.lookup(null, '1.1.1.1');
    expect(orgs.stats).toMatchObject({ asnLoaded: true, byAsn: 1 });
    expect(orgs.stats.asnRanges).toBeGreaterThan(10_000);
    console.log(`ASN table: ${orgs.stats.asnRanges} ranges loaded in ${orgs.stats.asnLoadMs} ms`);
    expect(orgs.stats.asnLoadMs).toBeLessThan(1000);
  });

  it('the cache of names from packets is bounded, and counts what it drops', () => {
    const orgs = buildOrgLookup({ maxCachedNames: 100 });
    for (let i = 0; i < 1000; i++) orgs.lookup(`host${i}.tracker${i}.example`, null);
    for (const hostile of HOSTILE_NAMES) expect(orgs.lookup(hostile, null)).toBeNull();
    expect(orgs.stats.cachedNames).toBe(100);
    expect(orgs.stats.cacheEvicted).toBe(900);
    // still right after evictions
    expect(orgs.lookup('api.amazonalexa.com', null)).toMatchObject({ key: 'amazon' });
  });

  it('first or third party to an assistant vendor', () => {
    const orgs = buildOrgLookup();
    const amazon = orgs.lookup('api.amazonalexa.com', null)!;
    const audible = orgs.lookup('www.audible.com', null)!;
    const akamai = orgs.lookup('a1896.g.akamai.net', null)!;
    expect(partyOf(amazon, 'amazon')).toBe('first');
    expect(partyOf(amazon, 'google')).toBe('third');
    expect(partyOf(audible, 'amazon')).toBe('first');
    expect(partyOf(akamai, 'amazon')).toBe('third');
    expect(partyOf(amazon, null)).toBe('third');
  });
});

describe('organisation data', () => {
  it('every entry has a source; every catalogue endpoint of a vendor names that vendor (or the CDN that serves it)', () => {
    const data = loadOrganisationData();
    expect(data.domains.length).toBeGreaterThan(100);
    const orgs = buildOrgLookup();
    const servedByCdn = new Set(['amzdigital-a.akamaihd.net']);
    for (const entry of loadCatalogFiles().entries) {
      if (entry.vendor === null || entry.pattern.includes('*')) continue;
      const org = orgs.lookup(entry.pattern, null);
      expect(org?.key, entry.pattern).toBe(servedByCdn.has(entry.pattern) ? 'akamai' : entry.vendor);
    }
  });

  it('the binary ASN table answers as its source: every range of asn-ranges.json, both bounds and one beyond', () => {
    // asn-ranges.json is the refresh's reviewable output (cut from @ip-location-db/asn); the loader reads the .bin
    const source = JSON.parse(readFileSync(join(DATA, 'asn-ranges.json'), 'utf8')) as { asns: Record<string, { ipv4: number[]; ipv6: string[] }> };
    const data = loadOrganisationData();
    const rows = new Map(data.asns.map((row) => [String(row.asn), row]));
    const noVendorRanges: VendorRanges = { lookup: () => null, snapshots: [] };
    const orgs = buildOrgLookup({ ranges: noVendorRanges });
    const v6Text = (hex: string) => hex.match(/.{4}/g)!.join(':');
    const v4Text = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
    const bounds: Array<[string, string]> = [];
    const starts = new Set<string>();
    for (const [asn, ranges] of Object.entries(source.asns)) {
      for (let i = 0; i < ranges.ipv4.length; i += 2) {
        bounds.push([v4Text(ranges.ipv4[i]), asn], [v4Text(ranges.ipv4[i + 1]), asn]);
        starts.add(v4Text(ranges.ipv4[i]));
      }
      for (let i = 0; i < ranges.ipv6.length; i += 2) bounds.push([v6Text(ranges.ipv6[i]), asn], [v6Text(ranges.ipv6[i + 1]), asn]);
    }
    expect(bounds.length).toBeGreaterThan(30_000);
    for (const [ip, asn] of bounds) {
      const row = rows.get(asn)!;
      const org = orgs.lookup(null, ip);
      expect(org && { key: org.key, category: org.category, source: org.source }, `${ip} (AS${asn})`)
        .toEqual({ key: row.org, category: row.category ?? data.organisations[row.org].category, source: 'asn' });
    }
    // the address after an IPv4 range's end is named only when another range starts there
    for (const [asn, ranges] of Object.entries(source.asns)) {
      for (let i = 1; i < ranges.ipv4.length; i += 2) {
        const next = ranges.ipv4[i] + 1;
        if (next > 0xffffffff || starts.has(v4Text(next))) continue;
        const inAnother = Object.entries(source.asns).some(([other, r]) => other !== asn && r.ipv4.some((_, j) => j % 2 === 0 && r.ipv4[j] <= next && next <= r.ipv4[j + 1]));
        if (!inAnother) expect(orgs.lookup(null, v4Text(next)), `${v4Text(next)} after AS${asn}`).toBeNull();
      }
    }
    expect(orgs.stats.asnRanges).toBe(bounds.length / 2);
  });

  it('a truncated binary ASN table is one clear error naming the file', () => {
    const dir = tempDir('earshot-orgs-');
    copyFileSync(join(DATA, 'organisations.json'), join(dir, 'organisations.json'));
    writeFileSync(join(dir, 'asn-ranges.bin'), readFileSync(join(DATA, 'asn-ranges.bin')).subarray(0, 1000));
    const orgs = buildOrgLookup({ dataDir: dir });
    expect(() => orgs.lookup(null, '52.94.233.109')).toThrow(/asn-ranges\.bin: cannot read: 1000 bytes where the header announces/);
  });

  it('a damaged data file is one clear error naming the file', () => {
    const dir = tempDir('earshot-orgs-');
    copyFileSync(join(DATA, 'asn-ranges.bin'), join(dir, 'asn-ranges.bin'));
    const data = JSON.parse(readFileSync(join(DATA, 'organisations.json'), 'utf8')) as { domains: Array<{ org: string }> };
    data.domains[0].org = 'nobody';
    writeFileSync(join(dir, 'organisations.json'), JSON.stringify(data));
    try {
      buildOrgLookup({ dataDir: dir });
      throw new Error('expected an error');
    } catch (err) {
      expect(isEarshotError(err)).toBe(true);
      expect((err as Error).message).toMatch(/organisations\.json: cannot read: domains\[0\] \(amazon\.com\) names an unknown organisation nobody/);
    }
  });
});
