/**
 * Wake-event files (JSON Lines and CSV) and the store: every accepted form, every error with its exact
 * one-line message, the store's window, closest match, device-or-any matching and bound; fuzzing for
 * "nothing but an EarshotError ever escapes".
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isEarshotError } from '../errors.js';
import { PROJECT_ROOT } from '../../test/helpers/shared.js';
import { WakeEventStore, normalizeDevice, parseWakeEvents, readWakeEventsFile, type WakeEvent } from './wake-events.js';

const FIXTURES = join(PROJECT_ROOT, 'test/fixtures/wake-events');
const scratch = mkdtempSync(join(tmpdir(), 'earshot-wake-events-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const T = Date.UTC(2024, 8, 16, 7, 0, 0); // 2024-09-16T07:00:00Z

/** The one-line message of the coded error `fn` throws (fails when it throws anything else). */
function errorOf(fn: () => unknown, code = 'EARSHOT_ERR_WAKE_EVENTS'): string {
  try {
    fn();
  } catch (err) {
    expect(isEarshotError(err), String(err)).toBe(true);
    if (!isEarshotError(err)) return '';
    expect(err.code).toBe(code);
    expect(err.exitCode).toBe(2);
    expect(err.message).not.toContain('\n');
    return err.message;
  }
  throw new Error('expected an error');
}

const jsonl = (...lines: string[]): string => lines.join('\n');
const timeOf = (value: unknown): number => parseWakeEvents(JSON.stringify({ time: value }), 'e.jsonl')[0].time;

describe('JSON Lines', () => {
  it('reads the fixture: zones, epoch s and ms, MACs, no device, intended, comments and blank lines', () => {
    expect(readWakeEventsFile(join(FIXTURES, 'events.jsonl'))).toEqual<WakeEvent[]>([
      { time: T + 120, device: 'Kitchen Echo', source: 'home-assistant' },
      { time: T + 600_000, device: 'aa:bb:cc:00:11:22', source: 'home-assistant' },
      { time: T + 4_200_000, device: null, source: 'button', intended: true },
      { time: T + 3_600_000, device: 'Kitchen Echo', source: 'label', intended: false },
    ]);
  });

  it('reads ISO 8601 times in every zone form and epoch numbers', () => {
    expect(timeOf('2024-09-16T07:00:00Z')).toBe(T);
    expect(timeOf('2024-09-16t07:00:00z')).toBe(T);
    expect(timeOf('2024-09-16 09:00:00+02:00')).toBe(T);
    expect(timeOf('2024-09-16T09:00+0200')).toBe(T);
    expect(timeOf('2024-09-16T02:30:00-04:30')).toBe(T);
    expect(timeOf('2024-09-16T09:00:00.123456+02')).toBe(T + 123);
    expect(timeOf('2024-09-16T07:00:00,5Z')).toBe(T + 500);
    expect(timeOf(T / 1000)).toBe(T);
    expect(timeOf(T / 1000 + 0.25)).toBe(T + 250);
    expect(timeOf(T)).toBe(T);
    expect(timeOf(String(T))).toBe(T);
    expect(timeOf(100_000_000_000)).toBe(100_000_000_000); // 1e11 and above: ms (1973)
    expect(timeOf(99_999_999)).toBe(99_999_999_000); // below: seconds (1973)
  });

  it('takes the file name as source when none is given, and ignores unknown keys', () => {
    expect(parseWakeEvents('{"time": 1726470000, "room": "kitchen", "device": ""}', '/x/y/mine.jsonl')).toEqual([
      { time: T, device: null, source: 'mine.jsonl' },
    ]);
    expect(parseWakeEvents('{"time": 1726470000}', '-')[0].source).toBe('stdin');
  });

  it('drops a byte-order mark and reads CRLF lines', () => {
    expect(parseWakeEvents('\uFEFF{"time": 1726470000}\r\n{"time": 1726470001}\r\n', 'e.jsonl').map((e) => e.time)).toEqual([T, T + 1000]);
  });

  it('names file, line and field in one line for every bad value', () => {
    const cases: Array<[string, string]> = [
      [jsonl('{"time": "yesterday"}'), 'e.jsonl:1: time: "yesterday" is not an ISO 8601 time or epoch number'],
      [jsonl('# c', '', '{"time": "2024-09-16T07:00:00"}'), 'e.jsonl:3: time: "2024-09-16T07:00:00" has no time zone (add Z or an offset such as +01:00)'],
      [jsonl('{"time": 1}', '{"device": "x"}'), 'e.jsonl:2: time: missing'],
      [jsonl('{"time": 1726470000}', '{"time": 1726470000'), 'e.jsonl:2: not valid JSON (each line must be one JSON object)'],
      [jsonl('{"time": 1726470000}', '[1]'), 'e.jsonl:2: not a JSON object'],
      ['{"time": 1726470000, "device": 42}', 'e.jsonl:1: device: 42 is not a MAC address or device name'],
      ['{"time": 1726470000, "intended": "maybe"}', 'e.jsonl:1: intended: "maybe" is not true or false'],
      ['{"time": 1726470000, "intended": ""}', 'e.jsonl:1: intended: "" is neither true nor false (leave the field out when it is not known)'],
      ['{"time": 1726470000, "source": 7}', 'e.jsonl:1: source: 7 is not a string'],
      ['{"time": true}', 'e.jsonl:1: time: true is not an ISO 8601 time or epoch number'],
      ['{"time": "2024-02-30T07:00:00Z"}', 'e.jsonl:1: time: "2024-02-30T07:00:00Z" is not a valid date and time'],
      ['{"time": "2024-09-16T24:00:00Z"}', 'e.jsonl:1: time: "2024-09-16T24:00:00Z" is not a valid date and time'],
      ['{"time": "2024-09-16T07:00:00+25:00"}', 'e.jsonl:1: time: "2024-09-16T07:00:00+25:00" has an impossible offset'],
      ['{"time": "1969-12-31T23:59:59Z"}', 'e.jsonl:1: time: "1969-12-31T23:59:59Z" is out of range'],
      ['{"time": "2024-09-16"}', 'e.jsonl:1: time: "2024-09-16" is not an ISO 8601 time or epoch number'],
      ['{"time": 1726470000000000}', 'e.jsonl:1: time: 1726470000000000 is out of range (epoch seconds or milliseconds expected)'],
      ['{"time": -5}', 'e.jsonl:1: time: -5 is out of range (epoch seconds or milliseconds expected)'],
      [`{"time": "${'x'.repeat(100)}"}`, `e.jsonl:1: time: "${'x'.repeat(56)}... is not an ISO 8601 time or epoch number`],
    ];
    for (const [text, message] of cases) expect(errorOf(() => parseWakeEvents(text, 'e.jsonl'))).toBe(message);
  });
});

