/**
 * Wake events from MQTT: a JSON payload holding one record or an array of them, each in the record
 * format of --wake-events files ({ time, device?, source?, intended? }). Each record goes through the
 * record reader of files and the API (parseWakeRecord), so a record means the same on MQTT as there; the
 * source defaults to "mqtt". Good records are kept even when others in the same array are bad.
 */
import { parseWakeRecord, wakeRecordLine, type WakeEvent } from '../../detect/wake-events.js';

/** Largest payload read; a wake event is ~100 bytes. */
export const MAX_WAKE_PAYLOAD_BYTES = 64 * 1024;
/** Most records read from one payload. */
export const MAX_WAKE_RECORDS = 1000;

/** The source of a record that names none. */
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
    const result = parseWakeRecord(record, SOURCE, single ? '' : `record ${index + 1}`);
    if (result.ok) events.push(result.event);
    else problems.push(wakeRecordLine(result.error));
  });
  return { events, problems };
}
