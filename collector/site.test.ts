import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { loadConfig } from './config.js';
import { isSiteName, siteFromHost } from './site.js';

describe('site', () => {
  it('is the host name made a site name, with the machine id added to generic ones', () => {
    expect(siteFromHost('Kitchen-Pi', null)).toBe('kitchen-pi');
    expect(siteFromHost('flat.home.lan', null)).toBe('flat');
    expect(siteFromHost('My Pi (2)', null)).toBe('my-pi-2');
    expect(siteFromHost('raspberrypi', 'a1b2c3d4e5f60718293a4b5c6d7e8f90\n')).toBe('raspberrypi-a1b2c3');
    expect(siteFromHost('raspberrypi', null)).toBe('raspberrypi');
    expect(siteFromHost('---', null)).toBe('earshot');
    expect(siteFromHost('x'.repeat(80), null)).toHaveLength(63);
    for (const host of ['Kitchen-Pi', 'a.b', '_x_', 'ÄÖÜ', '', 'x'.repeat(80)]) expect(isSiteName(siteFromHost(host, null))).toBe(true);
  });

  it('defaults to this machine\'s host name; a bad one is one line naming the flag', () => {
    const site = loadConfig().site;
    expect(isSiteName(site)).toBe(true);
    expect(site.startsWith(hostname().split('.')[0].toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^[-_]+/, '').slice(0, 6))).toBe(true);
    expect(loadConfig({ flags: { site: 'flat-2' } }).site).toBe('flat-2');
    for (const bad of ['Flat', 'a/b', 'a+b', 'a#', '-x', 'x'.repeat(64), 'a b']) {
      expect(() => loadConfig({ flags: { site: bad } })).toThrow(/--site/);
    }
  });
});
