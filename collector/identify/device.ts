/**
 * What earshot knows about one local device (by MAC): what it said about itself (DHCP, mDNS, SSDP),
 * what it did (voice endpoints, persistent connections, local speaker protocols), and what the user
 * configured. classify.ts turns that into vendor, name, model, assistant and the evidence for it.
 */
import { formatMac } from '../decode/packet.js';

/** Observations about a device; everything here is small and bounded. */
export class Device {
  readonly mac: number;
  /** The MAC as text, made on first use (a flood of forged MACs is mostly never printed). */
  private text: string | null;
  /** From the OUI registry: the organisation, and earshot's vendor id (amazon, apple, google, sonos, ...). */
  organization: string | null = null;
  ouiVendor: string | null = null;
  /** Locally administered (randomised) MAC: no OUI vendor. */
  randomized = false;
  readonly ips = new Set<string>();
  /** The IPv4 address (as a number) last added to `ips`, to skip formatting it again. */
  lastIpWord = -1;
  dhcpHostName: string | null = null;
  dhcpVendorClass: string | null = null;
  dhcpParams: string | null = null;
  /** mDNS: services it announced, its instance/host names, model and friendly name from TXT. */
  readonly mdnsServices = new Set<string>();
  readonly mdnsNames = new Set<string>();
  mdnsModel: string | null = null;
  mdnsFriendlyName: string | null = null;
  /** SSDP: SERVER header and device types it announced. */
  ssdpServer: string | null = null;
  readonly ssdpTypes = new Set<string>();
  /** Names it resolved or connected to that the catalogue calls voice, and other vendor endpoints. */
  readonly voiceNames = new Set<string>();
  readonly vendorEndpoints = new Set<string>();
  /** Distinct other (uncatalogued) domains it asked for: many means a general-purpose computer or phone. */
  readonly otherDomains = new Set<string>();
  /** Voice servers learned from its persistent connections ("addr:port"), and where they are. */
  readonly voiceServers = new Set<string>();
  persistentVendorConnection: string | null = null;
  /** Local ports it serves or talks on that identify a speaker (Echo 55443/55444, Sonos 1400/1443, ...). */
  readonly speakerPorts = new Set<string>();
  /**
   * Roles in a local assistant, from the protocols it spoke on the LAN (collector/local/stage.ts):
   * wyoming-satellite, wyoming-server, esphome-device, hermes-satellite, ... (classify.ts names them).
   */
  readonly localRoles = new Set<string>();
  /** From config. */
  configName: string | null = null;
  configAssistant: boolean | null = null;
  configVendor: string | null = null;
  configModel: string | null = null;
  firstSeenMs = 0;
  lastSeenMs = 0;
  /** Derived by classify(); `dirty` says it must be recomputed. */
  vendor: string | null = null;
  name: string | null = null;
  model: string | null = null;
  assistant = false;
  evidence: string[] = [];
  dirty = true;
  /**
   * An activation (an audio upload) was seen from it, in this run or one whose state was saved: the
   * inventory drops it only after every other device (forged assistants cannot push it out).
   */
  uploadedAudio = false;
  /** The inventory's least-recently-seen list this device is in (see inventory.ts), and its neighbours. */
  kept = false;
  older: Device | null = null;
  newer: Device | null = null;

  constructor(mac: number, macText: string | null = null) {
    this.mac = mac;
    this.text = macText;
  }

  get macText(): string {
    return (this.text ??= formatMac(this.mac));
  }
}

/** Bounds on the per-device sets (a busy laptop must not grow them without end). */
export const DEVICE_SET_LIMIT = 64;

/** Adds to a bounded set; returns true when the set changed. */
export function addBounded(set: Set<string>, value: string): boolean {
  if (set.has(value) || set.size >= DEVICE_SET_LIMIT) return false;
  set.add(value);
  return true;
}
