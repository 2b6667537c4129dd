/**
 * The pieces every earshot dashboard shares: the InfluxDB data source, raw-InfluxQL targets,
 * annotation queries on activations and template variables, in the shapes Grafana's InfluxDB plugin
 * reads (the SDK has builders for panels and dashboards, not for InfluxDB queries).
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type * as common from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardLinkBuilder,
  DashboardLinkType,
  QueryVariableBuilder,
  VariableRefresh,
  VariableSort,
  type AnnotationQuery,
  type DashboardLink,
  type DynamicConfigValue,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { BigValueGraphMode, ReduceDataOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { current, field, from, tag, type Condition, type Measurement, type SelectQuery } from './influxql.js';

/** The template variable choosing sites, on every dashboard. */
export const SITE = 'site';
/**
 * "All" of $site is the regex `.*` rather than the list of sites: InfluxQL matches a point without the
 * tag as if its value were '' (checked on influxd 1.x), so points written before earshot had the `site`
 * tag match `/^.*$/` and stay visible, where `/^(a|b)$/` would hide them.
 */
export const ALL_SITES = '.*';
/** Points of the chosen sites. */
export const ofSite = (): Condition<'site'> => tag('site').matchesVariable(SITE);

/** The `site` variable: every site that wrote collector points (each collector writes one every interval). */
export function siteVariable() {
  return queryVariable(SITE, {
    label: 'Site',
    query: 'SHOW TAG VALUES FROM "collector" WITH KEY = "site"',
    multi: true,
    includeAll: true,
    description: 'The homes (sites) to show; All also shows points written before earshot tagged them with a site.',
  }).allValue(ALL_SITES).current({ text: 'All', value: '$__all' });
}

/** The data source the provisioning file creates (deploy/grafana/provisioning/datasources/earshot.yaml). */
export const DATASOURCE: common.DataSourceRef = { type: 'influxdb', uid: 'earshot-influxdb' };

/** Tag shared by every earshot dashboard; the dashboards link to each other through it. */
export const DASHBOARD_TAG = 'earshot';

/** Dashboard uids, stable so links and alert rules can point at them. */
export const UID = {
  overview: 'earshot-overview',
  device: 'earshot-device',
  collector: 'earshot-collector',
  privacy: 'earshot-privacy',
  fleet: 'earshot-fleet',
} as const;

/** Colours of the verdicts, the same on every panel and annotation. */
export const VERDICT_COLOR = { suspected: 'red', confirmed: 'green', unverified: 'blue' } as const;

export type ResultFormat = 'time_series' | 'table';

/** A raw-InfluxQL target of the InfluxDB data source, as Grafana stores it in a panel. */
export interface InfluxTarget extends cog.Dataquery {
  refId: string;
  datasource: common.DataSourceRef;
  query: string;
  rawQuery: true;
  resultFormat: ResultFormat;
  /** Series name; $tag_<key> takes a GROUP BY tag's value. */
  alias?: string;
}

/** A panel target running `query` (raw InfluxQL). */
export function influx(refId: string, query: string | SelectQuery<Measurement>, options: { format?: ResultFormat; alias?: string } = {}): cog.Builder<cog.Dataquery> {
  const target: InfluxTarget = {
    refId,
    datasource: DATASOURCE,
    query: query.toString(),
    rawQuery: true,
    resultFormat: options.format ?? 'time_series',
    ...(options.alias === undefined ? {} : { alias: options.alias }),
    // marks the object as a data query for the SDK's types; a function, so JSON leaves it out
    _implementsDataqueryVariant() {},
  };
  return { build: () => target };
}

/**
 * An annotation query of the InfluxDB data source. Grafana's InfluxQL annotations read `query` and the
 * column mappings from `target` (Grafana 9 and later) or from the annotation itself (older), so both
 * carry them.
 */
export interface InfluxAnnotation extends AnnotationQuery {
  query: string;
  textColumn: string;
  tagsColumn: string;
}

