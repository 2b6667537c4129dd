/**
 * Wake events from MQTT: a JSON payload holding one record or an array of them, each in the record
 * format of --wake-events files ({ time, device?, source?, intended? }). Each record goes through the
 * file parser itself (parseWakeEvents), so a record means the same on MQTT as in a file; the source
 * defaults to "mqtt". Good records are kept even when others in the same array are bad.
 */
import { isEarshotError } from '../../errors.js';
import { parseWakeEvents, type WakeEvent } from '../../detect/wake-events.js';

/** Largest payload read; a wake event is ~100 bytes. */
export const MAX_WAKE_PAYLOAD_BYTES = 64 * 1024;
/** Most records read from one payload. */
export const MAX_WAKE_RECORDS = 1000;

/** The fallback source: parseWakeEvents names events after the file, so the "file" is called mqtt. */
const SOURCE = 'mqtt';

export interface WakePayload {
  events: WakeEvent[];
  /** One line per rejected record (or for the whole payload), e.g. `record 2: time: missing`. */
  problems: string[];
}

/** Parses one MQTT payload; bad input is reported in `problems`, never thrown. */
export function parseWakePayload(payload: Buffer): WakePayload {
  if (payload.length > MAX_WAKE_PAYLOAD_BYTES) {
    return { events: [], problems: [`payload of ${payload.length} bytes is larger than ${MAX_WAKE_PAYLOAD_BYTES}`] };
  }
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8').replace(/^\uFEFF/, ''));
  } catch {
    return { events: [], problems: ['not valid JSON (a record { "time": ... } or an array of them)'] };
  }
  const single = !Array.isArray(value);
  const records: unknown[] = single ? [value] : (value as unknown[]);
  if (records.length > MAX_WAKE_RECORDS) {
    return { events: [], problems: [`${records.length} records, more than ${MAX_WAKE_RECORDS} in one payload`] };
  }
  const events: WakeEvent[] = [];
  const problems: string[] = [];
  records.forEach((record, index) => {
    const where = single ? '' : `record ${index + 1}: `;
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      problems.push(`${where}not a JSON object`);
      return;
    }
    try {
      // one line of JSON Lines: JSON.stringify escapes line breaks, so the record stays one line
      events.push(...parseWakeEvents(JSON.stringify(record), SOURCE));
    } catch (err) {
      if (!isEarshotError(err)) throw err;
      // the file parser says "mqtt:1: time: missing"; the location is ours to give
      problems.push(`${where}${err.message.replace(/^mqtt:\d+: /, '')}`);
    }
  });
  return { events, problems };
}
