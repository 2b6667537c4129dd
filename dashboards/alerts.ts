/**
 * Grafana alert rules (unified alerting, file provisioning format, apiVersion 1): a suspected
 * activation in the last 5 minutes, and a collector that stopped reporting. Generated into
 * deploy/grafana/provisioning/alerting/earshot.yaml with the same query builder as the dashboards.
 */
import { stringify } from 'yaml';
import { DATASOURCE, UID } from './grafana.js';
import { as, count, current, from, tag } from './influxql.js';

/** Grafana's server-side expressions pseudo data source. */
const EXPRESSIONS = { type: '__expr__', uid: '__expr__' } as const;

export interface AlertQuery {
  refId: string;
  relativeTimeRange?: { from: number; to: number };
  datasourceUid: string;
  model: Record<string, unknown>;
}

export interface AlertRule {
  uid: string;
  title: string;
  condition: string;
  data: AlertQuery[];
  dashboardUid?: string;
  panelId?: number;
  noDataState: 'NoData' | 'Alerting' | 'OK';
  execErrState: 'Error' | 'Alerting' | 'OK';
  for: string;
  annotations: Record<string, string>;
  labels: Record<string, string>;
  isPaused: boolean;
}

/** An InfluxQL query over the last `seconds` (Grafana expands $timeFilter to that range). */
function influxQuery(query: string, seconds: number): AlertQuery {
  return {
    refId: 'A',
    relativeTimeRange: { from: seconds, to: 0 },
    datasourceUid: DATASOURCE.uid as string,
    model: { refId: 'A', datasource: DATASOURCE, query, rawQuery: true, resultFormat: 'time_series', intervalMs: 1000, maxDataPoints: 43200 },
  };
}

/** B = last value of A per series; C = B compared with a number: the rule fires when C is true. */
function lastValueIs(evaluator: 'gt' | 'lt', value: number): AlertQuery[] {
  return [
    { refId: 'B', datasourceUid: EXPRESSIONS.uid, model: { refId: 'B', datasource: EXPRESSIONS, type: 'reduce', expression: 'A', reducer: 'last' } },
    {
      refId: 'C',
      datasourceUid: EXPRESSIONS.uid,
      model: { refId: 'C', datasource: EXPRESSIONS, type: 'threshold', expression: 'B', conditions: [{ evaluator: { type: evaluator, params: [value] } }] },
    },
  ];
}

/** The rules, one per alert instance: per device for suspected activations. */
export function alertRules(): AlertRule[] {
  const suspected = from('activation')
    .select(as(count('duration_s'), 'suspected'))
    .where(tag('verdict').eq('suspected'), current())
    .groupBy('site', 'device', 'device_name');
  // per site: one series for every site that reported in the last hour, 0 in the minutes it was silent;
  // the moving average over 3 one-minute buckets is 0 once a site wrote nothing for 2 whole minutes
  // (the collector writes every influx.intervalS, 10 s by default) and the current minute so far
  const reports = `SELECT moving_average(count("packets"), 3) AS "reports" FROM "collector" WHERE "site" != '' AND $timeFilter GROUP BY time(1m), "site" fill(0)`;
  return [
    {
      uid: 'earshot-suspected-activation',
      title: 'Suspected activation',
      condition: 'C',
      data: [influxQuery(suspected.toString(), 300), ...lastValueIs('gt', 0)],
      dashboardUid: UID.overview,
      panelId: 8,
      // no suspected activation in the window: no series at all, which is the good case
      noDataState: 'OK',
      execErrState: 'Error',
      for: '0s',
      annotations: {
        summary: 'Suspected activation of {{ $labels.device_name }} at site {{ $labels.site }}',
        description: '{{ $values.B }} suspected activation(s) of {{ $labels.device_name }} ({{ $labels.device }}) at site {{ $labels.site }} in the last 5 minutes: the assistant uploaded audio with no wake event to explain it (the Overview dashboard with this site lists them).',
      },
      labels: { source: 'earshot', severity: 'warning' },
      isPaused: false,
    },
    {
      uid: 'earshot-collector-silent',
      title: 'earshot site stopped reporting',
      condition: 'C',
      data: [influxQuery(reports, 3600), ...lastValueIs('lt', 1)],
      dashboardUid: UID.collector,
      panelId: 1,
      // no series at all: no site reported in the last hour (a fleet that is all down, or none yet)
      noDataState: 'Alerting',
      execErrState: 'Error',
      for: '0s',
      annotations: {
        summary: 'Site {{ $labels.site }} stopped reporting',
        description: 'The earshot collector of site {{ $labels.site }} wrote no collector point for 2 minutes: it stopped, lost its capture, or cannot reach InfluxDB (its points then wait in the spool). A site silent for more than an hour leaves this rule (see the Fleet overview).',
      },
      labels: { source: 'earshot', severity: 'critical' },
      isPaused: false,
    },
  ];
}

/** The provisioning file's text. */
export function renderAlerting(): string {
  const file = {
    apiVersion: 1,
    groups: [{ orgId: 1, name: 'earshot', folder: 'earshot', interval: '1m', rules: alertRules() }],
  };
  const header = [
    '# Grafana alert rules for earshot (unified alerting, file provisioning). Copy to Grafana\'s',
    '# provisioning/alerting/ directory; they use the data source of datasources/earshot.yaml.',
    '# Generated by npm run dashboards from dashboards/alerts.ts: edit that, not this file.',
  ].join('\n');
  return `${header}\n${stringify(file, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
