/**
 * Endpoint tagging: names each flow's server (SNI, else the DNS answer that gave the device the
 * address, else the vendor's published ranges), looks the name up in the catalogue for vendor and
 * service, and finds assistants' voice channels that carry no name at all (open before capture
 * began, or long-lived, to the vendor's voice ranges on 443). Work happens per flow, per DNS answer
 * and once a second, never per packet.
 */
import { formatAddr, IPPROTO_TCP, IPPROTO_UDP, ipv4Text, isGroupAddr } from '../decode/packet.js';
import type { Flow } from '../flow/flow.js';
import type { DnsAnswer } from '../flow/payload.js';
import type { LocalNets } from '../flow/local-nets.js';
import { ECHO_PEER_PORT } from '../flow/table.js';
import { parseCidr } from '../flow/local-nets.js';
import { ASSISTANT_MAKERS, refresh } from '../identify/classify.js';
import { addBounded, type Device } from '../identify/device.js';
import type { Inventory } from '../identify/inventory.js';
import type { Catalog, CatalogEntry } from './catalog.js';
import { DnsCache } from './dns-cache.js';
import { isGroupMac } from '../mac.js';

export interface VendorRanges {
  lookup(ipVersion: number, words: ArrayLike<number>): { vendor: string; prefix: string; source: string } | null;
}

export interface TaggerOptions {
  dnsGraceMs: number;
  maxDnsEntries: number;
  /** A flow that has lasted this long to the vendor's ranges on 443 counts as persistent. */
  voiceMinDurationMs: number;
  maxPending: number;
}

export interface TaggerStats {
  namedBySni: number;
  namedByDns: number;
  namedByRange: number;
  /** Connections open before capture without a name from DNS or SNI that a DNS answer to their client named later. */
  namedByDnsLater: number;
  /** Such connections not kept for a later name: MAX_WAITING were waiting (a flood of them). */
  waitingDropped: number;
  voiceByName: number;
  voiceByBehaviour: number;
  pendingDropped: number;
}

/** Connections open before capture kept waiting for a later name, at most. */
const MAX_WAITING = 4096;
/** A connection closed at most this long before a DNS answer for its server is still named by it. */
const CLOSED_NAMED_WITHIN_MS = 10_000;

/** Ports of local protocols that only speakers speak, by vendor. */
const SPEAKER_PORTS: Record<string, Record<number, string>> = {
  amazon: { [ECHO_PEER_PORT]: `the Echo-to-Echo protocol (TCP ${ECHO_PEER_PORT})`, 55444: 'the Echo-to-Echo protocol (UDP 55444)' },
  sonos: { 1400: 'the Sonos control protocol (TCP 1400)', 1443: 'the Sonos control protocol (TCP 1443)', 3400: 'the Sonos control protocol (TCP 3400)', 3401: 'the Sonos control protocol (TCP 3401)', 3445: 'the Sonos protocol (TCP 3445)', 7080: 'the Sonos protocol (UDP 7080)' },
};

/**
 * What a flow of the network's own protocols is for, by their IANA ports, when no name said it: name
 * lookups (DNS on UDP and TCP 53, DNS over TLS or QUIC on 853, mDNS 5353, LLMNR 5355, NetBIOS names and
 * datagrams 137/138), addresses (DHCP 67/68, DHCPv6 546/547) and discovery (SSDP 1900) are `network`;
 * NTP (UDP 123) is `time`. The server's port decides; the client's only when the server's is no
 * well-known port (a flow seen from its answers: a LAN's DNS server answering a resolver outside).
 * Null for anything else.
 */
export function portService(flow: Pick<Flow, 'proto' | 'clientPort' | 'serverPort'>): 'network' | 'time' | null {
  const s = flow.serverPort;
  const c = flow.clientPort;
  // DHCP and DHCPv6 use fixed ports on both sides
  if (flow.proto === IPPROTO_UDP && (((s === 67 || s === 68) && (c === 67 || c === 68)) || ((s === 546 || s === 547) && (c === 546 || c === 547)))) return 'network';
  return servicePort(flow.proto, s) ?? (s >= 1024 ? servicePort(flow.proto, c) : null);
}

