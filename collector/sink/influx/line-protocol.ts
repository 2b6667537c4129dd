/**
 * InfluxDB line protocol (https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/):
 * measurement,tag=value field=1i,other="text" <time>. The same text is accepted by the /write endpoint of
 * InfluxDB 1.x, 2.x and 3.x. Written by hand rather than through the influx package's point parser: the
 * sink builds many points and needs neither its schema checks nor a Date per point.
 */

/** Tag keys and values, and field keys: commas, equals signs and spaces are escaped; newlines cannot be. */
export function escapeKey(text: string): string {
  if (!/[,= \\\n\r]/.test(text)) return text;
  return text.replace(/[\n\r]/g, ' ').replace(/([,= \\])/g, '\\$1');
}

/** Measurement names: commas and spaces are escaped. */
export function escapeMeasurement(text: string): string {
  if (!/[, \\\n\r]/.test(text)) return text;
  return text.replace(/[\n\r]/g, ' ').replace(/([, \\])/g, '\\$1');
}

/** A string field value, quoted: double quotes and backslashes are escaped. */
export function quoteString(text: string): string {
  return `"${text.replace(/(["\\])/g, '\\$1')}"`;
}

export type FieldValue = number | boolean | string | { readonly int: number };

/** An integer field (written with the `i` suffix, so InfluxDB keeps it as integer). */
export const int = (value: number): { readonly int: number } => ({ int: Math.trunc(value) });

function fieldText(value: FieldValue): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : null;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return quoteString(value);
  return Number.isFinite(value.int) ? `${value.int}i` : null;
}

/**
 * One point as a line. Tags with empty or null values are left out (InfluxDB has no empty tags); tags
 * are sorted by key, as InfluxDB recommends. Returns null when no field has a value.
 */
export function pointLine(
  measurement: string,
  tags: Record<string, string | null | undefined>,
  fields: Record<string, FieldValue | null | undefined>,
  timeMs: number,
): string | null {
  let line = escapeMeasurement(measurement);
  for (const key of Object.keys(tags).sort()) {
    const value = tags[key];
    if (value === null || value === undefined || value === '') continue;
    line += `,${escapeKey(key)}=${escapeKey(value)}`;
  }
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
