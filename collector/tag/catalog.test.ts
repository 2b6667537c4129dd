import { describe, expect, it } from 'vitest';
import { isEarshotError } from '../errors.js';
import { buildCatalog, loadCatalogFiles, SERVICES } from './catalog.js';

describe('endpoint catalogue', () => {
  const catalog = buildCatalog();

  it('classifies the endpoints FACTS.md lists', () => {
    const cases: Array<[string, string | null, string]> = [
      ['avs-alexa-4-na.amazon.com', 'amazon', 'voice'],
      ['avs-alexa-14-eu.amazon.com', 'amazon', 'voice'],
      ['bob-dispatch-prod-eu.amazon.com', 'amazon', 'voice'],
      ['alexa.na.gateway.devices.a2z.com', 'amazon', 'voice'],
      ['device-metrics-us.amazon.com', 'amazon', 'telemetry'],
      ['api.amazonalexa.com', 'amazon', 'api'],
      ['softwareupdates.amazon.com', 'amazon', 'update'],
      ['fireoscaptiveportal.com', 'amazon', 'connectivity-check'],
      ['ntp-g7g.amazon.com', 'amazon', 'time'],
      ['GUZZONI.apple.com', 'apple', 'voice'],
      ['mesu.apple.com', 'apple', 'update'],
      ['courier.push.apple.com', 'apple', 'push'],
      ['connectivitycheck.gstatic.com', 'google', 'connectivity-check'],
      ['mtalk.google.com', 'google', 'push'],
      ['www.google.com', 'google', 'voice'],
      ['2.android.pool.ntp.org', null, 'time'],
      ['www.amazon.com', 'amazon', 'other'],
    ];
    for (const [name, vendor, service] of cases) expect(catalog.lookup(name), name).toMatchObject({ vendor, service });
    expect(catalog.lookup('www.example.invalid')).toBeNull();
    expect(catalog.lookup('amazon.com.evil.example')).toBeNull();
  });

  it('every shipped entry has a known service and a source; files are dated', () => {
    const { entries, files } = loadCatalogFiles();
    expect(entries.length).toBeGreaterThan(50);
    for (const e of entries) {
      expect(SERVICES).toContain(e.service);
      expect(e.source.length, e.pattern).toBeGreaterThan(3);
    }
    for (const f of files) expect(f.updated).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('user entries win and are validated', () => {
    const c = buildCatalog([{ pattern: 'device-metrics-us.amazon.com', service: 'other', source: 'mine' }, { pattern: '*.myhome.example', service: 'media', vendor: null }]);
    expect(c.lookup('device-metrics-us.amazon.com')).toMatchObject({ service: 'other', origin: 'config' });
    expect(c.lookup('tv.myhome.example')).toMatchObject({ service: 'media' });
    try {
      buildCatalog([{ pattern: 'x.example', service: 'spying' }]);
      throw new Error('expected an error');
    } catch (err) {
      expect(isEarshotError(err)).toBe(true);
      expect((err as Error).message).toMatch(/^catalog\[0\]: service must be one of voice, /);
    }
  });
});
