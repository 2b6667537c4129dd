/**
 * Wake-word events: moments when someone (or something) really said the wake word, from a file a person
 * or another system wrote (JSON Lines or CSV), an import of Amazon's voice history, or later the API.
 * The detector asks the store whether an activation had one. Bad input is one coded line naming
 * file:line and the field; it never becomes a stack trace.
 */
import { readFileSync } from 'node:fs';
import { readFileBounded } from '../durable.js';
import { basename } from 'node:path';
import { earshotError, type ErrorCode } from '../errors.js';
import { fileError } from '../capture/input.js';
import { normalizeMac } from '../mac.js';
import { preview } from '../text.js';

/** One wake-word event. */
export interface WakeEvent {
  /** Epoch ms. */
  time: number;
  /** MAC (lower case, aa:bb:cc:dd:ee:ff) or a device name; null: no device in particular. */
  device: string | null;
  /** Where the event came from (a file name, 'amazon-voice-history', ...). */
  source: string;
  /** false: the record says the audio was NOT meant for the device (a confirmed false activation). */
  intended?: boolean;
}

/**
 * Longest `source` and `device` a wake event may carry, wherever it comes from (file, MQTT, API schema):
 * both become InfluxDB tag values and verdict reasons, so a sender must not make them unbounded.
 */
export const MAX_WAKE_SOURCE_LENGTH = 64;
export const MAX_WAKE_DEVICE_LENGTH = 128;

/** Epoch numbers below this are seconds (1e11 s is the year 5138; 1e11 ms is 1973). */
const SECONDS_BELOW = 1e11;
/** Later than 2100-01-01 is a unit mistake (microseconds), not a time. */
const LATEST_MS = 4_102_444_800_000;
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;

/** A value for a message: JSON-quoted (so it stays on one line) and cut to a readable length. */
export function quote(value: unknown): string {
  return preview(value, 60);
}

/** Thrown by the field helpers; the parsers add file:line. */
export class FieldProblem {
  constructor(readonly message: string) {}
}

/**
 * Epoch ms from an ISO 8601 time with a zone, or epoch seconds/ms (a number or digits; below 1e11 it is
 * seconds). Anything else throws a FieldProblem naming `field`: no zone, out of range, not a time.
 */
export function parseTime(value: unknown, field = 'time'): number {
  let epoch: number | null = null;
  if (typeof value === 'number') epoch = value;
  else if (typeof value === 'string' && /^\s*\d+(?:\.\d+)?\s*$/.test(value)) epoch = Number(value);
  if (epoch !== null) {
    const ms = epoch < SECONDS_BELOW ? epoch * 1000 : epoch;
    if (!Number.isFinite(ms) || ms < 0 || ms > LATEST_MS) {
      throw new FieldProblem(`${field}: ${quote(value)} is out of range (epoch seconds or milliseconds expected)`);
    }
    return Math.round(ms);
  }
  const match = typeof value === 'string' ? ISO_TIME.exec(value.trim()) : null;
  if (match === null) throw new FieldProblem(`${field}: ${quote(value)} is not an ISO 8601 time or epoch number`);
  const [, y, mo, d, h, mi, s = '0', fraction = '', zone] = match;
  // a local time means a different instant in every time zone: refuse to guess
  if (zone === undefined) throw new FieldProblem(`${field}: ${quote(value)} has no time zone (add Z or an offset such as +01:00)`);
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number);
  // before 1970 is no capture's time (and Date.UTC would read the years 0-99 as 1900-1999)
  if (year < 1970) throw new FieldProblem(`${field}: ${quote(value)} is out of range`);
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2) || '0');
    if (oh > 23 || om > 59) throw new FieldProblem(`${field}: ${quote(value)} has an impossible offset`);
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, Number(fraction.padEnd(3, '0').slice(0, 3)));
  const check = new Date(utc);
  if (month < 1 || hour > 23 || minute > 59 || second > 59 || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) {
    throw new FieldProblem(`${field}: ${quote(value)} is not a valid date and time`);
  }
  const ms = utc - offsetMinutes * 60_000;
  if (ms < 0 || ms > LATEST_MS) throw new FieldProblem(`${field}: ${quote(value)} is out of range`);
  return ms;
}

/** A MAC in lower-case colon form, or the trimmed name; null for an empty value. */
export function normalizeDevice(value: string): string | null {
  const text = value.trim();
  if (text === '') return null;
  return normalizeMac(text) ?? text;
}

function parseDevice(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new FieldProblem(`device: ${quote(value)} is not a MAC address or device name`);
  if (value.length > MAX_WAKE_DEVICE_LENGTH) throw new FieldProblem(`device: longer than ${MAX_WAKE_DEVICE_LENGTH} characters`);
  return normalizeDevice(value);
}

