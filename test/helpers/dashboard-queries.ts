/**
 * Runs a committed dashboard's queries against a real InfluxDB the way Grafana would: template
 * variables first (their values go into the other queries), then annotations and panel targets, each
 * with the variables interpolated and Grafana's macros expanded (dashboards/macros.ts). Used by
 * dashboards/queries.test.ts (one site) and test/fleet.test.ts (three sites in one database).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DASHBOARDS_DIR } from '../../dashboards/index.js';
import { expandMacros, interpolateVariables, panelRange, queryIntervalMs, type VariableValue } from '../../dashboards/macros.js';
import type { Influxd, Series } from './influxd.js';
import { PROJECT_ROOT } from './shared.js';

export interface DashboardVariable {
  name: string;
  query: string;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
  current?: { value?: string | string[] };
}

export interface DashboardJson {
  uid: string;
  panels: Array<{ id: number; title: string; timeFrom?: string; targets?: Array<{ refId: string; query: string }> }>;
  templating: { list?: DashboardVariable[] };
  annotations: { list?: Array<{ name: string; query: string }> };
}

export function readDashboard(file: string): DashboardJson {
  return JSON.parse(readFileSync(join(PROJECT_ROOT, DASHBOARDS_DIR, file), 'utf8')) as DashboardJson;
}

export interface QueryRun {
  /** Which query: "<uid> panel <id> "<title>" <refId>", "<uid> variable $name", "<uid> annotation ...". */
  where: string;
  /** The panel, for panel targets. */
  panel?: { id: number; title: string };
  refId?: string;
  /** The InfluxQL InfluxDB ran. */
  query: string;
  results: Series[][];
}

export interface TimeRange {
  fromMs: number;
  toMs: number;
}

export interface RunOptions {
  /** The dashboard's time range; its end is "now" for the panels' own ranges (timeFrom). */
  range: TimeRange;
  /** The data source's minimum interval (jsonData.timeInterval), in ms. */
  minIntervalMs: number;
  /** Points a panel asks for (Grafana: about its width in pixels). */
  maxDataPoints: number;
  /**
   * The value of a template variable, given the values its query returned; undefined takes Grafana's
   * default for an "All" variable (its allValue, or every value).
   */
  choose?: (variable: DashboardVariable, values: string[]) => VariableValue | undefined;
  /**
   * InfluxDB's clock when the dashboard is viewed: `now()` in a query becomes this time, so a test
   * can look at data written at other times as if it were live. Without it InfluxDB's own clock applies.
   */
  nowMs?: number;
}

export { panelRange };

/** Runs one query; an error answer throws with where it came from. */
async function run(server: Influxd, db: string, where: string, query: string): Promise<Series[][]> {
  return server.query(db, query).catch((err: Error) => {
    throw new Error(`${where}: ${err.message}\n${query}`);
  });
}

/** Every query of the dashboard, run in Grafana's order; returns what each gave. */
export async function runDashboard(server: Influxd, db: string, dashboard: DashboardJson, options: RunOptions): Promise<QueryRun[]> {
  const ran: QueryRun[] = [];
  const variables: Record<string, VariableValue> = {};
  const expand = (q: string, range = options.range) => {
    const intervalMs = queryIntervalMs(range.fromMs, range.toMs, options.maxDataPoints, options.minIntervalMs);
    const text = expandMacros(interpolateVariables(q, variables), range, intervalMs);
    return options.nowMs === undefined ? text : text.replaceAll('now()', `${options.nowMs}ms`);
  };
  for (const v of dashboard.templating.list ?? []) {
    const where = `${dashboard.uid} variable $${v.name}`;
    const query = expand(v.query);
    const results = await run(server, db, where, query);
    ran.push({ where, query, results });
    const values = (results[0] ?? []).flatMap((s) => s.values.map((row) => String(row[s.columns.indexOf('value')])));
    const chosen = options.choose?.(v, values);
    if (chosen !== undefined) variables[v.name] = chosen;
    else if (v.includeAll && v.allValue) variables[v.name] = { raw: v.allValue }; // All with an allValue: that text, unformatted
    else if (v.includeAll) variables[v.name] = values; // All without an allValue: every value, as (a|b|...)
    else throw new Error(`${where}: no value chosen`);
  }
  for (const a of dashboard.annotations.list ?? []) {
    const where = `${dashboard.uid} annotation "${a.name}"`;
    const query = expand(a.query);
    ran.push({ where, query, results: await run(server, db, where, query) });
  }
  for (const p of dashboard.panels) {
    for (const t of p.targets ?? []) {
      const where = `${dashboard.uid} panel ${p.id} "${p.title}" ${t.refId}`;
      const query = expand(t.query, panelRange(options.range, p.timeFrom));
      ran.push({ where, panel: { id: p.id, title: p.title }, refId: t.refId, query, results: await run(server, db, where, query) });
    }
  }
  return ran;
}

/** Rows of all series, and how many have a value other than time. */
export function summarize(results: Series[][]): { rows: number; values: number } {
  let rows = 0;
  let values = 0;
  for (const series of results[0] ?? []) {
    rows += series.values.length;
    const timeAt = series.columns.indexOf('time');
    for (const row of series.values) if (row.some((cell, i) => i !== timeAt && cell !== null && cell !== '')) values++;
  }
  return { rows, values };
}