function servicePort(proto: number, port: number): 'network' | 'time' | null {
  if (proto === IPPROTO_TCP) return port === 53 || port === 853 || port === 5355 ? 'network' : null;
  if (proto !== IPPROTO_UDP) return null;
  if (port === 123) return 'time';
  return port === 53 || port === 853 || port === 5353 || port === 5355 || port === 137 || port === 138 || port === 1900 ? 'network' : null;
}

/** Compiles voice prefixes (IPv4 only in the shipped data) into mask tests. */
function compileVoicePrefixes(prefixes: ReadonlyArray<{ vendor: string; prefix: string }>) {
  const compiled = prefixes.map((p) => {
    const c = parseCidr(p.prefix, `catalog voicePrefixes ${p.prefix}`);
    const bits = c.version === 4 ? c.bits - 96 : 0;
    return { vendor: p.vendor, version: c.version, net: c.words[3], mask: bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0 };
  });
  return (ipVersion: number, words: ArrayLike<number>, vendor: string): boolean => {
    for (const p of compiled) if (p.version === ipVersion && p.vendor === vendor && ((words[3] & p.mask) >>> 0) === p.net) return true;
    return false;
  };
}


/**
 * Registrable-ish domain (last two labels) for counting how widely a device browses. Found from the
 * end, without splitting the name: every answer with a name the catalogue does not know comes here.
 */
export function domainOf(name: string): string {
  const last = name.lastIndexOf('.');
  const start = last <= 0 ? 0 : name.lastIndexOf('.', last - 1) + 1;
  return (start === 0 ? name : name.slice(start)).toLowerCase();
}

