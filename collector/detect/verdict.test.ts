/**
 * The verdict rules, one test per rule: wake event or not, not-intended records, an empty source, no
 * source and quiet hours (across midnight, in a zone with daylight saving), arbitration, follow-ups and
 * timers, and a person's label winning over everything.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isEarshotError } from '../errors.js';
import {
  applyLabel, decideVerdict, inQuietHours, parseQuietHours, verdictOptions, type VerdictInput, type VerdictResult,
} from './verdict.js';
import { WakeEventStore, type WakeEvent } from './wake-events.js';

const T = Date.UTC(2024, 8, 16, 12, 0, 0); // 2024-09-16T12:00:00Z, a Monday noon
const kitchen = { mac: 'aa:bb:cc:00:11:22', name: 'Kitchen Echo' };
const livingRoom = { mac: 'aa:bb:cc:00:11:33', name: 'Living Room Dot' };
const options = verdictOptions();

function input(fields: Partial<VerdictInput> = {}): VerdictInput {
  return { device: kitchen, startMs: T, arbitrationGroup: [], followUp: false, ...fields };
}

function storeOf(...events: WakeEvent[]): WakeEventStore {
  const store = new WakeEventStore({ sourceConfigured: true });
  store.addAll(events);
  return store;
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isEarshotError(err), String(err)).toBe(true);
    if (!isEarshotError(err)) return '';
    expect(err.code).toBe('EARSHOT_ERR_CONFIG_INVALID');
    return err.message;
  }
  throw new Error('expected an error');
}

describe('with a wake-event source', () => {
  it('a wake event for the device shortly before the start confirms', () => {
    const store = storeOf({ time: T - 1200, device: 'Kitchen Echo', source: 'home-assistant' });
    expect(decideVerdict(input(), store, options)).toEqual<VerdictResult>({ verdict: 'confirmed', reasons: ['wake-event:home-assistant'], wakeEvent: T - 1200 });
  });

  it('so does one for no device in particular, and one at the edges of the window', () => {
    expect(decideVerdict(input(), storeOf({ time: T - 5000, device: null, source: 'button' }), options).verdict).toBe('confirmed');
    expect(decideVerdict(input(), storeOf({ time: T + 2000, device: 'aa:bb:cc:00:11:22', source: 'x' }), options).verdict).toBe('confirmed');
  });

  it('no wake event (outside the window, or for another device) makes it suspected', () => {
    const store = storeOf({ time: T - 5001, device: null, source: 'x' }, { time: T + 2001, device: null, source: 'x' }, { time: T, device: 'Living Room Dot', source: 'x' });
    expect(decideVerdict(input(), store, options)).toEqual<VerdictResult>({ verdict: 'suspected', reasons: ['no-wake-event'], wakeEvent: null });
  });

  it('the window comes from the options', () => {
    const store = storeOf({ time: T - 8000, device: null, source: 'x' });
    expect(decideVerdict(input(), store, verdictOptions({ windowBeforeMs: 10_000 })).verdict).toBe('confirmed');
  });

  it('an event saying the audio was not intended is a confirmed false activation', () => {
    const store = storeOf({ time: T + 300, device: 'Kitchen Echo', source: 'amazon-voice-history', intended: false });
    expect(decideVerdict(input(), store, options)).toEqual<VerdictResult>({ verdict: 'suspected', reasons: ['voice-history:not-intended'], wakeEvent: T + 300 });
  });

  it('an empty source means nobody spoke: suspected', () => {
    expect(decideVerdict(input(), new WakeEventStore({ sourceConfigured: true }), options)).toEqual<VerdictResult>({ verdict: 'suspected', reasons: ['no-wake-event'], wakeEvent: null });
  });

  it('quiet hours do not change a verdict that evidence decided', () => {
    const quiet = verdictOptions({ quietHours: parseQuietHours('00:00-23:59') });
    expect(decideVerdict(input(), storeOf({ time: T, device: null, source: 'x' }), quiet).reasons).toEqual(['wake-event:x']);
  });
});

describe('without a source', () => {
  it('is unverified', () => {
    expect(decideVerdict(input(), null, options)).toEqual<VerdictResult>({ verdict: 'unverified', reasons: [], wakeEvent: null });
    // a store nothing was configured for is no source either
    expect(decideVerdict(input(), new WakeEventStore(), options).verdict).toBe('unverified');
  });

  it('is suspected inside quiet hours, also across midnight', () => {
    const night = verdictOptions({ quietHours: parseQuietHours('23:00-07:00') });
    const at = (iso: string): VerdictResult => decideVerdict(input({ startMs: Date.parse(iso) }), null, night);
    expect(at('2024-09-16T23:30:00Z')).toEqual<VerdictResult>({ verdict: 'suspected', reasons: ['quiet-hours'], wakeEvent: null });
    expect(at('2024-09-16T23:00:00Z').verdict).toBe('suspected');
    expect(at('2024-09-17T06:59:59Z').verdict).toBe('suspected');
    expect(at('2024-09-17T07:00:00Z').verdict).toBe('unverified');
    expect(at('2024-09-16T22:59:59Z').verdict).toBe('unverified');
  });
});

describe('quiet hours in a time zone with daylight saving', () => {
  const berlin = verdictOptions({ quietHours: parseQuietHours(['23:00-07:00']), timeZone: 'Europe/Berlin' });
  const quiet = (iso: string, ranges = berlin.quietHours): boolean => inQuietHours(Date.parse(iso), ranges, 'Europe/Berlin');

  it('uses local time: UTC+1 in winter, UTC+2 in summer', () => {
    expect(quiet('2024-01-15T05:30:00Z')).toBe(true); // 06:30 CET
    expect(quiet('2024-01-15T06:00:00Z')).toBe(false); // 07:00 CET
    expect(quiet('2024-07-01T04:30:00Z')).toBe(true); // 06:30 CEST
    expect(quiet('2024-07-01T05:30:00Z')).toBe(false); // 07:30 CEST (06:30 if the offset were fixed)
    expect(quiet('2024-07-01T21:30:00Z')).toBe(true); // 23:30 CEST
    expect(decideVerdict(input({ startMs: Date.parse('2024-07-01T21:30:00Z') }), null, berlin).reasons).toEqual(['quiet-hours']);
  });

  it('an hour skipped by the clock change is never quiet; the repeated one is quiet twice', () => {
    const skipped = parseQuietHours('02:00-03:00');
    expect(quiet('2024-03-31T00:59:00Z', skipped)).toBe(false); // 01:59 CET
    expect(quiet('2024-03-31T01:00:00Z', skipped)).toBe(false); // 03:00 CEST
    expect(quiet('2024-10-27T00:30:00Z', skipped)).toBe(true); // 02:30 CEST
    expect(quiet('2024-10-27T01:30:00Z', skipped)).toBe(true); // 02:30 CET
  });
});

describe('arbitration', () => {
  it('another device confirmed for the same wake word confirms this one', () => {
    const store = storeOf({ time: T - 700, device: 'Living Room Dot', source: 'home-assistant' });
    const result = decideVerdict(input({ arbitrationGroup: [{ device: livingRoom, startMs: T + 150 }] }), store, options);
    expect(result).toEqual<VerdictResult>({ verdict: 'confirmed', reasons: ['arbitration'], wakeEvent: T - 700 });
  });

  it('a member decided elsewhere (a label) counts as it says, with or without a source', () => {
    const group = [{ device: livingRoom, startMs: T, confirmed: true }];
    expect(decideVerdict(input({ arbitrationGroup: group }), null, options)).toEqual<VerdictResult>({ verdict: 'confirmed', reasons: ['arbitration'], wakeEvent: null });
    const store = storeOf({ time: T, device: 'Living Room Dot', source: 'x' });
    expect(decideVerdict(input({ arbitrationGroup: [{ device: livingRoom, startMs: T, confirmed: false }] }), store, options).verdict).toBe('suspected');
  });

  it('no member confirmed: the rule for the device stands', () => {
    const store = storeOf({ time: T, device: 'Living Room Dot', source: 'x', intended: false });
    expect(decideVerdict(input({ arbitrationGroup: [{ device: livingRoom, startMs: T }] }), store, options).reasons).toEqual(['no-wake-event']);
  });

  it("does not overrule the device's own not-intended record", () => {
    const store = storeOf({ time: T, device: 'Kitchen Echo', source: 'v', intended: false }, { time: T, device: 'Living Room Dot', source: 'v' });
    expect(decideVerdict(input({ arbitrationGroup: [{ device: livingRoom, startMs: T }] }), store, options).reasons).toEqual(['voice-history:not-intended']);
  });
});

describe('follow-ups and timers', () => {
  it('keep the verdict and say why there was no wake word', () => {
    const empty = new WakeEventStore({ sourceConfigured: true });
    expect(decideVerdict(input({ followUp: true }), empty, options)).toEqual<VerdictResult>({ verdict: 'suspected', reasons: ['no-wake-event', 'follow-up'], wakeEvent: null });
    expect(decideVerdict(input({ followUp: true }), null, options)).toEqual<VerdictResult>({ verdict: 'unverified', reasons: ['follow-up'], wakeEvent: null });
    expect(decideVerdict(input({ timer: true }), empty, options).reasons).toEqual(['no-wake-event', 'timer']);
  });

  it('need no explanation when a wake event confirmed them', () => {
    const store = storeOf({ time: T, device: null, source: 'x' });
    expect(decideVerdict(input({ followUp: true, timer: true }), store, options).reasons).toEqual(['wake-event:x']);
  });
});

describe('labels', () => {
  const suspected: VerdictResult = { verdict: 'suspected', reasons: ['no-wake-event'], wakeEvent: null };
  const confirmed: VerdictResult = { verdict: 'confirmed', reasons: ['wake-event:x'], wakeEvent: T };

  it("a person's label wins over the detector", () => {
    expect(applyLabel(suspected, 'intended')).toEqual<VerdictResult>({ verdict: 'confirmed', reasons: ['label:intended', 'no-wake-event'], wakeEvent: null });
    expect(applyLabel(confirmed, 'not-intended')).toEqual<VerdictResult>({ verdict: 'suspected', reasons: ['label:not-intended', 'wake-event:x'], wakeEvent: T });
    expect(applyLabel(suspected, null)).toBe(suspected);
    expect(applyLabel(applyLabel(suspected, 'intended'), 'not-intended').reasons).toEqual(['label:not-intended', 'no-wake-event']);
  });

  it('always, whatever the detector said (property)', () => {
    const store = storeOf({ time: T, device: null, source: 'x' }, { time: T + 60_000, device: 'Kitchen Echo', source: 'v', intended: false });
    fc.assert(fc.property(
      fc.integer({ min: T - 120_000, max: T + 120_000 }), fc.boolean(), fc.boolean(), fc.boolean(), fc.constantFrom('intended' as const, 'not-intended' as const),
      (startMs, followUp, timer, withStore, label) => {
        const result = decideVerdict(input({ startMs, followUp, timer }), withStore ? store : null, options);
        expect(['confirmed', 'suspected', 'unverified']).toContain(result.verdict);
        expect(applyLabel(result, label).verdict).toBe(label === 'intended' ? 'confirmed' : 'suspected');
      }));
  });
});

describe('parseQuietHours and verdictOptions', () => {
  it('reads ranges from an array or a comma-separated string', () => {
    expect(parseQuietHours('23:00-07:00, 12:30 - 13:00')).toEqual([{ from: '23:00', to: '07:00' }, { from: '12:30', to: '13:00' }]);
    expect(parseQuietHours(['7:05-8:00'])).toEqual([{ from: '7:05', to: '8:00' }]);
    expect(parseQuietHours('')).toEqual([]);
  });

  it('rejects what is not a range, with one line naming the setting', () => {
    expect(errorOf(() => parseQuietHours('23:00'))).toBe('quietHours: "23:00" is not a range HH:MM-HH:MM such as 23:00-07:00');
    expect(errorOf(() => parseQuietHours(['23:00-24:00'], '--quiet-hours'))).toBe('--quiet-hours: "24:00" in "23:00-24:00" is not a time HH:MM (00:00 to 23:59)');
    expect(errorOf(() => parseQuietHours('22:61-07:00'))).toBe('quietHours: "22:61" in "22:61-07:00" is not a time HH:MM (00:00 to 23:59)');
    expect(errorOf(() => parseQuietHours('07:00-7:00'))).toBe('quietHours: "07:00-7:00" starts where it ends');
  });

  it('fills defaults and rejects an unknown zone or a negative window', () => {
    expect(verdictOptions()).toEqual({ windowBeforeMs: 5000, windowAfterMs: 2000, quietHours: [], timeZone: 'UTC' });
    expect(errorOf(() => verdictOptions({ timeZone: 'Mars/Olympus' }))).toBe('detect.timeZone: "Mars/Olympus" is not an IANA time zone such as Europe/Berlin');
    expect(errorOf(() => verdictOptions({ windowAfterMs: -1 }))).toBe('windowAfterMs: -1 is not a duration in ms (0 or more)');
    expect(errorOf(() => verdictOptions({ quietHours: [{ from: '25:00', to: '01:00' }] }))).toContain('"25:00"');
  });

  it('never throws anything but a coded error (property)', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.array(fc.string())), (spec) => {
      try {
        parseQuietHours(spec);
      } catch (err) {
        if (!isEarshotError(err)) throw err;
      }
    }));
  });
});
