import { describe, expect, it } from 'vitest';
import { LocalDays } from './local-day.js';

describe('LocalDays', () => {
  it('gives UTC days in UTC', () => {
    const day = new LocalDays('UTC').dayOf(Date.parse('2024-05-01T13:45:00Z'));
    expect(day).toEqual({ key: '2024-05-01', startMs: Date.parse('2024-05-01T00:00:00Z'), endMs: Date.parse('2024-05-02T00:00:00Z'), startIso: '2024-05-01T00:00:00+00:00' });
  });

  it('computes UTC days without Intl exactly as Intl does for a zone equal to UTC', () => {
    // 'UTC' takes the arithmetic path; 'Etc/GMT' (the same zone) goes through Intl.DateTimeFormat
    const plain = new LocalDays('UTC');
    const viaIntl = new LocalDays('Etc/GMT');
    for (let ms = Date.parse('1999-12-31T23:59:59Z'); ms < Date.parse('2001-03-02T00:00:00Z'); ms += 3_599_999) {
      expect(plain.dayOf(ms)).toEqual(viaIntl.dayOf(ms));
      expect(plain.isoLocal(ms)).toBe(viaIntl.isoLocal(ms));
    }
  });

  it('starts the day at local midnight, also on the days clocks change (23 and 25 hours)', () => {
    const days = new LocalDays('Europe/Berlin');
    const spring = days.dayOf(Date.parse('2024-03-31T12:00:00Z'));
    expect(spring.key).toBe('2024-03-31');
    expect(spring.startIso).toBe('2024-03-31T00:00:00+01:00');
    expect(spring.endMs - spring.startMs).toBe(23 * 3600_000);
    const autumn = days.dayOf(Date.parse('2024-10-27T12:00:00Z'));
    expect(autumn.startIso).toBe('2024-10-27T00:00:00+02:00');
    expect(autumn.endMs - autumn.startMs).toBe(25 * 3600_000);
    // just before local midnight it is still the day before
    expect(days.dayOf(Date.parse('2024-05-01T21:59:59Z')).key).toBe('2024-05-01');
    expect(days.dayOf(Date.parse('2024-05-01T22:00:00Z')).key).toBe('2024-05-02');
  });

  it('starts a day whose midnight falls in a DST gap at the first instant it has', () => {
    // America/Santiago: 2024-09-08 00:00 -04:00 became 01:00 -03:00
    const day = new LocalDays('America/Santiago').dayOf(Date.parse('2024-09-08T12:00:00Z'));
    expect(day.key).toBe('2024-09-08');
    expect(day.startMs).toBe(Date.parse('2024-09-08T04:00:00Z'));
    expect(day.startIso).toBe('2024-09-08T01:00:00-03:00');
  });

  it('refuses an unknown time zone as a configuration error', () => {
    expect(() => new LocalDays('Mars/Olympus')).toThrow(/detect.timeZone: "Mars\/Olympus" is not an IANA time zone/);
  });
});
