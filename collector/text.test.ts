/**
 * Names from packets where people see them: escaped control characters in terminal text and log lines,
 * and in the chat presets no mention, link or markup that the name brings along. The hostile strings
 * are the ones test/helpers/hostile-names.ts writes into a capture; the expected escapes are written
 * out by hand.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HOSTILE_FRIENDLY, HOSTILE_INSTANCE, HOSTILE_MODEL } from '../test/helpers/hostile-names.js';
import { Activation } from './detect/detector.js';
import { formatLine } from '../cli/doctor.js';
import { buildLogger } from './log.js';
import { activationEvent, type EventDevice } from './sink/events.js';
import { makeAlert } from './sink/alerts/payload.js';
import { renderAlert } from './sink/alerts/presets.js';
import { displayName } from './sink/mqtt/discovery.js';
import { chatInert, preview, printable } from './text.js';

// eslint-disable-next-line no-control-regex -- what must never reach a terminal
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('printable', () => {
  it('writes controls, bidi overrides and separators as visible escapes, and leaves other text alone', () => {
    expect(printable(HOSTILE_INSTANCE)).toBe('Kitchen\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07 @everyone https://evil/x');
    expect(printable(HOSTILE_FRIENDLY)).toBe('Echo\\u202eevil\\x0d\\x0aearshot: fake log line\\x1b[31m');
    expect(printable(HOSTILE_MODEL)).toBe('Model\\x9b2J\\x00');
    expect(printable('a\u2028b\u2066c\u200bd\ufeff\u007f')).toBe('a\\u2028b\\u2066c\\u200bd\\ufeff\\x7f');
    for (const fine of ['Küche 🔊', 'Luca’s iMac', 'avs-alexa-4-na.amazon.com', 'Wohnzimmer (oben) #2', '']) expect(printable(fine)).toBe(fine);
  });

  it('chatInert: no mention and no URL survives', () => {
    expect(chatInert('@everyone @here https://evil/x\x1b')).toBe('＠everyone ＠here https[:]//evil/x\\x1b');
  });
});

describe('log lines', () => {
  it('text format: a name in a message or a field cannot forge a line or move the cursor', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const log = buildLogger({ level: 'info', format: 'text' }, out as unknown as NodeJS.WriteStream);
    log.warn({ name: HOSTILE_FRIENDLY }, `device ${HOSTILE_INSTANCE}`);
    await new Promise((resolve) => setImmediate(resolve));
    const text = Buffer.concat(chunks).toString('utf8');
    expect(text.split('\n')).toHaveLength(2); // one line and the final newline
    expect(text).not.toMatch(RAW_CONTROL);
    expect(text).toContain('device Kitchen\\x1b[2J');
    expect(text).toContain('name="Echo\\u202eevil\\x0d\\x0aearshot: fake log line');
  });
});

describe('earshot doctor', () => {
  it('a text line naming an assistant from mDNS holds no raw control', () => {
    const line = formatLine({ check: 'assistants', status: 'ok', message: `1 seen: ${HOSTILE_FRIENDLY} (02:00:00:00:00:02)` });
    expect(line).toBe('ok   assistants: 1 seen: Echo\\u202eevil\\x0d\\x0aearshot: fake log line\\x1b[31m (02:00:00:00:00:02)');
  });
});

describe('alerts and Home Assistant names', () => {
  const device: EventDevice = { mac: '02:00:00:00:00:02', name: HOSTILE_INSTANCE, vendor: 'google', model: HOSTILE_MODEL, assistant: true };
  const activation = new Activation(0x020000000002, Date.parse('2024-05-01T03:12:04Z'));
  activation.endMs = activation.startMs + 5000;
  activation.serverName = 'evil\x1b[2J.example.com';
  activation.verdict = 'suspected';
  activation.reasons = ['no-wake-event'];
  const alert = makeAlert('activation.suspected', activationEvent('finished', activation, () => device, activation.endMs));

  it('ntfy: no raw control and no link in the Title header or the body', () => {
    const r = renderAlert('ntfy', alert, 'UTC');
    // non-ASCII (the full-width ＠) makes the header an RFC 2047 encoded word
    const title = Buffer.from(r.headers.Title.replace(/^=\?UTF-8\?B\?(.*)\?=$/, '$1'), 'base64').toString('utf8');
    expect(title).toBe('Suspected false activation: Kitchen\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07 ＠everyone https[:]//evil/x');
    expect(r.body).not.toMatch(RAW_CONTROL);
    expect(r.body).toContain('to evil\\x1b[2J.example.com');
  });

  it('slack: no <!everyone>, no @everyone, no link, no raw control', () => {
    const body = JSON.parse(renderAlert('slack', { ...alert, device: { ...device, name: `${HOSTILE_INSTANCE} <!everyone> <https://evil/y|click>` } }, 'UTC').body) as { text: string; blocks: Array<{ text?: { text: string } }> };
    for (const text of [body.text, body.blocks[0].text!.text]) {
      expect(text).not.toMatch(RAW_CONTROL);
      expect(text).not.toMatch(/@everyone|<!|<http|https:\/\//);
      expect(text).toContain('＠everyone https[:]//evil/x &lt;!everyone&gt; &lt;https[:]//evil/y|click&gt;');
    }
  });

  it('discord: no mention, no link, no markdown from the name, mentions switched off', () => {
    const body = JSON.parse(renderAlert('discord', { ...alert, device: { ...device, name: `${HOSTILE_INSTANCE} [click](https://evil/z) **x**` } }, 'UTC').body) as {
      content: string; embeds: Array<{ title: string; description: string }>; allowed_mentions: unknown;
    };
    for (const text of [body.content, body.embeds[0].title, body.embeds[0].description]) {
      expect(text).not.toMatch(RAW_CONTROL);
      // markdown needs an unescaped "](" for a link and "**" for bold
      expect(text).not.toMatch(/@everyone|https:\/\/|(^|[^\\])\]\(|(^|[^\\])\*\*/);
    }
    expect(body.content).toContain('＠everyone https\\[:\\]//evil/x \\[click\\](https\\[:\\]//evil/z) \\*\\*x\\*\\*');
    expect(body.allowed_mentions).toEqual({ parse: [] });
  });

  it('Home Assistant: the device name is escaped', () => {
    expect(displayName(device)).toBe('Kitchen\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07 @everyone https://evil/x');
  });
});

describe('preview: any value, short, for a message', () => {
  it('reads as JSON for plain values and is cut at its length', () => {
    expect(preview('yesterday')).toBe('"yesterday"');
    expect(preview(true)).toBe('true');
    expect(preview(null)).toBe('null');
    expect(preview(undefined)).toBe('undefined');
    expect(preview([1, 'a', { b: [2] }])).toBe('[1,"a",{"b":[2]}]');
    expect(preview('x'.repeat(100))).toBe(`"${'x'.repeat(56)}...`);
    expect(preview({ a: 1, b: 2, c: 3 }, 10)).toBe('{"a":1,...');
  });

  it('stops at a depth and at its length, however deep or wide the value (JSON.stringify overflowed the stack)', () => {
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(preview(deep)).toBe('[[[[[[[[[...]]]]]]]]]');
    const wide = Array.from({ length: 1_000_000 }, (_, i) => i);
    expect(preview(wide)).toBe(`${JSON.stringify(wide).slice(0, 57)}...`);
  });
});
