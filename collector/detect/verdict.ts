/**
 * The verdict on one activation: did someone say the wake word? Pure rules over the activation, the
 * wake-event store and the options; no I/O, no clock of its own (times come from the activation).
 *
 * - A source is configured: a wake event for the device (or for no device in particular) in the window
 *   around the start confirms it; none makes it suspected; an event saying the audio was NOT meant for
 *   the device makes it suspected for sure (voice-history:not-intended). An empty source means nobody
 *   spoke, so everything is suspected.
 * - No source: unverified, except inside quiet hours (nobody should be talking): suspected.
 * - The owner is away (detect.away, or the live presence): no wake event, or no source, means suspected
 *   with the reason owner-away: Alexa Guard and sound-detection routines upload then without a wake word.
 * - Arbitration: several assistants upload at once for one wake word; if one of them is confirmed, the
 *   others are too (reason arbitration): losing the race is not a false activation.
 * - Follow-up mode and timers upload without a wake word: they keep their verdict and carry the reason,
 *   so a person sees why.
 * - A person's label wins over all of this (applyLabel).
 */
import { earshotError } from '../errors.js';
import type { WakeEvent, WakeEventStore } from './wake-events.js';

export type Verdict = 'confirmed' | 'suspected' | 'unverified';

/** A device as the verdict matches it against wake events. */
export interface VerdictDevice {
  mac: string;
  name: string | null;
}

/** Another activation that started at about the same time on another device. */
export interface ArbitrationMember {
  device: VerdictDevice;
  startMs: number;
  /** Already decided (a label, an earlier verdict); when absent, looked up in the store. */
  confirmed?: boolean;
}

/** What the rules need to know about one activation. */
export interface VerdictInput {
  device: VerdictDevice;
  startMs: number;
  /** Other activations starting within ~2 s on other devices. */
  arbitrationGroup: ArbitrationMember[];
  /** The upload began shortly after the device's previous answer (follow-up mode). */
  followUp: boolean;
  /** The upload belongs to a timer or alarm, not to speech. */
  timer?: boolean;
  /** The owner was away when it started (detect.away or the live presence, collector/detect/presence.ts). */
  ownerAway?: boolean;
}

/** A quiet-hours range in local time; `from` after `to` wraps midnight. */
export interface QuietHours {
  from: string;
  to: string;
}

export interface VerdictOptions {
  /** How long before the start a wake event still counts (ms). */
  windowBeforeMs: number;
  /** How long after the start a wake event still counts (ms; clocks differ, records are stamped late). */
  windowAfterMs: number;
  quietHours: QuietHours[];
  /** IANA time zone for quiet hours. */
  timeZone: string;
}

export interface VerdictResult {
  verdict: Verdict;
  reasons: string[];
  /** The time of the wake event the verdict rests on (epoch ms), if any. */
  wakeEvent: number | null;
}

export const DEFAULT_VERDICT_OPTIONS: Readonly<VerdictOptions> = Object.freeze({
  windowBeforeMs: 5000,
  windowAfterMs: 2000,
  quietHours: [],
  timeZone: 'UTC',
});

const HH_MM = /^([01]?\d|2[0-3]):([0-5]\d)$/;

function minutesOf(hhmm: string): number | null {
  const match = HH_MM.exec(hhmm.trim());
  return match === null ? null : Number(match[1]) * 60 + Number(match[2]);
}

/**
 * Quiet hours from "23:00-07:00" strings (an array, or one string with ranges separated by commas);
 * `where` names the flag or key in messages.
 */
export function parseQuietHours(spec: string[] | string, where = 'quietHours'): QuietHours[] {
  const parts = (Array.isArray(spec) ? spec : [spec]).flatMap((s) => (typeof s === 'string' ? s.split(',') : [s]));
  return parts.filter((part) => typeof part !== 'string' || part.trim() !== '').map((part) => {
    const range = typeof part === 'string' ? /^\s*([^-\s]+)\s*-\s*([^-\s]+)\s*$/.exec(part) : null;
    if (range === null) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `${JSON.stringify(part)} is not a range HH:MM-HH:MM such as 23:00-07:00`);
    const [from, to] = [range[1], range[2]];
    for (const end of [from, to]) {
      if (minutesOf(end) === null) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `${JSON.stringify(end)} in ${JSON.stringify(part.trim())} is not a time HH:MM (00:00 to 23:59)`);
    }
    if (minutesOf(from) === minutesOf(to)) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `${JSON.stringify(part.trim())} starts where it ends`);
    return { from, to };
  });
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The formatter for a zone, made once; an unknown zone is a configuration error, not a RangeError. */
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    } catch {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', 'detect.timeZone', `${JSON.stringify(timeZone)} is not an IANA time zone such as Europe/Berlin`);
    }
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Options with defaults filled in and checked (quiet hours, time zone), for use at setup. */
export function verdictOptions(options: Partial<VerdictOptions> = {}): VerdictOptions {
  const resolved = { ...DEFAULT_VERDICT_OPTIONS, ...options };
  for (const key of ['windowBeforeMs', 'windowAfterMs'] as const) {
    if (!Number.isFinite(resolved[key]) || resolved[key] < 0) {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', key, `${String(resolved[key])} is not a duration in ms (0 or more)`);
    }
  }
  // checks the zone now; UTC (the default) is always known, and the first Intl formatter costs ~20 ms
  if (resolved.timeZone !== 'UTC') formatterFor(resolved.timeZone);
  parseQuietHours(resolved.quietHours.map((q) => `${q.from}-${q.to}`));
  return resolved;
}

