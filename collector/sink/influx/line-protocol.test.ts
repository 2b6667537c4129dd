/**
 * Line protocol against the parser that matters: points are written to a real influxd with plain fetch
 * and read back with InfluxQL, so what InfluxDB stored is compared with what we meant to store.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { describeInflux, useInfluxd } from '../../../test/helpers/influxd.js';
import { printable } from '../../text.js';
import { int, pointLine, unique, type FieldValue } from './line-protocol.js';

let dbSeq = 0;

/**
 * What InfluxDB should hold for a tag value: newlines become spaces, other control characters visible
 * escapes (collector/text.ts), backslashes before a comma, an equals sign, a space or the end are gone
 * (InfluxDB cannot be given them), and an empty value is no tag.
 */
function storedTag(value: string): string | null {
  const stored = printable(value.replace(/[\n\r]/g, ' ')).replace(/\\+(?=[,= ]|$)/g, '');
  return stored === '' ? null : stored;
}

describeInflux('line protocol, read back from a real influxd', () => {
  const server = useInfluxd();

  async function newDb(): Promise<string> {
    const db = `lp${++dbSeq}`;
    await server.query(null, `CREATE DATABASE ${db}`);
    return db;
  }

  async function write(db: string, lines: string[]): Promise<void> {
    const res = await fetch(`${server.url}/write?db=${db}&precision=ms`, { method: 'POST', body: lines.join('\n') });
    expect({ status: res.status, body: await res.text() }).toEqual({ status: 204, body: '' });
  }

  /** The points of the database (or of one measurement) as measurement -> time -> non-null columns. */
  async function pointsOf(db: string, from = '/.*/'): Promise<Record<string, Record<number, Record<string, unknown>>>> {
    const [series] = await server.query(db, `SELECT * FROM ${from}`);
    const out: Record<string, Record<number, Record<string, unknown>>> = {};
    for (const s of series) {
      out[s.name] = {};
      for (const row of s.values) {
        const cols = s.columns.map((c, i) => [c, row[i]] as const).filter(([c, v]) => c !== 'time' && v !== null);
        out[s.name][row[0] as number] = Object.fromEntries(cols);
      }
    }
    return out;
  }

  it('measurements, tags and string fields with special characters come back as written', async () => {
    const db = await newDb();
    const strange = 'Echo, "Kitchen" = 1 ünïcode ☕ a\\b';
    const field = 'say "hi" \\ back\\slash, a=b\nline2\r\nend\\';
    const points: Array<[string, Record<string, string | null>, Record<string, FieldValue | null>]> = [
      // `unique` (ids) is quoted without the memo, and the same way
      ['speaker traffic,v2=x', { device: strange, 'tag key, with=all': 'v' }, { note: field, id: unique(field) }],
      ['ünïcode ☕ a\\b', { empty: '', none: null, 'new\nkey': 'multi\nline\rvalue' }, { note: '' }],
      // a backslash before an escaped space, then an equals sign and a quote: the next line stays a line
      ['backslashes', { odd: 'x\\ \\="y', comma: 'a\\,b', end: 'end\\\\', only: '\\' }, { note: 'n="1"' }],
      ['after\\', { dev: 'd' }, { note: 'last' }],
    ];
    await write(db, points.map(([m, tags, fields], i) => pointLine(m, tags, fields, i + 1) as string));
    expect(await pointsOf(db)).toEqual({
      'speaker traffic,v2=x': { 1: { device: strange, 'tag key, with=all': 'v', note: 'say "hi" \\ back\\slash, a=b\\x0aline2\\x0d\\x0aend\\', id: 'say "hi" \\ back\\slash, a=b\\x0aline2\\x0d\\x0aend\\' } },
      'ünïcode ☕ a\\b': { 2: { 'new key': 'multi line value', note: '' } },
      backslashes: { 3: { odd: 'x ="y', comma: 'a,b', end: 'end', note: 'n="1"' } },
      after: { 4: { dev: 'd', note: 'last' } },
    });
  });

  it('numbers, integers and booleans keep their types; fields without a value are left out', async () => {
    const db = await newDb();
    const line = pointLine('types', { device: 'd' }, {
      bytes: int(42), negative: int(-7), truncated: int(3.9), big: int(2 ** 53 - 1),
      ratio: 0.25, whole: 3, on: true, off: false, nan: Number.NaN, inf: Infinity, badInt: int(Number.NaN), missing: null, absent: undefined,
    }, 1_700_000_000_123.7);
    await write(db, [line as string]);
    expect(await pointsOf(db)).toEqual({
      types: { 1_700_000_000_123: { device: 'd', bytes: 42, negative: -7, truncated: 3, big: 2 ** 53 - 1, ratio: 0.25, whole: 3, on: true, off: false } },
    });
    const [keys] = await server.query(db, 'SHOW FIELD KEYS FROM types');
    expect(Object.fromEntries(keys[0].values)).toEqual({
      bytes: 'integer', negative: 'integer', truncated: 'integer', big: 'integer', ratio: 'float', whole: 'float', on: 'boolean', off: 'boolean',
    });
    // a point without any field value is no line at all (InfluxDB would refuse it)
    expect(pointLine('types', { device: 'd' }, { nan: Number.NaN, missing: null }, 1)).toBeNull();
  });

  it('any string survives as a string field (control characters shown as escapes), and as a tag value but for the losses above (property, many points per write)', async () => {
    const db = await newDb();
    const special = fc.constantFrom(',', '=', ' ', '"', '\\', '\n', '\r', '\t', 'a', 'Z', '0', 'é', '☕', '🎙️');
    const text = fc.oneof(fc.string({ unit: special, maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 12 }));
    let run = 0;
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(text, text), { minLength: 1, maxLength: 60 }), async (pairs) => {
      const measurement = `prop${++run}`;
      await write(db, pairs.map(([tag, field], i) => pointLine(measurement, { tag }, { field, seq: int(i) }, i) as string));
      const got = (await pointsOf(db, measurement))[measurement];
      const expected = Object.fromEntries(pairs.map(([tag, field], i) => {
        const stored = storedTag(tag);
        return [i, stored === null ? { field: printable(field), seq: i } : { tag: stored, field: printable(field), seq: i }];
      }));
      expect(got).toEqual(expected);
    }), { numRuns: 25 });
  }, 120_000);
});