/** Activations as annotations: one query per group of verdicts, each with its colour. */
export function activationAnnotation(options: { name: string; color: string; suspected: boolean; deviceVariable: string }): cog.Builder<AnnotationQuery> {
  const query = from('activation')
    .select(field('reasons'), field('duration_s'), field('device_name'), field('device'), field('verdict'))
    .where(options.suspected ? tag('verdict').eq('suspected') : tag('verdict').ne('suspected'), tag('site').matchesVariable(SITE), tag('device').matchesVariable(options.deviceVariable), current())
    .toString();
  const columns = { textColumn: 'reasons', tagsColumn: 'device_name,device,verdict' };
  const target = {
    refId: 'Anno',
    datasource: DATASOURCE,
    query,
    rawQuery: true,
    resultFormat: 'table',
    fromAnnotations: true,
    queryType: 'tags',
    ...columns,
    _implementsDataqueryVariant() {},
  };
  const annotation: InfluxAnnotation = {
    name: options.name,
    datasource: DATASOURCE,
    enable: true,
    hide: false,
    iconColor: options.color,
    query,
    ...columns,
    target,
  };
  return { build: () => annotation };
}

/** A query variable over InfluxQL (SHOW TAG VALUES ...), refreshed when the time range changes. */
export function queryVariable(name: string, options: { label: string; query: string; multi?: boolean; includeAll?: boolean; description?: string }) {
  const builder = new QueryVariableBuilder(name)
    .label(options.label)
    .datasource(DATASOURCE)
    .query(options.query)
    .definition(options.query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(options.multi ?? false)
    .includeAll(options.includeAll ?? false);
  if (options.description) builder.description(options.description);
  return builder;
}

/** The links row: every earshot dashboard, keeping the time range. */
export function earshotLinks(): cog.Builder<DashboardLink> {
  const builder = new DashboardLinkBuilder('earshot')
    .type(DashboardLinkType.Dashboards)
    .tags([DASHBOARD_TAG])
    .asDropdown(false)
    .includeVars(false)
    .keepTime(true);
  return {
    build: () => {
      // the SDK defaults placement to Grafana 12's controls menu, which hides the links from the top bar
      const { placement: _placement, ...link } = builder.build();
      return link;
    },
  };
}

/** Field-config properties, named as Grafana stores them. */
export const prop = {
  unit: (unit: string): DynamicConfigValue => ({ id: 'unit', value: unit }),
  displayName: (name: string): DynamicConfigValue => ({ id: 'displayName', value: name }),
  fixedColor: (color: string): DynamicConfigValue => ({ id: 'color', value: { mode: 'fixed', fixedColor: color } }),
  width: (px: number): DynamicConfigValue => ({ id: 'custom.width', value: px }),
  negativeY: (): DynamicConfigValue => ({ id: 'custom.transform', value: 'negative-Y' }),
  links: (title: string, url: string): DynamicConfigValue => ({ id: 'links', value: [{ title, url }] }),
  axisRight: (): DynamicConfigValue => ({ id: 'custom.axisPlacement', value: 'right' }),
};

/** Grafana's "Organize fields" transformation: hide, rename and order table columns. */
export function organize(options: { exclude?: string[]; rename?: Record<string, string>; order?: string[] }) {
  return {
    id: 'organize',
    options: {
      excludeByName: Object.fromEntries((options.exclude ?? []).map((n) => [n, true])),
      renameByName: options.rename ?? {},
      indexByName: Object.fromEntries((options.order ?? []).map((n, i) => [n, i])),
    },
  };
}

/** A panel's place on the dashboard's 24-column grid. */
export const at = (x: number, y: number, w: number, h: number) => ({ x, y, w, h });

/** A number over the dashboard's time range. */
export function rangeStat(id: number, title: string, description: string) {
  return new StatPanel()
    .id(id)
    .title(title)
    .description(description)
    .graphMode(BigValueGraphMode.None)
    .noValue('0')
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
}
