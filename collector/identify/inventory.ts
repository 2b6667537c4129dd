/**
 * The device inventory: one Device per local MAC, fed by DHCP, mDNS, SSDP and the taggers' findings,
 * overridden by config, bounded (least recently seen out first), and saved in the data directory so
 * names learned from DHCP at boot survive a restart.
 *
 * Any LAN host can send packets from as many forged MACs as it likes, so a new device must cost O(1)
 * (two maps in least-recently-seen order, evicted from the front) and must not push out what matters:
 * assistants and configured devices live in their own map, which ordinary devices' churn never
 * evicts while it holds at most half the inventory. Forged assistants (an Echo's DHCP host name and
 * traffic to Amazon, from made-up MACs) land in that map too: there, configured devices and devices
 * seen uploading audio go only after every other one.
 */
import type { DhcpInfo } from '../decode/dhcp.js';
import type { MdnsInfo } from '../decode/mdns-sd.js';
import type { SsdpInfo } from '../decode/ssdp.js';
import { mayBeAssistant, refresh } from './classify.js';
import { parseMac, parseMacOrThrow } from '../mac.js';
import { addBounded, Device } from './device.js';

export interface DeviceConfig {
  name?: string;
  assistant?: boolean;
  vendor?: string;
  model?: string;
}

export interface OuiLookup {
  lookup(mac: number): { organization: string; vendor: string | null } | null;
}

export interface InventoryOptions {
  maxDevices: number;
  /** Config overrides by MAC (any case, ":" or "-" separated). */
  devices: Readonly<Record<string, DeviceConfig>>;
}

/** The saved form of a device: observations only (verdicts are recomputed). */
export interface SavedDevice {
  mac: string;
  ips: string[];
  dhcpHostName: string | null;
  dhcpVendorClass: string | null;
  mdnsServices: string[];
  mdnsNames: string[];
  mdnsModel: string | null;
  mdnsFriendlyName: string | null;
  ssdpServer: string | null;
  ssdpTypes: string[];
  voiceNames: string[];
  voiceServers: string[];
  speakerPorts: string[];
  /** Added with local assistants; absent in older state files. */
  localRoles?: string[];
  /** Added with the flood protection of uploaders; absent (false) in older state files. */
  uploadedAudio?: boolean;
  firstSeenMs: number;
  lastSeenMs: number;
}

/**
 * Announcements from MACs the inventory does not know: read at most this many in a burst, then this
 * many per second of packet time. A LAN gains a new device now and then; a host forging a new MAC per
 * packet gains nothing past the budget (issue 14), and known devices' announcements are always read.
 */
export const ANNOUNCE_BURST = 256;
export const ANNOUNCE_PER_SECOND = 4;
const MDNS_MODEL_KEYS = ['md', 'model', 'am', 'mdl'];
const MDNS_NAME_KEYS = ['fn', 'n', 'name'];

/** A least-recently-seen list threaded through the devices themselves: every step O(1), no allocation. */
class SeenOrder {
  oldest: Device | null = null;
  newest: Device | null = null;
  size = 0;

  push(d: Device): void {
    d.older = this.newest;
    d.newer = null;
    if (this.newest !== null) this.newest.newer = d;
    else this.oldest = d;
    this.newest = d;
    this.size++;
  }

  remove(d: Device): void {
    if (d.older !== null) d.older.newer = d.newer;
    else this.oldest = d.newer;
    if (d.newer !== null) d.newer.older = d.older;
    else this.newest = d.older;
    d.older = null;
    d.newer = null;
    this.size--;
  }
}

