/**
 * A small typed InfluxQL builder for the dashboards: the Grafana SDK has no InfluxDB query type, and
 * hand-written query strings drift from the schema. Measurements, tags and fields are those of
 * docs/influxdb.md, so a misspelt field or a tag used as a field does not compile. Only InfluxQL that
 * InfluxDB 1.x, 2.x (through DBRP) and 3.x all run is offered: no SHOW SERIES, no SLIMIT, no INTO.
 */
import { ident, literal } from '../collector/sink/influx/line-protocol.js';

/** earshot's measurements, their tags and their fields (docs/influxdb.md). */
export const SCHEMA = {
  traffic: {
    tags: ['site', 'device', 'device_name', 'vendor', 'assistant', 'service', 'server_name'],
    fields: ['bytes_up', 'bytes_down', 'packets_up', 'packets_down'],
  },
  activation: {
    tags: ['site', 'device', 'device_name', 'verdict'],
    fields: ['id', 'duration_s', 'bytes_up', 'bytes_down', 'score', 'reasons', 'server_name', 'wake_event_ms', 'current'],
  },
  endpoint: {
    tags: ['site', 'device', 'device_name', 'org', 'category', 'service', 'party'],
    fields: ['bytes_up', 'bytes_down', 'flows'],
  },
  notice: {
    tags: ['site', 'device', 'device_name', 'kind', 'what'],
    fields: ['count', 'subject', 'organisation', 'service', 'endpoint', 'severity', 'title'],
  },
  wake_event: {
    tags: ['site', 'device', 'source'],
    fields: ['count', 'intended'],
  },
  device: {
    tags: ['site', 'device'],
    fields: ['name', 'vendor', 'organization', 'model', 'ips', 'assistant', 'first_seen_ms', 'last_seen_ms'],
  },
  collector: {
    tags: ['site'],
    fields: [
      'packets', 'bytes', 'kernel_drops', 'interface_drops', 'decode_errors', 'flows_active', 'flows_created',
      'flows_evicted', 'activations', 'points', 'points_written', 'points_rejected', 'points_dropped',
      'write_errors', 'queue_depth', 'spool_points', 'spool_bytes', 'spool_write_errors', 'spool_held_points',
      'batches_quarantined', 'points_quarantined', 'rss_bytes', 'heap_used_bytes', 'instance', 'version',
    ],
  },
} as const;

export type Measurement = keyof typeof SCHEMA;
export type TagOf<M extends Measurement> = (typeof SCHEMA)[M]['tags'][number];
export type FieldOf<M extends Measurement> = (typeof SCHEMA)[M]['fields'][number];
/** The retention policies earshot creates; none means the database's default (earshot_raw). */
export type RetentionPolicy = 'earshot_raw' | 'earshot_long';
export type Aggregate = 'count' | 'sum' | 'mean' | 'median' | 'spread' | 'stddev' | 'distinct';
export type Selector = 'last' | 'first' | 'max' | 'min';
export type Fill = 'null' | 'none' | 'previous' | 'linear' | number;

// InfluxQL quoting: one definition, with the collector's statements
export { ident, literal };

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A Grafana template variable reference, `$name`. */
export function variable(name: string): string {
  if (!VARIABLE_NAME.test(name)) throw new Error(`not a template variable name: ${name}`);
  return `$${name}`;
}

/**
 * An expression in a SELECT list. `F` names the fields it reads, so select() can check them against
 * the measurement; it is only a type.
 */
export interface Expr<F extends string> {
  readonly sql: string;
  readonly fields: readonly F[];
}

/** A SELECT-list item: an expression, possibly renamed with AS. */
export interface Column<F extends string> extends Expr<F> {
  readonly alias: string | null;
}

function expr<F extends string>(sql: string, fields: readonly F[]): Expr<F> {
  return { sql, fields };
}

/** The field's raw value (no aggregate): a column of its points. */
export function field<F extends string>(name: F): Expr<F> {
  return expr(ident(name), [name]);
}

