/**
 * Presets: an alert rendered as the receiver's API wants it (docs/alerts.md links each API). Rendering
 * happens once, when the alert enters the outbox; the signature and the earshot headers are added at
 * each attempt (the signature carries the attempt's time).
 */
import { createHash, createHmac } from 'node:crypto';
import { chatInert, printable } from '../../text.js';
import type { NoticeEvent } from '../events.js';
import { isoTime } from '../report.js';
import { alertDocument, alertText, alertTitle, clip, deviceLabel, localTime, type Alert } from './payload.js';

export type Preset = 'json' | 'ntfy' | 'slack' | 'discord' | 'homeassistant';

/** A rendered request: its body and the preset's own headers. */
export interface RenderedRequest {
  headers: Record<string, string>;
  body: string;
}

const JSON_TYPE = 'application/json';

/** Discord: a message's content holds at most 2000 characters, an embed's title 256 and description 4096. */
export const DISCORD_CONTENT_MAX = 2000;
const DISCORD_TITLE_MAX = 256;
const DISCORD_DESCRIPTION_MAX = 4096;
const DISCORD_FIELD_MAX = 1024;
/** Slack: a section block's text holds at most 3000 characters. */
const SLACK_SECTION_MAX = 3000;
/** ntfy: a larger body becomes an attachment instead of the message (4096 bytes by default). */
const NTFY_MESSAGE_MAX = 3000;

const VERDICT_COLOURS: Record<string, number> = { suspected: 0xd64541, confirmed: 0x2e9e5b, unverified: 0x8a8f98 };

/** Slack mrkdwn: &, < and > must be escaped, the rest is shown as written. */
const slackEscape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Discord markdown: a backslash before each markdown character shows it as written. */
const discordEscape = (text: string) => text.replace(/[\\*_~`|>#[\]]/g, '\\$&');

/**
 * A header value as ntfy reads it: ASCII as is, anything else as an RFC 2047 encoded word (ntfy decodes
 * them; HTTP header values must be bytes, and fetch refuses characters beyond Latin-1).
 */
export function ntfyHeaderValue(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  return `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

/** ntfy tags: an emoji, earshot, and the site (shown as a text tag: which home it is about). */
function ntfyTags(alert: Alert): string {
  const warn = alert.event === 'activation.suspected' || (alert.event === 'activation.verdict-changed' && alert.activation.verdict === 'suspected');
  return withSite(warn ? 'warning,earshot' : 'loudspeaker,earshot', alert.site);
}

/** `tags` and the site (a site name is [a-z0-9_-]: safe in a tag list, a footer, a context line). */
const withSite = (tags: string, site: string | null) => (site === null ? tags : `${tags},${site}`);
/** "earshot" and the site, for footers and context lines. */
const earshotAt = (site: string | null) => (site === null ? 'earshot' : `earshot ${site}`);

/** ntfy priorities: 4 (high) for a suspected activation, 2 (low) for a start, 3 (default) otherwise. */
function ntfyPriority(alert: Alert): string {
  if (alert.event === 'activation.suspected') return '4';
  if (alert.event === 'activation.started') return '2';
  return '3';
}

function renderNtfy(alert: Alert, timeZone: string): RenderedRequest {
  return {
    headers: {
      'Content-Type': 'text/plain; charset=utf-8',
      // ntfy's apps turn URLs in a notification into links: names from packets must not bring one
      Title: ntfyHeaderValue(chatInert(alertTitle(alert))),
      Priority: ntfyPriority(alert),
      Tags: ntfyTags(alert),
    },
    body: clip(chatInert(alertText(alert, timeZone)), NTFY_MESSAGE_MAX),
  };
}

function renderSlack(alert: Alert, timeZone: string): RenderedRequest {
  // names in the title and text come from packets: no mention, no link, no markup from them
  const title = slackEscape(chatInert(alertTitle(alert)));
  const text = slackEscape(chatInert(alertText(alert, timeZone)));
  const message = {
    // the notification text, and what clients without blocks show
    text: clip(`${title}: ${text}`, SLACK_SECTION_MAX),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: clip(`*${title}*\n${text}`, SLACK_SECTION_MAX) } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: clip(`${earshotAt(alert.site)} · ${alert.event} · ${slackEscape(alert.key)}`, SLACK_SECTION_MAX) }] },
    ],
  };
  return { headers: { 'Content-Type': JSON_TYPE }, body: JSON.stringify(message) };
}

function renderDiscord(alert: Alert, timeZone: string): RenderedRequest {
  const a = alert.activation;
  // names in the title and text come from packets: no mention, no link, no markup from them
  const title = chatInert(alertTitle(alert));
  const fields = [
    { name: 'Verdict', value: clip(a.verdict, DISCORD_FIELD_MAX), inline: true },
    { name: 'Device', value: clip(discordEscape(alert.device.mac), DISCORD_FIELD_MAX), inline: true },
  ];
  if (a.reasons.length > 0) fields.push({ name: 'Reasons', value: clip(discordEscape(chatInert(a.reasons.join(', '))), DISCORD_FIELD_MAX), inline: false });
  const message = {
    content: clip(discordEscape(title), DISCORD_CONTENT_MAX),
    embeds: [
      {
        title: clip(discordEscape(title), DISCORD_TITLE_MAX),
        description: clip(discordEscape(chatInert(alertText(alert, timeZone))), DISCORD_DESCRIPTION_MAX),
        color: VERDICT_COLOURS[a.verdict] ?? VERDICT_COLOURS.unverified,
        timestamp: a.start,
        fields,
        footer: { text: clip(`${earshotAt(alert.site)} ${alert.key}`, DISCORD_TITLE_MAX) },
      },
    ],
    // a device named "@everyone" must not ping anybody
    allowed_mentions: { parse: [] },
  };
  return { headers: { 'Content-Type': JSON_TYPE }, body: JSON.stringify(message) };
}

