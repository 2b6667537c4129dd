/**
 * The owner's presence: the weekly schedule (detect.away) read as a person writes it, in local time
 * (the expected instants are worked out by hand from the calendar, time zone offsets included), the live
 * state with its history, the saved file, and the verdict's reason owner-away.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isEarshotError } from '../errors.js';
import { tempDir } from '../../test/helpers/temp.js';
import { NotSavedError } from './journal.js';
import { inAwaySchedule, loadPresence, parseAwaySchedule, Presence, PRESENCE_FILE, savePresence } from './presence.js';
import { decideVerdict, verdictOptions } from './verdict.js';
import { WakeEventStore } from './wake-events.js';

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isEarshotError(err)).toBe(true);
    if (!isEarshotError(err)) return '';
    expect([err.code, err.exitCode]).toEqual(['EARSHOT_ERR_CONFIG_INVALID', 2]);
    return err.message;
  }
  throw new Error('expected an error');
}

// 2024-05-06 is a Monday; Berlin is UTC+2 in May (CEST)
const monday = (hhmm: string, zone = 'Z') => Date.parse(`2024-05-06T${hhmm}:00${zone}`);
const DAY = 86_400_000;

describe('parseAwaySchedule', () => {
  it('reads times, days and day ranges (wrapping the week too)', () => {
    const [plain, weekdays, weekend, wrap, full] = parseAwaySchedule(['08:00-17:30', 'mon-fri 08:00-17:30', 'Saturday-sun 22:00-02:00', 'fri-mon 09:00-10:00', 'tues 9:05-9:10']);
    expect(plain).toMatchObject({ days: null, from: 480, to: 1050, text: '08:00-17:30' });
    expect([...weekdays.days!].sort()).toEqual([1, 2, 3, 4, 5]);
    expect([...weekend.days!].sort()).toEqual([0, 6]);
    expect([weekend.from, weekend.to]).toEqual([1320, 120]);
    expect([...wrap.days!].sort()).toEqual([0, 1, 5, 6]);
    expect([...full.days!]).toEqual([2]);
    expect([full.from, full.to]).toEqual([545, 550]);
  });

  it('a bad entry is one line naming the key, the entry and what is wrong', () => {
    expect(configError(() => parseAwaySchedule(['08:00-17:00', 'weekdays 08:00-17:00']))).toBe('detect.away[1]: "weekdays 08:00-17:00": "weekdays" is not a day (mon, tue, wed, thu, fri, sat, sun)');
    expect(configError(() => parseAwaySchedule(['mon-fr 08:00-17:00']))).toBe('detect.away[0]: "mon-fr 08:00-17:00": "fr" is not a day (mon, tue, wed, thu, fri, sat, sun)');
    expect(configError(() => parseAwaySchedule(['8-17']))).toBe('detect.away[0]: "8-17": not a range such as "08:00-17:30" or "mon-fri 08:00-17:30"');
    expect(configError(() => parseAwaySchedule(['08:00-24:00']))).toBe('detect.away[0]: "08:00-24:00": 24:00 is not a time HH:MM (00:00 to 23:59)');
    expect(configError(() => parseAwaySchedule(['mon 08:00-08:00']))).toBe('detect.away[0]: "mon 08:00-08:00": starts where it ends');
    for (const message of [configError(() => parseAwaySchedule(['x'])), configError(() => parseAwaySchedule(['mon-fri'], '--away'))]) expect(message).not.toContain('\n');
  });
});

describe('inAwaySchedule', () => {
  const schedule = parseAwaySchedule(['mon-fri 08:00-17:30', 'sun 23:00-01:00']);

  it('weekdays in local time: Berlin 08:00 is 06:00 UTC in May', () => {
    expect(inAwaySchedule(monday('06:00'), schedule, 'Europe/Berlin')).toBe(true);
    expect(inAwaySchedule(monday('05:59'), schedule, 'Europe/Berlin')).toBe(false);
    expect(inAwaySchedule(monday('15:29'), schedule, 'Europe/Berlin')).toBe(true);
    expect(inAwaySchedule(monday('15:30'), schedule, 'Europe/Berlin')).toBe(false);
    // read in UTC, 08:00 UTC is inside the range
    expect(inAwaySchedule(monday('08:00'), schedule, 'UTC')).toBe(true);
    // Saturday 10:00 UTC: no weekday range
    expect(inAwaySchedule(monday('10:00') + 5 * DAY, schedule, 'UTC')).toBe(false);
  });

  it('a range past midnight belongs to the day it starts on', () => {
    // Sunday 23:30 and Monday 00:30 (from Sunday's range); Monday 23:30 is not (no Monday night range)
    expect(inAwaySchedule(monday('23:30') - DAY, schedule, 'UTC')).toBe(true);
    expect(inAwaySchedule(monday('00:30'), schedule, 'UTC')).toBe(true);
    expect(inAwaySchedule(monday('23:30'), schedule, 'UTC')).toBe(false);
    expect(inAwaySchedule(monday('00:30') + DAY, schedule, 'UTC')).toBe(false);
  });
});

describe('Presence', () => {
  it('the live state counts from when it was set; later changes do not rewrite the past', () => {
    const presence = new Presence([], 'UTC');
    const t = monday('12:00');
    expect(presence.state).toBeNull();
    expect(presence.awayAt(t)).toBe(false);
    presence.set({ away: true, sinceMs: t, source: 'mqtt' });
    presence.set({ away: false, sinceMs: t + 3_600_000, source: 'api' });
    expect([presence.awayAt(t - 1), presence.awayAt(t), presence.awayAt(t + 3_599_999), presence.awayAt(t + 3_600_000)]).toEqual([false, true, true, false]);
    // the clock went back (a state saved with a wrong clock): the newest word wins, the later changes go
    presence.set({ away: false, sinceMs: t + 10, source: 'api' });
    expect(presence.state).toEqual({ away: false, sinceMs: t + 10, source: 'api' });
    expect([presence.awayAt(t + 5), presence.awayAt(t + 10), presence.awayAt(t + 7_200_000)]).toEqual([true, false, false]);
  });

  it('the schedule adds to the live state: "home" now does not undo a scheduled away time', () => {
    const presence = new Presence(parseAwaySchedule(['08:00-17:00']), 'UTC');
    presence.set({ away: false, sinceMs: monday('07:00'), source: 'api' });
    expect([presence.awayAt(monday('07:30')), presence.awayAt(monday('09:00')), presence.awayAt(monday('18:00'))]).toEqual([false, true, false]);
  });
});

describe('presence.json', () => {
  it('saves atomically and reads back; a damaged file is set aside with one warning', () => {
    const dir = tempDir('earshot-presence-');
    expect(loadPresence(dir)).toEqual({ state: null, warning: null });
    const state = { away: true, sinceMs: monday('12:00'), source: 'mqtt' };
    savePresence(dir, state);
    expect(JSON.parse(readFileSync(join(dir, PRESENCE_FILE), 'utf8'))).toEqual({ away: true, since: '2024-05-06T12:00:00.000Z', source: 'mqtt' });
    expect(loadPresence(dir)).toEqual({ state, warning: null });
    expect(readdirSync(dir)).toEqual([PRESENCE_FILE]);
    // cut by a power loss at every byte, zero-filled (a file whose blocks never reached the disk), wrong shapes
    const saved = readFileSync(join(dir, PRESENCE_FILE), 'utf8');
    const cuts = Array.from({ length: saved.trimEnd().length - 1 }, (_, n) => saved.slice(0, n));
    for (const damaged of [...cuts, '\0'.repeat(saved.length), '{"away": "yes", "since": "2024-05-06T12:00:00Z", "source": "api"}', '[]']) {
      writeFileSync(join(dir, PRESENCE_FILE), damaged);
      const { state: read, warning } = loadPresence(dir);
      expect(read).toBeNull();
      expect(warning).toMatch(/presence\.json: not a saved presence state; kept as .*presence\.json\.damaged-\d+/);
      expect(readdirSync(dir).some((name) => name === PRESENCE_FILE)).toBe(false);
    }
  });

  it('a data directory that cannot take it: NotSavedError (the API answers 503), nothing half written', () => {
    const dir = tempDir('earshot-presence-');
    mkdirSync(join(dir, PRESENCE_FILE));
    expect(() => savePresence(join(dir, 'missing'), { away: true, sinceMs: 0, source: 'api' })).toThrow(NotSavedError);
    // a directory where the file goes: the rename fails, the temporary file goes
    expect(() => savePresence(dir, { away: true, sinceMs: 0, source: 'api' })).toThrow(/cannot save the owner's presence in .*presence\.json: .*nothing was changed/);
    expect(readdirSync(dir)).toEqual([PRESENCE_FILE]);
  });
});

describe('the verdict with the owner away', () => {
  const options = verdictOptions({ quietHours: [{ from: '23:00', to: '07:00' }] });
  const input = (ownerAway: boolean, startMs = monday('12:00')) => ({ device: { mac: 'aa:bb:cc:dd:ee:01', name: 'Kitchen Echo' }, startMs, arbitrationGroup: [], followUp: false, ownerAway });

  it('no wake event while away: still suspected, with the reason owner-away', () => {
    const store = new WakeEventStore({ sourceConfigured: true });
    expect(decideVerdict(input(true), store, options)).toEqual({ verdict: 'suspected', reasons: ['no-wake-event', 'owner-away'], wakeEvent: null });
    expect(decideVerdict(input(false), store, options)).toEqual({ verdict: 'suspected', reasons: ['no-wake-event'], wakeEvent: null });
  });

  it('no source at all: away makes it suspected (nobody home to speak), like quiet hours', () => {
    expect(decideVerdict(input(true), null, options)).toEqual({ verdict: 'suspected', reasons: ['owner-away'], wakeEvent: null });
    expect(decideVerdict(input(true, monday('23:30')), null, options)).toEqual({ verdict: 'suspected', reasons: ['quiet-hours', 'owner-away'], wakeEvent: null });
    expect(decideVerdict(input(false), null, options)).toEqual({ verdict: 'unverified', reasons: [], wakeEvent: null });
  });

  it('a wake event still confirms (someone was home after all); a not-intended record keeps its own reason', () => {
    const store = new WakeEventStore();
    store.add({ time: monday('12:00') - 500, device: 'Kitchen Echo', source: 'test' });
    expect(decideVerdict(input(true), store, options)).toMatchObject({ verdict: 'confirmed', reasons: ['wake-event:test'] });
    const refused = new WakeEventStore();
    refused.add({ time: monday('12:00') - 500, device: 'Kitchen Echo', source: 'amazon-voice-history', intended: false });
    expect(decideVerdict(input(true), refused, options)).toMatchObject({ verdict: 'suspected', reasons: ['voice-history:not-intended'] });
  });
});
