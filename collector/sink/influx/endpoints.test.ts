/**
 * The `endpoint` measurement's per-interval cells: flows of one device, organisation, service and party
 * sum into one point, whichever ledger endpoint (server name) they came from; the key kept per ledger
 * endpoint follows the device tag value the traffic is given (its own MAC, or "other").
 */
import { describe, expect, it } from 'vitest';
import { EndpointAggregator, type EndpointTraffic } from './endpoints.js';

const traffic = (endpoint: object, device: string, bytesUp: number): EndpointTraffic => ({
  mac: 0x44650d000001, device, deviceName: 'Kitchen', org: 'Amazon', category: 'cloud', service: 'voice', party: 'first',
  bytesUp, bytesDown: 1, endpoint,
});

function drained(agg: EndpointAggregator): string[] {
  const lines: string[] = [];
  agg.drain(1_700_000_000_000, (line) => lines.push(line));
  return lines.sort();
}

describe('endpoint cells', () => {
  it('sum one device\'s flows per organisation, service and party, across ledger endpoints and intervals', () => {
    const agg = new EndpointAggregator('home');
    const avs = {};
    const other = {};
    agg.add(traffic(avs, '44:65:0d:00:00:01', 100));
    agg.add(traffic(avs, '44:65:0d:00:00:01', 50));
    // another server name of the same organisation and service: the same cell
    agg.add(traffic(other, '44:65:0d:00:00:01', 7));
    expect(drained(agg)).toEqual([
      'endpoint,category=cloud,device=44:65:0d:00:00:01,device_name=Kitchen,org=Amazon,party=first,service=voice,site=home bytes_up=157i,bytes_down=3i,flows=3i 1700000000000',
    ]);
    // the next interval starts empty; the kept key still finds its cell
    agg.add(traffic(avs, '44:65:0d:00:00:01', 1));
    expect(drained(agg)).toEqual([
      'endpoint,category=cloud,device=44:65:0d:00:00:01,device_name=Kitchen,org=Amazon,party=first,service=voice,site=home bytes_up=1i,bytes_down=1i,flows=1i 1700000000000',
    ]);
  });

  it('a ledger endpoint whose device is put under "other" goes to other\'s cell, and back to its own', () => {
    const agg = new EndpointAggregator('home');
    const avs = {};
    agg.add(traffic(avs, '44:65:0d:00:00:01', 100));
    agg.add(traffic(avs, 'other', 20));
    agg.add(traffic(avs, '44:65:0d:00:00:01', 3));
    const lines = drained(agg);
    expect(lines).toHaveLength(2);
    expect(lines.find((l) => l.includes('device=44:65:0d:00:00:01'))).toContain('bytes_up=103i');
    expect(lines.find((l) => l.includes('device=other'))).toContain('bytes_up=20i');
  });
});
