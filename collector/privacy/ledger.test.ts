import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/temp.js';
import type { FlowRecord } from '../flow/record.js';
import { parseMac } from '../mac.js';
import { LAN_ORG } from './lookup.js';
import { loadLedger, MAX_ENDPOINTS, MAX_KNOWN, MAX_LEDGER_DEVICES, MAX_OTHER_ENDPOINTS, PRIVACY_FILE, PrivacyLedger, saveLedger, type EndpointOrg, type NewEndpointEvent } from './ledger.js';

const ECHO = parseMac('68:db:f5:90:19:64');
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

const ORGS: Record<string, EndpointOrg> = {
  'avs-alexa-4-na.amazon.com': { name: 'Amazon', key: 'amazon', category: 'assistant-vendor', source: 'catalogue' },
  'device-metrics-us.amazon.com': { name: 'Amazon', key: 'amazon', category: 'assistant-vendor', source: 'catalogue' },
  'api.spotify.com': { name: 'Spotify', key: 'spotify', category: 'music', source: 'domains' },
  'skill.example.net': { name: 'Example Skills', key: 'example', category: 'skill-backend', source: 'domains' },
};

function record(over: Partial<FlowRecord> & { serverName: string | null; firstMs: number }): FlowRecord {
  return {
    id: 1, proto: 6, client: '192.168.1.20', clientPort: 50000, server: '52.94.1.1', serverPort: 443,
    packetsUp: 10, packetsDown: 10, bytesUp: 1000, bytesDown: 3000, lastMs: over.firstMs + 1000,
    deviceMac: ECHO, deviceIsClient: true, peerMac: -1, sni: null, nameSource: 'dns', service: 'api', vendor: null, ...over,
  };
}

function ledger(learningMs: number, events: NewEndpointEvent[] = [], watched = true): PrivacyLedger {
  return new PrivacyLedger({
    learningMs,
    dayOf: (ms) => new Date(ms).toISOString().slice(0, 10),
    lookup: (name) => (name === null ? null : ORGS[name] ?? null),
    vendorOf: () => 'amazon',
    watched: () => watched,
    onNewEndpoint: (e) => events.push(e),
  });
}

