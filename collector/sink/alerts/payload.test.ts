/**
 * Alerts as pure data: the idempotency keys, the earshot.alert/1 document, each preset's shape within
 * its receiver's limits (Discord content <= 2000, ntfy headers as bytes), the signature's format, and
 * the back-off and Retry-After arithmetic. The same requests are checked against real receivers in
 * webhook.test.ts.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Activation } from '../../detect/detector.js';
import { activationEvent, type ActivationEvent, type EventDevice } from '../events.js';
import { backoffMs, retryAfterMs } from './deliver.js';
import { ALERT_SCHEMA, alertDocument, alertKey, clip, makeAlert } from './payload.js';
import { DISCORD_CONTENT_MAX, ntfyHeaderValue, renderAlert, signature } from './presets.js';

const START = Date.parse('2024-05-01T03:12:04.000Z');
const ECHO: EventDevice = { mac: 'f0:27:2d:8a:1b:2c', name: 'Kitchen Echo', vendor: 'Amazon', model: 'Echo Dot (3rd Gen)', assistant: true };

/** A finished Echo activation as the detector and verdict stages leave it. */
function event(kind: ActivationEvent['kind'] = 'finished', verdict: Activation['verdict'] = 'suspected', device: EventDevice = ECHO): ActivationEvent {
  const a = new Activation(0xf0272d8a1b2c, START);
  a.endMs = START + 6200;
  a.bytesUp = 48_310;
  a.bytesDown = 9120;
  a.server = '52.94.233.129';
  a.serverName = 'avs-alexa-4-na.amazon.com';
  a.score = 0.93;
  a.verdict = verdict;
  a.reasons = verdict === 'suspected' ? ['sustained-upload', 'no-wake-event', 'quiet-hours'] : ['sustained-upload', 'wake-event:mqtt'];
  return activationEvent(kind, a, () => device, START + 12_250);
}

describe('alert payload', () => {
  it('keys an alert by activation and event, a verdict change also by its verdict and time (a change back is a new alert)', () => {
    const e = event();
    expect(alertKey('activation.suspected', e.activation, e.atMs)).toBe('f0272d8a1b2c-1714533124000.activation.suspected');
    expect(alertKey('activation.finished', e.activation, e.atMs)).toBe('f0272d8a1b2c-1714533124000.activation.finished');
    const changed = event('verdict-changed', 'confirmed');
    expect(alertKey('activation.verdict-changed', changed.activation, changed.atMs)).toBe(`f0272d8a1b2c-1714533124000.activation.verdict-changed.confirmed.${changed.atMs}`);
    // suspected -> confirmed -> suspected: the second change to suspected is not the first one again
    const first = makeAlert('activation.verdict-changed', { ...event('verdict-changed', 'suspected'), atMs: 1_714_533_200_000 });
    const back = makeAlert('activation.verdict-changed', { ...event('verdict-changed', 'suspected'), atMs: 1_714_533_260_000 });
    expect(back.key).not.toBe(first.key);
  });

  it('documents the activation, the device and the event time (earshot.alert/1)', () => {
    const doc = alertDocument(makeAlert('activation.suspected', event(), 'flat-2'), 'Europe/Berlin');
    expect(doc).toEqual({
      schema: ALERT_SCHEMA,
      site: 'flat-2',
      event: 'activation.suspected',
      id: 'f0272d8a1b2c-1714533124000.activation.suspected',
      time: '2024-05-01T03:12:16.250Z',
      title: 'Suspected false activation: Kitchen Echo',
      text: 'Kitchen Echo uploaded audio to avs-alexa-4-na.amazon.com at 2024-05-01 05:12:04 Europe/Berlin for 6.2 s (48.3 kB up). Verdict: suspected (sustained-upload, no-wake-event, quiet-hours).',
      device: ECHO,
      activation: {
        id: 'f0272d8a1b2c-1714533124000', device: 'f0:27:2d:8a:1b:2c', start: '2024-05-01T03:12:04.000Z', end: '2024-05-01T03:12:10.200Z',
        bytesUp: 48_310, bytesDown: 9120, server: '52.94.233.129', serverName: 'avs-alexa-4-na.amazon.com', score: 0.93, verdict: 'suspected',
        reasons: ['sustained-upload', 'no-wake-event', 'quiet-hours'], wakeEvent: null,
      },
    });
  });

  it('every chat preset says which site it is about', () => {
    const alert = makeAlert('activation.suspected', event(), 'flat-2');
    expect(renderAlert('ntfy', alert, 'UTC').headers.Tags).toBe('warning,earshot,flat-2');
    expect(JSON.stringify(JSON.parse(renderAlert('slack', alert, 'UTC').body).blocks[1])).toContain('earshot flat-2 · activation.suspected');
    expect(JSON.parse(renderAlert('discord', alert, 'UTC').body).embeds[0].footer.text).toBe(`earshot flat-2 ${alert.key}`);
  });

  it('names an unnamed device by model or vendor and MAC', () => {
    const doc = alertDocument(makeAlert('activation.started', event('started', 'unverified', { ...ECHO, name: null, model: null })), 'UTC');
    expect(doc.title).toBe('Activation started: Amazon f0:27:2d:8a:1b:2c');
    expect(doc.text).toBe('Amazon f0:27:2d:8a:1b:2c started uploading audio to avs-alexa-4-na.amazon.com at 2024-05-01 03:12:04 UTC.');
  });

  it('clips text without splitting a surrogate pair', () => {
    expect(clip('abcdef', 6)).toBe('abcdef');
    expect(clip('abcdef', 4)).toBe('abc…');
    const cut = clip(`ab${'🔊'.repeat(10)}`, 6);
    expect(cut.length).toBeLessThanOrEqual(6);
    expect(cut).toBe('ab🔊…');
  });
});

