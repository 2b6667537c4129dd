/**
 * Whether the owner is away. Alexa Guard and "routines with sound detection" upload audio with no wake
 * word when a sound (glass breaking, a smoke alarm, a dog, a baby) is heard, typically while nobody is
 * home. Such an upload is real audio that left the house, so it stays suspected, but it gets the reason
 * `owner-away` so the owner can tell it from a misactivation.
 *
 * Two inputs, either enough: a weekly schedule in the config (`detect.away`, local time in
 * detect.timeZone), and a live state set over MQTT (PREFIX/presence) or the API (PUT /api/v1/presence),
 * saved in the data directory (presence.json) so that a restart keeps it. The live state counts from
 * the moment it arrives; its recent changes are kept, so an activation is judged by the state at its
 * start, also when it is decided again later.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { quarantine, writeFileAtomic } from '../durable.js';
import { earshotError } from '../errors.js';
import { NotSavedError } from './journal.js';

/** One weekly range: on `days` (0 Sunday .. 6 Saturday; all when null) from `from` to `to` (minutes; wraps midnight when from > to). */
export interface AwayRange {
  days: ReadonlySet<number> | null;
  from: number;
  to: number;
  /** The range as written, for messages and the API. */
  text: string;
}

/** The live state: set by MQTT or the API. */
export interface PresenceState {
  away: boolean;
  /** When it was set (epoch ms). */
  sinceMs: number;
  /** Who set it: "mqtt", "api". */
  source: string;
}