describe('CSV', () => {
  it('reads the fixture: CRLF, columns in any order, quotes, an extra column, a comment, no device', () => {
    expect(readWakeEventsFile(join(FIXTURES, 'events.csv'))).toEqual<WakeEvent[]>([
      { time: T, device: 'Kitchen Echo', source: 'events.csv' },
      { time: T + 600_500, device: 'aa:bb:cc:00:11:22', source: 'events.csv', intended: true },
      { time: T, device: null, source: 'events.csv', intended: true },
    ]);
  });

  it('matches header names case-insensitively, reads quoted line breaks and takes missing optional columns', () => {
    const text = '\uFEFF Time ,Source,Device\n"2024-09-16T07:00:00Z","a ""quoted"", source","Echo\nDot"\n1726470001,,\n';
    expect(parseWakeEvents(text, 'e.csv')).toEqual([
      { time: T, device: 'Echo\nDot', source: 'a "quoted", source' },
      { time: T + 1000, device: null, source: 'e.csv' },
    ]);
    expect(parseWakeEvents('time\n', 'e.csv')).toEqual([]);
  });

  it('counts lines from where a record starts, across quoted line breaks', () => {
    expect(errorOf(() => parseWakeEvents('time,device\n1726470000,"a\nb"\nlater,x\n', 'e.csv'))).toBe(
      'e.csv:4: time: "later" is not an ISO 8601 time or epoch number');
  });

  it('names file, line and problem for every bad row', () => {
    const cases: Array<[string, string]> = [
      ['time,device\n1,a\n1726470000,a\n\n\n\nyesterday,a\n', 'e.csv:7: time: "yesterday" is not an ISO 8601 time or epoch number'],
      ['when,device\n1726470000,a\n', 'e.csv:1: header: no "time" column (found "when", "device"); a JSON Lines file must start with {'],
      ['time,device\n1726470000,Kitchen, Echo\n', 'e.csv:2: 3 fields, the header has 2 (quote fields that contain commas)'],
      ['time,device\n1726470000,"Kitchen\n', 'e.csv:2: field 2: a quoted field is never closed'],
      ['time,device\n"1726470000"x,a\n', 'e.csv:2: field 1: text after a closing quote'],
      ['time,Time\n1,2\n', 'e.csv:1: header: column "Time" appears twice'],
      ['time,device\n,a\n', 'e.csv:2: time: missing'],
      ['time,intended\n1726470000,perhaps\n', 'e.csv:2: intended: "perhaps" is not true or false'],
      ['time\r\n2024-09-16 07:00\r\n', 'e.csv:2: time: "2024-09-16 07:00" has no time zone (add Z or an offset such as +01:00)'],
    ];
    for (const [text, message] of cases) expect(errorOf(() => parseWakeEvents(text, 'e.csv'))).toBe(message);
  });
});

