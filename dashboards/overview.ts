/**
 * Overview: the assistants, what they uploaded today and which of it looked like a false activation.
 * Activations are annotations on the time series (suspected ones in red).
 */
import { BigValueColorMode, BigValueGraphMode, GraphDrawStyle, LegendDisplayMode, LegendPlacement, StackingMode, VisibilityMode } from '@grafana/grafana-foundation-sdk/common';
import { ReduceDataOptionsBuilder, StackingConfigBuilder, VizLegendOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, ThresholdsConfigBuilder, ThresholdsMode, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { activationAnnotation, at, DASHBOARD_TAG, earshotLinks, influx, organize, prop, queryVariable, UID, VERDICT_COLOR, rangeStat } from './grafana.js';
import { ofSite, siteVariable } from './grafana.js';
import { as, count, current, field, fieldEquals, from, last, perSecond, showTagValues, sum, tag } from './influxql.js';

/** The template variable choosing assistants (all by default). */
const ASSISTANT = 'assistant';
const ofAssistants = () => tag('device').matchesVariable(ASSISTANT);
/** Grafana's panel time override for "today so far". */
const TODAY = 'now/d';
/** The long view's range, within the downsampled policy's two years. */
const LONG_RANGE = '90d';

/** A single number for today. */
const todayStat = (id: number, title: string, description: string) => rangeStat(id, title, description).timeFrom(TODAY);

/** Builds the Overview dashboard. */
export function overviewDashboard(): Dashboard {
  const assistants = new StatPanel()
    .id(1)
    .title('Assistants')
    .description('Voice assistants seen in the time range (one row per assistant in the `device` measurement).')
    .gridPos(at(0, 0, 6, 4))
    .withTarget(influx('A', from('device')
      .select(as(last('last_seen_ms'), 'last_seen'))
      .where(ofSite(), fieldEquals('assistant', true), ofAssistants())
      .groupBy('device'), { format: 'table' }))
    .graphMode(BigValueGraphMode.None)
    .noValue('0')
    .reduceOptions(new ReduceDataOptionsBuilder().calcs(['count']).fields('/^last_seen$/').values(false));

  const activationsToday = todayStat(2, 'Activations today', 'Audio uploads found since midnight, every verdict.')
    .gridPos(at(6, 0, 6, 4))
    .withTarget(influx('A', from('activation').select(as(count('duration_s'), 'activations')).where(ofSite(), ofAssistants(), current())));

  const suspectedToday = todayStat(3, 'Suspected today', 'Activations since midnight with no wake event to explain them (or in quiet hours, or not intended for the assistant).')
    .gridPos(at(12, 0, 6, 4))
    .withTarget(influx('A', from('activation').select(as(count('duration_s'), 'suspected')).where(ofSite(), tag('verdict').eq('suspected'), ofAssistants(), current())))
    .colorMode(BigValueColorMode.Background)
    .thresholds(new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([{ value: null, color: 'green' }, { value: 1, color: 'red' }]));

  const uploadedToday = todayStat(4, 'Uploaded during activations today', 'Bytes the assistants sent on their voice connections during today\'s activations.')
    .gridPos(at(18, 0, 6, 4))
    .withTarget(influx('A', from('activation').select(as(sum('bytes_up'), 'uploaded')).where(ofSite(), ofAssistants(), current())))
    .unit('bytes');

  const assistantTable = new TablePanel()
    .id(5)
    .title('Assistants and their state')
    .description('Each assistant: its site, name, vendor and model, when earshot last saw it, and its activations in the time range. Click a MAC to open the device\'s dashboard. One row per site and MAC: an assistant moved between two sites has a row at each, with the activations it had there.')
    .gridPos(at(0, 4, 24, 7))
    .withTarget(influx('A', from('device')
      .select(as(last('name'), 'Name'), as(last('vendor'), 'Vendor'), as(last('model'), 'Model'), as(last('ips'), 'IPs'), as(last('last_seen_ms'), 'Last seen'))
      .where(ofSite(), fieldEquals('assistant', true), ofAssistants())
      .groupBy('site', 'device'), { format: 'table' }))
    .withTarget(influx('B', from('activation')
      .select(as(count('duration_s'), 'Activations'), as(sum('bytes_up'), 'Uploaded'))
      .where(ofSite(), ofAssistants(), current())
      .groupBy('site', 'device'), { format: 'table' }))
    .withTarget(influx('C', from('activation')
      .select(as(count('duration_s'), 'Suspected'))
      .where(ofSite(), tag('verdict').eq('suspected'), ofAssistants(), current())
      .groupBy('site', 'device'), { format: 'table' }))
    // one row per site and assistant: drop the queries' time columns, merge the three tables' rows with the
    // same site and device (a join on one field, the MAC, gave a device at two sites both sites' counts)
    .withTransformation({ id: 'filterFieldsByName', options: { exclude: { names: ['Time'] } } })
    .withTransformation({ id: 'merge', options: {} })
    .withTransformation(organize({
      order: ['site', 'Name', 'device', 'Vendor', 'Model', 'IPs', 'Last seen', 'Activations', 'Suspected', 'Uploaded'],
      rename: { device: 'MAC', site: 'Site' },
    }))
    // overrides match the names after the transformations
    .overrideByName('Last seen', [prop.unit('dateTimeFromNow')])
    .overrideByName('Uploaded', [prop.unit('bytes')])
    .overrideByName('Suspected', [prop.fixedColor(VERDICT_COLOR.suspected)])
    .overrideByName('MAC', [prop.links('Open the device dashboard', `/d/${UID.device}?var-site=\${__data.fields.site}&var-device=\${__value.raw}&\${__url_time_range}`)]);

  const timeline = new TimeseriesPanel()
    .id(6)
    .title('Activation timeline')
    .description('Activations per interval by verdict, and the wake events earshot was told about.')
    .gridPos(at(0, 11, 24, 8))
    .withTarget(influx('A', from('activation')
      .select(as(count('duration_s'), 'activations'))
      .where(ofSite(), ofAssistants(), current())
      .groupByTime().groupBy('verdict').fill('none'), { alias: '$tag_verdict' }))
    .withTarget(influx('B', from('wake_event')
      .where(ofSite())
      .select(as(sum('count'), 'wake events'))
      .groupByTime().fill('none'), { alias: 'wake events' }))
    .drawStyle(GraphDrawStyle.Bars)
    .fillOpacity(80)
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
    .showPoints(VisibilityMode.Never)
    .decimals(0)
    .overrideByName('suspected', [prop.fixedColor(VERDICT_COLOR.suspected)])
    .overrideByName('confirmed', [prop.fixedColor(VERDICT_COLOR.confirmed)])
    .overrideByName('unverified', [prop.fixedColor(VERDICT_COLOR.unverified)])
    .overrideByName('wake events', [prop.fixedColor('purple'), { id: 'custom.stacking', value: { mode: 'none', group: 'wake' } }]);

  const uploadRate = new TimeseriesPanel()
    .id(7)
    .title('Upload rate per assistant (voice)')
    .description('Bytes per second each assistant sent to its vendor\'s voice service. Activations are marked above the graph: suspected in red, the others in blue.')
    .gridPos(at(0, 19, 24, 9))
    .withTarget(influx('A', from('traffic')
      .select(as(perSecond(sum('bytes_up')), 'upload'))
      .where(ofSite(), tag('assistant').eq('true'), tag('service').eq('voice'), ofAssistants())
      .groupByTime().groupBy('device', 'device_name').fill(0), { alias: '$tag_device_name $tag_device' }))
    .unit('Bps')
    .fillOpacity(10)
    .showPoints(VisibilityMode.Never)
    .legend(new VizLegendOptionsBuilder().displayMode(LegendDisplayMode.Table).placement(LegendPlacement.Right).showLegend(true).calcs(['max', 'mean']));

  const lastSuspected = new TablePanel()
    .id(8)
    .title('Last suspected activations')
    .description('The 20 newest suspected activations in the time range, with the reasons of the verdict.')
    .gridPos(at(0, 28, 24, 8))
    .withTarget(influx('A', from('activation')
      .select(as(field('device_name'), 'Name'), as(field('device'), 'MAC'), as(field('duration_s'), 'Duration'), as(field('bytes_up'), 'Uploaded'),
        as(field('score'), 'Score'), as(field('reasons'), 'Reasons'), as(field('server_name'), 'Voice server'))
      .where(ofSite(), tag('verdict').eq('suspected'), ofAssistants(), current())
      .newestFirst().limit(20), { format: 'table' }))
    .overrideByName('Duration', [prop.unit('s')])
    .overrideByName('Uploaded', [prop.unit('bytes')])
    .overrideByName('Score', [prop.unit('percentunit')]);

  const dailyUpload = new TimeseriesPanel()
    .id(9)
    .title('Voice upload per day, last 90 days')
    .description('Bytes each assistant sent to its voice service per day, from the 5-minute sums kept two years in the earshot_long retention policy (the raw points are kept 30 days).')
    .gridPos(at(0, 36, 24, 8))
    .timeFrom(LONG_RANGE)
    .withTarget(influx('A', from('traffic', 'earshot_long')
      .select(as(sum('bytes_up'), 'upload'))
      .where(ofSite(), tag('assistant').eq('true'), tag('service').eq('voice'), ofAssistants())
      .groupByTime('1d').groupBy('device', 'device_name').fill('none'), { alias: '$tag_device_name $tag_device' }))
    .drawStyle(GraphDrawStyle.Bars)
    .fillOpacity(80)
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
    .showPoints(VisibilityMode.Never)
    .unit('bytes');

  return new DashboardBuilder('earshot — Overview')
    .uid(UID.overview)
    .description('Voice assistants, their activations and the suspected false ones.')
    .tags([DASHBOARD_TAG])
    .time({ from: 'now-24h', to: 'now' })
    .refresh('1m')
    .link(earshotLinks())
    .withVariable(siteVariable())
    .withVariable(queryVariable(ASSISTANT, {
      label: 'Assistant',
      query: showTagValues('traffic', 'device', tag('assistant').eq('true'), ofSite()),
      multi: true,
      includeAll: true,
      description: 'MAC addresses of the devices earshot identified as voice assistants.',
    }).current({ text: 'All', value: '$__all' }))
    .annotation(activationAnnotation({ name: 'Suspected activations', color: VERDICT_COLOR.suspected, suspected: true, deviceVariable: ASSISTANT }))
    .annotation(activationAnnotation({ name: 'Other activations', color: VERDICT_COLOR.unverified, suspected: false, deviceVariable: ASSISTANT }))
    .withPanel(assistants)
    .withPanel(activationsToday)
    .withPanel(suspectedToday)
    .withPanel(uploadedToday)
    .withPanel(assistantTable)
    .withPanel(timeline)
    .withPanel(uploadRate)
    .withPanel(lastSuspected)
    .withPanel(dailyUpload)
    .build();
}
