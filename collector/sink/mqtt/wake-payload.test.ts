import { describe, expect, it } from 'vitest';
import { MAX_WAKE_PAYLOAD_BYTES, parseWakePayload } from './wake-payload.js';

const parse = (text: string) => parseWakePayload(Buffer.from(text));

describe('parseWakePayload', () => {
  it('reads one record or an array of them in the wake-event record format, source defaulting to mqtt', () => {
    expect(parse('{"time":"2024-05-01T10:00:00+02:00","device":"AA-BB-CC-DD-EE-01"}')).toEqual({
      events: [{ time: Date.parse('2024-05-01T08:00:00Z'), device: 'aa:bb:cc:dd:ee:01', source: 'mqtt' }],
      problems: [],
    });
    const { events, problems } = parse('[{"time":1714550400,"source":"ha-voice","intended":false},{"time":"1714550401000"}]');
    expect(problems).toEqual([]);
    expect(events).toEqual([
      { time: 1714550400000, device: null, source: 'ha-voice', intended: false },
      { time: 1714550401000, device: null, source: 'mqtt' },
    ]);
  });

  it('keeps the good records of an array and names the bad ones', () => {
    const { events, problems } = parse('[{"time":1714550400},{"device":"x"},5,{"time":"2024-05-01T10:00:00"}]');
    expect(events).toHaveLength(1);
    expect(problems).toEqual([
      'record 2: time: missing',
      'record 3: not a JSON object',
      'record 4: time: "2024-05-01T10:00:00" has no time zone (add Z or an offset such as +01:00)',
    ]);
  });

  it('rejects what is not JSON, not a record, or too large, without throwing', () => {
    expect(parse('time=now').problems).toEqual(['not valid JSON (a record { "time": ... } or an array of them)']);
    expect(parse('"hello"').problems).toEqual(['not a JSON object']);
    expect(parse('{"time":"soon"}').problems).toEqual(['time: "soon" is not an ISO 8601 time or epoch number']);
    expect(parse(`[${'{"time":1},'.repeat(MAX_WAKE_PAYLOAD_BYTES / 10)}{}]`).problems[0]).toMatch(/larger than/);
    expect(parse('[]')).toEqual({ events: [], problems: [] });
  });
});