export class Inventory {
  readonly stats = { devices: 0, evicted: 0 };
  private readonly devices = new Map<number, Device>();
  /** Ordinary devices, and (apart) assistants and configured devices, least recently seen first. */
  private readonly ordinary = new SeenOrder();
  private readonly kept = new SeenOrder();
  private readonly overrides = new Map<number, DeviceConfig>();
  private readonly maxKept: number;
  /** Announcements from unknown MACs still allowed (a token bucket refilled by packet time). */
  private announceTokens = ANNOUNCE_BURST;
  private announceRefillMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly oui: OuiLookup, private readonly options: InventoryOptions) {
    for (const [mac, cfg] of Object.entries(options.devices)) this.overrides.set(parseMacOrThrow(mac, `devices: ${mac}`), cfg);
    this.maxKept = Math.max(1, Math.floor(options.maxDevices / 2));
  }

  /** Devices held now. */
  get size(): number {
    return this.devices.size;
  }

  /** The device with this MAC, created on first sight; `timeMs` updates when it was last seen. */
  get(mac: number, timeMs: number): Device {
    let d = this.devices.get(mac);
    if (d === undefined) {
      d = new Device(mac);
      d.firstSeenMs = timeMs;
      // the locally-administered bit: a randomised address names no vendor
      d.randomized = Math.floor(mac / 2 ** 40) % 4 >= 2;
      const hit = d.randomized ? null : this.oui.lookup(mac);
      if (hit) {
        d.organization = hit.organization;
        d.ouiVendor = hit.vendor;
      }
      const cfg = this.overrides.get(mac);
      if (cfg) {
        d.configName = cfg.name ?? null;
        d.configAssistant = cfg.assistant ?? null;
        d.configVendor = cfg.vendor ?? null;
        d.configModel = cfg.model ?? null;
      }
      this.devices.set(mac, d);
      if (cfg) this.keep(d);
      else this.ordinary.push(d);
      if (this.devices.size > this.options.maxDevices) this.evictOldest();
      this.stats.devices = this.devices.size;
    } else if (timeMs > d.lastSeenMs && (d.kept ? this.kept : this.ordinary).newest !== d) {
      // seen again: to the back of its list
      const order = d.kept ? this.kept : this.ordinary;
      order.remove(d);
      order.push(d);
    }
    if (timeMs > d.lastSeenMs) d.lastSeenMs = timeMs;
    return d;
  }

  /**
   * A known device was active at `timeMs` (a flow of its ended, its last packet then): its last sighting
   * and its place in the eviction order move; an unknown MAC makes no device.
   */
  seen(mac: number, timeMs: number): void {
    if (this.devices.has(mac)) this.get(mac, timeMs);
  }

  /**
   * Whether to read an announcement from `srcMac` (before parsing it): always for a known device, and
   * for an unknown one while the budget lasts (the payload inspector counts what it skips).
   */
  admitAnnouncement(srcMac: number, timeMs: number): boolean {
    if (this.devices.has(srcMac)) return true;
    if (timeMs > this.announceRefillMs) {
      if (this.announceRefillMs !== Number.NEGATIVE_INFINITY) {
        this.announceTokens = Math.min(ANNOUNCE_BURST, this.announceTokens + ((timeMs - this.announceRefillMs) * ANNOUNCE_PER_SECOND) / 1000);
      }
      this.announceRefillMs = timeMs;
    }
    if (this.announceTokens >= 1) {
      this.announceTokens--;
      return true;
    }
    return false;
  }

  /** A device if known, without creating it. */
  find(mac: number): Device | undefined {
    return this.devices.get(mac);
  }

  /** DHCP from a client: host name, vendor class, parameter list. */
  observeDhcp(info: DhcpInfo, srcMac: number, timeMs: number): void {
    const mac = info.clientMac !== null ? parseMac(info.clientMac) : srcMac;
    if (mac < 0 || info.op !== 1) return;
    const d = this.get(mac, timeMs);
    if (info.hostName && info.hostName !== d.dhcpHostName) {
      d.dhcpHostName = info.hostName.slice(0, 64);
      d.dirty = true;
    }
    if (info.vendorClass && info.vendorClass !== d.dhcpVendorClass) {
      d.dhcpVendorClass = info.vendorClass.slice(0, 64);
      d.dirty = true;
    }
    if (info.parameterList.length > 0) d.dhcpParams = info.parameterList.join(',');
  }

  /** mDNS responses and announcements from a device: services, names, model. */
  observeMdns(info: MdnsInfo, srcMac: number, timeMs: number): void {
    if (srcMac < 0 || !info.isResponse) return;
    const d = this.get(srcMac, timeMs);
    for (const s of info.services) if (!s.startsWith('_services.')) d.dirty = addBounded(d.mdnsServices, s.toLowerCase()) || d.dirty;
    for (const i of info.instances) {
      d.dirty = addBounded(d.mdnsServices, i.service.toLowerCase()) || d.dirty;
      d.dirty = addBounded(d.mdnsNames, i.instance.slice(0, i.instance.length - i.service.length - 1) || i.instance) || d.dirty;
    }
    for (const h of info.hosts) d.dirty = addBounded(d.mdnsNames, h.name.replace(/\.local\.?$/i, '')) || d.dirty;
    for (const t of info.txt) {
      for (const k of MDNS_MODEL_KEYS) {
        const v = t.entries[k];
        if (v && v !== d.mdnsModel) {
          d.mdnsModel = v.slice(0, 64);
          d.dirty = true;
          break;
        }
      }
      for (const k of MDNS_NAME_KEYS) {
        const v = t.entries[k];
        if (v && v !== d.mdnsFriendlyName) {
          d.mdnsFriendlyName = v.slice(0, 64);
          d.dirty = true;
          break;
        }
      }
    }
  }

  /** SSDP announcements and answers from a device: SERVER and device types. */
  observeSsdp(info: SsdpInfo, srcMac: number, timeMs: number): void {
    if (srcMac < 0 || info.kind === 'search') return;
    const d = this.get(srcMac, timeMs);
    if (info.server && info.server !== d.ssdpServer) {
      d.ssdpServer = info.server;
      d.dirty = true;
    }
    for (const t of [info.nt, info.st]) if (t && /^urn:/i.test(t)) d.dirty = addBounded(d.ssdpTypes, t) || d.dirty;
  }

  /** One device with its verdict brought up to date, if known. */
  describe(mac: number): Device | undefined {
    const d = this.devices.get(mac);
    if (d !== undefined) refresh(d);
    return d;
  }

  /** Every device, verdicts brought up to date. */
  all(): Device[] {
    const out = [...this.devices.values()];
    for (const d of out) refresh(d);
    return out;
  }

  /** Observations to save. */
  save(): SavedDevice[] {
    return [...this.devices.values()].map((d) => ({
      mac: d.macText,
      ips: [...d.ips],
      dhcpHostName: d.dhcpHostName,
      dhcpVendorClass: d.dhcpVendorClass,
      mdnsServices: [...d.mdnsServices],
      mdnsNames: [...d.mdnsNames],
      mdnsModel: d.mdnsModel,
      mdnsFriendlyName: d.mdnsFriendlyName,
      ssdpServer: d.ssdpServer,
      ssdpTypes: [...d.ssdpTypes],
      voiceNames: [...d.voiceNames],
      voiceServers: [...d.voiceServers],
      speakerPorts: [...d.speakerPorts],
      // only when there are some: the state file of a home without a local assistant stays as it was
      ...(d.localRoles.size > 0 ? { localRoles: [...d.localRoles] } : {}),
      ...(d.uploadedAudio ? { uploadedAudio: true } : {}),
      firstSeenMs: d.firstSeenMs,
      lastSeenMs: d.lastSeenMs,
    }));
  }

  /** Restores saved observations (a state file from an earlier run). Unknown or damaged rows are skipped. */
  load(saved: readonly SavedDevice[]): void {
    for (const s of saved) {
      const mac = typeof s?.mac === 'string' ? parseMac(s.mac) : -1;
      if (mac < 0) continue;
      const d = this.get(mac, Number(s.lastSeenMs) || 0);
      d.firstSeenMs = Number(s.firstSeenMs) || d.firstSeenMs;
      d.dhcpHostName ??= typeof s.dhcpHostName === 'string' ? s.dhcpHostName : null;
      d.dhcpVendorClass ??= typeof s.dhcpVendorClass === 'string' ? s.dhcpVendorClass : null;
      d.mdnsModel ??= typeof s.mdnsModel === 'string' ? s.mdnsModel : null;
      d.mdnsFriendlyName ??= typeof s.mdnsFriendlyName === 'string' ? s.mdnsFriendlyName : null;
      d.ssdpServer ??= typeof s.ssdpServer === 'string' ? s.ssdpServer : null;
      const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
      for (const v of strings(s.ips)) addBounded(d.ips, v);
      for (const v of strings(s.mdnsServices)) addBounded(d.mdnsServices, v);
      for (const v of strings(s.mdnsNames)) addBounded(d.mdnsNames, v);
      for (const v of strings(s.ssdpTypes)) addBounded(d.ssdpTypes, v);
      for (const v of strings(s.voiceNames)) addBounded(d.voiceNames, v);
      for (const v of strings(s.voiceServers)) addBounded(d.voiceServers, v);
      for (const v of strings(s.speakerPorts)) addBounded(d.speakerPorts, v);
      for (const v of strings(s.localRoles)) addBounded(d.localRoles, v);
      if (s.uploadedAudio === true) d.uploadedAudio = true;
      d.dirty = true;
    }
  }



  /** Moves a device to the kept list (assistants, configured devices), which holds at most half. */
  private keep(d: Device): void {
    d.kept = true;
    this.kept.push(d);
    if (this.kept.size > this.maxKept) this.drop(this.keptVictim());
  }

  /** An activation (audio upload) came from this device: it is dropped last (see Device.uploadedAudio). */
  markUploaded(mac: number): void {
    const d = this.devices.get(mac);
    if (d !== undefined) d.uploadedAudio = true;
  }

  /**
   * The kept device to drop: the least recently seen one neither configured nor seen uploading audio,
   * else the least recently seen. The walk passes only such protected devices (a home's few).
   */
  private keptVictim(): Device {
    for (let d = this.kept.oldest; d !== null; d = d.newer) {
      if (!d.uploadedAudio && !this.overrides.has(d.mac)) return d;
    }
    return this.kept.oldest!;
  }

  /**
   * Drops the least recently seen ordinary device. One found to be an assistant on the way moves to the
   * kept list instead (each device moves at most once, so this stays O(1) amortised); with no ordinary
   * device left, the least recently seen kept one goes.
   */
  private evictOldest(): void {
    while (this.devices.size > this.options.maxDevices) {
      const d = this.ordinary.oldest ?? (this.kept.oldest === null ? null : this.keptVictim());
      if (d === null) return;
      if (!d.kept && (d.uploadedAudio || (mayBeAssistant(d) && (refresh(d), d.assistant)))) {
        this.ordinary.remove(d);
        this.keep(d);
        continue;
      }
      this.drop(d);
    }
  }

  private drop(d: Device): void {
    (d.kept ? this.kept : this.ordinary).remove(d);
    this.devices.delete(d.mac);
    this.stats.evicted++;
  }
}
