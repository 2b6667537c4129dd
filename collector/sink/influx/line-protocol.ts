/**
 * InfluxDB line protocol (https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/):
 * measurement,tag=value field=1i,other="text" <time>. The same text is accepted by the /write endpoint of
 * InfluxDB 1.x, 2.x and 3.x. Written by hand rather than through the influx package's point parser: the
 * sink builds many points and needs neither its schema checks nor a Date per point.
 */

import { fillOnceMemo } from '../../memo.js';
import { printable } from '../../text.js';

/*
 * InfluxDB (1.x, 2.x) keeps a backslash in a name, tag key or tag value as it is, unless it comes before
 * a character that must be escaped or at the end; there it reads it as an escape, and no spelling gives
 * it back. Such backslashes are dropped; the others are written once (doubled, they come back doubled).
 */

/*
 * Names come from packets (a DHCP host name, an mDNS model) and Grafana shows them to a person: control,
 * bidi and zero-width characters are written as visible escapes (collector/text.ts), as everywhere earshot
 * shows such text. It also keeps every point on one line without NUL bytes, which the spool's check of a
 * batch read back from disk relies on (batch-check.ts): a host name with a line break or a NUL made every
 * spooled batch holding it look torn, and it was set aside with all the other devices' points in it.
 */
/**
 * Escaped text of the tag values, tag keys, field keys and string fields that points repeat (devices,
 * names, services: a home's few dozen), filled up to MAX_ESCAPED entries of at most MAX_ESCAPED_LENGTH
 * characters and then left as it is (~0.5 MB at most): the values come from the traffic, and a LAN that
 * makes them up must not grow it. Each tag went through two or three regular expressions per point
 * before (~50 ms of a replay of the bench capture into InfluxDB).
 */
const MAX_ESCAPED = 1024;
/** Longer text is escaped each time (a device's list of addresses changes as often as it is written). */
const MAX_ESCAPED_LENGTH = 128;
const cacheable = (text: string) => text.length <= MAX_ESCAPED_LENGTH;

/**
 * Tag keys and values, and field keys: commas, equals signs and spaces are escaped; newlines become
 * spaces, other control, bidi and zero-width characters visible escapes (`\x00`, `\u202e`).
 */
export const escapeKey = fillOnceMemo(escapeKeyText, MAX_ESCAPED, cacheable);

function escapeKeyText(text: string): string {
  const shown = printable(/[\n\r]/.test(text) ? text.replace(/[\n\r]/g, ' ') : text);
  if (!/[,= \\]/.test(shown)) return shown;
  return shown.replace(/\\+(?=[,= ]|$)/g, '').replace(/[,= ]/g, '\\$&');
}

/** Measurement names: commas and spaces are escaped; newlines become spaces. */
export function escapeMeasurement(text: string): string {
  if (!/[, \\\n\r]/.test(text)) return text;
  return text.replace(/[\n\r]/g, ' ').replace(/\\+(?=[, ]|$)/g, '').replace(/[, ]/g, '\\$&');
}

/**
 * A string field value, quoted: double quotes and backslashes are escaped; control (line breaks too),
 * bidi and zero-width characters become visible escapes (`\x0a`, `\u202e`).
 */
export const quoteString = fillOnceMemo(quoteText, MAX_ESCAPED, cacheable);

function quoteText(text: string): string {
  return `"${printable(text).replace(/(["\\])/g, '\\$1')}"`;
}

export type FieldValue = number | boolean | string | { readonly int: number } | { readonly unique: string };

/** An integer field (written with the `i` suffix, so InfluxDB keeps it as integer). */
export const int = (value: number): { readonly int: number } => ({ int: Math.trunc(value) });

/**
 * A string field that never repeats (an activation's or a call's id): quoted each time and kept out of
 * quoteString's memo, which would otherwise fill with ids after ~1,000 activations and leave every name
 * first seen after them to be escaped again at each point.
 */
export const unique = (text: string): { readonly unique: string } => ({ unique: text });

function fieldText(value: FieldValue): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : null;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return quoteString(value);
  if ('unique' in value) return quoteText(value.unique);
  return Number.isFinite(value.int) ? `${value.int}i` : null;
}

/**
 * The series part of a line: the measurement and its tags, sorted by key as InfluxDB recommends. Tags
 * with empty or null values are left out (InfluxDB has no empty tags).
 */
export function seriesText(measurement: string, tags: Record<string, string | null | undefined>): string {
  let text = escapeMeasurement(measurement);
  for (const key of Object.keys(tags).sort()) {
    const value = tags[key];
    if (value === null || value === undefined || value === '') continue;
    const tagKey = escapeKey(key);
    const tagValue = escapeKey(value);
    // a key or value of backslashes only is empty once they are dropped
    if (tagKey === '' || tagValue === '') continue;
    text += `,${tagKey}=${tagValue}`;
  }
  return text;
}

/** One point as a line (see seriesText for the tags). Returns null when no field has a value. */
export function pointLine(
  measurement: string,
  tags: Record<string, string | null | undefined>,
  fields: Record<string, FieldValue | null | undefined>,
  timeMs: number,
): string | null {
  let line = seriesText(measurement, tags);
  let sep = ' ';
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value === null || value === undefined) continue;
    const text = fieldText(value);
    if (text === null) continue;
    line += `${sep}${escapeKey(key)}=${text}`;
    sep = ',';
  }
  if (sep === ' ') return null;
  return `${line} ${Math.floor(timeMs)}`;
}

/*
 * InfluxQL quoting, for the statements earshot sends (setup, export) and the dashboards' queries: the
 * query language escapes differently from line protocol (backslash before the quote and itself).
 */

/** A double-quoted InfluxQL identifier (database, retention policy, measurement, tag or field name). */
export function ident(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A single-quoted InfluxQL string literal. */
export function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