/** Renders `alert` for `preset`; times in the text are shown in `timeZone`. */
export function renderAlert(preset: Preset, alert: Alert, timeZone: string): RenderedRequest {
  switch (preset) {
    case 'ntfy':
      return renderNtfy(alert, timeZone);
    case 'slack':
      return renderSlack(alert, timeZone);
    case 'discord':
      return renderDiscord(alert, timeZone);
    default:
      // json, and Home Assistant's webhook trigger (any JSON body: trigger.json in automations)
      return { headers: { 'Content-Type': JSON_TYPE }, body: JSON.stringify(alertDocument(alert, timeZone)) };
  }
}

/** The X-Earshot-Signature value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signature(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.`).update(body, 'utf8').digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

export const NOTICE_SCHEMA = 'earshot.notice/1';

/**
 * The idempotency key of a notice: one per device and new thing (new-endpoint), or per finding and
 * severity (a finding that gets worse is news again), on every retry and restart.
 */
export function noticeKey(notice: NoticeEvent): string {
  if (notice.kind === 'finding') return `finding.${notice.finding.id}.${notice.finding.severity}`.slice(0, 300);
  // the subject comes from packets: the key carries its hash, so it is safe in headers, file names and chats
  return `${notice.kind}.${notice.device.mac}.${notice.what}.${createHash('sha256').update(notice.subject).digest('hex').slice(0, 16)}`;
}

/** The title and text of a notice; names in it come from packets and are made inert by the caller. */
export function noticeWords(notice: NoticeEvent, timeZone: string): { title: string; text: string } {
  const when = `${localTime(isoTime(notice.seenMs), timeZone)} ${timeZone}`;
  if (notice.kind === 'finding') {
    const f = notice.finding;
    const who = notice.device === null ? 'your network' : deviceLabel(notice.device);
    return {
      title: `Network finding (${f.severity}): ${printable(f.title)}`,
      text: `${printable(f.title)} (${who}, first seen ${when}). ${printable(f.evidence.slice(0, 3).join('; '))}. What to do: ${printable(f.advice)}`,
    };
  }
  const who = deviceLabel(notice.device);
  if (notice.what === 'new-service') {
    return {
      title: `New kind of traffic: ${who} now uses ${notice.subject}`,
      text: `${who} used a service of class ${notice.subject} for the first time (${printable(notice.endpoint)}${notice.organisation ? `, ${printable(notice.organisation)}` : ''}) at ${when}.`,
    };
  }
  return {
    title: `New contact: ${who} talked to ${printable(notice.subject)}`,
    text: `${who} contacted ${printable(notice.subject)} for the first time (${printable(notice.endpoint)}, service ${notice.service}) at ${when}. ` +
      'A new organisation can be a skill you enabled, a firmware change or a new tracker.',
  };
}

/** The `earshot.notice/1` document's kind-specific part. */
function noticeBody(notice: NoticeEvent): Record<string, unknown> {
  if (notice.kind === 'finding') return { finding: notice.finding };
  return { notice: { what: notice.what, subject: notice.subject, organisation: notice.organisation, service: notice.service, endpoint: notice.endpoint, seen: isoTime(notice.seenMs) } };
}

/** Renders a notice for `preset`, as renderAlert does an activation. */
export function renderNotice(preset: Preset, notice: NoticeEvent, timeZone: string, site: string | null = null): RenderedRequest {
  const { title, text } = noticeWords(notice, timeZone);
  const key = noticeKey(notice);
  switch (preset) {
    case 'ntfy':
      return {
        headers: {
          'Content-Type': 'text/plain; charset=utf-8', Title: ntfyHeaderValue(chatInert(title)),
          Priority: notice.kind === 'finding' && notice.finding.severity === 'high' ? '4' : '3',
          Tags: withSite(notice.kind === 'finding' ? 'shield,earshot' : 'mag,earshot', site),
        },
        body: clip(chatInert(text), NTFY_MESSAGE_MAX),
      };
    case 'slack': {
      const t = slackEscape(chatInert(title));
      const x = slackEscape(chatInert(text));
      return {
        headers: { 'Content-Type': JSON_TYPE },
        body: JSON.stringify({
          text: clip(`${t}: ${x}`, SLACK_SECTION_MAX),
          blocks: [
            { type: 'section', text: { type: 'mrkdwn', text: clip(`*${t}*\n${x}`, SLACK_SECTION_MAX) } },
            { type: 'context', elements: [{ type: 'mrkdwn', text: clip(`${earshotAt(site)} · notice.${notice.kind} · ${slackEscape(key)}`, SLACK_SECTION_MAX) }] },
          ],
        }),
      };
    }
    case 'discord': {
      const t = chatInert(title);
      return {
        headers: { 'Content-Type': JSON_TYPE },
        body: JSON.stringify({
          content: clip(discordEscape(t), DISCORD_CONTENT_MAX),
          embeds: [{
            title: clip(discordEscape(t), DISCORD_TITLE_MAX),
            description: clip(discordEscape(chatInert(text)), DISCORD_DESCRIPTION_MAX),
            timestamp: isoTime(notice.seenMs),
            footer: { text: clip(`${earshotAt(site)} ${key}`, DISCORD_TITLE_MAX) },
          }],
          allowed_mentions: { parse: [] },
        }),
      };
    }
    default:
      return {
        headers: { 'Content-Type': JSON_TYPE },
        body: JSON.stringify({
          schema: NOTICE_SCHEMA, site, event: `notice.${notice.kind}`, id: key, time: isoTime(notice.atMs), title, text,
          device: notice.device,
          ...noticeBody(notice),
        }),
      };
  }
}