describe('files', () => {
  it('an empty file, or one with only comments, is zero events: nobody spoke', () => {
    for (const text of ['', '\n\n', '# nothing yet\n', '\uFEFF']) expect(parseWakeEvents(text, 'e')).toEqual([]);
  });

  it('reads UTF-16 with a byte-order mark (spreadsheet "Unicode text")', () => {
    const path = join(scratch, 'utf16.csv');
    writeFileSync(path, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('time,device\r\n1726470000,Küche\r\n', 'utf16le')]));
    expect(readWakeEventsFile(path)).toEqual([{ time: T, device: 'Küche', source: 'utf16.csv' }]);
  });

  it('a missing file or a directory is a coded error naming it', () => {
    const missing = join(scratch, 'nope.jsonl');
    expect(errorOf(() => readWakeEventsFile(missing), 'EARSHOT_ERR_FILE_NOT_FOUND')).toBe(`${missing}: no such file`);
    expect(errorOf(() => readWakeEventsFile(scratch), 'EARSHOT_ERR_FILE_IS_DIRECTORY')).toContain(scratch);
  });

  it('normalises MACs in every common spelling and leaves names alone', () => {
    for (const mac of ['AA:BB:CC:00:11:22', 'aa-bb-cc-00-11-22', 'AABB.CC00.1122', 'aabbcc001122', ' aa:bb:cc:00:11:22 ']) {
      expect(normalizeDevice(mac)).toBe('aa:bb:cc:00:11:22');
    }
    expect(normalizeDevice('aa:bb-cc:00:11:22')).toBe('aa:bb-cc:00:11:22');
    expect(normalizeDevice(' Kitchen Echo ')).toBe('Kitchen Echo');
    expect(normalizeDevice('  ')).toBeNull();
  });
});

