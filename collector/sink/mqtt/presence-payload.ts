/**
 * The owner's presence from MQTT (PREFIX/presence): `{"away": true}` or `{"away": false}`, the body of
 * PUT /api/v1/presence. Anything else is one problem line, never thrown: a home automation that
 * publishes "home" or {"away": "yes"} gets a log line saying what earshot expects.
 */
import { preview } from '../../text.js';

/** Largest payload read; a presence message is ~15 bytes. */
export const MAX_PRESENCE_PAYLOAD_BYTES = 1024;

export type PresencePayload = { away: boolean; problem?: undefined } | { away?: undefined; problem: string };

/** Parses one MQTT payload. */
export function parsePresencePayload(payload: Buffer): PresencePayload {
  const expected = 'a JSON object {"away": true} or {"away": false}';
  if (payload.length > MAX_PRESENCE_PAYLOAD_BYTES) return { problem: `payload of ${payload.length} bytes is larger than ${MAX_PRESENCE_PAYLOAD_BYTES}` };
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8').replace(/^\uFEFF/, ''));
  } catch {
    return { problem: `not JSON: expected ${expected}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: `not ${expected}` };
  const keys = Object.keys(value);
  const other = keys.find((key) => key !== 'away');
  if (other !== undefined) return { problem: `unknown key ${JSON.stringify(other.slice(0, 40))}: expected ${expected}` };
  const away = (value as { away?: unknown }).away;
  if (typeof away !== 'boolean') return { problem: `"away" must be true or false, got ${away === undefined ? 'nothing' : preview(away, 40)}` };
  return { away };
}