/** Builds the tagger. Wire its handlers into the collector's listeners. */
export function buildTagger(options: TaggerOptions, deps: { catalog: Catalog; ranges: VendorRanges; inventory: Inventory; localNets: LocalNets }) {
  const { catalog, ranges, inventory, localNets } = deps;
  const dns = new DnsCache(options.maxDnsEntries, options.dnsGraceMs);
  const inVoicePrefix = compileVoicePrefixes(catalog.voicePrefixes);
  const stats: TaggerStats = { namedBySni: 0, namedByDns: 0, namedByRange: 0, namedByDnsLater: 0, waitingDropped: 0, voiceByName: 0, voiceByBehaviour: 0, pendingDropped: 0 };
  /** Flows that may turn out to be an assistant's voice channel; re-checked every tick. */
  const pending = new Set<Flow>();
  /**
   * Connections open before capture began (TCP without a SYN, QUIC without a long header) to servers
   * beyond the LAN, with no name from DNS or SNI (unnamed, or named by a vendor range), by server address
   * and client: a DNS answer to that client while they are open names them (the device looks the name up
   * again later, as a Nest does for its front end). A home has a few dozen such connections when capture
   * begins; at most MAX_WAITING are kept (`stats.waitingDropped` counts the rest), and `waitingKey` says
   * which flows are in it and under which client (so a flow's end costs one lookup, whatever floods it).
   * Each is named at most once and left when it ends, its SNI names it, or an answer does.
   */
  const unnamed = new Map<string, Map<string, Set<Flow>>>();
  const waitingKey = new Map<Flow, string>();
  // scratch words for per-flow lookups: no array per flow
  const scratch = new Uint32Array(4);

  const deviceOf = (flow: Flow): Device | null => (flow.deviceMac >= 0 ? inventory.get(flow.deviceMac, flow.lastMs) : null);
  const vendorOf = (d: Device): string | null => d.configVendor ?? d.ouiVendor ?? (refresh(d), d.vendor);

  function server(flow: Flow): string {
    if (flow.serverText === null) flow.serverText = flow.ipVersion === 4 ? ipv4Text(flow.s3) : formatAddr(flow.ipVersion, flow.serverInto(scratch));
    return flow.serverText;
  }

  /** The DNS cache's key of a flow's client: the device's MAC when it is the client, else the client's address. */
  function clientKeyOf(flow: Flow): string {
    return flow.deviceIsClient && flow.deviceMac >= 0
      ? DnsCache.clientKey(flow.deviceMac, '')
      : DnsCache.clientKey(-1, formatAddr(flow.ipVersion, flow.clientInto(scratch)));
  }

  /** Takes a flow out of the unnamed ones (its end, its SNI). */
  function forgetUnnamed(flow: Flow): void {
    if (waitingKey.size === 0) return;
    const clientKey = waitingKey.get(flow);
    if (clientKey === undefined) return;
    waitingKey.delete(flow);
    const address = server(flow);
    const clients = unnamed.get(address);
    const waiting = clients?.get(clientKey);
    if (clients === undefined || waiting === undefined) return;
    waiting.delete(flow);
    if (waiting.size > 0) return;
    clients.delete(clientKey);
    if (clients.size === 0) unnamed.delete(address);
  }

  /**
   * A DNS answer (already in the cache) told `clientKey` the name of an address some of its open flows
   * go to without a name: they take it, as a flow starting then would. Only the client's own answer
   * names an open flow (another device's lookup of a shared address is weaker evidence for a connection
   * already under way); a service the flow already has (its voice channel, found by behaviour) stays.
   * A TCP connection that ended (FIN, RST) waits in the table for its idle timeout: it takes the name
   * only when it ended just before the answer (a server closed it and the device looks the name up again
   * to reconnect: the Nest 0.2 s, an Echo 0.6 s after the close in the shared captures).
   */
  function nameOpenFlows(answer: DnsAnswer, clientKey: string): void {
    const clients = unnamed.get(answer.data);
    const waiting = clients?.get(clientKey);
    if (clients === undefined || waiting === undefined) return;
    const named = dns.lookup(clientKey, answer.data, answer.timeMs);
    if (named === null) return;
    clients.delete(clientKey);
    if (clients.size === 0) unnamed.delete(answer.data);
    for (const flow of waiting) {
      waitingKey.delete(flow);
      if (flow.closed && answer.timeMs - flow.lastMs > CLOSED_NAMED_WITHIN_MS) continue;
      flow.serverName = named.name;
      flow.nameSource = 'dns';
      stats.namedByDnsLater++;
      if (flow.service === null) {
        const entry = classifyByName(flow, named.chain, deviceOf(flow));
        if (entry && entry.service !== 'voice') pending.delete(flow);
        // a name the catalogue does not know says no vendor, as for a flow named so at its start (the
        // range's vendor hosts the address: Mozilla's telemetry on Amazon's cloud is no Amazon endpoint)
        if (!entry) flow.vendor = null;
      }
    }
  }

  /** Applies a catalogue entry to a flow (an assistant-only entry holds only for that vendor's assistants). */
  function applyEntry(flow: Flow, entry: CatalogEntry, device: Device | null): void {
    flow.vendor = entry.vendor;
    let service: string = entry.service;
    if (entry.assistantOnly) {
      if (device) refresh(device);
      if (!device || !device.assistant || vendorOf(device) !== entry.vendor) service = 'other';
    }
    flow.service = service;
    if (service === 'voice') {
      stats.voiceByName++;
      // learned: when this connection is re-opened without a name (no new DNS, no SNI) it is still voice
      if (device && addBounded(device.voiceServers, `${server(flow)}:${flow.serverPort}`)) device.dirty = true;
    }
  }

  /** Names and classifies a flow from its names; returns the catalogue entry used, if any. */
  function classifyByName(flow: Flow, names: readonly string[], device: Device | null): CatalogEntry | null {
    for (const n of names) {
      const entry = catalog.lookup(n);
      if (entry) {
        applyEntry(flow, entry, device);
        return entry;
      }
    }
    return null;
  }

  /** Records an address a device's frames carry (`words` as DecodedPacket has them). */
  function noteAddress(device: Device, ipVersion: number, words: Uint32Array): void {
    // 0.0.0.0 (DHCP before an address), group addresses and IPv4's reserved 240/4 are nobody's address
    const unassigned = ipVersion === 4 ? words[3] === 0 || words[3] >>> 28 >= 14 : (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0) || isGroupAddr(6, words);
    // most flows of a device come from the address it used last: skip formatting it again
    if (!unassigned && (words[3] !== device.lastIpWord || ipVersion !== 4)) {
      device.lastIpWord = ipVersion === 4 ? words[3] : -1;
      addBounded(device.ips, formatAddr(ipVersion, words));
    }
  }

  /** Records what a flow says about its device: local speaker protocols. */
  function observeLocal(flow: Flow, device: Device): void {
    const vendor = vendorOf(device);
    const ports = vendor ? SPEAKER_PORTS[vendor] : undefined;
    if (!ports) return;
    const label = ports[flow.serverPort] ?? ports[flow.clientPort];
    if (label && addBounded(device.speakerPorts, label)) device.dirty = true;
  }

  /** Decides whether a pending flow is its assistant's voice channel; true when decided either way. */
  function checkVoice(flow: Flow, nowMs: number): boolean {
    if (flow.service !== null) return true;
    const device = deviceOf(flow);
    if (!device) return false;
    const vendor = vendorOf(device);
    // any unnamed connection of an assistant may carry its voice (a Sonos with Alexa streams to Amazon,
    // a Nest's QUIC connection may have opened before capture): the detector watches it for a voice stream
    if (!flow.voiceCandidate && !flow.bothLocal && flow.deviceIsClient && (refresh(device), device.assistant)) flow.voiceCandidate = true;
    if (!vendor || !ASSISTANT_MAKERS.has(vendor)) return true;
    // a maker's device not yet known as an assistant: its connection to the maker's cloud (the vendor
    // onFlowStart read from the address ranges) that was open before capture began is watched too (the
    // voice channel of an Echo seen for the first time)
    if (!flow.voiceCandidate && !flow.sawSyn && !flow.bothLocal && flow.deviceIsClient && flow.vendor === vendor) flow.voiceCandidate = true;
    const key = `${server(flow)}:${flow.serverPort}`;
    // a server this device already used for voice (learned): its voice channel, re-opened
    if (!device.voiceServers.has(key)) {
      const range = ranges.lookup(flow.ipVersion, flow.serverInto(scratch));
      const voiceRange = inVoicePrefix(flow.ipVersion, scratch, vendor);
      if (!voiceRange && (!range || range.vendor !== vendor)) return true;
      // open before capture began counts as long-lived only inside the vendor's voice ranges: elsewhere
      // an idle connection that wakes up mid-capture is as likely an API call as a voice channel
      const persistent = (voiceRange && !flow.sawSyn) || nowMs - flow.firstMs >= options.voiceMinDurationMs;
      if (!persistent) return false;
      if (voiceRange) {
        if (addBounded(device.voiceServers, key)) device.dirty = true;
      } else if (device.persistentVendorConnection === null) {
        device.persistentVendorConnection = key;
        device.dirty = true;
      }
    }
    refresh(device);
    if (!device.assistant) return false;
    flow.service = 'voice';
    flow.vendor = vendor;
    stats.voiceByBehaviour++;
    return true;
  }

  function addPending(flow: Flow): void {
    if (pending.size >= options.maxPending) {
      stats.pendingDropped++;
      return;
    }
    pending.add(flow);
  }

  return {
    stats,
    dnsCache: dns,
    /** Open flows waiting for a name from a later DNS answer (bounded by the flow table). */
    get waitingForName(): number {
      return waitingKey.size;
    },
    /** A new flow: its device, its server's name from DNS or the vendor ranges, its service. */
    onFlowStart(flow: Flow): void {
      const device = deviceOf(flow);
      if (device) noteAddress(device, flow.ipVersion, flow.deviceIsClient ? flow.clientInto(scratch) : flow.serverInto(scratch));
      if (flow.bothLocal) {
        flow.service = portService(flow);
        // LAN traffic tells about both ends: a Sonos is the server of its controller's connection
        if (device) observeLocal(flow, device);
        if (flow.peerMac !== null && !isGroupMac(flow.peerMac)) observeLocal(flow, inventory.get(flow.peerMac, flow.lastMs));
        return;
      }
      const address = server(flow);
      const clientKey = clientKeyOf(flow);
      const named = dns.lookup(clientKey, address, flow.firstMs);
      if (named) {
        flow.serverName = named.name;
        flow.nameSource = 'dns';
        stats.namedByDns++;
        classifyByName(flow, named.chain, device);
      } else {
        const range = ranges.lookup(flow.ipVersion, flow.serverInto(scratch));
        if (range) {
          flow.serverName = `${range.vendor} ${range.prefix}`;
          flow.nameSource = 'ip-range';
          flow.vendor = range.vendor;
          stats.namedByRange++;
        }
        if (!flow.sawSyn && (flow.proto === IPPROTO_TCP || flow.serverPort === 443)) {
          if (waitingKey.size >= MAX_WAITING) stats.waitingDropped++;
          else {
            let clients = unnamed.get(address);
            if (clients === undefined) unnamed.set(address, (clients = new Map()));
            const waiting = clients.get(clientKey);
            if (waiting === undefined) clients.set(clientKey, new Set([flow]));
            else waiting.add(flow);
            waitingKey.set(flow, clientKey);
          }
        }
      }
      // the network's own protocols, unless a name said more than "other" (an NTP server under *.apple.com)
      if (flow.service === null || flow.service === 'other') flow.service = portService(flow) ?? flow.service;
      // decide at once when possible: the first packets of a voice channel may be the start of a command
      if (flow.service === null && flow.serverPort === 443 && device && !checkVoice(flow, flow.firstMs)) addPending(flow);
    },
    /** The ClientHello named the server: the best name there is. */
    onSni(flow: Flow, sni: string): void {
      forgetUnnamed(flow);
      flow.serverName = sni;
      flow.nameSource = 'sni';
      stats.namedBySni++;
      const device = deviceOf(flow);
      const entry = classifyByName(flow, [sni], device);
      if (entry && entry.service !== 'voice') pending.delete(flow);
      if (device && entry?.service === 'voice' && !entry.assistantOnly && addBounded(device.voiceNames, sni)) device.dirty = true;
    },
    /** Remembers answers for naming flows, and what the asking device looked up. */
    onDnsAnswer(answer: DnsAnswer): void {
      // a client with a MAC is known by it: its address is formatted only for a client without one
      const client = answer.clientMac >= 0 ? '' : formatAddr(answer.clientIpVersion, answer.clientWords);
      const clientKey = DnsCache.clientKey(answer.clientMac, client);
      dns.onAnswer(answer, clientKey);
      if (answer.type !== 'CNAME' && waitingKey.size > 0) nameOpenFlows(answer, clientKey);
      if (answer.clientMac < 0 || answer.type === 'CNAME' || !localNets.isLocal(answer.clientIpVersion, answer.clientWords)) return;
      if (answer.name.endsWith('.local')) return;
      const device = inventory.get(answer.clientMac, answer.timeMs);
      const entry = catalog.lookup(answer.name);
      const vendor = vendorOf(device);
      if (entry?.service === 'voice' && !entry.assistantOnly && entry.vendor === vendor) {
        if (addBounded(device.voiceNames, answer.name)) device.dirty = true;
      } else if (entry && entry.vendor !== null && entry.vendor === vendor && entry.origin !== 'config' && !entry.pattern.startsWith('*')) {
        if (addBounded(device.vendorEndpoints, answer.name)) device.dirty = true;
      } else if (!entry) {
        if (addBounded(device.otherDomains, domainOf(answer.name))) device.dirty = true;
      }
    },
    /** The detector saw a voice stream on an unnamed connection: it is the device's voice channel. */
    learnVoice(flow: Flow): void {
      if (flow.service === 'voice') return;
      const device = deviceOf(flow);
      flow.service = 'voice';
      flow.vendor = device ? vendorOf(device) : flow.vendor;
      stats.voiceByBehaviour++;
      pending.delete(flow);
      // re-opened later without a name, the same server and port is still its voice channel
      if (device && addBounded(device.voiceServers, `${server(flow)}:${flow.serverPort}`)) device.dirty = true;
    },
    /** Once a second: re-check the flows that may be voice channels. */
    onTick(nowMs: number): void {
      for (const flow of pending) if (checkVoice(flow, nowMs)) pending.delete(flow);
    },
    /** A flow ended: forget it, after one last look (short captures end before a minute). */
    onFlowEnd(flow: Flow): void {
      forgetUnnamed(flow);
      // the device was there until the flow's last packet (a flow start is the only other sighting most see)
      if (flow.deviceMac >= 0) inventory.seen(flow.deviceMac, flow.lastMs);
      // the other end of a LAN flow, when it sent from its MAC: its address (a device only ever asked, as a
      // Sonos is by its controller, shows its address this way)
      if (flow.peerSent && flow.peerMac !== null && !isGroupMac(flow.peerMac)) {
        noteAddress(inventory.get(flow.peerMac, flow.lastMs), flow.ipVersion, flow.deviceIsClient ? flow.serverInto(scratch) : flow.clientInto(scratch));
      }
      if (pending.delete(flow)) checkVoice(flow, flow.lastMs);
    },
  };
}

export type Tagger = ReturnType<typeof buildTagger>;