/** An aggregate or selector of a field, or of another expression (for nested functions). */
export function fn<F extends string>(name: Aggregate | Selector, of: F | Expr<F>): Expr<F> {
  const arg = typeof of === 'string' ? field(of) : of;
  return expr(`${name}(${arg.sql})`, arg.fields);
}

export const count = <F extends string>(of: F | Expr<F>) => fn('count', of);
export const sum = <F extends string>(of: F | Expr<F>) => fn('sum', of);
export const mean = <F extends string>(of: F | Expr<F>) => fn('mean', of);
export const max = <F extends string>(of: F | Expr<F>) => fn('max', of);
export const last = <F extends string>(of: F | Expr<F>) => fn('last', of);
/** The distinct values of a field; count(distinct(f)) counts them. */
export const distinct = <F extends string>(of: F | Expr<F>) => fn('distinct', of);

/** Rate of a cumulative counter per `unit`, negative steps (a restart) dropped. */
export function nonNegativeDerivative<F extends string>(of: Expr<F>, unit = '1s'): Expr<F> {
  return expr(`non_negative_derivative(${of.sql}, ${unit})`, of.fields);
}

/**
 * Turns a per-bucket sum into a per-second rate, for queries grouped by time($__interval); Grafana
 * puts the bucket length in milliseconds into $__interval_ms.
 */
export function perSecond<F extends string>(of: Expr<F>): Expr<F> {
  return expr(`(${of.sql}) * 1000 / $__interval_ms`, of.fields);
}

/** a + b */
export function plus<A extends string, B extends string>(a: Expr<A>, b: Expr<B>): Expr<A | B> {
  return expr(`${a.sql} + ${b.sql}`, [...a.fields, ...b.fields]);
}

/** Renames a column: `expr AS "alias"`. */
export function as<F extends string>(of: Expr<F>, alias: string): Column<F> {
  return { ...of, alias };
}

/** A WHERE condition; `K` names the tags and fields it reads (only a type). */
export interface Condition<K extends string> {
  readonly sql: string;
  readonly keys: readonly K[];
}

/** Conditions on a tag. */
export function tag<K extends string>(key: K) {
  const cond = (sql: string): Condition<K> => ({ sql: `${ident(key)} ${sql}`, keys: [key] });
  return {
    /** `"key" = 'value'` */
    eq: (value: string) => cond(`= ${literal(value)}`),
    /** `"key" != 'value'`; a point without the tag has '' and so matches. */
    ne: (value: string) => cond(`!= ${literal(value)}`),
    /**
     * `"key" =~ /^$name$/`: Grafana replaces the variable with its regex-escaped value, or
     * `(a|b)` for several values and for All.
     */
    matchesVariable: (name: string) => cond(`=~ /^${variable(name)}$/`),
  };
}

/** A boolean field compared with a constant, `"field" = true`. */
export function fieldEquals<K extends string>(key: K, value: boolean | number): Condition<K> {
  return { sql: `${ident(key)} = ${String(value)}`, keys: [key] };
}

/**
 * Points newer than `duration` before InfluxDB's clock, `time > now() - 2m`: a window that stays the
 * same whatever time range the dashboard shows (which $timeFilter, ANDed with it, can only narrow).
 */
export function newerThan(duration: string): Condition<never> {
  if (!/^\d+(s|m|h|d)$/.test(duration)) throw new Error(`not an InfluxQL duration: ${duration}`);
  return { sql: `time > now() - ${duration}`, keys: [] };
}

/**
 * `activation` points of their current verdict: when a verdict changes (a late wake event, a label),
 * earshot writes the activation again under the new one and marks the old point `current=false`.
 */
export function current(): Condition<'current'> {
  return fieldEquals('current', true);
}

/** A SELECT statement over one measurement; always filtered by Grafana's $timeFilter. */
export class SelectQuery<M extends Measurement> {
  private columns: string[] = [];
  private conditions: string[] = [];
  private interval: string | null = null;
  private tags: string[] = [];
  private fillMode: Fill | null = null;
  private descending = false;
  private rowLimit: number | null = null;

  constructor(private readonly measurement: M, private readonly policy: RetentionPolicy | null) {}

