/**
 * What Grafana does to an InfluxQL query before InfluxDB sees it, for the tests that run the
 * generated dashboards' queries against a real InfluxDB:
 * - the frontend replaces template variables; inside a regex (`=~ /^$device$/`) a value is
 *   regex-escaped and several values (multi-value, All) become `(a|b)`;
 * - the backend (pkg/tsdb/influxdb/models/query.go, Build) replaces `$timeFilter` with
 *   `time >= <from>ms and time <= <to>ms`, then `$interval`, `$__interval_ms` and `$__interval` with the
 *   query's interval: the range divided by the panel's max data points, rounded to a "nice" step, and
 *   never below the data source's minimum interval (jsonData.timeInterval).
 */

/** Grafana's escapeRegex (@grafana/data): what a template variable's value becomes inside a regex. */
export function escapeRegex(value: string): string {
  return value.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');
}

/** A variable's current value: one string, or several (multi-value, or All without an allValue). */
export type VariableValue = string | readonly string[] | { readonly raw: string };

const BUILTIN = new Set(['timeFilter', 'interval', '__interval', '__interval_ms', 'col']);

/**
 * Replaces `$name` and `${name}` of the given variables, formatted for a regex as Grafana's InfluxDB
 * data source does; Grafana's own macros are left for expandMacros(). An unknown variable throws:
 * Grafana would leave it in the query and InfluxDB would fail on it.
 */
export function interpolateVariables(query: string, variables: Readonly<Record<string, VariableValue>>): string {
  return query.replace(/\$\{(\w+)\}|\$(\w+)/g, (match, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare) as string;
    if (BUILTIN.has(name) || name.startsWith('tag_')) return match;
    const value = variables[name];
    if (value === undefined) throw new Error(`template variable $${name} has no value in: ${query}`);
    // a custom "All" value (allValue) goes in as it is: Grafana's templateSrv does not format it
    if (typeof value === 'object' && 'raw' in value) return value.raw;
    return typeof value === 'string' ? escapeRegex(value) : `(${value.map(escapeRegex).join('|')})`;
  });
}

/** Grafana's roundInterval (rangeutil): the "nice" bucket for a raw interval in ms. */
export function roundInterval(ms: number): number {
  const steps: Array<[number, number]> = [
    [15, 10], [35, 20], [75, 50], [150, 100], [350, 200], [750, 500], [1_500, 1_000], [3_500, 2_000],
    [7_500, 5_000], [12_500, 10_000], [17_500, 15_000], [25_000, 20_000], [45_000, 30_000], [90_000, 60_000],
    [210_000, 120_000], [450_000, 300_000], [750_000, 600_000], [1_050_000, 900_000], [1_500_000, 1_200_000],
    [2_700_000, 1_800_000], [5_400_000, 3_600_000], [9_000_000, 7_200_000], [16_200_000, 10_800_000],
    [32_400_000, 21_600_000], [86_400_000, 43_200_000], [604_800_000, 86_400_000], [1_814_400_000, 604_800_000],
    [3_628_800_000, 2_592_000_000],
  ];
  for (const [below, step] of steps) if (ms < below) return step;
  return 31_536_000_000;
}

/** The interval Grafana gives a query: range / maxDataPoints, rounded, at least minIntervalMs. */
export function queryIntervalMs(fromMs: number, toMs: number, maxDataPoints: number, minIntervalMs: number): number {
  return Math.max(roundInterval((toMs - fromMs) / maxDataPoints), minIntervalMs);
}

/** Go's gtime.FormatInterval: the interval as InfluxQL reads it (10s, 1m, 12h). */
export function formatInterval(ms: number): string {
  const units: Array<[number, string]> = [[31_536_000_000, 'y'], [86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'm'], [1_000, 's'], [1, 'ms']];
  for (const [size, unit] of units) if (ms >= size) return `${Math.floor(ms / size)}${unit}`;
  return '1ms';
}

/** Parses a Grafana duration such as "10s" or "1m" into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/**
 * A panel's time range: its relative time (timeFrom: "now/d" for today so far, in UTC, "10m" for the last
 * ten minutes) replaces the dashboard's, ending at the same "now"; without one, the dashboard's.
 */
export function panelRange(range: { fromMs: number; toMs: number }, timeFrom: string | undefined): { fromMs: number; toMs: number } {
  if (timeFrom === undefined) return range;
  if (timeFrom === 'now/d') {
    const day = new Date(range.toMs);
    return { fromMs: Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate()), toMs: range.toMs };
  }
  return { fromMs: range.toMs - parseDuration(timeFrom), toMs: range.toMs };
}

/** Grafana's backend macros, in its order: $timeFilter, $interval, $__interval_ms, $__interval. */
export function expandMacros(query: string, range: { fromMs: number; toMs: number }, intervalMs: number): string {
  const text = formatInterval(intervalMs);
  return query
    .replaceAll('$timeFilter', `time >= ${range.fromMs}ms and time <= ${range.toMs}ms`)
    .replaceAll('$interval', text)
    .replaceAll('$__interval_ms', String(intervalMs))
    .replaceAll('$__interval', text);
}
