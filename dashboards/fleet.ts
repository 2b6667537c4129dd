/**
 * Fleet overview: every site (home) writing into this database, one row each: when it last reported,
 * which earshot it runs, its capture and spool, its assistants and today's activations, and the sites
 * that stopped reporting (docs/fleet.md). A site's name opens the Overview dashboard for that site.
 */
import { BigValueColorMode, BigValueGraphMode } from '@grafana/grafana-foundation-sdk/common';
import { ReduceDataOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, ThresholdsConfigBuilder, ThresholdsMode, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { at, DASHBOARD_TAG, earshotLinks, influx, ofSite, organize, prop, siteVariable, UID, VERDICT_COLOR } from './grafana.js';
import { as, count, countRows, current, distinct, fieldEquals, from, last, newerThan, tag, field } from './influxql.js';

/** Grafana's panel time override for "today so far". */
const TODAY = 'now/d';
/**
 * A site is stopped when it wrote no `collector` point for this long: 12 of the default 10-s
 * intervals, the same as the "earshot site stopped reporting" alert rule.
 */
export const STOPPED_AFTER = '2m';
/** Two collectors writing under one site name within this window are a mistake the table shows. */
export const INSTANCES_WINDOW = '10m';

const redAbove = (value: number) => new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([{ value: null, color: 'green' }, { value, color: 'red' }]);
/** The Overview dashboard of the site in this row, keeping the time range. */
const overviewOfRow = () => prop.links('Open this site\'s Overview', `/d/${UID.overview}?var-site=\${__value.raw}&\${__url_time_range}`);

/** The newest collector point of each chosen site (LIMIT applies per series, so per site). */
export const lastReportQuery = () => from('collector')
  .select(as(field('version'), 'Version'), as(field('packets'), 'Packets'), as(field('kernel_drops'), 'Kernel drops'),
    as(field('interface_drops'), 'Interface drops'), as(field('spool_points'), 'Spooled points'), as(field('points_dropped'), 'Points dropped'))
  .where(ofSite())
  .groupBy('site')
  .newestFirst()
  .limit(1);

/** Sites that wrote a collector point in the last STOPPED_AFTER. */
export const recentReportsQuery = () => from('collector').select(as(count('packets'), 'recent')).where(ofSite(), newerThan(STOPPED_AFTER)).groupBy('site');

/** Builds the Fleet overview dashboard. */
export function fleetDashboard(): Dashboard {
  const sites = new StatPanel()
    .id(1)
    .title('Sites')
    .description('Sites (earshot collectors, one per home) that reported in the time range.')
    .gridPos(at(0, 0, 6, 4))
    .withTarget(influx('A', from('collector').select(as(last('packets'), 'packets')).where(ofSite()).groupBy('site'), { format: 'table' }))
    .graphMode(BigValueGraphMode.None)
    .noValue('0')
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['count']).fields('/^packets$/').values(false));

  const stoppedCount = new StatPanel()
    .id(2)
    .title('Stopped reporting')
    .description(`Sites that reported in the time range but wrote nothing in the last ${STOPPED_AFTER}: stopped, lost their capture, or cannot reach InfluxDB (their points then wait in their spool). The table below names them.`)
    .gridPos(at(6, 0, 6, 4))
    .withTarget(influx('A', from('collector').select(as(last('packets'), 'packets')).where(ofSite()).groupBy('site'), { format: 'table' }))
    .withTarget(influx('B', recentReportsQuery(), { format: 'table' }))
    .withTransformation({ id: 'filterFieldsByName', options: { exclude: { names: ['Time'] } } })
    .withTransformation({ id: 'joinByField', options: { byField: 'site', mode: 'outer' } })
    .withTransformation({ id: 'filterByValue', options: { type: 'include', match: 'any', filters: [{ fieldName: 'recent', config: { id: 'isNull', options: {} } }] } })
    .graphMode(BigValueGraphMode.None)
    .noValue('0')
    .colorMode(BigValueColorMode.Background)
    .thresholds(redAbove(1))
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['count']).fields('/^packets$/').values(false));

  const activationsToday = new StatPanel()
    .id(3)
    .title('Activations today')
    .description('Audio uploads found since midnight at the chosen sites, every verdict.')
    .gridPos(at(12, 0, 6, 4))
    .timeFrom(TODAY)
    .withTarget(influx('A', from('activation').select(as(count('duration_s'), 'activations')).where(ofSite(), current())))
    .graphMode(BigValueGraphMode.None)
    .noValue('0')
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));

  const suspectedToday = new StatPanel()
    .id(4)
    .title('Suspected today')
    .description('Activations since midnight at the chosen sites with no wake event to explain them.')
    .gridPos(at(18, 0, 6, 4))
    .timeFrom(TODAY)
    .withTarget(influx('A', from('activation').select(as(count('duration_s'), 'suspected')).where(ofSite(), tag('verdict').eq('suspected'), current())))
    .graphMode(BigValueGraphMode.None)
    .noValue('0')
    .colorMode(BigValueColorMode.Background)
    .thresholds(redAbove(1))
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));

  const siteTable = new TablePanel()
    .id(5)
    .title('Sites and their collectors')
    .description('One row per site: when its collector last wrote its counters (every 10 s by default), the earshot version it runs, and its counters at that moment (packets, drops and spooled points since it started). Click a site to open its Overview.')
    .gridPos(at(0, 4, 24, 8))
    .withTarget(influx('A', lastReportQuery(), { format: 'table' }))
    .withTransformation(organize({ order: ['site', 'Time', 'Version', 'Packets', 'Kernel drops', 'Interface drops', 'Spooled points', 'Points dropped'], rename: { site: 'Site', Time: 'Last report' } }))
    .overrideByName('Last report', [prop.unit('dateTimeFromNow')])
    .overrideByName('Site', [overviewOfRow()])
    .overrideByRegexp('Kernel drops|Interface drops|Spooled points|Points dropped', [{ id: 'thresholds', value: redAbove(1).build() }, { id: 'custom.cellOptions', value: { type: 'color-text' } }]);

  const todayTable = new TablePanel()
    .id(6)
    .title('Assistants and activations today, per site')
    .description('Per site: the voice assistants seen today, and today\'s activations and suspected ones (a site without any has no row in that column).')
    .gridPos(at(0, 12, 16, 8))
    .timeFrom(TODAY)
    .withTarget(influx('A', countRows(from('device')
      .select(as(last('last_seen_ms'), 'last_seen'))
      .where(ofSite(), fieldEquals('assistant', true))
      .groupBy('site', 'device'), 'last_seen', 'Assistants', 'site'), { format: 'table' }))
    .withTarget(influx('B', from('activation').select(as(count('duration_s'), 'Activations')).where(ofSite(), current()).groupBy('site'), { format: 'table' }))
    .withTarget(influx('C', from('activation').select(as(count('duration_s'), 'Suspected')).where(ofSite(), tag('verdict').eq('suspected'), current()).groupBy('site'), { format: 'table' }))
    .withTransformation({ id: 'filterFieldsByName', options: { exclude: { names: ['Time'] } } })
    .withTransformation({ id: 'joinByField', options: { byField: 'site', mode: 'outer' } })
    .withTransformation(organize({ order: ['site', 'Assistants', 'Activations', 'Suspected'], rename: { site: 'Site' } }))
    .overrideByName('Site', [overviewOfRow()])
    .overrideByName('Suspected', [prop.fixedColor(VERDICT_COLOR.suspected)]);

  const stoppedTable = new TablePanel()
    .id(7)
    .title('Sites that stopped reporting')
    .description(`Sites that reported in the time range but wrote no collector point in the last ${STOPPED_AFTER}. Their last report is in the table above.`)
    .gridPos(at(16, 12, 8, 8))
    .withTarget(influx('A', from('collector').select(as(last('packets'), 'packets')).where(ofSite()).groupBy('site'), { format: 'table' }))
    .withTarget(influx('B', recentReportsQuery(), { format: 'table' }))
    .withTransformation({ id: 'filterFieldsByName', options: { exclude: { names: ['Time'] } } })
    .withTransformation({ id: 'joinByField', options: { byField: 'site', mode: 'outer' } })
    .withTransformation({ id: 'filterByValue', options: { type: 'include', match: 'any', filters: [{ fieldName: 'recent', config: { id: 'isNull', options: {} } }] } })
    .withTransformation(organize({ exclude: ['packets', 'recent'], rename: { site: 'Site' } }))
    .overrideByName('Site', [overviewOfRow()]);

  const instances = new TablePanel()
    .id(8)
    .title(`Collectors per site, last ${INSTANCES_WINDOW}`)
    .description('How many earshot processes wrote under each site name (each start draws a new instance id). More than one at once means two collectors were given the same site name: their counters mix.')
    .gridPos(at(0, 20, 24, 6))
    .timeFrom(INSTANCES_WINDOW)
    .withTarget(influx('A', from('collector').select(as(count(distinct('instance')), 'Collectors')).where(ofSite()).groupBy('site'), { format: 'table' }))
    .withTransformation(organize({ exclude: ['Time'], order: ['site', 'Collectors'], rename: { site: 'Site' } }))
    .overrideByName('Collectors', [{ id: 'thresholds', value: redAbove(2).build() }, { id: 'custom.cellOptions', value: { type: 'color-text' } }])
    .overrideByName('Site', [overviewOfRow()]);

  return new DashboardBuilder('earshot — Fleet overview')
    .uid(UID.fleet)
    .description('Every site writing into this database: last report, version, capture and spool, assistants, today\'s activations, sites that stopped reporting.')
    .tags([DASHBOARD_TAG])
    .time({ from: 'now-24h', to: 'now' })
    .refresh('1m')
    .link(earshotLinks())
    .withVariable(siteVariable())
    .withPanel(sites)
    .withPanel(stoppedCount)
    .withPanel(activationsToday)
    .withPanel(suspectedToday)
    .withPanel(siteTable)
    .withPanel(todayTable)
    .withPanel(stoppedTable)
    .withPanel(instances)
    .build();
}
