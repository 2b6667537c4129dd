/**
 * What an alert says: the event names, the idempotency key, the `earshot.alert/1` document (the json and
 * homeassistant presets send it as is; docs/alerts.md describes every field) and the words the chat
 * presets show. Pure functions: no I/O, no clock.
 */
import type { ActivationEvent, EventDevice } from '../events.js';
import { isoTime, type ReportActivation } from '../report.js';
import { printable } from '../../text.js';

export const ALERT_SCHEMA = 'earshot.alert/1';

export type AlertEventName = 'activation.suspected' | 'activation.finished' | 'activation.started' | 'activation.verdict-changed' | 'notice.new-endpoint' | 'notice.finding';

/** One alert, made from an activation event: what every preset renders. */
export interface Alert {
  event: AlertEventName;
  /** Idempotency key: the same for the same event about the same activation, on every retry and restart. */
  key: string;
  atMs: number;
  /** The site (home) the collector watches (config.site); null only in unit tests. */
  site: string | null;
  device: EventDevice;
  activation: ReportActivation;
}

/** The JSON document of the json and homeassistant presets. */
export interface AlertDocument {
  schema: typeof ALERT_SCHEMA;
  /** The site (home) it happened at: many collectors may post to one receiver. */
  site: string | null;
  event: AlertEventName;
  id: string;
  time: string;
  title: string;
  text: string;
  device: EventDevice;
  activation: ReportActivation;
}

/**
 * The idempotency key, made once when the alert is made (the outbox keeps it for every retry and restart).
 * A verdict change carries the new verdict and the time of the change (ms): a verdict changed back and
 * forth (a label changed twice) is an alert each time. Keyed by the verdict alone, the second change to a
 * verdict repeated the first one's key, and a receiver that ignores repeats, as told, kept the wrong one.
 */
export function alertKey(event: AlertEventName, activation: ReportActivation, atMs: number): string {
  return event === 'activation.verdict-changed' ? `${activation.id}.${event}.${activation.verdict}.${Math.round(atMs)}` : `${activation.id}.${event}`;
}

/** The alert `event` about `source` (an activation event). */
export function makeAlert(event: AlertEventName, source: ActivationEvent, site: string | null = null): Alert {
  return { event, key: alertKey(event, source.activation, source.atMs), atMs: source.atMs, site, device: source.device, activation: source.activation };
}

/**
 * How a person would name the device: its name, else its model or vendor with the MAC. Names and models
 * come from packets: control characters are shown escaped (collector/text.ts), never sent on.
 */
export function deviceLabel(device: EventDevice): string {
  if (device.name) return printable(device.name);
  const what = device.model ?? device.vendor;
  return printable(what ? `${what} ${device.mac}` : device.mac);
}

/** A local wall-clock time, "2024-05-01 03:12:04", in `timeZone` (falls back to UTC for a bad zone). */
export function localTime(iso: string, timeZone: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  try {
    // sv-SE formats as ISO-like "YYYY-MM-DD HH:MM:SS"
    return new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(date);
  } catch {
    return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
  }
}

function kilobytes(bytes: number): string {
  return bytes >= 1_000_000 ? `${(bytes / 1_000_000).toFixed(1)} MB` : `${(bytes / 1000).toFixed(1)} kB`;
}

/** The one-line title of an alert, e.g. "Suspected false activation: Kitchen Echo". */
export function alertTitle(alert: Alert): string {
  const who = deviceLabel(alert.device);
  switch (alert.event) {
    case 'activation.suspected':
      // while nobody was home it may be the owner's own sound detection: the title says which case it is
      return alert.activation.reasons.includes('owner-away') ? `Audio uploaded while you were away: ${who}` : `Suspected false activation: ${who}`;
    case 'activation.started':
      return `Activation started: ${who}`;
    case 'activation.verdict-changed':
      return `Activation now ${alert.activation.verdict}: ${who}`;
    default:
      return `Activation (${alert.activation.verdict}): ${who}`;
  }
}

/** A few sentences for people: who, when (in `timeZone`), how much, where to, and the verdict with its reasons. */
export function alertText(alert: Alert, timeZone: string): string {
  const a = alert.activation;
  const who = deviceLabel(alert.device);
  const start = localTime(a.start, timeZone);
  const seconds = Math.max(0, (Date.parse(a.end) - Date.parse(a.start)) / 1000);
  // a server name comes from DNS or SNI, a reason may carry a wake event's source: both from outside
  const to = a.serverName ?? a.server;
  const where = to ? ` to ${printable(to)}` : '';
  const reasons = a.reasons.length > 0 ? ` (${printable(a.reasons.join(', '))})` : '';
  if (alert.event === 'activation.started') {
    return `${who} started uploading audio${where} at ${start} ${timeZone}.`;
  }
  const upload = `${who} uploaded audio${where} at ${start} ${timeZone} for ${seconds.toFixed(1)} s (${kilobytes(a.bytesUp)} up).`;
  const wake = a.wakeEvent ? ` Wake event at ${localTime(a.wakeEvent, timeZone)}.` : '';
  // the owner's first question on such an alert: was that my own Guard or sound-detection routine?
  const away = a.reasons.includes('owner-away') ? ' You were away: sound detection (Alexa Guard, routines that react to sounds) uploads audio without a wake word.' : '';
  return `${upload} Verdict: ${a.verdict}${reasons}.${wake}${away}`;
}

/** The `earshot.alert/1` document. */
export function alertDocument(alert: Alert, timeZone: string): AlertDocument {
  return {
    schema: ALERT_SCHEMA,
    site: alert.site,
    event: alert.event,
    id: alert.key,
    time: isoTime(alert.atMs),
    title: alertTitle(alert),
    text: alertText(alert, timeZone),
    device: alert.device,
    activation: alert.activation,
  };
}

/** `text` cut to at most `max` UTF-16 units (never inside a surrogate pair), ending in "…" when cut. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--; // a high surrogate would lose its pair
  return `${text.slice(0, end)}…`;
}