function parseIntended(value: unknown): boolean | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (['true', 'yes', '1'].includes(word)) return true;
    if (['false', 'no', '0'].includes(word)) return false;
  }
  throw new FieldProblem(`intended: ${quote(value)} is not true or false`);
}

function parseSource(value: unknown, fallback: string): string {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value !== 'string') throw new FieldProblem(`source: ${quote(value)} is not a string`);
  if (value.length > MAX_WAKE_SOURCE_LENGTH) throw new FieldProblem(`source: longer than ${MAX_WAKE_SOURCE_LENGTH} characters`);
  return value.trim() || fallback;
}

/** One line of text with its 1-based number. */
export interface NumberedLine {
  line: number;
  text: string;
}

/** Lines without the BOM, CR of CRLF, blank lines and # comments. */
export function contentLines(text: string): NumberedLine[] {
  const lines: NumberedLine[] = [];
  text.replace(/^\uFEFF/, '').split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const trimmed = line.trim();
    if (trimmed !== '' && !trimmed.startsWith('#')) lines.push({ line: i + 1, text: line });
  });
  return lines;
}

/**
 * CSV records (RFC 4180: quotes, "" escapes, commas and line breaks inside quotes, CRLF), each with the
 * line it starts on. Blank lines and lines starting with # between records are skipped.
 */
export function csvRecords(text: string, fail: (line: number, message: string) => never): Array<{ line: number; fields: string[] }> {
  const records: Array<{ line: number; fields: string[] }> = [];
  const input = text.replace(/^\uFEFF/, '');
  let i = 0;
  let line = 1;
  while (i < input.length) {
    const end = input.indexOf('\n', i);
    const rawLine = input.slice(i, end === -1 ? input.length : end).replace(/\r$/, '');
    const trimmed = rawLine.trim();
    if (trimmed === '' || trimmed.startsWith('#')) {
      i = end === -1 ? input.length : end + 1;
      line++;
      continue;
    }
    const start = line;
    const fields: string[] = [];
    let field = '';
    let quoted = false;
    let atFieldStart = true;
    for (;;) {
      const c = input[i];
      if (quoted) {
        if (c === undefined) fail(start, `field ${fields.length + 1}: a quoted field is never closed`);
        if (c === '"' && input[i + 1] === '"') { field += '"'; i += 2; continue; }
        if (c === '"') {
          quoted = false;
          i++;
          const next = input[i];
          if (next !== undefined && next !== ',' && next !== '\n' && !(next === '\r' && (input[i + 1] === '\n' || input[i + 1] === undefined))) {
            fail(start, `field ${fields.length + 1}: text after a closing quote`);
          }
          continue;
        }
        if (c === '\n') line++;
        field += c;
        i++;
        continue;
      }
      if (c === undefined || c === '\n' || (c === '\r' && (input[i + 1] === '\n' || input[i + 1] === undefined))) {
        fields.push(field);
        i += c === undefined ? 0 : c === '\r' ? 2 : 1;
        line++;
        break;
      }
      if (c === ',') { fields.push(field); field = ''; atFieldStart = true; i++; continue; }
      if (c === '"' && atFieldStart && field.trim() === '') { quoted = true; field = ''; atFieldStart = false; i++; continue; }
      field += c;
      atFieldStart = false;
      i++;
    }
    records.push({ line: start, fields });
  }
  return records;
}

/** A header cell reduced for lenient matching: "Device Name" -> "devicename". */
export function headerKey(cell: string): string {
  return cell.trim().toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** A function that throws the coded error for `file:line`. */
export function failer(code: ErrorCode, fileName: string): (line: number | string, message: string) => never {
  return (line, message) => {
    throw earshotError(code, typeof line === 'number' ? `${fileName}:${line}` : `${fileName}${line}`, message);
  };
}

/** Runs `fn`; a FieldProblem becomes the coded error for that line. */
export function atLine<T>(fail: (line: number, message: string) => never, line: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FieldProblem) fail(line, err.message);
    throw err;
  }
}

