/**
 * The voice-history importer against fixtures shaped like Amazon's responses (see the fixtures'
 * README for where each shape comes from): Amazon's verdicts become wake events, transcripts are never
 * kept, every bad input is one coded line, and the written file reads back as the same events.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { isEarshotError } from '../errors.js';
import { PROJECT_ROOT } from '../../test/helpers/shared.js';
import { classifyStatus, importVoiceHistory, parseUtteranceId, parseVoiceHistory, PAUSED_WAKE_SOURCE, VOICE_HISTORY_SOURCE } from './voice-history.js';
import { parseWakeEvents, readWakeEventsFile, type WakeEvent } from './wake-events.js';

const FIXTURES = join(PROJECT_ROOT, 'test/fixtures/wake-events');
const scratch = mkdtempSync(join(tmpdir(), 'earshot-voice-history-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const T = Date.UTC(2024, 8, 16, 7, 0, 0); // 2024-09-16T07:00:00Z
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const S = VOICE_HISTORY_SOURCE;

/** errorOf for a function that returns a promise. */
async function errorOfAsync(fn: () => Promise<unknown>, code = 'EARSHOT_ERR_VOICE_HISTORY'): Promise<string> {
  let failure: unknown = null;
  try {
    await fn();
  } catch (err) {
    failure = err;
  }
  return errorOf(() => {
    if (failure === null) return;
    throw failure;
  }, code);
}