describe('WakeEventStore', () => {
  const kitchen = { mac: 'aa:bb:cc:00:11:22', name: 'Kitchen Echo' };
  const event = (time: number, device: string | null, source = 's'): WakeEvent => ({ time, device, source });

  it('keeps events sorted when they arrive out of order', () => {
    const store = new WakeEventStore();
    for (const time of [5, 1, 3, 3, 9, 0]) store.add(event(time, null, String(time)));
    store.addAll([event(4, null), event(2, null)]);
    expect(store.list().map((e) => e.time)).toEqual([0, 1, 2, 3, 3, 4, 5, 9]);
  });

  it('finds the closest event in [start - before, start + after], edges included', () => {
    const store = new WakeEventStore();
    store.addAll([event(T - 5001, null, 'too-early'), event(T - 5000, null, 'edge-before'), event(T + 2000, null, 'edge-after'), event(T + 2001, null, 'too-late')]);
    expect(store.findFor(kitchen, T, 5000, 2000)?.source).toBe('edge-after');
    expect(store.findFor(kitchen, T - 3000, 5000, 2000)?.source).toBe('edge-before');
    expect(store.findFor(kitchen, T, 4999, 1999)).toBeNull();
    store.add(event(T - 300, null, 'closest'));
    expect(store.findFor(kitchen, T, 5000, 2000)?.source).toBe('closest');
  });

  it('matches the device by MAC or name (any case) or an event for no device; never another device', () => {
    const store = new WakeEventStore();
    store.addAll([event(T - 100, 'Living Room Dot', 'other'), event(T - 2000, 'KITCHEN ECHO', 'name'), event(T - 3000, 'aa:bb:cc:00:11:22', 'mac')]);
    expect(store.findFor(kitchen, T, 5000, 2000)?.source).toBe('name');
    expect(store.findFor({ mac: 'AA-BB-CC-00-11-22', name: null }, T, 5000, 2000)?.source).toBe('mac');
    expect(store.findFor({ mac: '11:11:11:11:11:11', name: 'Bedroom' }, T, 5000, 2000)).toBeNull();
    store.add(event(T - 1000, null, 'any'));
    expect(store.findFor({ mac: '11:11:11:11:11:11', name: 'Bedroom' }, T, 5000, 2000)?.source).toBe('any');
    expect(store.findFor(kitchen, T, 5000, 2000)?.source).toBe('any');
  });

  it('at equal distance prefers an event before the start, then one naming the device', () => {
    const store = new WakeEventStore();
    store.addAll([event(T + 500, 'Kitchen Echo', 'after'), event(T - 500, null, 'before-any')]);
    expect(store.findFor(kitchen, T, 5000, 2000)?.source).toBe('before-any');
    store.add(event(T - 500, 'Kitchen Echo', 'before-own'));
    expect(store.findFor(kitchen, T, 5000, 2000)?.source).toBe('before-own');
  });

  it('is bounded: the oldest go first and are counted, also for a late event older than all', () => {
    const store = new WakeEventStore({ capacity: 3 });
    for (const time of [10, 20, 30, 40]) store.add(event(time, null));
    expect(store.list().map((e) => e.time)).toEqual([20, 30, 40]);
    store.add(event(5, null));
    expect(store.list().map((e) => e.time)).toEqual([20, 30, 40]);
    store.addAll([event(50, null), event(35, null)]);
    expect(store.list().map((e) => e.time)).toEqual([35, 40, 50]);
    expect(store.dropped).toBe(4);
    expect(store.size).toBe(3);
  });

  it('tells an empty configured source from no source', () => {
    expect(new WakeEventStore().sourceConfigured).toBe(false);
    expect(new WakeEventStore({ sourceConfigured: true }).sourceConfigured).toBe(true);
    const store = new WakeEventStore();
    store.addAll([]);
    expect(store.sourceConfigured).toBe(true);
    expect(store.size).toBe(0);
  });
});

describe('fuzzing: nothing but an EarshotError escapes', () => {
  const onlyCodedErrors = (text: string): boolean => {
    try {
      const events = parseWakeEvents(text, 'fuzz');
      for (const e of events) expect(Number.isFinite(e.time)).toBe(true);
    } catch (err) {
      if (!isEarshotError(err)) throw err;
      expect(err.message).not.toContain('\n');
    }
    return true;
  };

  it('random text', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), onlyCodedErrors), { numRuns: 2000 });
  });

  it('CSV-like text', () => {
    const cell = fc.oneof(fc.constantFrom('time', 'device', 'intended', 'source', '"', '""', ',', '\r\n', '\n', '#', '1726470000', '2024-09-16T07:00:00Z', 'yes'), fc.string({ maxLength: 6 }));
    fc.assert(fc.property(fc.array(cell, { maxLength: 40 }).map((cells) => cells.join('')), onlyCodedErrors), { numRuns: 2000 });
  });

  it('JSON Lines with random values in every field', () => {
    const line = fc.record({ time: fc.oneof(fc.jsonValue(), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())), device: fc.jsonValue(), source: fc.jsonValue(), intended: fc.jsonValue() }, { requiredKeys: [] });
    fc.assert(fc.property(fc.array(line, { minLength: 1, maxLength: 5 }), (lines) => onlyCodedErrors(lines.map((l) => JSON.stringify(l)).join('\n'))), { numRuns: 1000 });
  });
});