/** True when the first content line (after blank and # lines) starts with `{` or `[`: JSON; else CSV. */
export function looksLikeJson(text: string): boolean {
  const first = contentLines(text)[0];
  return first !== undefined && /^\s*[{[]/.test(first.text);
}

/** The fields of a wake-event record. */
const WAKE_FIELDS = ['time', 'device', 'source', 'intended'] as const;

/** One record's fields, read through `get` (a JSON object's own keys, a CSV row's columns); throws a FieldProblem. */
function eventOf(get: (key: string) => unknown, fallbackSource: string): WakeEvent {
  const time = get('time');
  if (time === undefined || time === '') throw new FieldProblem('time: missing');
  const wakeEvent: WakeEvent = { time: parseTime(time), device: parseDevice(get('device')), source: parseSource(get('source'), fallbackSource) };
  const intended = parseIntended(get('intended'));
  if (intended !== undefined) wakeEvent.intended = intended;
  return wakeEvent;
}

/** Edit distance of two short strings, capped: only "within 2" matters. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length];
}

/**
 * A key that is a misspelling of a field the record lacks ("devic", "Device", "intendet"). Other keys are
 * left alone (a record may carry "room" or "entity_id" from the system that wrote it), but a misspelt
 * "device" would make an event for one speaker count for every speaker, so that one is refused.
 */
function misspeltField(record: Record<string, unknown>): string | null {
  for (const key of Object.keys(record)) {
    if ((WAKE_FIELDS as readonly string[]).includes(key) || key.length < 3) continue;
    const lower = key.toLowerCase();
    if (WAKE_FIELDS.some((field) => !Object.hasOwn(record, field) && editDistance(lower, field) <= 2)) return key;
  }
  return null;
}

/** Why a wake-event record was refused: the code, where (in the sender's terms) and what, naming the field. */
export interface WakeRecordError {
  code: 'EARSHOT_ERR_WAKE_EVENTS';
  /** Where the record is: "events.jsonl:3", "record 2" (MQTT), "body/1" (API); '' for a lone record. */
  location: string;
  /** The problem, starting with the field: `time: missing`, `devic is not allowed`. */
  problem: string;
}

export type WakeRecordResult = { ok: true; event: WakeEvent } | { ok: false; error: WakeRecordError };

/**
 * One wake-event record as a JSON value: the one reader of the record format for files (JSON Lines),
 * MQTT and the API, so a record gets the same verdict and the same problem text from each. Never throws
 * for bad input; each sender puts the location in its own terms.
 */
export function parseWakeRecord(value: unknown, fallbackSource: string, location: string): WakeRecordResult {
  const refuse = (problem: string): WakeRecordResult => ({ ok: false, error: { code: 'EARSHOT_ERR_WAKE_EVENTS', location, problem } });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return refuse('not a JSON object');
  const record = value as Record<string, unknown>;
  // an empty CSV cell is a field left out; in JSON "" is a value given, and taken as left out it made the
  // event count as intended (the activation confirmed) when the sender meant something else
  if (Object.hasOwn(record, 'intended') && typeof record.intended === 'string' && record.intended.trim() === '') {
    return refuse('intended: "" is neither true nor false (leave the field out when it is not known)');
  }
  let event: WakeEvent;
  try {
    event = eventOf((key) => (Object.hasOwn(record, key) ? record[key] : undefined), fallbackSource);
  } catch (err) {
    if (err instanceof FieldProblem) return refuse(err.message);
    throw err;
  }
  const misspelt = misspeltField(record);
  return misspelt === null ? { ok: true, event } : refuse(`${misspelt} is not allowed`);
}

/** A refused record as one line: "events.jsonl:3: time: missing", "record 2: ..."; the problem alone for a lone record. */
export function wakeRecordLine(error: WakeRecordError): string {
  return error.location === '' ? error.problem : `${error.location}: ${error.problem}`;
}

/** Parses a wake-event file: JSON Lines when the first content line starts with `{`, else CSV. */
export function parseWakeEvents(text: string, fileName: string): WakeEvent[] {
  const fail = failer('EARSHOT_ERR_WAKE_EVENTS', fileName);
  const fallbackSource = fileName === '-' ? 'stdin' : basename(fileName);

  if (looksLikeJson(text)) {
    return contentLines(text).map(({ line, text: json }) => {
      let value: unknown;
      try {
        value = JSON.parse(json);
      } catch {
        fail(line, 'not valid JSON (each line must be one JSON object)');
      }
      const result = parseWakeRecord(value, fallbackSource, `${fileName}:${line}`);
      if (!result.ok) throw earshotError(result.error.code, result.error.location, result.error.problem);
      return result.event;
    });
  }

  const [header, ...rows] = csvRecords(text, fail);
  if (header === undefined) return [];
  const columns = new Map<string, number>();
  header.fields.forEach((cell, index) => {
    const key = headerKey(cell);
    if (columns.has(key) && ['time', 'device', 'source', 'intended'].includes(key)) fail(header.line, `header: column ${quote(cell.trim())} appears twice`);
    if (!columns.has(key)) columns.set(key, index);
  });
  if (!columns.has('time')) {
    fail(header.line, `header: no "time" column (found ${header.fields.map((c) => quote(c.trim())).join(', ')}); a JSON Lines file must start with {`);
  }
  return rows.map(({ line, fields }) => {
    if (fields.length !== header.fields.length) {
      fail(line, `${fields.length} fields, the header has ${header.fields.length} (quote fields that contain commas)`);
    }
    return atLine(fail, line, () => eventOf((key) => {
      const index = columns.get(key);
      return index === undefined ? undefined : fields[index].trim();
    }, fallbackSource));
  });
}

/** Text of a file: UTF-8 (BOM dropped) or UTF-16 LE with its BOM (what spreadsheet programs write). */
export function decodeText(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  return bytes.toString('utf8').replace(/^\uFEFF/, '');
}

/** Largest wake-event or voice-history file read (a year of a busy home's events is a few MB). */
export const MAX_INPUT_TEXT_BYTES = 64 * 1024 * 1024;

/**
 * The text of `path` ('-': stdin), at most MAX_INPUT_TEXT_BYTES; a missing file, a directory, a larger
 * one (/dev/zero) or a read error is a coded error.
 */
export function readInputText(path: string): string {
  try {
    return decodeText(path === '-' ? readFileSync(0) : readFileBounded(path, MAX_INPUT_TEXT_BYTES));
  } catch (err) {
    throw fileError(err, path);
  }
}

/** Reads and parses a wake-event file ('-': stdin). */
export function readWakeEventsFile(path: string): WakeEvent[] {
  return parseWakeEvents(readInputText(path), path);
}

/** Options of a WakeEventStore. */
export interface WakeEventStoreOptions {
  /** Most events kept; the oldest go first (default 100 000). */
  capacity?: number;
  /** True when a source is configured even before it delivers an event (an empty file: nobody spoke). */
  sourceConfigured?: boolean;
}

/**
 * Wake events sorted by time, bounded. Events may arrive out of order (API, MQTT), so each is inserted
 * at its place; appending in order stays cheap.
 */
export class WakeEventStore {
  /** True once a source is configured or any event arrived: zero events then means "nobody spoke". */
  sourceConfigured: boolean;
  private readonly capacity: number;
  private readonly events: WakeEvent[] = [];
  private droppedCount = 0;

  constructor(options: WakeEventStoreOptions = {}) {
    this.capacity = Math.max(1, Math.floor(options.capacity ?? 100_000));
    this.sourceConfigured = options.sourceConfigured ?? false;
  }

  /** Events held. */
  get size(): number {
    return this.events.length;
  }

  /** Events dropped because the store was full (a self-metric). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Adds one event at its place in time. */
  add(event: WakeEvent): void {
    this.sourceConfigured = true;
    const events = this.events;
    let at = events.length;
    if (at > 0 && events[at - 1].time > event.time) at = this.firstAfter(event.time);
    events.splice(at, 0, event);
    this.trim();
  }

  /** Adds many events; sorts once instead of inserting one by one. */
  addAll(events: Iterable<WakeEvent>): void {
    this.sourceConfigured = true;
    for (const event of events) this.events.push(event);
    // stable sort: events with equal times keep their arrival order
    this.events.sort((a, b) => a.time - b.time);
    this.trim();
  }

  /** All events, oldest first (a copy). */
  list(): WakeEvent[] {
    return this.events.slice();
  }

  /**
   * The event closest to `startMs` within [start - before, start + after] for this device (MAC or name,
   * case-insensitive) or for no device in particular. At equal distance an event before the start wins
   * (the wake word comes before the upload), then one naming the device.
   */
  findFor(device: { mac: string; name: string | null }, startMs: number, windowBeforeMs: number, windowAfterMs: number): WakeEvent | null {
    const mac = normalizeDevice(device.mac)?.toLowerCase() ?? null;
    const name = device.name?.trim().toLowerCase() || null;
    const last = startMs + windowAfterMs;
    let best: WakeEvent | null = null;
    let bestScore = Infinity;
    for (let i = this.firstAtOrAfter(startMs - windowBeforeMs); i < this.events.length && this.events[i].time <= last; i++) {
      const event = this.events[i];
      const own = event.device === null ? false : event.device.toLowerCase();
      if (own !== false && own !== mac && own !== name) continue;
      // distance first; half a ms for "after the start", a quarter for "no device": only break ties
      const score = Math.abs(event.time - startMs) + (event.time > startMs ? 0.5 : 0) + (own === false ? 0.25 : 0);
      if (score < bestScore) {
        best = event;
        bestScore = score;
      }
    }
    return best;
  }

  private trim(): void {
    const excess = this.events.length - this.capacity;
    if (excess > 0) {
      this.events.splice(0, excess);
      this.droppedCount += excess;
    }
  }

  private firstAtOrAfter(time: number): number {
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid].time < time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private firstAfter(time: number): number {
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid].time <= time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