describe('presets', () => {
  const long = { ...ECHO, name: `Küche ${'Echo '.repeat(800)}@everyone <b>` };

  it('json and homeassistant send the document', () => {
    const alert = makeAlert('activation.suspected', event());
    for (const preset of ['json', 'homeassistant'] as const) {
      const r = renderAlert(preset, alert, 'UTC');
      expect(r.headers).toEqual({ 'Content-Type': 'application/json' });
      expect(JSON.parse(r.body)).toEqual(alertDocument(alert, 'UTC'));
    }
  });

  it('ntfy: text body, Title/Priority/Tags headers that are bytes (RFC 2047 for non-ASCII)', () => {
    const r = renderAlert('ntfy', makeAlert('activation.suspected', event('finished', 'suspected', { ...ECHO, name: 'Küche 🔊' })), 'UTC');
    expect(r.headers.Priority).toBe('4');
    expect(r.headers.Tags).toBe('warning,earshot');
    expect(r.headers['Content-Type']).toBe('text/plain; charset=utf-8');
    expect(r.headers.Title).toMatch(/^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/);
    expect(Buffer.from(r.headers.Title.slice(10, -2), 'base64').toString('utf8')).toBe('Suspected false activation: Küche 🔊');
    expect(r.body).toMatch(/^Küche 🔊 uploaded audio/);
    expect(() => new Headers(r.headers)).not.toThrow();
    expect(ntfyHeaderValue('plain title')).toBe('plain title');
    const started = renderAlert('ntfy', makeAlert('activation.started', event('started', 'unverified')), 'UTC');
    expect([started.headers.Priority, started.headers.Tags]).toEqual(['2', 'loudspeaker,earshot']);
  });

  it('slack: text plus mrkdwn blocks, with &, < and > escaped', () => {
    const body = JSON.parse(renderAlert('slack', makeAlert('activation.suspected', event('finished', 'suspected', { ...ECHO, name: 'Echo <b>&' })), 'UTC').body);
    expect(body.text).toMatch(/^Suspected false activation: Echo &lt;b&gt;&amp;: /);
    expect(body.blocks[0]).toEqual({ type: 'section', text: { type: 'mrkdwn', text: expect.stringMatching(/^\*Suspected false activation: Echo &lt;b&gt;&amp;\*\n/) } });
    expect(body.blocks[1].type).toBe('context');
    const huge = JSON.parse(renderAlert('slack', makeAlert('activation.suspected', event('finished', 'suspected', long)), 'UTC').body);
    expect(huge.blocks[0].text.text.length).toBeLessThanOrEqual(3000);
  });

  it("discord: content within 2000 characters, embed parts within their limits, no mentions", () => {
    const body = JSON.parse(renderAlert('discord', makeAlert('activation.suspected', event('finished', 'suspected', long)), 'UTC').body);
    expect(body.content.length).toBeLessThanOrEqual(DISCORD_CONTENT_MAX);
    expect(body.content.endsWith('…')).toBe(true);
    const [embed] = body.embeds;
    expect(embed.title.length).toBeLessThanOrEqual(256);
    expect(embed.description.length).toBeLessThanOrEqual(4096);
    expect(embed.color).toBe(0xd64541);
    expect(embed.timestamp).toBe('2024-05-01T03:12:04.000Z');
    expect(embed.fields.map((f: { name: string }) => f.name)).toEqual(['Verdict', 'Device', 'Reasons']);
    expect(body.allowed_mentions).toEqual({ parse: [] });
    const short = JSON.parse(renderAlert('discord', makeAlert('activation.finished', event('finished', 'confirmed', { ...ECHO, name: 'Echo *bold*' })), 'UTC').body);
    expect(short.content).toBe('Activation (confirmed): Echo \\*bold\\*');
    expect(short.embeds[0].color).toBe(0x2e9e5b);
  });

  it('signs "<t>.<body>" with HMAC-SHA256', () => {
    const body = '{"a":1}';
    const expected = createHmac('sha256', 'secret-key').update(`1714533136.${body}`).digest('hex');
    expect(signature('secret-key', 1714533136, body)).toBe(`t=1714533136,v1=${expected}`);
  });
});

describe('retry arithmetic', () => {
  it('backs off exponentially with full jitter between min and max', () => {
    expect(backoffMs(1, 1000, 300_000, () => 0)).toBe(1000);
    expect(backoffMs(1, 1000, 300_000, () => 1)).toBe(2000);
    expect(backoffMs(4, 1000, 300_000, () => 1)).toBe(16_000);
    expect(backoffMs(30, 1000, 300_000, () => 1)).toBe(300_000);
    expect(backoffMs(5000, 1000, 300_000, () => 0.5)).toBe(150_500);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2024-05-01T03:00:00Z');
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs('1.5', now)).toBe(1500);
    expect(retryAfterMs('Wed, 01 May 2024 03:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('soon', now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
  });
});