/** Minutes since local midnight of `timeMs` in `timeZone`. */
export function localMinutes(timeMs: number, timeZone: string): number {
  let hour = 0;
  let minute = 0;
  for (const part of formatterFor(timeZone).formatToParts(timeMs)) {
    if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return hour * 60 + minute;
}

/** True when `timeMs` falls in one of the ranges (from inclusive, to exclusive; may wrap midnight). */
export function inQuietHours(timeMs: number, quietHours: QuietHours[], timeZone: string): boolean {
  if (quietHours.length === 0) return false;
  const now = localMinutes(timeMs, timeZone);
  return quietHours.some(({ from, to }) => {
    const start = minutesOf(from) ?? 0;
    const end = minutesOf(to) ?? 0;
    return start < end ? now >= start && now < end : now >= start || now < end;
  });
}

/** A wake event that confirms (not one saying "not intended"). */
function confirming(store: WakeEventStore, device: VerdictDevice, startMs: number, options: VerdictOptions): WakeEvent | null {
  const event = store.findFor(device, startMs, options.windowBeforeMs, options.windowAfterMs);
  return event !== null && event.intended !== false ? event : null;
}

/** Decides the verdict for one activation; `store` null means no wake-event source is configured. */
export function decideVerdict(input: VerdictInput, store: WakeEventStore | null, options: VerdictOptions = DEFAULT_VERDICT_OPTIONS): VerdictResult {
  const hasSource = store !== null && store.sourceConfigured;
  let result: VerdictResult;
  let arbitrationMayConfirm = true;
  // nobody home: an upload without a wake word is sound detection (Guard, routines) or a misactivation
  const away = input.ownerAway === true ? ['owner-away'] : [];
  if (!hasSource) {
    const reasons = [...(inQuietHours(input.startMs, options.quietHours, options.timeZone) ? ['quiet-hours'] : []), ...away];
    result = { verdict: reasons.length > 0 ? 'suspected' : 'unverified', reasons, wakeEvent: null };
  } else {
    const event = store.findFor(input.device, input.startMs, options.windowBeforeMs, options.windowAfterMs);
    if (event === null) {
      // also when the source is empty: a configured source without events means nobody spoke
      result = { verdict: 'suspected', reasons: ['no-wake-event', ...away], wakeEvent: null };
    } else if (event.intended === false) {
      // the assistant's own record says the audio was not meant for it: stronger than another device's wake word
      result = { verdict: 'suspected', reasons: ['voice-history:not-intended'], wakeEvent: event.time };
      arbitrationMayConfirm = false;
    } else {
      result = { verdict: 'confirmed', reasons: [`wake-event:${event.source}`], wakeEvent: event.time };
    }
  }

  if (result.verdict !== 'confirmed' && arbitrationMayConfirm) {
    for (const member of input.arbitrationGroup) {
      const memberEvent = member.confirmed === undefined && hasSource ? confirming(store, member.device, member.startMs, options) : null;
      if (member.confirmed === true || memberEvent !== null) {
        result = { verdict: 'confirmed', reasons: ['arbitration'], wakeEvent: memberEvent?.time ?? null };
        break;
      }
    }
  }

  if (result.verdict !== 'confirmed') {
    if (input.followUp) result.reasons.push('follow-up');
    if (input.timer === true) result.reasons.push('timer');
  }
  return result;
}

/** A person's label wins over the detector; the detector's reasons stay, after the label's. */
export function applyLabel(result: VerdictResult, label: 'intended' | 'not-intended' | null): VerdictResult {
  if (label === null) return result;
  const rest = result.reasons.filter((reason) => !reason.startsWith('label:'));
  return label === 'intended'
    ? { verdict: 'confirmed', reasons: ['label:intended', ...rest], wakeEvent: result.wakeEvent }
    : { verdict: 'suspected', reasons: ['label:not-intended', ...rest], wakeEvent: result.wakeEvent };
}
