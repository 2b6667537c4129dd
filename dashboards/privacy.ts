/**
 * Privacy: who each assistant talks to (organisations, first or third party, service classes), what it
 * uploads that is not voice next to its activations, and the new organisations and services it
 * contacted after its learning period (docs/privacy.md says what each figure means).
 */
import { GraphDrawStyle, LegendDisplayMode, LegendPlacement, StackingMode, VisibilityMode } from '@grafana/grafana-foundation-sdk/common';
import { StackingConfigBuilder, VizLegendOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { at, DASHBOARD_TAG, earshotLinks, influx, organize, prop, queryVariable, rangeStat, UID } from './grafana.js';
import { ofSite, siteVariable } from './grafana.js';
import { as, count, current, field, from, showTagValues, sum, tag } from './influxql.js';

const DEVICE = 'device';
const ofDevice = () => tag('device').matchesVariable(DEVICE);
/** What left the home: the home network's own addresses (organisation `Local network`) are no upload. */
const beyondHome = () => tag('category').ne('local');

/** What the assistant sent, stacked per value of an `endpoint` tag, in bars of `interval`. */
function uploadBars(id: number, title: string, description: string, interval: string, by: 'service' | 'org') {
  return new TimeseriesPanel()
    .id(id)
    .title(title)
    .description(description)
    .withTarget(influx('A', from('endpoint')
      .select(as(sum('bytes_up'), 'up'))
      .where(ofSite(), ofDevice(), beyondHome())
      .groupByTime(interval).groupBy(by).fill('none'), { alias: `$tag_${by}` }))
    .drawStyle(GraphDrawStyle.Bars)
    .fillOpacity(70)
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
    .showPoints(VisibilityMode.Never)
    .unit('bytes')
    .legend(new VizLegendOptionsBuilder().displayMode(LegendDisplayMode.Table).placement(LegendPlacement.Bottom).showLegend(true).calcs(['sum']));
}

/** Builds the Privacy dashboard. */
export function privacyDashboard(): Dashboard {
  const voiceUp = rangeStat(1, 'Voice uploaded', 'Bytes the assistant sent to voice endpoints in the time range (flows that ended in it).')
    .gridPos(at(0, 0, 6, 4))
    .withTarget(influx('A', from('endpoint').select(as(sum('bytes_up'), 'voice')).where(ofSite(), ofDevice(), tag('service').eq('voice'), beyondHome())))
    .unit('bytes');
  const otherUp = rangeStat(2, 'Uploaded, not voice', 'Bytes the assistant sent beyond the home to every other service in the time range: telemetry, metrics, logs, API calls, media requests. What it sent to the home network (another speaker, the router) is no upload: the table below has it as "Local network".')
    .gridPos(at(6, 0, 6, 4))
    .withTarget(influx('A', from('endpoint').select(as(sum('bytes_up'), 'other')).where(ofSite(), ofDevice(), tag('service').ne('voice'), beyondHome())))
    .unit('bytes');
  const thirdUp = rangeStat(3, 'Uploaded to third parties', 'Bytes the assistant sent to organisations other than its own vendor (a skill\'s backend, a music service, a CDN, analytics).')
    .gridPos(at(12, 0, 6, 4))
    .withTarget(influx('A', from('endpoint').select(as(sum('bytes_up'), 'third')).where(ofSite(), ofDevice(), tag('party').eq('third'))))
    .unit('bytes');
  const activations = rangeStat(4, 'Activations', 'Audio uploads found in the time range, every verdict.')
    .gridPos(at(18, 0, 6, 4))
    .withTarget(influx('A', from('activation').select(as(count('duration_s'), 'activations')).where(ofSite(), ofDevice(), current())));

  const who = new TablePanel()
    .id(5)
    .title('Who it talks to')
    .description('Per organisation, service class and party: bytes sent and received and connections, over the time range. "unknown" is traffic no data source names (docs/privacy.md); "Local network" stays in the house.')
    .gridPos(at(0, 4, 24, 10))
    .withTarget(influx('A', from('endpoint')
      .select(as(sum('bytes_up'), 'Sent'), as(sum('bytes_down'), 'Received'), as(sum('flows'), 'Connections'))
      .where(ofSite(), ofDevice())
      .groupBy('org', 'category', 'party', 'service'), { format: 'table' }))
    .withTransformation(organize({ exclude: ['Time'], rename: { org: 'Organisation', category: 'What it is', party: 'Party', service: 'Service' } }))
    .overrideByName('Sent', [prop.unit('bytes')])
    .overrideByName('Received', [prop.unit('bytes')]);

  const uploadsByService = uploadBars(6, 'Uploaded per day, by service', 'What the assistant sent beyond the home each day, by service class: voice beside telemetry and the rest.', '1d', 'service')
    .gridPos(at(0, 14, 12, 9));
  const byOrg = uploadBars(7, 'Uploaded by organisation', 'Bytes the assistant sent per organisation beyond the home, per interval of the panel (flows count when they end).', '$__interval', 'org')
    .gridPos(at(12, 14, 12, 9));

  const notices = new TablePanel()
    .id(8)
    .title('New organisations and services')
    .description('First contacts after the learning period (privacy.learningPeriodH): a skill enabled, a firmware change, a new tracker. Newest first.')
    .gridPos(at(0, 23, 24, 8))
    .withTarget(influx('A', from('notice')
      .select(as(field('what'), 'What'), as(field('subject'), 'New'), as(field('organisation'), 'Organisation'), as(field('service'), 'Service'), as(field('endpoint'), 'Endpoint'))
      .where(ofSite(), ofDevice(), tag('kind').eq('new-endpoint'))
      .newestFirst().limit(100), { format: 'table' }));

  return new DashboardBuilder('earshot — Privacy')
    .uid(UID.privacy)
    .description('Who each assistant talks to, what it uploads besides voice, and what is new.')
    .tags([DASHBOARD_TAG])
    .time({ from: 'now-7d', to: 'now' })
    .refresh('5m')
    .link(earshotLinks())
    .withVariable(siteVariable())
    .withVariable(queryVariable(DEVICE, {
      label: 'Assistant',
      query: showTagValues('endpoint', 'device', ofSite()),
      multi: true,
      includeAll: true,
      description: 'MAC address of a device that ended flows; the Device dashboard shows its name.',
    }))
    .withPanel(voiceUp)
    .withPanel(otherUp)
    .withPanel(thirdUp)
    .withPanel(activations)
    .withPanel(who)
    .withPanel(uploadsByService)
    .withPanel(byOrg)
    .withPanel(notices)
    .build();
}
