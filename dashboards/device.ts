/**
 * Device: one device's identity, its traffic by service and by endpoint, its heartbeats, and every
 * activation with its verdict and reasons.
 */
import { GraphDrawStyle, LegendDisplayMode, LegendPlacement, StackingMode, VisibilityMode } from '@grafana/grafana-foundation-sdk/common';
import { StackingConfigBuilder, VizLegendOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, ThresholdsConfigBuilder, ThresholdsMode, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { activationAnnotation, at, DASHBOARD_TAG, earshotLinks, influx, organize, prop, queryVariable, rangeStat, UID, VERDICT_COLOR } from './grafana.js';
import { ofSite, siteVariable } from './grafana.js';
import { as, count, current, field, from, last, perSecond, plus, showTagValues, sum, tag } from './influxql.js';

const DEVICE = 'device';
const ofDevice = () => tag('device').matchesVariable(DEVICE);


/** Upload above the axis, download below it, per value of a traffic tag. */
function trafficBy(id: number, tagKey: 'service' | 'server_name', title: string, description: string) {
  const label = `$tag_${tagKey}`;
  return new TimeseriesPanel()
    .id(id)
    .title(title)
    .description(description)
    .withTarget(influx('A', from('traffic')
      .select(as(perSecond(sum('bytes_up')), 'up'))
      .where(ofSite(), ofDevice())
      .groupByTime().groupBy(tagKey).fill(0), { alias: `${label} up` }))
    .withTarget(influx('B', from('traffic')
      .select(as(perSecond(sum('bytes_down')), 'down'))
      .where(ofSite(), ofDevice())
      .groupByTime().groupBy(tagKey).fill(0), { alias: `${label} down` }))
    .unit('Bps')
    .fillOpacity(10)
    .showPoints(VisibilityMode.Never)
    .legend(new VizLegendOptionsBuilder().displayMode(LegendDisplayMode.Table).placement(LegendPlacement.Bottom).showLegend(true).calcs(['max', 'mean']))
    .overrideByRegexp('.* down$', [prop.negativeY()]);
}

/** Builds the Device dashboard. */
export function deviceDashboard(): Dashboard {
  const identity = new TablePanel()
    .id(1)
    .title('Device')
    .description('What earshot knows about the device: name (configuration, DHCP, mDNS), vendor, the OUI registry\'s organization, model, addresses, whether it is a voice assistant, and when it was first and last seen.')
    .gridPos(at(0, 0, 24, 4))
    .withTarget(influx('A', from('device')
      .select(as(last('name'), 'Name'), as(last('vendor'), 'Vendor'), as(last('organization'), 'Organization'), as(last('model'), 'Model'),
        as(last('ips'), 'IPs'), as(last('assistant'), 'Assistant'), as(last('first_seen_ms'), 'First seen'), as(last('last_seen_ms'), 'Last seen'))
      .where(ofSite(), ofDevice()), { format: 'table' }))
    .withTransformation(organize({ exclude: ['Time'] }))
    .overrideByName('First seen', [prop.unit('dateTimeAsIso')])
    .overrideByName('Last seen', [prop.unit('dateTimeFromNow')]);

  const activations = rangeStat(2, 'Activations', 'Audio uploads found in the time range, every verdict.')
    .gridPos(at(0, 4, 6, 4))
    .withTarget(influx('A', from('activation').select(as(count('duration_s'), 'activations')).where(ofSite(), ofDevice(), current())));

  const suspected = rangeStat(3, 'Suspected', 'Activations in the time range that earshot suspects were not meant for the assistant.')
    .gridPos(at(6, 4, 6, 4))
    .withTarget(influx('A', from('activation').select(as(count('duration_s'), 'suspected')).where(ofSite(), tag('verdict').eq('suspected'), ofDevice(), current())))
    .thresholds(new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([{ value: null, color: 'green' }, { value: 1, color: 'red' }]));

  const uploaded = rangeStat(4, 'Uploaded during activations', 'Bytes sent on the voice connections during the activations in the time range.')
    .gridPos(at(12, 4, 6, 4))
    .withTarget(influx('A', from('activation').select(as(sum('bytes_up'), 'uploaded')).where(ofSite(), ofDevice(), current())))
    .unit('bytes');

  const traffic = rangeStat(5, 'All traffic', 'Bytes the device sent and received in the time range, every service.')
    .gridPos(at(18, 4, 6, 4))
    .withTarget(influx('A', from('traffic').select(as(plus(sum('bytes_up'), sum('bytes_down')), 'bytes')).where(ofSite(), ofDevice())))
    .unit('bytes');

  const byService = trafficBy(6, 'service', 'Traffic by service', 'Bytes per second by the endpoint catalogue\'s service (voice, telemetry, api, media, update, ...); a blank service is traffic to uncatalogued endpoints. Upload above the axis, download below.')
    .gridPos(at(0, 8, 12, 9));

  const byEndpoint = trafficBy(7, 'server_name', 'Traffic by endpoint', 'Bytes per second by server name (SNI, DNS or the vendor\'s IP range); small endpoints are grouped as "other". Upload above the axis, download below.')
    .gridPos(at(12, 8, 12, 9));

  const heartbeats = new TimeseriesPanel()
    .id(8)
    .title('Heartbeats (packets outside the voice service)')
    .description('Packets per interval to every service but voice: telemetry, connectivity checks, time and push keepalives. A device that goes quiet here is off or offline.')
    .gridPos(at(0, 17, 12, 8))
    .withTarget(influx('A', from('traffic')
      .select(as(plus(sum('packets_up'), sum('packets_down')), 'packets'))
      .where(ofSite(), ofDevice(), tag('service').ne('voice'))
      .groupByTime().groupBy('service').fill('none'), { alias: '$tag_service' }))
    .drawStyle(GraphDrawStyle.Bars)
    .fillOpacity(70)
    .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
    .showPoints(VisibilityMode.Never)
    .decimals(0);

  const perActivation = new TimeseriesPanel()
    .id(9)
    .title('Bytes uploaded per activation')
    .description('One point per activation: the bytes sent on the voice connections while it lasted, coloured by verdict.')
    .gridPos(at(12, 17, 12, 8))
    .withTarget(influx('A', from('activation')
      .select(as(field('bytes_up'), 'uploaded'))
      .where(ofSite(), ofDevice(), current())
      .groupBy('verdict'), { alias: '$tag_verdict' }))
    .drawStyle(GraphDrawStyle.Points)
    .pointSize(9)
    .showPoints(VisibilityMode.Always)
    .unit('bytes')
    .overrideByName('suspected', [prop.fixedColor(VERDICT_COLOR.suspected)])
    .overrideByName('confirmed', [prop.fixedColor(VERDICT_COLOR.confirmed)])
    .overrideByName('unverified', [prop.fixedColor(VERDICT_COLOR.unverified)]);

  const activationTable = new TablePanel()
    .id(10)
    .title('Activations')
    .description('Every activation in the time range, newest first, with its verdict and the reasons for it.')
    .gridPos(at(0, 25, 24, 9))
    .withTarget(influx('A', from('activation')
      .select(as(field('verdict'), 'Verdict'), as(field('reasons'), 'Reasons'), as(field('duration_s'), 'Duration'), as(field('bytes_up'), 'Uploaded'),
        as(field('bytes_down'), 'Downloaded'), as(field('score'), 'Score'), as(field('server_name'), 'Voice server'), as(field('wake_event_ms'), 'Wake event'), as(field('id'), 'Id'))
      .where(ofSite(), ofDevice(), current())
      .newestFirst().limit(100), { format: 'table' }))
    .overrideByName('Duration', [prop.unit('s')])
    .overrideByName('Uploaded', [prop.unit('bytes')])
    .overrideByName('Downloaded', [prop.unit('bytes')])
    .overrideByName('Score', [prop.unit('percentunit')])
    .overrideByName('Wake event', [prop.unit('dateTimeAsIso')]);

  return new DashboardBuilder('earshot — Device')
    .uid(UID.device)
    .description('One device: identity, traffic by service and endpoint, heartbeats, activations.')
    .tags([DASHBOARD_TAG])
    .time({ from: 'now-24h', to: 'now' })
    .refresh('1m')
    .link(earshotLinks())
    .withVariable(siteVariable())
    .withVariable(queryVariable(DEVICE, {
      label: 'Device',
      query: showTagValues('traffic', 'device', tag('device').ne('none'), ofSite()),
      description: 'MAC address of a device on the network; the Device panel shows its name.',
    }))
    .annotation(activationAnnotation({ name: 'Suspected activations', color: VERDICT_COLOR.suspected, suspected: true, deviceVariable: DEVICE }))
    .annotation(activationAnnotation({ name: 'Other activations', color: VERDICT_COLOR.unverified, suspected: false, deviceVariable: DEVICE }))
    .withPanel(identity)
    .withPanel(activations)
    .withPanel(suspected)
    .withPanel(uploaded)
    .withPanel(traffic)
    .withPanel(byService)
    .withPanel(byEndpoint)
    .withPanel(heartbeats)
    .withPanel(perActivation)
    .withPanel(activationTable)
    .build();
}
