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

  it('finds the same entry as testing every pattern in order, for names made from the patterns', () => {
    // the model: each pattern as the documented regex (`*` is one or more characters), tried in the
    // catalogue's order (user entries, then more literal characters first, file order between equals)
    const user = [
      { pattern: 'device-metrics-us.amazon.com', service: 'other', source: 'mine' },
      { pattern: '*.amazon.com', service: 'media', source: 'mine' },
      { pattern: 'tv-*.myhome.example', service: 'media', source: 'mine' },
    ];
    const c = buildCatalog(user);
    const weight = (p: string) => p.replace(/\*/g, '').length;
    const ordered = [...c.entries.slice(0, user.length), ...c.entries.slice(user.length).sort((a, b) => weight(b.pattern) - weight(a.pattern))];
    const model = ordered.map((e) => ({ e, re: new RegExp(`^${e.pattern.toLowerCase().split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.+')}$`) }));
    const expected = (name: string) => model.find((m) => m.re.test(name))?.e ?? null;
    const names = new Set<string>(['', '.', '..', 'com', '.com', 'amazon.com', '.amazon.com', 'x..amazon.com', 'a\n.amazon.com', '\n.amazon.com', 'avs-alexa-\n.amazon.com', '*.amazon.com']);
    for (const { pattern } of c.entries) {
      for (const fill of ['x', 'x.y', '', '-', '*', 'a\nb', '\u2028', 'avs-alexa-1']) {
        const name = pattern.toLowerCase().replaceAll('*', fill);
        for (const n of [name, `z${name}`, `z.${name}`, `${name}.evil.example`, name.slice(name.indexOf('.') + 1), name.slice(0, -1)]) names.add(n);
      }
    }
    expect(names.size).toBeGreaterThan(1000);
    let matched = 0;
    for (const name of names) {
      const want = expected(name);
      if (want !== null) matched++;
      expect(c.lookup(name), JSON.stringify(name)).toBe(want);
    }
    // both kinds of answer were asked for
    expect(matched).toBeGreaterThan(500);
    expect(names.size - matched).toBeGreaterThan(500);
  });
});
