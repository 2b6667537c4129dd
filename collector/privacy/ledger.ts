/**
 * Who each assistant talks to: per device, every endpoint it exchanged traffic with (server name, or
 * the address when no name was seen), the organisation behind it, its service class, bytes each way,
 * connections and the days it was used, first and last seen; per device and local day, what it
 * uploaded by service (voice next to telemetry and the rest); and the organisations and services each
 * device has been seen with, so that the first contact with a new one after a learning period becomes a
 * new-endpoint event. Fed by flow ends (FlowRecord), on the pipeline's thread.
 *
 * Everything here comes from packets (names are attacker-controlled): devices, endpoints per device,
 * days and remembered organisations are all bounded, and what a bound turns away is counted.
 *
 * The remembered organisations and services (and when each device was first seen) survive restarts in
 * the data directory (privacy.json, sealed, written atomically); the byte counts start anew with each
 * run (InfluxDB keeps their history).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealJson, unsealJson } from '../data-dir.js';
import { quarantine, writeFileAtomic } from '../durable.js';
import { servedView, type FlowRecord } from '../flow/record.js';
import { formatMac, NO_MAC, parseMac } from '../mac.js';

/** The organisation behind an endpoint, as collector/privacy/orgs.ts names it. */
export interface EndpointOrg {
  name: string;
  /** Stable id ('amazon'). */
  key: string;
  category: string;
  source: string;
}

/** The organisation of a server name and address (collector/privacy/lookup.ts). */
export type OrgLookup = (serverName: string | null, ip: string | null) => EndpointOrg | null;

/** Most devices the ledger keeps (as the inventory's bound). */
export const MAX_LEDGER_DEVICES = 256;
/** Most endpoints per assistant; later ones are summed under the name "other". */
export const MAX_ENDPOINTS = 256;
/**
 * Most endpoints per device that is not an assistant (a computer talks to thousands of servers; the
 * owner asks about the speakers): the busiest are what a glance needs, and memory stays small.
 */
export const MAX_OTHER_ENDPOINTS = 32;
/** Most organisations and services remembered per device. */
export const MAX_KNOWN = 512;
/** Local days of uploads kept per device. */
export const MAX_DAYS = 31;
/** Longest endpoint name kept (a DNS name is at most 253). */
const MAX_NAME = 253;

export const PRIVACY_FILE = 'privacy.json';

export interface LedgerEndpoint {
  /** Server name, or its address when the flow carried no name. */
  name: string;
  named: boolean;
  service: string;
  org: string | null;
  orgKey: string | null;
  category: string | null;
  orgSource: string | null;
  /** 'first' when the organisation is the device's vendor, 'third' for anyone else, null when unknown. */
  party: 'first' | 'third' | null;
  flows: number;
  bytesUp: number;
  bytesDown: number;
  firstMs: number;
  lastMs: number;
  /** Local days with at least one connection. */
  days: number;
  lastDay: string;
}

/**
 * What one device uploaded on one local day, by service: what left the home. Traffic with the home's own
 * addresses (endpoints of the organisation `Local network`: another speaker, the router, multicast) is
 * summed apart, as it never reached an organisation: an Echo streaming to another Echo is no upload.
 */
export interface DayUploads {
  day: string;
  /** service -> bytes the device sent beyond the home network. */
  up: Record<string, number>;
  /** service -> bytes the device received from beyond the home network. */
  down: Record<string, number>;
  /** Bytes the device sent to, and received from, the home network (every service). */
  localUp: number;
  localDown: number;
}

/** The first contact of a device with an organisation or a service class after its learning period. */
export interface NewEndpointEvent {
  kind: 'new-organisation' | 'new-service';
  mac: number;
  /** The organisation's name (new-organisation), or the service class (new-service). */
  subject: string;
  org: string | null;
  service: string;
  endpoint: string;
  atMs: number;
}

interface DeviceLedger {
  firstSeenMs: number;
  /**
   * service -> endpoint name -> endpoint. Two levels rather than one `service|name` key: the names are
   * the flows' own strings (hashed once), a joined key was a new string to build and hash per flow.
   */
  endpoints: Map<string, Map<string, LedgerEndpoint>>;
  /** Endpoints in `endpoints`, all services. */
  endpointCount: number;
  days: DayUploads[];
  /** org key or "?registrable name" -> first contact (ms). */
  orgs: Map<string, number>;
  services: Map<string, number>;
}