describe('the endpoint ledger', () => {
  it('sums each endpoint, tells first from third party, and splits uploads by day and service', () => {
    const l = ledger(HOUR);
    l.add(record({ serverName: 'avs-alexa-4-na.amazon.com', service: 'voice', firstMs: T0, bytesUp: 50_000, bytesDown: 9000 }));
    l.add(record({ serverName: 'avs-alexa-4-na.amazon.com', service: 'voice', firstMs: T0 + 24 * HOUR, bytesUp: 40_000, bytesDown: 8000 }));
    l.add(record({ serverName: 'device-metrics-us.amazon.com', service: 'telemetry', firstMs: T0 + 60_000, bytesUp: 2100, bytesDown: 500 }));
    l.add(record({ serverName: 'api.spotify.com', service: 'media', firstMs: T0 + 120_000 }));
    // the device answered a connection: its upload is what it sent as the server
    l.add(record({ serverName: null, server: '192.168.1.20', client: '192.168.1.5', deviceIsClient: false, service: null, firstMs: T0 + 180_000, bytesUp: 100, bytesDown: 7000 }));
    const v = l.view(ECHO)!;
    const voice = v.endpoints.find((e) => e.name === 'avs-alexa-4-na.amazon.com')!;
    expect(voice).toMatchObject({ flows: 2, bytesUp: 90_000, bytesDown: 17_000, days: 2, org: 'Amazon', party: 'first', service: 'voice' });
    expect(v.endpoints.find((e) => e.name === 'api.spotify.com')).toMatchObject({ org: 'Spotify', party: 'third', category: 'music' });
    const local = v.endpoints.find((e) => e.name === '192.168.1.5')!;
    expect(local).toMatchObject({ named: false, service: 'unknown', bytesUp: 7000, bytesDown: 100, org: null, party: null });
    // busiest first
    expect(v.endpoints[0].name).toBe('avs-alexa-4-na.amazon.com');
    expect(v.days.map((d) => d.day)).toEqual(['2026-01-05', '2026-01-06']);
    expect(v.days[0].up).toEqual({ voice: 50_000, telemetry: 2100, media: 1000, unknown: 7000 });
    expect(v.days[1].up).toEqual({ voice: 40_000 });
  });

  it('counts what stayed at home apart from the uploads: another speaker, the router, multicast', () => {
    const l = new PrivacyLedger({
      learningMs: HOUR,
      dayOf: (ms) => new Date(ms).toISOString().slice(0, 10),
      // as the run's lookup: the home's own addresses are the organisation "Local network"
      lookup: (name, ip) => (ip !== null && /^(192\.168\.|224\.)/.test(ip) ? LAN_ORG : name === null ? null : ORGS[name] ?? null),
      vendorOf: () => 'amazon',
      watched: () => true,
    });
    l.add(record({ serverName: 'device-metrics-us.amazon.com', service: 'telemetry', firstMs: T0, bytesUp: 2100, bytesDown: 500 }));
    // Echo-to-Echo (UDP 55444) to another Echo, and mDNS
    l.add(record({ serverName: null, server: '192.168.1.21', proto: 17, serverPort: 55444, service: null, firstMs: T0 + 1000, bytesUp: 56_050, bytesDown: 64_960 }));
    l.add(record({ serverName: null, server: '224.0.0.251', proto: 17, serverPort: 5353, service: null, firstMs: T0 + 2000, bytesUp: 662, bytesDown: 0 }));
    // the device as the server of another Echo's connection: what it sent is its bytesDown
    l.add(record({ serverName: null, server: '192.168.1.20', client: '192.168.1.22', deviceIsClient: false, service: null, firstMs: T0 + 3000, bytesUp: 100, bytesDown: 1750 }));
    const [day] = l.view(ECHO)!.days;
    expect(day).toEqual({ day: '2026-01-05', up: { telemetry: 2100 }, down: { telemetry: 500 }, localUp: 56_050 + 662 + 1750, localDown: 64_960 + 100 });
    // the endpoints still show them, as the organisation "Local network"
    expect(l.view(ECHO)!.endpoints.filter((e) => e.org === 'Local network').map((e) => e.name).sort()).toEqual(['192.168.1.21', '192.168.1.22', '224.0.0.251']);
  });

  it('learns quietly during the learning period, then raises each new organisation and service once', () => {
    const events: NewEndpointEvent[] = [];
    const l = ledger(HOUR, events);
    l.add(record({ serverName: 'avs-alexa-4-na.amazon.com', service: 'voice', firstMs: T0 }));
    l.add(record({ serverName: 'api.spotify.com', service: 'media', firstMs: T0 + 30 * 60_000 }));
    expect(events).toEqual([]);
    // after the hour: a known organisation on a new name is not news; a new one is, once
    l.add(record({ serverName: 'device-metrics-us.amazon.com', service: 'telemetry', firstMs: T0 + 2 * HOUR }));
    l.add(record({ serverName: 'skill.example.net', service: 'api', firstMs: T0 + 3 * HOUR }));
    l.add(record({ serverName: 'skill.example.net', service: 'api', firstMs: T0 + 4 * HOUR }));
    // a name no organisation is known for counts by its name
    l.add(record({ serverName: 'tracker.unknown.example', service: 'other', firstMs: T0 + 5 * HOUR }));
    // an address without a name is not an organisation
    l.add(record({ serverName: null, server: '203.0.113.9', service: null, firstMs: T0 + 6 * HOUR }));
    // the network's own protocols (a DNS query to a public resolver) are no kind of service either
    l.add(record({ serverName: null, server: '198.51.100.53', proto: 17, serverPort: 53, service: 'network', firstMs: T0 + 7 * HOUR }));
    expect(events.map((e) => `${e.kind} ${e.subject}`)).toEqual([
      'new-service telemetry', 'new-organisation Example Skills', 'new-service api', 'new-organisation tracker.unknown.example',
    ]);
    // "other" and "unknown" are no kind of service: their first use is no news
    expect(events[1]).toMatchObject({ mac: ECHO, org: 'Example Skills', endpoint: 'skill.example.net', atMs: T0 + 3 * HOUR });
  });

  it('its first sighting is the earliest flow start, whichever flow ends first (the learning period starts there)', () => {
    const events: NewEndpointEvent[] = [];
    const l = ledger(HOUR, events);
    // a DNS lookup ends first; the voice connection open since T0 ends later
    l.add(record({ serverName: 'device-metrics-us.amazon.com', service: 'telemetry', firstMs: T0 + 10 * 60_000 }));
    l.add(record({ serverName: 'avs-alexa-4-na.amazon.com', service: 'voice', firstMs: T0 }));
    expect(l.view(ECHO)?.firstSeenMs).toBe(T0);
    // past T0 + 1 h (not past T0 + 10 min + 1 h): news
    l.add(record({ serverName: 'skill.example.net', service: 'api', firstMs: T0 + HOUR + 5 * 60_000 }));
    expect(events.map((e) => `${e.kind} ${e.subject}`)).toEqual(['new-organisation Example Skills', 'new-service api']);
  });

  it('raises nothing for a device that is not watched (not an assistant)', () => {
    const events: NewEndpointEvent[] = [];
    const l = ledger(0, events, false);
    l.add(record({ serverName: 'api.spotify.com', firstMs: T0 }));
    expect(events).toEqual([]);
    expect(l.view(ECHO)?.organisations).toBe(1);
  });

  it('bounds what names from packets can create: endpoints per device, remembered organisations, devices', () => {
    const events: NewEndpointEvent[] = [];
    const l = ledger(0, events);
    for (let i = 0; i < MAX_KNOWN + 50; i++) l.add(record({ serverName: `n${i}.flood.example`, firstMs: T0 + i }));
    const v = l.view(ECHO)!;
    expect(v.endpoints).toHaveLength(MAX_ENDPOINTS + 1);
    expect(v.endpoints.find((e) => e.name === 'other')?.flows).toBe(MAX_KNOWN + 50 - MAX_ENDPOINTS);
    expect(l.stats.endpointsFolded).toBe(MAX_KNOWN + 50 - MAX_ENDPOINTS);
    // a name folded into "other" is still a first contact; remembered names stop at MAX_KNOWN (counted)
    expect(events.filter((e) => e.kind === 'new-organisation')).toHaveLength(MAX_KNOWN);
    expect(l.stats.knownDropped).toBe(50);
    for (let i = 0; i < MAX_LEDGER_DEVICES + 10; i++) l.add(record({ serverName: 'api.spotify.com', deviceMac: 0x020000000000 + i, firstMs: T0 }));
    expect(l.macs()).toHaveLength(MAX_LEDGER_DEVICES);
    expect(l.stats.devicesDropped).toBe(11);
    // a device that is not an assistant keeps its busiest few endpoints
    const quiet = ledger(0, [], false);
    for (let i = 0; i < 100; i++) quiet.add(record({ serverName: `n${i}.example`, firstMs: T0 + i }));
    expect(quiet.view(ECHO)!.endpoints).toHaveLength(MAX_OTHER_ENDPOINTS + 1);
    // a long name is cut to what DNS allows
    l.add(record({ serverName: `${'x'.repeat(400)}.example`, deviceMac: ECHO, firstMs: T0 }));
  });

  it('remembers organisations across a restart (data directory), and sets a damaged file aside', () => {
    const dir = tempDir('earshot-ledger-');
    const first = ledger(HOUR);
    first.add(record({ serverName: 'api.spotify.com', firstMs: T0 }));
    saveLedger(dir, first);
    const { saved, warning } = loadLedger(dir);
    expect(warning).toBeNull();
    const events: NewEndpointEvent[] = [];
    const second = ledger(HOUR, events);
    second.restore(saved!);
    // past the learning period that began with the first run: Spotify is known, the skill is new
    second.add(record({ serverName: 'api.spotify.com', firstMs: T0 + 2 * HOUR }));
    second.add(record({ serverName: 'skill.example.net', firstMs: T0 + 2 * HOUR }));
    expect(events.filter((e) => e.kind === 'new-organisation').map((e) => e.subject)).toEqual(['Example Skills']);
    expect(second.learningEndsMs(ECHO)).toBe(T0 + HOUR);

    // a flipped byte: the seal catches it, the file is kept aside, the ledger starts empty
    const path = join(dir, PRIVACY_FILE);
    writeFileSync(path, readFileSync(path, 'utf8').replace('spotify', 'spotifx'));
    const damaged = loadLedger(dir);
    expect(damaged.saved).toBeNull();
    expect(damaged.warning).toMatch(/privacy\.json: checksum mismatch .*kept as .*damaged/);
    expect(readdirSync(dir).some((f) => f.startsWith(`${PRIVACY_FILE}.damaged`))).toBe(true);
    // a power cut: a copy cut short, or the file's blocks zero-filled (the rename landed, the data not)
    saveLedger(dir, first);
    const whole = readFileSync(path);
    for (const cut of [whole.subarray(0, whole.length >> 1), Buffer.alloc(whole.length), Buffer.alloc(0)]) {
      writeFileSync(path, cut);
      const read = loadLedger(dir);
      expect(read.saved).toBeNull();
      expect(read.warning).toMatch(/privacy\.json: .*every assistant learns its endpoints anew/);
    }
    // not JSON at all
    writeFileSync(path, '{"version":1,"dev');
    expect(loadLedger(dir).warning).toMatch(/privacy\.json: .*every assistant learns its endpoints anew/);
    // valid JSON that is not a ledger
    writeFileSync(path, JSON.stringify({ version: 1, devices: { 'not a mac': { firstSeenMs: 1, orgs: {}, services: {} } } }));
    expect(loadLedger(dir).warning).toMatch(/not a saved endpoint ledger/);
  });
});
