/**
 * Imports Amazon's voice history as wake events. Only times, device names and Amazon's own verdict are
 * kept; transcripts and Alexa's answers are never read into an event (earshot keeps counts and times,
 * never content).
 *
 * Where the format comes from (no official schema exists; these are observed responses):
 * - Alexa Privacy's "Review Voice History" page loads POST
 *   https://www.amazon.<tld>/alexa-privacy/apd/rvh/customer-history-records(-v2)?startTime=..&endTime=..
 *   and gets `{ customerHistoryRecords: [...], encodedRequestToken, ... }`. Each record has recordKey
 *   ("customerId#timestamp#deviceType#serialNumber"), recordType "VOICE_HISTORY", `timestamp` (epoch ms),
 *   device { deviceName, deviceEntityId }, utteranceType, domain, intent and voiceHistoryRecordItems
 *   [{ recordItemType: CUSTOMER_TRANSCRIPT | ALEXA_RESPONSE | ASR_REPLACEMENT_TEXT | PROFILE, timestamp,
 *   transcriptText, ... }]. Amazon's verdict is per RECORD, in `utteranceType`: GENERAL,
 *   DEVICE_ARBITRATION (several Echos heard one wake word, this one lost), WAKE_WORD_ONLY,
 *   FALSE_WAKE_WORD_1P, ASR_TIMEOUT, NO_EXPRESSED_INTENT, ROUTINES_3P, DISCARDED_NON_DEVICE_DIRECTED_INTENT.
 *   Sources: responses logged in github.com/Apollon77/ioBroker.alexa2/issues/655 (2021) and
 *   github.com/bbindreiter/node-red-contrib-alexa-remote2-applestrudel/issues/138, /142, /152 (2023-24);
 *   openHAB amazonechocontrol CustomerHistoryRecordTO.java / CustomerHistoryRecordVoiceTO.java; the
 *   utteranceType list from aioamazondevices' tests and a Gira LBS that skips them.
 * - The older GET https://alexa.amazon.<tld>/api/activities returns `{ activities: [...] }` whose items
 *   carry `activityStatus` (SUCCESS, FAULT, DISCARDED_NON_DEVICE_DIRECTED_INTENT), `creationTimestamp`,
 *   sourceDeviceIds[{ serialNumber, deviceType }] and `domainAttributes`, which is "DEVICE_ARBITRATION"
 *   or "FALSE_WAKE_WORD_1P" on DISCARDED records (github.com/Apollon77/ioBroker.alexa2/issues/371, /583;
 *   thorsten-gehrig/alexa-remote-control/issues/38: the arbitration loser reports DISCARDED). These
 *   records have no device name, so the event's device is the serial number.
 * - Amazon offers no CSV; community exporters flatten the records (e.g. "timestamp", "device.deviceName",
 *   one column per recordItemType). The CSV reader is lenient about header names and strict about rows.
 * - Utterance ids ("DEVICETYPE:1.0/2024/09/16/07/SERIAL/00:00::TNIH_2V.<uuid>ZXV/0") name one dialog;
 *   the number after the last "/" is the turn within it (RVH items' `utteranceId`; the older feed's
 *   `description.firstUtteranceId`; alexa-remote's test transcripts show ".../1"). When the speaker
 *   pauses after the wake word, Amazon writes the first turn (/0) as "audio was not intended for Alexa"
 *   and the request itself as the next turn of the same dialog, seconds later (issue 15). That /0 is no
 *   false wake: it is folded (see foldPausedWakes).
 */
import { writeOutputFile } from '../output-file.js';
import {
  FieldProblem, atLine, contentLines, csvRecords, failer, headerKey, looksLikeJson, normalizeDevice, parseTime, quote,
  readInputText, type WakeEvent,
} from './wake-events.js';

/** The `source` of imported events. */
export const VOICE_HISTORY_SOURCE = 'amazon-voice-history';

/** What an import found, for the CLI to print. */
export interface VoiceHistoryCounts {
  records: number;
  /** Events with intended=true (arbitration included). */
  intended: number;
  /** Events Amazon marked as not meant for the device: confirmed false activations. */
  notIntended: number;
  /** DEVICE_ARBITRATION records: another device answered the same wake word. */
  arbitration: number;
  /**
   * "Not intended" first turns (/0) of a dialog whose request followed in a later turn (a pause after the
   * wake word): kept as intended events (source amazon-voice-history:paused), counted in `intended`.
   */
  pausedWakes: number;
}