export interface LedgerOptions {
  /** How long after a device is first seen its new contacts count as learning (no events), ms. */
  learningMs: number;
  /** The local day (YYYY-MM-DD) of an instant. */
  dayOf: (ms: number) => string;
  lookup: OrgLookup;
  /** The vendor key of a device ('amazon'), for first/third party; null when unknown. */
  vendorOf: (mac: number) => string | null;
  /** 'first' when `org` is the vendor's (or owned by it); default: the same key. */
  partyOf?: (org: EndpointOrg, vendor: string | null) => 'first' | 'third';
  /** Whether new-endpoint events are raised for this device (assistants only). */
  watched: (mac: number) => boolean;
  onNewEndpoint?: (event: NewEndpointEvent) => void;
  /** Each ended flow's traffic with its endpoint (organisation, service, party): the InfluxDB sink sums it. */
  onTraffic?: (mac: number, endpoint: Readonly<LedgerEndpoint>, bytesUp: number, bytesDown: number) => void;
}

export interface LedgerStats {
  devicesDropped: number;
  endpointsFolded: number;
  knownDropped: number;
  events: number;
}

export class PrivacyLedger {
  private readonly devices = new Map<number, DeviceLedger>();
  readonly stats: LedgerStats = { devicesDropped: 0, endpointsFolded: 0, knownDropped: 0, events: 0 };
  /** Set when remembered organisations changed since the last save. */
  dirty = false;

  constructor(private readonly options: LedgerOptions) {}

  /**
   * A flow ended: its traffic goes to its device's endpoint and day; a LAN flow's also to its peer's
   * (the flow's device, by address, is the peer's endpoint: FlowRecord.peerMac).
   */
  add(f: FlowRecord): void {
    this.addFor(f);
    if (f.peerMac >= 0) this.addFor(servedView(f));
  }

  private addFor(f: FlowRecord): void {
    if (f.deviceMac < 0) return;
    const d = this.device(f.deviceMac, f.firstMs);
    if (d === null) return;
    const up = f.deviceIsClient ? f.bytesUp : f.bytesDown;
    const down = f.bytesUp + f.bytesDown - up;
    const remote = f.deviceIsClient ? f.server : f.client;
    // a name from the vendor's address ranges ("amazon 52.94.0.0/16") labels the endpoint but is no DNS name
    const rawName = f.nameSource === 'ip-range' ? f.sni : f.serverName ?? f.sni;
    const named = rawName !== null;
    const name = (rawName ?? f.serverName ?? remote).slice(0, MAX_NAME);
    const service = f.service ?? 'unknown';
    const day = this.options.dayOf(f.firstMs);

    let byName = d.endpoints.get(service);
    let e = byName?.get(name);
    if (e === undefined) {
      if (d.endpointCount >= (this.options.watched(f.deviceMac) ? MAX_ENDPOINTS : MAX_OTHER_ENDPOINTS)) {
        this.stats.endpointsFolded++;
        const other = endpointsOf(d, 'other');
        e = other.get('other');
        if (e === undefined) {
          e = blankEndpoint('other', false, 'other', null, day, f.firstMs);
          other.set('other', e);
          d.endpointCount++;
        }
      } else {
        // looked up only for an endpoint kept: a busy computer's folded flows would each look up again
        const org = this.options.lookup(rawName, remote);
        e = blankEndpoint(name, named, service, org, day, f.firstMs);
        const vendor = this.options.vendorOf(f.deviceMac);
        // the home network is neither the vendor nor a third party
        if (org !== null && org.category !== 'local') e.party = this.options.partyOf?.(org, vendor) ?? (vendor !== null && org.key === vendor ? 'first' : 'third');
        (byName ??= endpointsOf(d, service)).set(name, e);
        d.endpointCount++;
      }
      this.remember(f.deviceMac, d, e, name, named, f.firstMs);
    }
    e.flows++;
    e.bytesUp += up;
    e.bytesDown += down;
    if (f.firstMs < e.firstMs) e.firstMs = f.firstMs;
    if (f.lastMs > e.lastMs) e.lastMs = f.lastMs;
    if (day !== e.lastDay) {
      e.days++;
      e.lastDay = day;
    }
    const uploads = dayUploads(d, day);
    if (e.category === 'local') {
      uploads.localUp += up;
      uploads.localDown += down;
    } else {
      uploads.up[service] = (uploads.up[service] ?? 0) + up;
      uploads.down[service] = (uploads.down[service] ?? 0) + down;
    }
    this.options.onTraffic?.(f.deviceMac, e, up, down);
  }

