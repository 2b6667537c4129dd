import { describe, expect, it } from 'vitest';
import type { FindingNotice, NewEndpointNotice } from '../events.js';
import { noticeKey, renderNotice } from './presets.js';

const device = { mac: '50:f5:da:23:43:df', name: 'Kitchen\u0007 Echo', vendor: 'amazon', model: null, assistant: true };
// a name from DNS or SNI: anyone on the LAN (or the internet) chooses it
const hostile = 'evil <@everyone> https://x.example/a\u001b[31m';
const newOrg: NewEndpointNotice = {
  kind: 'new-endpoint', what: 'new-organisation', subject: hostile, organisation: null, service: 'other', endpoint: hostile, device,
  seenMs: Date.UTC(2026, 0, 5, 10, 0, 0), atMs: Date.UTC(2026, 0, 5, 10, 0, 1),
};
const finding: FindingNotice = {
  kind: 'finding', device,
  finding: { id: 'dns-bypass-50f5da2343df-1a2b', kind: 'dns-bypass', severity: 'medium', subject: '8.8.8.8', title: 'DNS to a public resolver', evidence: ['queries to 8.8.8.8:53'], advice: 'Point it at the home resolver.', firstSeen: '2026-01-05T10:00:00.000Z', lastSeen: '2026-01-05T10:05:00.000Z', count: 3 },
  seenMs: Date.UTC(2026, 0, 5, 10, 0, 0), atMs: Date.UTC(2026, 0, 5, 10, 0, 1),
};

describe('notices as webhooks', () => {
  it('json: the earshot.notice/1 document, with the notice or the finding', () => {
    const doc = JSON.parse(renderNotice('json', newOrg, 'UTC').body) as Record<string, unknown>;
    expect(doc).toMatchObject({ schema: 'earshot.notice/1', event: 'notice.new-endpoint', id: noticeKey(newOrg), device: { mac: device.mac } });
    expect(doc.notice).toEqual({ what: 'new-organisation', subject: hostile, organisation: null, service: 'other', endpoint: hostile, seen: '2026-01-05T10:00:00.000Z' });
    const f = JSON.parse(renderNotice('homeassistant', finding, 'UTC').body) as Record<string, unknown>;
    expect(f).toMatchObject({ event: 'notice.finding', id: 'finding.dns-bypass-50f5da2343df-1a2b.medium', finding: { kind: 'dns-bypass', severity: 'medium' } });
  });

  it('chat presets: names from packets mention nobody, link nowhere and carry no control characters', () => {
    for (const preset of ['ntfy', 'slack', 'discord'] as const) {
      const r = renderNotice(preset, newOrg, 'Europe/Berlin');
      const all = `${JSON.stringify(r.headers)} ${r.body}`;
      expect(all, preset).not.toMatch(/@everyone|https:\/\/x\.example/);
      // raw, or escaped inside a JSON string
      for (const c of ['\u001b', '\u0007', '\\u001b', '\\u0007']) expect(all.includes(c), `${preset} ${JSON.stringify(c)}`).toBe(false);
      expect(all, preset).toContain('11:00:00'); // local time in the zone asked for
    }
    expect(JSON.parse(renderNotice('discord', newOrg, 'UTC').body).allowed_mentions).toEqual({ parse: [] });
    // ntfy's title is a header: plain ASCII or an encoded word
    expect(renderNotice('ntfy', newOrg, 'UTC').headers.Title).toMatch(/^[\x20-\x7e]*$/);
    expect(renderNotice('ntfy', finding, 'UTC').headers.Tags).toBe('shield,earshot');
  });

  it('keys: one per device and new thing; a finding again when its severity rises', () => {
    expect(noticeKey(newOrg)).toMatch(/^new-endpoint\.50:f5:da:23:43:df\.new-organisation\.[0-9a-f]{16}$/);
    expect(noticeKey({ ...newOrg, atMs: newOrg.atMs + 5000 })).toBe(noticeKey(newOrg));
    expect(noticeKey({ ...newOrg, subject: 'Spotify' })).not.toBe(noticeKey(newOrg));
    expect(noticeKey({ ...finding, finding: { ...finding.finding, severity: 'high' } })).not.toBe(noticeKey(finding));
  });
});