  /** The columns: fields, aggregates, selectors and arithmetic of this measurement's fields (and tags, raw). */
  select(...columns: Array<Expr<FieldOf<M> | TagOf<M>> | Column<FieldOf<M> | TagOf<M>>>): this {
    if (columns.length === 0) throw new Error('select() needs a column');
    this.columns = columns.map((c) => ('alias' in c && c.alias !== null ? `${c.sql} AS ${ident(c.alias)}` : c.sql));
    return this;
  }

  /** Conditions, joined with AND before $timeFilter. */
  where(...conditions: Array<Condition<TagOf<M> | FieldOf<M>>>): this {
    this.conditions.push(...conditions.map((c) => c.sql));
    return this;
  }

  /** GROUP BY time(interval), $__interval by default (Grafana's bucket for the panel's width). */
  groupByTime(interval = '$__interval'): this {
    this.interval = interval;
    return this;
  }

  /** GROUP BY these tags (after time, if grouped by time). */
  groupBy(...tags: Array<TagOf<M>>): this {
    this.tags.push(...tags);
    return this;
  }

  /** fill() for empty time buckets. */
  fill(mode: Fill): this {
    this.fillMode = mode;
    return this;
  }

  /** Newest first. */
  newestFirst(): this {
    this.descending = true;
    return this;
  }

  limit(rows: number): this {
    if (!Number.isInteger(rows) || rows <= 0) throw new Error(`limit must be a positive integer: ${rows}`);
    this.rowLimit = rows;
    return this;
  }

  /** The InfluxQL text, with Grafana's macros left for Grafana to expand. */
  toString(): string {
    if (this.columns.length === 0) throw new Error(`query on ${this.measurement} has no columns`);
    const from = this.policy === null ? ident(this.measurement) : `${ident(this.policy)}.${ident(this.measurement)}`;
    const where = [...this.conditions, '$timeFilter'].join(' AND ');
    let q = `SELECT ${this.columns.join(', ')} FROM ${from} WHERE ${where}`;
    const groups = [...(this.interval === null ? [] : [`time(${this.interval})`]), ...this.tags.map(ident)];
    if (groups.length > 0) q += ` GROUP BY ${groups.join(', ')}`;
    if (this.fillMode !== null) {
      if (this.interval === null) throw new Error('fill() needs groupByTime()');
      q += ` fill(${this.fillMode})`;
    }
    if (this.descending) q += ' ORDER BY time DESC';
    if (this.rowLimit !== null) q += ` LIMIT ${this.rowLimit}`;
    return q;
  }
}

/** Starts a SELECT on a measurement, optionally in a retention policy other than the default. */
export function from<M extends Measurement>(measurement: M, policy: RetentionPolicy | null = null): SelectQuery<M> {
  return new SelectQuery(measurement, policy);
}

/**
 * Counts the rows of an inner query per tag: `SELECT count("col") AS "alias" FROM (inner) WHERE
 * $timeFilter GROUP BY "tag"`. How many devices a site has, say, when the inner query gives one row per
 * site and device (InfluxQL has no count of distinct tag values; 1.x, 2.x and 3.x all run subqueries).
 */
export function countRows<M extends Measurement>(inner: SelectQuery<M>, column: string, alias: string, ...tags: Array<TagOf<M>>): string {
  const group = tags.length > 0 ? ` GROUP BY ${tags.map(ident).join(', ')}` : '';
  return `SELECT count(${ident(column)}) AS ${ident(alias)} FROM (${inner.toString()}) WHERE $timeFilter${group}`;
}

/** `SHOW TAG VALUES FROM "m" WITH KEY = "k" [WHERE ...]`, for template variables. */
export function showTagValues<M extends Measurement>(measurement: M, key: TagOf<M>, ...conditions: Array<Condition<TagOf<M>>>): string {
  const where = conditions.length > 0 ? ` WHERE ${conditions.map((c) => c.sql).join(' AND ')}` : '';
  return `SHOW TAG VALUES FROM ${ident(measurement)} WITH KEY = ${ident(key)}${where}`;
}