  /** The first contact with an organisation or service: remembered, and an event once learning is over. */
  private remember(mac: number, d: DeviceLedger, e: LedgerEndpoint, name: string, named: boolean, atMs: number): void {
    // an endpoint without an organisation is remembered by its name (a DNS name, not an address)
    const orgKey = e.orgKey ?? (named ? `?${name}` : null);
    const learning = atMs < d.firstSeenMs + this.options.learningMs;
    const raise = !learning && this.options.watched(mac);
    if (orgKey !== null && !d.orgs.has(orgKey)) {
      if (this.learn(d.orgs, orgKey, atMs) && raise) {
        this.emit({ kind: 'new-organisation', mac, subject: e.org ?? name, org: e.org, service: e.service, endpoint: name, atMs });
      }
    }
    // the network's own protocols (DNS, DHCP, discovery) are no news
    if (e.service !== 'unknown' && e.service !== 'other' && e.service !== 'network' && !d.services.has(e.service)) {
      if (this.learn(d.services, e.service, atMs) && raise) {
        this.emit({ kind: 'new-service', mac, subject: e.service, org: e.org, service: e.service, endpoint: name, atMs });
      }
    }
  }

  private learn(known: Map<string, number>, key: string, atMs: number): boolean {
    if (known.size >= MAX_KNOWN) {
      this.stats.knownDropped++;
      return false;
    }
    known.set(key, atMs);
    this.dirty = true;
    return true;
  }

  private emit(event: NewEndpointEvent): void {
    this.stats.events++;
    this.options.onNewEndpoint?.(event);
  }

  private device(mac: number, atMs: number): DeviceLedger | null {
    let d = this.devices.get(mac);
    if (d === undefined) {
      if (this.devices.size >= MAX_LEDGER_DEVICES) {
        this.stats.devicesDropped++;
        return null;
      }
      d = { firstSeenMs: atMs, endpoints: new Map(), endpointCount: 0, days: [], orgs: new Map(), services: new Map() };
      this.devices.set(mac, d);
      this.dirty = true;
    } else if (atMs < d.firstSeenMs) {
      // flows end in the order they end: one that began earlier than the first to end moves the first
      // sighting (and the learning period) back to it
      d.firstSeenMs = atMs;
      this.dirty = true;
    }
    return d;
  }

  /** The devices the ledger holds. */
  macs(): number[] {
    return [...this.devices.keys()];
  }

  /** One device's endpoints (busiest first), days (oldest first) and learning state. */
  view(mac: number): { firstSeenMs: number; endpoints: LedgerEndpoint[]; days: DayUploads[]; organisations: number; services: number } | null {
    const d = this.devices.get(mac);
    if (d === undefined) return null;
    return {
      firstSeenMs: d.firstSeenMs,
      endpoints: [...d.endpoints.values()].flatMap((m) => [...m.values()]).sort((a, b) => b.bytesUp + b.bytesDown - (a.bytesUp + a.bytesDown) || (a.name < b.name ? -1 : a.name > b.name ? 1 : a.service < b.service ? -1 : 1)).map((e) => ({ ...e })),
      days: d.days.map((x) => ({ ...x, up: { ...x.up }, down: { ...x.down } })),
      organisations: d.orgs.size,
      services: d.services.size,
    };
  }

  /** The learning end of a device (ms), or null when it is not known. */
  learningEndsMs(mac: number): number | null {
    const d = this.devices.get(mac);
    return d === undefined ? null : d.firstSeenMs + this.options.learningMs;
  }

  /** What survives a restart: per device, first seen and the remembered organisations and services. */
  saved(): SavedLedger {
    const devices: SavedLedger['devices'] = {};
    for (const [mac, d] of this.devices) {
      devices[formatMac(mac)] = { firstSeenMs: d.firstSeenMs, orgs: Object.fromEntries(d.orgs), services: Object.fromEntries(d.services) };
    }
    return { version: 1, devices };
  }

