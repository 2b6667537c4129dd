/**
 * What a Grafana table panel shows of its InfluxQL queries' answers: each query (format "table") as one
 * frame (Time, the GROUP BY tags, then the selected columns; a row per point of every series, as the
 * InfluxDB data source builds it), then the panel's transformations in order. Only the transformations
 * earshot's dashboards use, written from Grafana's documented behaviour (and, for merge, the rules of
 * its transformer: rows are keyed on the fields every frame has, and rows with the same key whose other
 * values do not disagree become one row); anything else throws, so a new transformation cannot pass unseen.
 */
import type { Series } from './influxd.js';

export interface Frame {
  fields: string[];
  rows: unknown[][];
}

export interface Transformation {
  id: string;
  options?: Record<string, unknown>;
}

/** One query's answer as the frame the table format makes of it. */
export function tableFrame(series: readonly Series[]): Frame {
  const fields: string[] = [];
  const rows: unknown[][] = [];
  for (const s of series) {
    const tags = Object.keys(s.tags ?? {});
    const names = ['Time', ...tags, ...s.columns.filter((c) => c !== 'time')];
    for (const n of names) if (!fields.includes(n)) fields.push(n);
    for (const v of s.values) {
      const row = new Array<unknown>(fields.length).fill(null);
      row[fields.indexOf('Time')] = v[s.columns.indexOf('time')];
      for (const t of tags) row[fields.indexOf(t)] = s.tags?.[t] ?? null;
      s.columns.forEach((c, i) => { if (c !== 'time') row[fields.indexOf(c)] = v[i]; });
      rows.push(row);
    }
  }
  return { fields, rows: rows.map((r) => fields.map((_, i) => r[i] ?? null)) };
}

const asRecords = (f: Frame) => f.rows.map((r) => Object.fromEntries(f.fields.map((n, i) => [n, r[i]])));
const fromRecords = (fields: string[], records: Array<Record<string, unknown>>): Frame => ({ fields, rows: records.map((r) => fields.map((n) => r[n] ?? null)) });

function merge(frames: Frame[]): Frame[] {
  const data = frames.filter((f) => f.fields.length > 0);
  if (data.length <= 1) return frames;
  const fields: string[] = [];
  for (const f of data) for (const n of f.fields) if (!fields.includes(n)) fields.push(n);
  const keys = fields.filter((n) => data.every((f) => f.fields.includes(n)));
  if (keys.length === 0) return frames;
  const byKey = new Map<string, Array<Record<string, unknown>>>();
  const order: Array<Record<string, unknown>> = [];
  for (const f of data) {
    for (const value of asRecords(f)) {
      const key = JSON.stringify(keys.map((k) => value[k]));
      const existing = byKey.get(key);
      if (existing === undefined) {
        byKey.set(key, [value]);
        order.push(value);
        continue;
      }
      const into = existing.find((e) => Object.keys(value).every((p) => e[p] === undefined || e[p] === null || e[p] === value[p]));
      if (into !== undefined) Object.assign(into, value);
      else {
        existing.push(value);
        order.push(value);
      }
    }
  }
  return [fromRecords(fields, order)];
}

function joinByField(frames: Frame[], by: string): Frame[] {
  const [first, ...rest] = frames;
  if (first === undefined) return frames;
  let rows = asRecords(first);
  const fields = [...first.fields];
  for (const f of rest) {
    for (const n of f.fields) if (!fields.includes(n)) fields.push(n);
    const right = asRecords(f);
    const joined: Array<Record<string, unknown>> = [];
    const used = new Set<Record<string, unknown>>();
    for (const l of rows) {
      const matches = right.filter((r) => r[by] === l[by]);
      for (const m of matches) used.add(m);
      if (matches.length === 0) joined.push({ ...l });
      // a field both sides have keeps the left one's value (Grafana would add the right one as a second field)
      for (const m of matches) joined.push({ ...m, ...l });
    }
    for (const r of right) if (!used.has(r)) joined.push({ ...r });
    rows = joined;
  }
  return [fromRecords(fields, rows)];
}

/** The panel's transformations applied to its frames, in order. */
export function transform(frames: Frame[], transformations: readonly Transformation[]): Frame[] {
  let out = frames;
  for (const t of transformations) {
    const o = t.options ?? {};
    switch (t.id) {
      case 'filterFieldsByName': {
        const exclude = new Set(((o.exclude as { names?: string[] } | undefined)?.names) ?? []);
        out = out.map((f) => {
          const keep = f.fields.map((n, i) => [n, i] as const).filter(([n]) => !exclude.has(n));
          return { fields: keep.map(([n]) => n), rows: f.rows.map((r) => keep.map(([, i]) => r[i])) };
        });
        break;
      }
      case 'merge':
        out = merge(out);
        break;
      case 'joinByField':
        out = joinByField(out, String(o.byField));
        break;
      case 'organize': {
        const rename = (o.renameByName as Record<string, string> | undefined) ?? {};
        const excluded = (o.excludeByName as Record<string, boolean> | undefined) ?? {};
        out = out.map((f) => {
          const keep = f.fields.map((n, i) => [n, i] as const).filter(([n]) => excluded[n] !== true);
          return { fields: keep.map(([n]) => rename[n] ?? n), rows: f.rows.map((r) => keep.map(([, i]) => r[i])) };
        });
        break;
      }
      default:
        throw new Error(`transformation "${t.id}" is not simulated here (test/helpers/grafana-table.ts)`);
    }
  }
  return out;
}

/** A frame's rows as records keyed by field name. */
export function records(frame: Frame): Array<Record<string, unknown>> {
  return asRecords(frame);
}