/** The source of a /0 turn folded into the request that followed it. */
export const PAUSED_WAKE_SOURCE = `${VOICE_HISTORY_SOURCE}:paused`;

/**
 * Longest gap between a /0 turn and the later turn of the same dialog that makes it a pause after the
 * wake word. The issue reports "seconds apart"; Alexa's own re-prompt waits ~8 s for speech, so one
 * dialog's turns fall well inside a minute (the same bound recordTime uses for a record's items).
 */
export const PAUSED_WAKE_WINDOW_MS = 60_000;

/** Amazon's verdict on one record, as a wake event's `intended` and `source`. */
export function classifyStatus(status: string | null, domainAttributes: string | null = null): { intended: boolean; source: string; arbitration: boolean } {
  const word = (text: string | null): string => (text ?? '').trim().toUpperCase().replace(/[\s-]+/g, '_');
  const code = word(status);
  const detail = word(domainAttributes);
  // /api/activities marks the arbitration loser DISCARDED and says why in domainAttributes
  if (code === 'DEVICE_ARBITRATION' || detail === 'DEVICE_ARBITRATION') {
    return { intended: true, source: `${VOICE_HISTORY_SOURCE}:arbitration`, arbitration: true };
  }
  if (code.startsWith('FALSE_WAKE_WORD') || detail.startsWith('FALSE_WAKE_WORD')) {
    return { intended: false, source: `${VOICE_HISTORY_SOURCE}:${code.startsWith('FALSE_WAKE_WORD') ? code : detail}`, arbitration: false };
  }
  // the app shows DISCARDED records as "Audio was not intended for Alexa"
  if (code === 'DISCARDED_NON_DEVICE_DIRECTED_INTENT' || code.includes('NOT_INTENDED')) {
    return { intended: false, source: VOICE_HISTORY_SOURCE, arbitration: false };
  }
  if (code === '' || code === 'SUCCESS' || code === 'FAULT' || code === 'GENERAL') {
    return { intended: true, source: VOICE_HISTORY_SOURCE, arbitration: false };
  }
  // unknown (WAKE_WORD_ONLY, ASR_TIMEOUT, ...): the device did wake; keep Amazon's word for a person to read
  return { intended: true, source: `${VOICE_HISTORY_SOURCE}:${code}`, arbitration: false };
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function own(object: Json, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}

/** The device name, else a serial number, from the places the three response shapes keep them. */
function recordDevice(record: Json): string | null {
  const device = own(record, 'device');
  const info = own(record, 'deviceInfo');
  const infoObject = Array.isArray(info) ? info[0] : info;
  const sources = own(record, 'sourceDeviceIds');
  const firstSource = Array.isArray(sources) ? sources[0] : undefined;
  const recordKey = text(own(record, 'recordKey')) ?? text(own(record, 'id'));
  return (
    (isObject(device) ? text(own(device, 'deviceName')) : text(device)) ??
    (isObject(infoObject) ? text(own(infoObject, 'deviceName')) : null) ??
    (isObject(device) ? text(own(device, 'serialNumber')) : null) ??
    text(own(record, 'deviceSerialNumber')) ??
    (isObject(firstSource) ? text(own(firstSource, 'serialNumber')) : null) ??
    (isObject(infoObject) ? text(own(infoObject, 'deviceSerialNumber')) : null) ??
    // "customerId#timestamp#deviceType#serialNumber"
    (recordKey?.split('#')[3]?.trim() || null)
  );
}

/**
 * When the person spoke: the earliest item time (the transcript's) when it is within a minute before the
 * record's own time, which Amazon stamps up to seconds later, near its answer.
 */
function recordTime(record: Json): number {
  const stamp = own(record, 'timestamp') ?? own(record, 'creationTimestamp');
  const items = own(record, 'voiceHistoryRecordItems');
  let earliest = Infinity;
  if (Array.isArray(items)) {
    for (const item of items) {
      const time = isObject(item) ? own(item, 'timestamp') : undefined;
      if (typeof time === 'number' && time > 0 && time < earliest) earliest = time;
    }
  }
  if (stamp === undefined || stamp === null) {
    if (earliest === Infinity) throw new FieldProblem('timestamp: missing');
    return parseTime(earliest, 'voiceHistoryRecordItems.timestamp');
  }
  const time = parseTime(stamp, Object.hasOwn(record, 'timestamp') ? 'timestamp' : 'creationTimestamp');
  return earliest <= time && earliest >= time - 60_000 ? Math.round(earliest) : time;
}

interface Classified {
  event: WakeEvent;
  arbitration: boolean;
  /** The dialog (utterance id without its turn) and the turn, when the record names them. */
  utterance: Utterance | null;
}

interface Utterance {
  dialog: string;
  turn: number;
}

const TURN = /^(.+)\/(\d{1,3})$/;

/** The dialog and turn of an utterance id ("...ZXV/0"); null when it has no turn number. */
export function parseUtteranceId(id: unknown): Utterance | null {
  const match = typeof id === 'string' ? TURN.exec(id.trim()) : null;
  return match === null ? null : { dialog: match[1], turn: Number(match[2]) };
}

/** Item types that carry what the person said (the ALEXA_RESPONSE item has an utterance id of its own). */
const SPOKEN_ITEMS = new Set(['CUSTOMER_TRANSCRIPT', 'ASR_REPLACEMENT_TEXT']);

/** The utterance id of a record: its spoken item's (RVH), its own, or its description's firstUtteranceId (activities). */
function recordUtterance(record: Json): Utterance | null {
  const items = own(record, 'voiceHistoryRecordItems');
  if (Array.isArray(items)) {
    for (const item of items) {
      if (isObject(item) && SPOKEN_ITEMS.has(String(own(item, 'recordItemType'))) && parseUtteranceId(own(item, 'utteranceId')) !== null) {
        return parseUtteranceId(own(item, 'utteranceId'));
      }
    }
  }
  const ownId = parseUtteranceId(own(record, 'utteranceId'));
  if (ownId !== null) return ownId;
  // the older feed keeps the turn in a JSON string beside the transcript: only the id is read from it
  const description = own(record, 'description');
  if (typeof description !== 'string' || !description.includes('firstUtteranceId')) return null;
  try {
    const parsed: unknown = JSON.parse(description);
    return isObject(parsed) ? parseUtteranceId(own(parsed, 'firstUtteranceId')) : null;
  } catch {
    return null;
  }
}

function fromRecord(record: unknown): Classified {
  // the kind only: a record's text may be a transcript
  if (!isObject(record)) throw new FieldProblem(`not a voice-history record (${record === null ? 'null' : Array.isArray(record) ? 'a list' : `a ${typeof record}`})`);
  const time = recordTime(record);
  const device = recordDevice(record);
  if (device === null) throw new FieldProblem('device: missing (no device.deviceName nor a serial number)');
  const status = text(own(record, 'activityStatus')) ?? text(own(record, 'utteranceType'));
  const { intended, source, arbitration } = classifyStatus(status, text(own(record, 'domainAttributes')));
  return { event: { time, device: normalizeDevice(device), source, intended }, arbitration, utterance: recordUtterance(record) };
}

const RECORD_ARRAYS = ['customerHistoryRecords', 'alexaHistoryRecords', 'activities'];

interface Located {
  /** Appended to the file name in messages: "", ":7", ": customerHistoryRecords[3]", ":7: activities[0]". */
  where: string;
  record: unknown;
}

/** Records of one parsed JSON value (a response page, several pages, or bare records) with their places. */
function recordsOf(value: unknown, prefix: string, path: string, fail: (where: string, message: string) => never): Located[] {
  const where = path === '' ? prefix : `${prefix}: ${path}`;
  if (Array.isArray(value)) {
    return value.flatMap((element, i) => (isObject(element) && RECORD_ARRAYS.some((key) => Array.isArray(own(element, key)))
      ? recordsOf(element, prefix, `${path}[${i}]`, fail)
      : [{ where: `${prefix}: ${path}[${i}]`, record: element }]));
  }
  if (isObject(value)) {
    const key = RECORD_ARRAYS.find((name) => Array.isArray(own(value, name)));
    const dot = path === '' ? '' : '.';
    if (key !== undefined) return (own(value, key) as unknown[]).map((record, i) => ({ where: `${prefix}: ${path}${dot}${key}[${i}]`, record }));
    // one record per line (JSON Lines, as community exporters write it)
    if (prefix !== '' && RECORD_HINTS.some((hint) => Object.hasOwn(value, hint))) return [{ where, record: value }];
  }
  return fail(where, 'no "customerHistoryRecords" or "activities" array: not an Alexa voice-history export');
}

const RECORD_HINTS = ['recordKey', 'voiceHistoryRecordItems', 'utteranceType', 'activityStatus'];

/** The line of a JSON.parse error, from the "position N" V8 puts in its message. */
function jsonErrorLine(err: unknown, json: string): number {
  const position = /position (\d+)/.exec(err instanceof Error ? err.message : '');
  const end = position === null ? json.length : Number(position[1]);
  return json.slice(0, end).split('\n').length;
}

function parseJson(json: string, fileName: string): Classified[] {
  const fail = failer('EARSHOT_ERR_VOICE_HISTORY', fileName);
  let located: Located[];
  try {
    located = recordsOf(JSON.parse(json), '', '', fail);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const lines = contentLines(json);
    let first: unknown = null;
    try {
      first = lines.length > 1 ? JSON.parse(lines[0].text) : null;
    } catch {
      // not JSON Lines either: report the whole document's error
    }
    // V8's message would quote the text (a transcript, perhaps): name only the line
    if (!isObject(first)) fail(jsonErrorLine(err, json), 'not valid JSON');
    located = lines.flatMap(({ line, text: lineText }) => {
      let value: unknown;
      try {
        value = JSON.parse(lineText);
      } catch {
        fail(line, 'not valid JSON (a JSON Lines file has one record per line)');
      }
      return recordsOf(value, `:${line}`, '', fail);
    });
  }
  return located.map(({ where, record }) => {
    try {
      return fromRecord(record);
    } catch (problem) {
      if (problem instanceof FieldProblem) fail(where, problem.message);
      throw problem;
    }
  });
}

const TIME_COLUMNS = ['timestamp', 'creationtimestamp', 'datetime', 'time', 'date', 'timestamputc', 'when'];
const DEVICE_COLUMNS = ['devicename', 'device', 'devicedevicename', 'echo', 'speaker'];
const SERIAL_COLUMNS = ['serialnumber', 'deviceserialnumber'];
const STATUS_COLUMNS = ['activitystatus', 'status', 'utterancetype'];

function parseCsv(csv: string, fileName: string): Classified[] {
  const fail = failer('EARSHOT_ERR_VOICE_HISTORY', fileName);
  const [header, ...rows] = csvRecords(csv, fail);
  if (header === undefined) return [];
  const keys = header.fields.map(headerKey);
  const column = (names: string[]): number => {
    for (const name of names) if (keys.includes(name)) return keys.indexOf(name);
    return -1;
  };
  const found = header.fields.map((cell) => quote(cell.trim())).join(', ');
  const timeAt = column(TIME_COLUMNS);
  const deviceAt = column(DEVICE_COLUMNS);
  const serialAt = column(SERIAL_COLUMNS);
  const statusAt = column(STATUS_COLUMNS);
  const detailAt = column(['domainattributes']);
  const utteranceAt = column(['utteranceid', 'firstutteranceid']);
  if (timeAt < 0) fail(header.line, `header: no time column (Timestamp or Date; found ${found})`);
  if (deviceAt < 0 && serialAt < 0) fail(header.line, `header: no device column (Device or Device Name; found ${found})`);
  return rows.map(({ line, fields }) => atLine(fail, line, () => {
    if (fields.length !== header.fields.length) {
      throw new FieldProblem(`${fields.length} fields, the header has ${header.fields.length} (quote fields that contain commas)`);
    }
    const cell = (index: number): string | null => (index < 0 ? null : text(fields[index]));
    const rawTime = cell(timeAt);
    if (rawTime === null) throw new FieldProblem(`${header.fields[timeAt].trim()}: missing`);
    const time = parseTime(rawTime, header.fields[timeAt].trim());
    const device = cell(deviceAt) ?? cell(serialAt);
    if (device === null) throw new FieldProblem(`${header.fields[deviceAt >= 0 ? deviceAt : serialAt].trim()}: missing`);
    const { intended, source, arbitration } = classifyStatus(cell(statusAt), cell(detailAt));
    return { event: { time, device: normalizeDevice(device), source, intended }, arbitration, utterance: parseUtteranceId(cell(utteranceAt)) };
  }));
}

function classify(input: string, fileName: string): Classified[] {
  const body = input.replace(/^\uFEFF/, '');
  const fail = failer('EARSHOT_ERR_VOICE_HISTORY', fileName);
  // an empty file has no shape (it imported as "0 records", exit 0); a lone JSON value (null, "x", 3) is
  // JSON, not a CSV header
  if (contentLines(body).length === 0) fail(1, 'empty: no voice-history records (Amazon\'s JSON or a CSV with a header)');
  if (!looksLikeJson(body) && /^\s*(null|true|false|-?\d[\d.eE+-]*|"[^\n]*")\s*$/.test(body)) {
    fail(1, 'JSON of no known shape: a voice-history export is an object or a list of records');
  }
  return foldPausedWakes(looksLikeJson(body) ? parseJson(body, fileName) : parseCsv(body, fileName));
}

/**
 * A "not intended" first turn (/0) of a dialog whose later turn (/1, ...) on the same device, within
 * PAUSED_WAKE_WINDOW_MS after it, was a request: the speaker paused after the wake word. It is no false
 * wake, so it becomes an intended event at its own time (source amazon-voice-history:paused): the wake
 * word was spoken then, at the start of the upload, while the request's record is stamped seconds later.
 * The request keeps its own event. A /0 with no such later turn stays "not intended".
 */
function foldPausedWakes(classified: Classified[]): Classified[] {
  // the later turns that were requests, by dialog: usually none or a handful, so a scan each is cheap
  const requests = new Map<string, Classified[]>();
  for (const c of classified) {
    if (c.utterance === null || c.utterance.turn === 0 || c.event.intended === false) continue;
    requests.set(c.utterance.dialog, [...(requests.get(c.utterance.dialog) ?? []), c]);
  }
  if (requests.size === 0) return classified;
  const device = (c: Classified): string => c.event.device?.toLowerCase() ?? '';
  return classified.map((c) => {
    if (c.event.intended !== false || c.utterance === null || c.utterance.turn !== 0) return c;
    const followed = (requests.get(c.utterance.dialog) ?? []).some((r) => device(r) === device(c) && r.event.time >= c.event.time && r.event.time - c.event.time <= PAUSED_WAKE_WINDOW_MS);
    return followed ? { ...c, event: { ...c.event, source: PAUSED_WAKE_SOURCE, intended: true } } : c;
  });
}

/** Wake events from a voice-history export: Amazon's JSON (one response, pages, or JSON Lines) or a CSV. */
export function parseVoiceHistory(input: string, fileName: string): WakeEvent[] {
  return classify(input, fileName).map((c) => c.event);
}

/** Counts of classified records. */
function countsOf(classified: Classified[]): VoiceHistoryCounts {
  const counts: VoiceHistoryCounts = { records: classified.length, intended: 0, notIntended: 0, arbitration: 0, pausedWakes: 0 };
  for (const { event, arbitration } of classified) {
    if (event.intended === false) counts.notIntended++;
    else counts.intended++;
    if (arbitration) counts.arbitration++;
    if (event.source === PAUSED_WAKE_SOURCE) counts.pausedWakes++;
  }
  return counts;
}

/** Wake events as the JSON Lines wake-event file format (ISO times, oldest first). */
export function formatWakeEvents(events: WakeEvent[]): string {
  return events
    .slice()
    .sort((a, b) => a.time - b.time)
    .map((e) => `${JSON.stringify({ time: new Date(e.time).toISOString(), device: e.device, source: e.source, ...(e.intended === undefined ? {} : { intended: e.intended }) })}\n`)
    .join('');
}

/**
 * Reads a voice-history export ('-': stdin) and writes its wake events as JSON Lines to `outputPath` ('-': stdout).
 * The file is written whole or not at all (collector/output-file.ts): neither a failure nor a power cut
 * leaves half a file, and a device or a link is written through, never replaced.
 */
export async function importVoiceHistory(inputPath: string, outputPath: string, onWait?: (message: string) => void): Promise<VoiceHistoryCounts> {
  const classified = classify(readInputText(inputPath), inputPath);
  const output = formatWakeEvents(classified.map((c) => c.event));
  if (outputPath === '-') {
    process.stdout.write(output);
  } else {
    await writeOutputFile(outputPath, output, {}, { onWait });
  }
  return countsOf(classified);
}