function errorOf(fn: () => unknown, code = 'EARSHOT_ERR_VOICE_HISTORY'): string {
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

/** Every transcriptText and description summary in a fixture: none may survive an import. */
function transcriptsOf(json: string): string[] {
  const found: string[] = [];
  JSON.parse(json, (key, value: unknown) => {
    if (key === 'transcriptText' && typeof value === 'string' && value.length > 0) found.push(value);
    if (key === 'description' && typeof value === 'string') {
      const summary = (JSON.parse(value) as { summary: string }).summary;
      if (summary) found.push(summary);
    }
    return value;
  });
  return found;
}

const RVH_EVENTS: WakeEvent[] = [
  { time: T, device: 'Kitchen Echo', source: S, intended: true },
  { time: T + 600_000, device: 'Living Room Dot', source: S, intended: true },
  { time: T + 600_037, device: 'Kitchen Echo', source: `${S}:arbitration`, intended: true },
  { time: T + 3_599_997, device: 'Kitchen Echo', source: S, intended: false },
  { time: T + 5_399_998, device: 'Living Room Dot', source: `${S}:FALSE_WAKE_WORD_1P`, intended: false },
  { time: T + 7_200_000, device: 'Kitchen Echo', source: `${S}:WAKE_WORD_ONLY`, intended: true },
];

describe('Review Voice History JSON (customer-history-records)', () => {
  it("maps each record's utteranceType and takes the time the person spoke (the earliest item)", () => {
    expect(parseVoiceHistory(fixture('voice-history-rvh.json'), 'rvh.json')).toEqual(RVH_EVENTS);
  });

  it('reads the same records one per line (JSON Lines) and as an array of pages or of records', () => {
    const page = JSON.parse(fixture('voice-history-rvh.json')) as { customerHistoryRecords: unknown[] };
    const lines = page.customerHistoryRecords.map((r) => JSON.stringify(r)).join('\n');
    expect(parseVoiceHistory(lines, 'rvh.jsonl')).toEqual(RVH_EVENTS);
    const halves = [{ customerHistoryRecords: page.customerHistoryRecords.slice(0, 2) }, { customerHistoryRecords: page.customerHistoryRecords.slice(2) }];
    expect(parseVoiceHistory(JSON.stringify(halves), 'pages.json')).toEqual(RVH_EVENTS);
    expect(parseVoiceHistory(JSON.stringify(page.customerHistoryRecords), 'records.json')).toEqual(RVH_EVENTS);
    expect(parseVoiceHistory('{"customerHistoryRecords": [], "encodedRequestToken": null}', 'empty.json')).toEqual([]);
  });

  it('falls back to the serial number in recordKey, and to the record time when items have none', () => {
    const record = { recordKey: 'C#1726470000000#A4ZXE0RM7LQ7A#G090XX0000000009', timestamp: T, device: { deviceName: null }, utteranceType: 'GENERAL', voiceHistoryRecordItems: [] };
    expect(parseVoiceHistory(JSON.stringify({ customerHistoryRecords: [record] }), 'h.json')).toEqual([
      { time: T, device: 'G090XX0000000009', source: S, intended: true },
    ]);
  });
});

describe('older /api/activities JSON', () => {
  it('reads activityStatus, and domainAttributes for the arbitration loser and false wake words', () => {
    expect(parseVoiceHistory(fixture('voice-history-activities.json'), 'a.json')).toEqual<WakeEvent[]>([
      { time: T + 7_200_000, device: 'G090XX0000000001', source: S, intended: true },
      { time: T + 3_600_022, device: 'G090XX0000000002', source: `${S}:arbitration`, intended: true },
      { time: T + 3_600_000, device: 'G090XX0000000001', source: S, intended: true },
      { time: T + 1_800_000, device: 'G090XX0000000002', source: S, intended: false },
      { time: T + 900_000, device: 'G090XX0000000001', source: S, intended: true },
      { time: T + 600_000, device: 'G090XX0000000002', source: `${S}:FALSE_WAKE_WORD_1P`, intended: false },
    ]);
  });
});

describe('CSV exports', () => {
  it('takes header names in any spelling and the status as the app words it', () => {
    expect(parseVoiceHistory(fixture('voice-history.csv'), 'h.csv')).toEqual<WakeEvent[]>([
      { time: T, device: 'Kitchen Echo', source: S, intended: true },
      { time: T + 600_000, device: 'Living Room Dot', source: S, intended: false },
      { time: T + 600_037, device: 'Kitchen Echo', source: `${S}:arbitration`, intended: true },
      { time: T + 7_200_000, device: 'Kitchen Echo', source: S, intended: true },
    ]);
    expect(parseVoiceHistory('Date,Serial Number,Utterance Type\r\n1726470000,G090XX0000000001,FALSE_WAKE_WORD_1P\r\n', 'h.csv')).toEqual([
      { time: T, device: 'G090XX0000000001', source: `${S}:FALSE_WAKE_WORD_1P`, intended: false },
    ]);
  });

  it('is strict about rows: one line naming file, line and column', () => {
    const cases: Array<[string, string]> = [
      ['Timestamp,Device\n1726470000,Echo\nyesterday,Echo\n', 'h.csv:3: Timestamp: "yesterday" is not an ISO 8601 time or epoch number'],
      ['Timestamp,Device\n2024-09-16 09:00:00,Echo\n', 'h.csv:2: Timestamp: "2024-09-16 09:00:00" has no time zone (add Z or an offset such as +01:00)'],
      ['Timestamp,Device Name\n1726470000,\n', 'h.csv:2: Device Name: missing'],
      ['Timestamp,Device\n,Echo\n', 'h.csv:2: Timestamp: missing'],
      ['Timestamp,Device\n1726470000,Echo,alexa, stop\n', 'h.csv:2: 4 fields, the header has 2 (quote fields that contain commas)'],
      ['Device,Transcript\nEcho,hi\n', 'h.csv:1: header: no time column (Timestamp or Date; found "Device", "Transcript")'],
      ['Timestamp,Transcript\n1726470000,hi\n', 'h.csv:1: header: no device column (Device or Device Name; found "Timestamp", "Transcript")'],
    ];
    for (const [text, message] of cases) expect(errorOf(() => parseVoiceHistory(text, 'h.csv'))).toBe(message);
  });
});

describe('bad JSON', () => {
  it('names the file and the line or the record, never the text around the error', () => {
    const record = (fields: object): string => JSON.stringify({ customerHistoryRecords: [{ recordKey: 'a#1#b#c', device: { deviceName: 'Echo' }, utteranceType: 'GENERAL', ...fields }] });
    const cases: Array<[string, string]> = [
      ['{\n  "customerHistoryRecords": [\n    {"transcriptText": "secret words" oops}\n]}', 'h.json:3: not valid JSON'],
      ['{"customerHistoryRecords": [', 'h.json:1: not valid JSON'],
      ['{"records": []}', 'h.json: no "customerHistoryRecords" or "activities" array: not an Alexa voice-history export'],
      ['[1, 2]', 'h.json: [0]: not a voice-history record (a number)'],
      [record({}), 'h.json: customerHistoryRecords[0]: timestamp: missing'],
      [record({ timestamp: 'noon' }), 'h.json: customerHistoryRecords[0]: timestamp: "noon" is not an ISO 8601 time or epoch number'],
      [JSON.stringify({ customerHistoryRecords: [{ timestamp: T, utteranceType: 'GENERAL' }] }), 'h.json: customerHistoryRecords[0]: device: missing (no device.deviceName nor a serial number)'],
      [JSON.stringify({ activities: [null] }), 'h.json: activities[0]: not a voice-history record (null)'],
      [JSON.stringify({ customerHistoryRecords: [['secret']] }), 'h.json: customerHistoryRecords[0]: not a voice-history record (a list)'],
      [`{"recordKey": "a#1#b#c", "timestamp": ${T}, "device": {"deviceName": "Echo"}}\n{"recordKey": "x"}`, 'h.json:2: timestamp: missing'],
      [`{"recordKey": "a#1#b#c", "timestamp": ${T}, "device": {"deviceName": "Echo"}}\n{"what": 1}`, 'h.json:2: no "customerHistoryRecords" or "activities" array: not an Alexa voice-history export'],
      [`{"recordKey": "a#1#b#c", "timestamp": ${T}, "device": {"deviceName": "Echo"}}\n{oops`, 'h.json:2: not valid JSON (a JSON Lines file has one record per line)'],
    ];
    for (const [text, message] of cases) {
      const error = errorOf(() => parseVoiceHistory(text, 'h.json'));
      expect(error).toBe(message);
      expect(error).not.toContain('secret');
    }
  });
});

describe('a pause after the wake word (a "not intended" /0 turn before the request)', () => {
  // read from the fixture by hand: each record's utteranceType, its spoken item's time and utterance id
  const PAUSED_EVENTS: WakeEvent[] = [
    { time: T + 2_405_000, device: 'Living Room Dot', source: S, intended: false }, // /1 not intended either
    { time: T + 2_400_000, device: 'Living Room Dot', source: S, intended: false }, // ... so its /0 stays
    { time: T + 1_803_000, device: 'Living Room Dot', source: S, intended: true }, // /1 on another device
    { time: T + 1_800_000, device: 'Kitchen Echo', source: S, intended: false }, // ... does not fold this /0
    { time: T + 1_290_000, device: 'Kitchen Echo', source: S, intended: true }, // /1 90 s later
    { time: T + 1_200_000, device: 'Kitchen Echo', source: S, intended: false }, // ... too late to fold
    { time: T + 600_000, device: 'Living Room Dot', source: S, intended: false }, // a false wake, alone
    { time: T + 4_200, device: 'Kitchen Echo', source: S, intended: true }, // the request (/1)
    { time: T, device: 'Kitchen Echo', source: PAUSED_WAKE_SOURCE, intended: true }, // its /0: the wake word
  ];

  it('folds a /0 that the same device\'s request followed within a minute; every other /0 stays not intended', () => {
    expect(parseVoiceHistory(fixture('voice-history-paused.json'), 'p.json')).toEqual(PAUSED_EVENTS);
  });

  it('counts the folded turns, and they are intended events in the written file', async () => {
    const output = join(scratch, 'paused.jsonl');
    expect(await importVoiceHistory(join(FIXTURES, 'voice-history-paused.json'), output)).toEqual({ records: 9, intended: 4, notIntended: 5, arbitration: 0, pausedWakes: 1 });
    const written = readWakeEventsFile(output);
    expect(written[0]).toEqual({ time: T, device: 'Kitchen Echo', source: PAUSED_WAKE_SOURCE, intended: true });
    expect(readFileSync(output, 'utf8')).not.toMatch(/weather|alexa"|light|something/);
  });

  it('reads the turn from the older feed (description.firstUtteranceId) and from a CSV column', () => {
    const dialog = 'A4ZXE0RM7LQ7A:1.0/2024/09/16/07/G090XX0000000001/00:00::TNIH_2V.00000000-0000-0000-0000-000000000007ZXV';
    const activity = (time: number, status: string, turn: number) => ({
      activityStatus: status, creationTimestamp: time, sourceDeviceIds: [{ serialNumber: 'G090XX0000000001', deviceType: 'A4ZXE0RM7LQ7A' }],
      description: JSON.stringify({ summary: turn === 0 ? 'alexa' : 'stop', firstUtteranceId: `${dialog}/${turn}`, firstStreamId: dialog }), utteranceId: dialog,
    });
    expect(parseVoiceHistory(JSON.stringify({ activities: [activity(T + 3000, 'SUCCESS', 1), activity(T, 'DISCARDED_NON_DEVICE_DIRECTED_INTENT', 0)] }), 'a.json')).toEqual([
      { time: T + 3000, device: 'G090XX0000000001', source: S, intended: true },
      { time: T, device: 'G090XX0000000001', source: PAUSED_WAKE_SOURCE, intended: true },
    ]);
    const csv = `Timestamp,Device,Status,Utterance Id\n${T / 1000},Echo,Audio was not intended for Alexa,${dialog}/0\n${T / 1000 + 5},Echo,SUCCESS,${dialog}/1\n${T / 1000 + 600},Echo,Audio was not intended for Alexa,x/0\n`;
    expect(parseVoiceHistory(csv, 'h.csv')).toEqual([
      { time: T, device: 'Echo', source: PAUSED_WAKE_SOURCE, intended: true },
      { time: T + 5000, device: 'Echo', source: S, intended: true },
      { time: T + 600_000, device: 'Echo', source: S, intended: false },
    ]);
  });

  it('reads an utterance id\'s turn; ids without one name no dialog', () => {
    expect(parseUtteranceId('A:1.0/2024/SERIAL/00:00::TNIH_2V.abcZXV/0')).toEqual({ dialog: 'A:1.0/2024/SERIAL/00:00::TNIH_2V.abcZXV', turn: 0 });
    expect(parseUtteranceId(' x/12 ')).toEqual({ dialog: 'x', turn: 12 });
    for (const id of ['A:1.0/2024/SERIAL/00:00::TNIH_2V.abcLPM', '/0', null, 7, 'x/', 'x/1234']) expect(parseUtteranceId(id)).toBeNull();
  });
});

describe('classifyStatus', () => {
  it('maps every status Amazon is known to use', () => {
    expect(classifyStatus('SUCCESS')).toEqual({ intended: true, source: S, arbitration: false });
    expect(classifyStatus('FAULT')).toEqual({ intended: true, source: S, arbitration: false });
    expect(classifyStatus('GENERAL')).toEqual({ intended: true, source: S, arbitration: false });
    expect(classifyStatus(null)).toEqual({ intended: true, source: S, arbitration: false });
    expect(classifyStatus('DISCARDED_NON_DEVICE_DIRECTED_INTENT')).toEqual({ intended: false, source: S, arbitration: false });
    expect(classifyStatus('Audio was not intended for Alexa')).toEqual({ intended: false, source: S, arbitration: false });
    expect(classifyStatus('DEVICE_ARBITRATION')).toEqual({ intended: true, source: `${S}:arbitration`, arbitration: true });
    expect(classifyStatus('DISCARDED_NON_DEVICE_DIRECTED_INTENT', 'DEVICE_ARBITRATION')).toEqual({ intended: true, source: `${S}:arbitration`, arbitration: true });
    expect(classifyStatus('DISCARDED_NON_DEVICE_DIRECTED_INTENT', 'FALSE_WAKE_WORD_1P')).toEqual({ intended: false, source: `${S}:FALSE_WAKE_WORD_1P`, arbitration: false });
    expect(classifyStatus('wake word only')).toEqual({ intended: true, source: `${S}:WAKE_WORD_ONLY`, arbitration: false });
  });
});

describe('importVoiceHistory', () => {
  it('writes the wake-event file format, returns the counts and keeps no transcript', async () => {
    const output = join(scratch, 'rvh.jsonl');
    const counts = await importVoiceHistory(join(FIXTURES, 'voice-history-rvh.json'), output);
    expect(counts).toEqual({ records: 6, intended: 4, notIntended: 2, arbitration: 1, pausedWakes: 0 });
    const written = readFileSync(output, 'utf8');
    expect(readWakeEventsFile(output)).toEqual(RVH_EVENTS.slice().sort((a, b) => a.time - b.time));
    const transcripts = transcriptsOf(fixture('voice-history-rvh.json'));
    expect(transcripts.length).toBeGreaterThan(5);
    for (const transcript of transcripts) expect(written).not.toContain(transcript);
    expect(written).not.toMatch(/weather|timer|A1EXAMPLE0CUST/);
    expect(readdirSync(scratch).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('keeps no transcript from the older feed or a CSV either', async () => {
    for (const [name, counts] of [
      ['voice-history-activities.json', { records: 6, intended: 4, notIntended: 2, arbitration: 1, pausedWakes: 0 }],
      ['voice-history.csv', { records: 4, intended: 3, notIntended: 1, arbitration: 1, pausedWakes: 0 }],
    ] as const) {
      const output = join(scratch, `${name}.jsonl`);
      expect(await importVoiceHistory(join(FIXTURES, name), output)).toEqual(counts);
      const written = readFileSync(output, 'utf8');
      expect(written).not.toMatch(/weather|stop|kitchen light|rain|play something/);
      expect(parseWakeEvents(written, output)).toHaveLength(counts.records);
    }
  });

  it("writes to stdout for '-'", async () => {
    const chunks: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      chunks.push(String(chunk));
      return true;
    });
    try {
      expect((await importVoiceHistory(join(FIXTURES, 'voice-history.csv'), '-')).records).toBe(4);
    } finally {
      spy.mockRestore();
    }
    expect(chunks.join('').split('\n')[0]).toBe('{"time":"2024-09-16T07:00:00.000Z","device":"Kitchen Echo","source":"amazon-voice-history","intended":true}');
  });

  it('a missing input or an unwritable output is a coded error, and leaves no file behind', async () => {
    const missing = join(scratch, 'nope.json');
    expect(await errorOfAsync(() => importVoiceHistory(missing, join(scratch, 'out.jsonl')), 'EARSHOT_ERR_FILE_NOT_FOUND')).toBe(`${missing}: no such file`);
    const unwritable = join(scratch, 'no-such-dir', 'out.jsonl');
    expect(await errorOfAsync(() => importVoiceHistory(join(FIXTURES, 'voice-history.csv'), unwritable), 'EARSHOT_ERR_OUTPUT')).toContain(unwritable);
    expect(existsSync(join(scratch, 'no-such-dir'))).toBe(false);
    const bad = join(scratch, 'bad.json');
    writeFileSync(bad, '{"activities": [{"activityStatus": "SUCCESS"}]}');
    const target = join(scratch, 'kept.jsonl');
    writeFileSync(target, 'previous\n');
    expect(await errorOfAsync(() => importVoiceHistory(bad, target))).toBe(`${bad}: activities[0]: timestamp: missing`);
    expect(readFileSync(target, 'utf8')).toBe('previous\n');
  });
});

describe('fuzzing: nothing but an EarshotError escapes', () => {
  const onlyCodedErrors = (text: string): boolean => {
    try {
      for (const e of parseVoiceHistory(text, 'fuzz')) expect(Number.isFinite(e.time)).toBe(true);
    } catch (err) {
      if (!isEarshotError(err)) throw err;
      expect(err.message).not.toContain('\n');
    }
    return true;
  };

  it('random text and random JSON', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.json()), onlyCodedErrors), { numRuns: 1500 });
  });

  it('records with random values in every field', () => {
    const value = fc.oneof(fc.jsonValue(), fc.constant(T), fc.constant('GENERAL'), fc.constant('DEVICE_ARBITRATION'));
    const record = fc.record({
      recordKey: value, timestamp: value, creationTimestamp: value, device: fc.oneof(value, fc.record({ deviceName: value, serialNumber: value })),
      deviceInfo: value, sourceDeviceIds: fc.oneof(value, fc.array(fc.record({ serialNumber: value }))), utteranceType: value,
      activityStatus: value, domainAttributes: value, voiceHistoryRecordItems: fc.oneof(value, fc.array(fc.record({ timestamp: value, transcriptText: value }))),
    }, { requiredKeys: [] });
    const page = fc.record({ customerHistoryRecords: fc.array(record, { maxLength: 4 }) });
    fc.assert(fc.property(page, (p) => onlyCodedErrors(JSON.stringify(p))), { numRuns: 1500 });
  });
});