/** The file in the data directory. */
export const PRESENCE_FILE = 'presence.json';
/** Changes of the live state kept to judge activations decided again later; the oldest go first. */
const MAX_CHANGES = 64;

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const RANGE = /^\s*(?:([a-z]+)(?:\s*-\s*([a-z]+))?\s+)?(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$/i;

const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

/** 0 (Sunday) .. 6 for "mon", "Monday", "tues"; -1 for anything else ("mo", "month"). */
function dayIndex(word: string): number {
  const lower = word.toLowerCase();
  return lower.length < 3 ? -1 : DAY_NAMES.findIndex((name) => name.startsWith(lower));
}

/**
 * Away ranges from strings such as "08:00-17:30", "mon-fri 08:00-17:30", "sat 22:00-02:00" (a day range
 * may wrap: "fri-mon"; a time range may wrap midnight, and then belongs to the day it starts on).
 * A bad one is a configuration error naming `where` and the entry.
 */
export function parseAwaySchedule(spec: readonly string[], where = 'detect.away'): AwayRange[] {
  return spec.map((entry, i) => {
    const bad = (why: string): never => {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${where}[${i}]`, `${JSON.stringify(entry)}: ${why}`);
    };
    if (typeof entry !== 'string') return bad('not a string such as "mon-fri 08:00-17:30"');
    const match = RANGE.exec(entry);
    if (match === null) return bad('not a range such as "08:00-17:30" or "mon-fri 08:00-17:30"');
    const [, firstDay, lastDay, fh, fm, th, tm] = match;
    const minutes = (h: string, m: string): number => {
      if (Number(h) > 23 || Number(m) > 59) bad(`${h}:${m} is not a time HH:MM (00:00 to 23:59)`);
      return Number(h) * 60 + Number(m);
    };
    const from = minutes(fh, fm);
    const to = minutes(th, tm);
    if (from === to) bad('starts where it ends');
    let days: Set<number> | null = null;
    if (firstDay !== undefined) {
      const first = dayIndex(firstDay);
      const last = lastDay === undefined ? first : dayIndex(lastDay);
      if (first < 0) bad(`${JSON.stringify(firstDay)} is not a day (mon, tue, wed, thu, fri, sat, sun)`);
      if (last < 0) bad(`${JSON.stringify(lastDay)} is not a day (mon, tue, wed, thu, fri, sat, sun)`);
      days = new Set<number>();
      for (let d = first; ; d = (d + 1) % 7) {
        days.add(d);
        if (d === last) break;
      }
    }
    return { days, from, to, text: entry.trim() };
  });
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Local weekday (0 Sunday) and minutes since local midnight of `timeMs` in `timeZone`. */
function localDayAndMinutes(timeMs: number, timeZone: string): { day: number; minutes: number } {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    } catch {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', 'detect.timeZone', `${JSON.stringify(timeZone)} is not an IANA time zone such as Europe/Berlin`);
    }
    formatters.set(timeZone, formatter);
  }
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const part of formatter.formatToParts(timeMs)) {
    if (part.type === 'weekday') day = DAYS.indexOf(part.value.slice(0, 3).toLowerCase());
    else if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return { day, minutes: hour * 60 + minute };
}

/** True when `timeMs` falls in one of the ranges (from inclusive, to exclusive). */
export function inAwaySchedule(timeMs: number, schedule: readonly AwayRange[], timeZone: string): boolean {
  if (schedule.length === 0) return false;
  const { day, minutes } = localDayAndMinutes(timeMs, timeZone);
  const yesterday = (day + 6) % 7;
  return schedule.some(({ days, from, to }) => {
    const on = (d: number): boolean => days === null || days.has(d);
    if (from < to) return on(day) && minutes >= from && minutes < to;
    // wraps midnight: the part after midnight belongs to the day the range started on
    return (on(day) && minutes >= from) || (on(yesterday) && minutes < to);
  });
}

/** The owner's presence: the schedule and the live state, with its recent changes. */
export class Presence {
  private readonly changes: PresenceState[] = [];

  constructor(readonly schedule: readonly AwayRange[], private readonly timeZone: string) {}

  /** The live state now (null: never set). */
  get state(): PresenceState | null {
    return this.changes.length === 0 ? null : this.changes[this.changes.length - 1];
  }

  /**
   * Sets the live state. The newest word wins: when the clock went back (a state saved with a wrong
   * clock, a clock corrected since), the changes stamped after it are dropped.
   */
  set(state: PresenceState): void {
    while (this.changes.length > 0 && this.changes[this.changes.length - 1].sinceMs > state.sinceMs) this.changes.pop();
    this.changes.push({ ...state });
    if (this.changes.length > MAX_CHANGES) this.changes.shift();
  }

  /** True when the owner was away at `timeMs`: the schedule says so, or the live state then did. */
  awayAt(timeMs: number): boolean {
    for (let i = this.changes.length - 1; i >= 0; i--) {
      if (this.changes[i].sinceMs <= timeMs) {
        if (this.changes[i].away) return true;
        break;
      }
    }
    return inAwaySchedule(timeMs, this.schedule, this.timeZone);
  }
}

/** A saved state, or null for anything that is not one. */
export function parsePresenceState(value: unknown): PresenceState | null {
  if (typeof value !== 'object' || value === null) return null;
  const { away, since, source } = value as Record<string, unknown>;
  const sinceMs = typeof since === 'string' ? Date.parse(since) : Number.NaN;
  if (typeof away !== 'boolean' || !Number.isFinite(sinceMs) || typeof source !== 'string' || source.length > 64) return null;
  return { away, sinceMs, source };
}

/**
 * The state saved in `dataDir` (null when there is none), and a warning when the file was damaged: it
 * is then set aside (NAME.damaged-TIME) so that it stops no start.
 */
export function loadPresence(dataDir: string): { state: PresenceState | null; warning: string | null } {
  const path = join(dataDir, PRESENCE_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: null, warning: null };
    const aside = quarantine(path);
    return { state: null, warning: `${path}: cannot read (${(err as Error).message}); ${aside ? `kept as ${aside}` : 'removed'}, the owner's presence is not known` };
  }
  let state: PresenceState | null = null;
  try {
    state = parsePresenceState(JSON.parse(text));
  } catch {
    // not JSON: damaged, like a value that is not a state
  }
  if (state !== null) return { state, warning: null };
  const aside = quarantine(path);
  return { state: null, warning: `${path}: not a saved presence state; ${aside ? `kept as ${aside}` : 'removed'}, the owner's presence is not known` };
}

/** Saves the state in `dataDir` atomically; throws NotSavedError (the API answers 503) when it cannot. */
export function savePresence(dataDir: string, state: PresenceState): void {
  const path = join(dataDir, PRESENCE_FILE);
  try {
    writeFileAtomic(path, `${JSON.stringify({ away: state.away, since: new Date(state.sinceMs).toISOString(), source: state.source })}\n`);
  } catch (err) {
    throw new NotSavedError(`cannot save the owner's presence in ${path}: ${(err as Error).message}; nothing was changed`);
  }
}
