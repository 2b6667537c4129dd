/**
 * Collector health: earshot's own counters (the `collector` measurement, cumulative per process,
 * written every influx.intervalS of wall time). Rates come from non_negative_derivative, so a restart
 * (counters back to zero) shows as a gap, not a negative spike.
 */
import { BigValueColorMode, BigValueGraphMode, VisibilityMode } from '@grafana/grafana-foundation-sdk/common';
import { ReduceDataOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, ThresholdsConfigBuilder, ThresholdsMode, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { at, DASHBOARD_TAG, earshotLinks, influx, ofSite, organize, prop, siteVariable, UID } from './grafana.js';
import { as, from, last, max, nonNegativeDerivative, type FieldOf } from './influxql.js';

type Counter = FieldOf<'collector'>;

/** The chosen sites' counters; graphs draw one line per site (counters are per collector). */
const ofCollector = () => from('collector').where(ofSite());

/** Per-second rate of a cumulative counter, per Grafana interval. */
const rate = (counter: Counter, alias: string) => as(nonNegativeDerivative(max(counter)), alias);
/** A gauge's highest value per Grafana interval. */
const peak = (gauge: Counter, alias: string) => as(max(gauge), alias);

const redAbove = (value: number) => new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([{ value: null, color: 'green' }, { value, color: 'red' }]);

/** The latest value of a counter or gauge in the time range, one per site (counters are per collector). */
function latestStat(id: number, title: string, description: string, counter: Counter) {
  return new StatPanel()
    .id(id)
    .title(title)
    .description(description)
    .withTarget(influx('A', ofCollector().select(as(last(counter), counter)).groupBy('site'), { alias: '$tag_site' }))
    .graphMode(BigValueGraphMode.None)
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
}

function graph(id: number, title: string, description: string) {
  return new TimeseriesPanel()
    .id(id)
    .title(title)
    .description(description)
    .fillOpacity(10)
    .showPoints(VisibilityMode.Never);
}

/** Builds the Collector health dashboard. */
export function collectorDashboard(): Dashboard {
  const lastReport = new TablePanel()
    .id(1)
    .title('Last report')
    .description('When each site\'s collector last wrote its counters. It writes them every interval (10 s by default); older than a minute or two means it stopped, or cannot reach InfluxDB (then its points wait in the spool).')
    .gridPos(at(0, 0, 6, 4))
    .withTarget(influx('A', ofCollector().select(as(last('points'), 'points')).groupBy('site'), { format: 'table' }))
    .withTransformation(organize({ exclude: ['points'], order: ['site', 'Time'], rename: { site: 'Site', Time: 'Last report' } }))
    .overrideByName('Last report', [prop.unit('dateTimeFromNow')]);

  const packets = latestStat(2, 'Packets captured', 'Packets read since the collector started.', 'packets')
    .gridPos(at(6, 0, 6, 4))
    .unit('short');

  const kernelDrops = latestStat(3, 'Kernel drops', 'Packets the kernel dropped before earshot could read them (libpcap\'s ps_drop) since the collector started. Anything above zero means earshot missed traffic.', 'kernel_drops')
    .gridPos(at(12, 0, 6, 4))
    .colorMode(BigValueColorMode.Background)
    .thresholds(redAbove(1));

  const spooled = latestStat(4, 'Points in the spool', 'Points waiting on disk for InfluxDB to take them.', 'spool_points')
    .gridPos(at(18, 0, 6, 4))
    .colorMode(BigValueColorMode.Background)
    .thresholds(redAbove(1));

  const captureRate = graph(5, 'Capture rate', 'Packets and bytes read per second.')
    .gridPos(at(0, 4, 12, 8))
    .withTarget(influx('A', ofCollector().select(rate('packets', 'packets/s')).groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .withTarget(influx('B', ofCollector().select(rate('bytes', 'bytes/s')).groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .unit('pps')
    .overrideByName('bytes/s', [prop.unit('Bps'), prop.axisRight()]);

  const drops = graph(6, 'Drops and decode errors', 'Packets per second the kernel or the interface dropped, and packets earshot could not decode (damaged or truncated frames, counted, never fatal).')
    .gridPos(at(12, 4, 12, 8))
    .withTarget(influx('A', ofCollector()
      .select(rate('kernel_drops', 'kernel drops'), rate('interface_drops', 'interface drops'))
      .groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .withTarget(influx('B', ofCollector().select(rate('decode_errors', 'decode errors')).groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .unit('pps');

  const flows = graph(7, 'Flows', 'Flows in the table (left), and flows created and evicted per second (right); evictions mean the table is full (flows.maxFlows).')
    .gridPos(at(0, 12, 12, 8))
    .withTarget(influx('A', ofCollector().select(peak('flows_active', 'active flows')).groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .withTarget(influx('B', ofCollector()
      .select(rate('flows_created', 'created/s'), rate('flows_evicted', 'evicted/s'))
      .groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .unit('short')
    .overrideByRegexp('.*/s$', [prop.axisRight()]);

  const writes = graph(8, 'InfluxDB writes', 'Points made and written per second; write errors (retried), points InfluxDB refused (4xx) and points dropped from a full spool, per second.')
    .gridPos(at(12, 12, 12, 8))
    .withTarget(influx('A', ofCollector()
      .select(rate('points', 'points made'), rate('points_written', 'points written'))
      .groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .withTarget(influx('B', ofCollector()
      .select(rate('write_errors', 'write errors'), rate('points_rejected', 'points rejected'), rate('points_dropped', 'points dropped'))
      .groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .unit('short')
    .overrideByRegexp('write errors|points rejected|points dropped', [prop.axisRight()]);

  const spool = graph(9, 'Spool and queue', 'Points and bytes waiting in the disk spool, and batches queued in memory. They grow while InfluxDB is away and drain when it answers again.')
    .gridPos(at(0, 20, 12, 8))
    .withTarget(influx('A', ofCollector()
      .select(peak('spool_points', 'spooled points'), peak('queue_depth', 'queued batches'))
      .groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .withTarget(influx('B', ofCollector().select(peak('spool_bytes', 'spooled bytes')).groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .unit('short')
    .overrideByName('spooled bytes', [prop.unit('bytes'), prop.axisRight()]);

  const detections = graph(10, 'Activations found', 'Activations the detector finished, per minute.')
    .gridPos(at(12, 20, 12, 8))
    .withTarget(influx('A', ofCollector()
      .select(as(nonNegativeDerivative(max('activations'), '1m'), 'activations/min'))
      .groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .unit('short');

  const memory = graph(11, 'Memory', 'The collector\'s resident memory (every thread, what the kernel counts) and the V8 heap in use of its pipeline\'s thread. Bounded tables fill over the first day; a line that still climbs after days is worth a report.')
    .gridPos(at(0, 28, 24, 8))
    .withTarget(influx('A', ofCollector()
      .select(peak('rss_bytes', 'resident memory'), peak('heap_used_bytes', 'heap in use'))
      .groupByTime().groupBy('site').fill('none'), { alias: '$tag_site $col' }))
    .unit('bytes');

  return new DashboardBuilder('earshot — Collector health')
    .uid(UID.collector)
    .description('earshot\'s own counters: capture rate, drops, decode errors, flows, InfluxDB writes, spool, memory.')
    .tags([DASHBOARD_TAG])
    .time({ from: 'now-6h', to: 'now' })
    .refresh('30s')
    .link(earshotLinks())
    .withVariable(siteVariable())
    .withPanel(lastReport)
    .withPanel(packets)
    .withPanel(kernelDrops)
    .withPanel(spooled)
    .withPanel(captureRate)
    .withPanel(drops)
    .withPanel(flows)
    .withPanel(writes)
    .withPanel(spool)
    .withPanel(detections)
    .withPanel(memory)
    .build();
}