  /** Takes back what a previous run remembered (before any flow of this run). */
  restore(saved: SavedLedger): void {
    for (const [macText, s] of Object.entries(saved.devices)) {
      const mac = parseMac(macText);
      if (mac === NO_MAC || this.devices.size >= MAX_LEDGER_DEVICES) continue;
      const d: DeviceLedger = { firstSeenMs: s.firstSeenMs, endpoints: new Map(), endpointCount: 0, days: [], orgs: new Map(), services: new Map() };
      for (const [k, v] of Object.entries(s.orgs).slice(0, MAX_KNOWN)) d.orgs.set(k, v);
      for (const [k, v] of Object.entries(s.services).slice(0, MAX_KNOWN)) d.services.set(k, v);
      this.devices.set(mac, d);
    }
    this.dirty = false;
  }
}

function blankEndpoint(name: string, named: boolean, service: string, org: EndpointOrg | null, day: string, atMs: number): LedgerEndpoint {
  return {
    name, named, service, org: org?.name ?? null, orgKey: org?.key ?? null, category: org?.category ?? null, orgSource: org?.source ?? null,
    party: null, flows: 0, bytesUp: 0, bytesDown: 0, firstMs: atMs, lastMs: atMs, days: 0, lastDay: '',
  };
}

function endpointsOf(d: DeviceLedger, service: string): Map<string, LedgerEndpoint> {
  let m = d.endpoints.get(service);
  if (m === undefined) {
    m = new Map();
    d.endpoints.set(service, m);
  }
  return m;
}

function dayUploads(d: DeviceLedger, day: string): DayUploads {
  const last = d.days[d.days.length - 1];
  if (last !== undefined && last.day === day) return last;
  const found = d.days.find((x) => x.day === day);
  if (found !== undefined) return found;
  const fresh: DayUploads = { day, up: {}, down: {}, localUp: 0, localDown: 0 };
  d.days.push(fresh);
  d.days.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  if (d.days.length > MAX_DAYS) d.days.shift();
  return fresh;
}

export interface SavedLedger {
  version: 1;
  devices: Record<string, { firstSeenMs: number; orgs: Record<string, number>; services: Record<string, number> }>;
}

/** Checks a parsed privacy.json; null when it is not one. */
export function parseSavedLedger(value: unknown): SavedLedger | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as { version?: unknown; devices?: unknown };
  if (v.version !== 1 || typeof v.devices !== 'object' || v.devices === null || Array.isArray(v.devices)) return null;
  const times = (m: unknown): m is Record<string, number> =>
    typeof m === 'object' && m !== null && !Array.isArray(m) && Object.entries(m).every(([k, t]) => k.length <= MAX_NAME + 1 && Number.isFinite(t));
  for (const [mac, d] of Object.entries(v.devices)) {
    if (parseMac(mac) === NO_MAC || typeof d !== 'object' || d === null) return null;
    const x = d as { firstSeenMs?: unknown; orgs?: unknown; services?: unknown };
    if (!Number.isFinite(x.firstSeenMs) || !times(x.orgs) || !times(x.services)) return null;
  }
  return v as SavedLedger;
}

/** Reads privacy.json from the data directory; a damaged file is set aside (warning) and the ledger starts empty. */
export function loadLedger(dataDir: string): { saved: SavedLedger | null; warning: string | null } {
  const path = join(dataDir, PRIVACY_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { saved: null, warning: null };
    const aside = quarantine(path);
    return { saved: null, warning: `${path}: cannot read (${(err as Error).message}); ${aside ? `kept as ${aside}` : 'removed'}, every assistant learns its endpoints anew` };
  }
  let saved: SavedLedger | null = null;
  let why = 'not a saved endpoint ledger';
  try {
    saved = parseSavedLedger(JSON.parse(unsealJson(text.trimEnd())));
  } catch (err) {
    why = (err as Error).message;
  }
  if (saved !== null) return { saved, warning: null };
  const aside = quarantine(path);
  return { saved: null, warning: `${path}: ${why}; ${aside ? `kept as ${aside}` : 'removed'}, every assistant learns its endpoints anew` };
}

/** Writes privacy.json atomically (sealed). Throws when it cannot (the caller logs and retries later). */
export function saveLedger(dataDir: string, ledger: PrivacyLedger): void {
  writeFileAtomic(join(dataDir, PRIVACY_FILE), `${sealJson(JSON.stringify(ledger.saved()))}\n`);
  ledger.dirty = false;
}
