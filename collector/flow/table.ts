/**
 * The bounded flow table. Flows are keyed by protocol and both endpoints (symmetric hash, chains
 * compared on numbers, no string keys); a packet from the unspecified address (0.0.0.0, ::: a DHCP
 * client before it has an address) also by its sender's MAC, or every unconfigured device's DHCP
 * would be one flow, counted to whichever device sent first. At most MAX_UNSPECIFIED_FLOWS of those are
 * open at once: beyond, they share one flow (a flood of forged DHCP from new MACs, one packet each,
 * would otherwise be a new flow per packet). Two least-recently-active lists (TCP, UDP) make idle expiry
 * and eviction O(1) per flow: the clock's tick pops expired flows from their heads.
 */
import { IPPROTO_TCP, IPPROTO_UDP, isGroupAddr, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type DecodedPacket } from '../decode/packet.js';
import { createFlow, type Flow } from './flow.js';
import type { LocalNets } from './local-nets.js';
import { isGroupMac } from '../mac.js';

/** The lowest port of the ephemeral range (Linux's default start; IANA's starts at 49152). */
const EPHEMERAL_FROM = 32768;
/** The Echo-to-Echo protocol's TCP port: a server port in the ephemeral range (tagging names it too). */
export const ECHO_PEER_PORT = 55443;

export interface FlowTableOptions {
  maxFlows: number;
  tcpIdleTimeoutMs: number;
  udpIdleTimeoutMs: number;
}

export interface FlowTableStats {
  /** Flows open now. */
  active: number;
  /** Flows created since start. */
  created: number;
  /** Flows finished by idle timeout. */
  expired: number;
  /** Flows evicted because the table was full. */
  evicted: number;
}

/** Called when a flow leaves the table (idle, evicted or flushed at the end). */
export type FlowEndHandler = (flow: Flow, reason: 'idle' | 'evicted' | 'flush') => void;
/** Called once for each new flow, after its first packet is counted. */
export type FlowStartHandler = (flow: Flow) => void;

class LruList {
  head: Flow | null = null;
  tail: Flow | null = null;

  push(f: Flow): void {
    f.lruPrev = this.tail;
    f.lruNext = null;
    if (this.tail) this.tail.lruNext = f;
    else this.head = f;
    this.tail = f;
  }

  remove(f: Flow): void {
    if (f.lruPrev) f.lruPrev.lruNext = f.lruNext;
    else this.head = f.lruNext;
    if (f.lruNext) f.lruNext.lruPrev = f.lruPrev;
    else this.tail = f.lruPrev;
    f.lruPrev = f.lruNext = null;
  }

  touch(f: Flow): void {
    if (this.tail === f) return;
    this.remove(f);
    this.push(f);
  }
}

/**
 * Most flows from the unspecified address open at once with their own MAC in the key. A home has a
 * few devices asking for an address at a time; a flood of forged DHCP requests (a new MAC each) makes a
 * flow per packet until this many are open, then shares SHARED_KEY_MAC's one flow: 1M forged
 * announcements took 7.2 s of CPU with a flow each, 1.0 s before per-MAC flows.
 */
export const MAX_UNSPECIFIED_FLOWS = 256;
/** The key MAC of the flow that unspecified-address packets share once MAX_UNSPECIFIED_FLOWS are open. */
export const SHARED_KEY_MAC = -2;

/** The unspecified address (0.0.0.0 or ::, as address words). */
function unspecified(w: Uint32Array): boolean {
  return w[3] === 0 && w[2] === 0 && w[1] === 0 && w[0] === 0;
}

/** Mixes a MAC (a 48-bit number, or -1 when the link has none) into 32 bits. */
function macHash(mac: number): number {
  const h = Math.imul((mac % 0x1000000) ^ Math.imul(Math.floor(mac / 0x1000000), 0x9e3779b1), 0x85ebca6b);
  return h ^ (h >>> 13);
}

/** Mixes one endpoint (4 address words and a port) into 32 bits. */
function endpointHash(w: Uint32Array, port: number): number {
  let h = Math.imul(w[0] ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ w[1] ^ (h >>> 15), 0xc2b2ae35);
  h = Math.imul(h ^ w[2] ^ (h >>> 13), 0x85ebca6b);
  h = Math.imul(h ^ w[3] ^ (h >>> 16), 0xc2b2ae35);
  h = Math.imul(h ^ port ^ (h >>> 15), 0x27d4eb2f);
  return h ^ (h >>> 16);
}

export class FlowTable {
  readonly stats: FlowTableStats = { active: 0, created: 0, expired: 0, evicted: 0 };
  /** Direction of the packet last passed to lookup(): true when it went client to server. */
  up = true;
  /**
   * Open hash table of bucket chains, indexed by hash & mask (a plain array: no Map, no boxed keys).
   * It starts small and doubles while flows outnumber buckets, up to the size maxFlows needs: a home
   * has a few thousand flows open, and a table sized for maxFlows costs ~10 ms to fill at start.
   */
  private buckets: Array<Flow | null>;
  private mask: number;
  private readonly maxBuckets: number;
  private readonly tcpLru = new LruList();
  private readonly udpLru = new LruList();
  private nextId = 1;
  /** Open flows with a MAC of their own in the key (not the shared one): at most MAX_UNSPECIFIED_FLOWS. */
  private unspecifiedOpen = 0;

  constructor(
    private readonly options: FlowTableOptions,
    private readonly localNets: LocalNets,
    private readonly onFlowEnd: FlowEndHandler,
    private readonly onFlowStart: FlowStartHandler | null = null,
  ) {
    let size = 1024;
    while (size < options.maxFlows && size < 1 << 22) size <<= 1;
    this.maxBuckets = size;
    const initial = Math.min(size, 4096);
    this.buckets = new Array<Flow | null>(initial).fill(null);
    this.mask = initial - 1;
  }

  /**
   * Finds or creates the flow of a TCP/UDP packet with known ports, counts the packet in its
   * direction, and returns it (this.up tells the direction).
   */
  account(p: DecodedPacket): Flow {
    // the MAC of an unspecified endpoint is part of the key (the sender's; a reply to one, never seen
    // from a DHCP server, the receiver's); null for every other packet
    let keyMac = unspecified(p.srcAddr) ? p.srcMac : unspecified(p.dstAddr) ? p.dstMac : null;
    const tupleHash = endpointHash(p.srcAddr, p.srcPort) ^ endpointHash(p.dstAddr, p.dstPort) ^ p.proto;
    let hash = (keyMac === null ? tupleHash : tupleHash ^ macHash(keyMac)) | 0;
    let flow = this.find(p, hash, keyMac);
    if (flow === null && keyMac !== null && this.unspecifiedOpen >= MAX_UNSPECIFIED_FLOWS) {
      keyMac = SHARED_KEY_MAC;
      hash = (tupleHash ^ macHash(keyMac)) | 0;
      flow = this.find(p, hash, keyMac);
    }
    let up = this.up;
    const lru = p.proto === IPPROTO_TCP ? this.tcpLru : this.udpLru;
    const created = flow === null;
    if (flow === null) {
      flow = this.create(p, hash);
      flow.keyMac = keyMac;
      if (keyMac !== null && keyMac !== SHARED_KEY_MAC) this.unspecifiedOpen++;
      up = this.isClient(flow, p.srcAddr, p.srcPort);
      lru.push(flow);
    } else {
      lru.touch(flow);
    }
    if (up) {
      flow.packetsUp++;
      flow.bytesUp += p.wireLen;
    } else {
      flow.packetsDown++;
      flow.bytesDown += p.wireLen;
    }
    if (flow.deviceMac === -1 && flow.hasLocal) {
      // the local endpoint's MAC: the source of what it sends, the destination of what it receives; a
      // group MAC (multicast from a host outside the local networks to 224.0.0.251) is no device
      const mac = up === flow.deviceIsClient ? p.srcMac : p.dstMac;
      if (mac >= 0 && !isGroupMac(mac)) flow.deviceMac = mac;
    }
    if (flow.bothLocal && !flow.peerSent) {
      if (flow.peerMac === null) {
        const mac = up === flow.deviceIsClient ? p.dstMac : p.srcMac;
        if (mac >= 0) flow.peerMac = mac;
      }
      if (up !== flow.deviceIsClient && p.srcMac === flow.peerMac) flow.peerSent = true;
    }
    if (p.timeMs > flow.lastMs) flow.lastMs = p.timeMs;
    if (p.proto === IPPROTO_TCP && (p.tcpFlags & (TCP_FIN | TCP_RST)) !== 0) flow.closed = true;
    this.up = up;
    if (created && this.onFlowStart !== null) this.onFlowStart(flow);
    return flow;
  }

  /** The open flow of `p` in `hash`'s chain (this.up set to the packet's direction), or null. */
  private find(p: DecodedPacket, hash: number, keyMac: number | null): Flow | null {
    for (let flow = this.buckets[hash & this.mask]; flow !== null; flow = flow.nextInBucket) {
      if (flow.proto !== p.proto || flow.ipVersion !== p.ipVersion || flow.keyMac !== keyMac) continue;
      if (this.isClient(flow, p.srcAddr, p.srcPort) && this.isServer(flow, p.dstAddr, p.dstPort)) {
        this.up = true;
        return flow;
      }
      if (this.isServer(flow, p.srcAddr, p.srcPort) && this.isClient(flow, p.dstAddr, p.dstPort)) {
        this.up = false;
        return flow;
      }
    }
    return null;
  }

  /** Finishes flows idle past their timeout at packet/wall time `nowMs`. */
  expire(nowMs: number): void {
    this.expireList(this.tcpLru, nowMs - this.options.tcpIdleTimeoutMs);
    this.expireList(this.udpLru, nowMs - this.options.udpIdleTimeoutMs);
  }

  /** Finishes every open flow (end of a replay, shutdown). */
  flush(): void {
    for (const lru of [this.tcpLru, this.udpLru]) {
      while (lru.head) this.finish(lru.head, lru, 'flush');
    }
  }

  /** Open flows, TCP's then UDP's, each least recently active first (allocates: tests use it as a plain list; the API walks forEachNewest). */
  activeFlows(): Flow[] {
    const out: Flow[] = [];
    for (const lru of [this.tcpLru, this.udpLru]) {
      for (let f = lru.head; f; f = f.lruNext) out.push(f);
    }
    return out;
  }

  /**
   * Visits every open flow from the most recently active back, until `visit` returns false: the TCP and
   * UDP lists merged by last packet time (each list is in the order packets touched its flows). Allocates
   * nothing. The API's flows and device counts walk the table this way (it copied the whole table, and
   * listed every open UDP flow before any TCP one).
   */
  forEachNewest(visit: (flow: Flow) => boolean): void {
    let t = this.tcpLru.tail;
    let u = this.udpLru.tail;
    while (t !== null || u !== null) {
      let f: Flow;
      if (u === null || (t !== null && t.lastMs >= u.lastMs)) {
        f = t!;
        t = f.lruPrev;
      } else {
        f = u;
        u = f.lruPrev;
      }
      if (!visit(f)) return;
    }
  }

  /**
   * Visits open flows from the most recently active back, list by list, until `visit` returns false:
   * the flows with packets since some moment form a suffix of each list (sinks take their counters).
   */
  forEachRecent(visit: (flow: Flow) => boolean): void {
    for (let f = this.tcpLru.tail; f !== null && visit(f); f = f.lruPrev);
    for (let f = this.udpLru.tail; f !== null && visit(f); f = f.lruPrev);
  }

  private expireList(lru: LruList, cutoffMs: number): void {
    while (lru.head && lru.head.lastMs <= cutoffMs) {
      this.stats.expired++;
      this.finish(lru.head, lru, 'idle');
    }
  }

  private isClient(f: Flow, a: Uint32Array, port: number): boolean {
    // flows keep address words signed, the upper three only for IPv6 (see Flow)
    if (f.clientPort !== port || f.c3 !== (a[3] | 0)) return false;
    const v6 = f.v6;
    return v6 === null ? a[0] === 0 && a[1] === 0 && a[2] === 0 : v6[0] === (a[0] | 0) && v6[1] === (a[1] | 0) && v6[2] === (a[2] | 0);
  }

  private isServer(f: Flow, a: Uint32Array, port: number): boolean {
    if (f.serverPort !== port || f.s3 !== (a[3] | 0)) return false;
    const v6 = f.v6;
    return v6 === null ? a[0] === 0 && a[1] === 0 && a[2] === 0 : v6[3] === (a[0] | 0) && v6[4] === (a[1] | 0) && v6[5] === (a[2] | 0);
  }

  private create(p: DecodedPacket, hash: number): Flow {
    if (this.stats.active >= this.options.maxFlows) this.evictOldest();
    const srcIsClient = this.srcIsClient(p);
    const flow = srcIsClient
      ? createFlow(this.nextId++, p.proto, p.ipVersion, hash, p.timeMs, p.srcAddr, p.srcPort, p.dstAddr, p.dstPort)
      : createFlow(this.nextId++, p.proto, p.ipVersion, hash, p.timeMs, p.dstAddr, p.dstPort, p.srcAddr, p.srcPort);
    const clientLocal = this.localNets.isLocal(p.ipVersion, srcIsClient ? p.srcAddr : p.dstAddr);
    const serverLocal = this.localNets.isLocal(p.ipVersion, srcIsClient ? p.dstAddr : p.srcAddr);
    flow.deviceIsClient = clientLocal || !serverLocal;
    flow.hasLocal = clientLocal || serverLocal;
    flow.bothLocal = clientLocal && serverLocal;
    // the start of a connection: a SYN, or for QUIC (UDP 443) a long-header packet (first bit set:
    // Initial, Handshake); a short-header packet first means it was open before capture began (RFC 9000 17.2)
    flow.sawSyn = p.proto === IPPROTO_TCP
      ? (p.tcpFlags & TCP_SYN) !== 0
      : p.proto === IPPROTO_UDP && (p.dstPort === 443 || p.srcPort === 443) && p.payloadLength > 0 && (p.payloadBuf[p.payloadOffset] & 0x80) !== 0;
    const slot = hash & this.mask;
    flow.nextInBucket = this.buckets[slot];
    this.buckets[slot] = flow;
    this.stats.active++;
    this.stats.created++;
    if (this.stats.active > this.buckets.length && this.buckets.length < this.maxBuckets) this.grow();
    return flow;
  }

  /**
   * Who opened the flow: the sender of a SYN (or the receiver of a SYN-ACK); for a flow already open
   * when capture began, the local side; between two local or two remote hosts, the side not on a
   * well-known port, else the sender of the first packet seen.
   */
  private srcIsClient(p: DecodedPacket): boolean {
    if (p.proto === IPPROTO_TCP && (p.tcpFlags & TCP_SYN) !== 0) return (p.tcpFlags & TCP_ACK) === 0;
    // a group address (multicast, broadcast) never sends: mDNS to 224.0.0.251 from a host outside the
    // local networks made the group the client (the local side) and the group's MAC a device
    if (isGroupAddr(p.ipVersion, p.dstAddr)) return true;
    const srcLocal = this.localNets.isLocal(p.ipVersion, p.srcAddr);
    const dstLocal = this.localNets.isLocal(p.ipVersion, p.dstAddr);
    if (srcLocal !== dstLocal) return srcLocal;
    const srcWellKnown = p.srcPort < 1024;
    const dstWellKnown = p.dstPort < 1024;
    if (srcWellKnown !== dstWellKnown) return dstWellKnown;
    // a speaker's server port inside the ephemeral range: Echos listen on TCP 55443 for one another (a
    // connection between two Echos seen mid-stream from the listener made the listener the client)
    if (p.proto === IPPROTO_TCP && (p.srcPort === ECHO_PEER_PORT) !== (p.dstPort === ECHO_PEER_PORT)) return p.dstPort === ECHO_PEER_PORT;
    // then the ephemeral range (Linux gives clients 32768-60999, IANA 49152-65535): a Cast session to a
    // speaker's 8009 seen mid-stream from the speaker's side made the speaker the client
    const srcEphemeral = p.srcPort >= EPHEMERAL_FROM;
    const dstEphemeral = p.dstPort >= EPHEMERAL_FROM;
    if (srcEphemeral !== dstEphemeral) return srcEphemeral;
    return true;
  }

  /** Doubles the buckets and moves every open flow to its new chain. */
  private grow(): void {
    const old = this.buckets;
    const size = old.length * 2;
    const buckets = new Array<Flow | null>(size).fill(null);
    const mask = size - 1;
    for (let i = 0; i < old.length; i++) {
      for (let f = old[i]; f !== null; ) {
        const next = f.nextInBucket;
        const slot = f.hash & mask;
        f.nextInBucket = buckets[slot];
        buckets[slot] = f;
        f = next;
      }
    }
    this.buckets = buckets;
    this.mask = mask;
  }

  private evictOldest(): void {
    const t = this.tcpLru.head;
    const u = this.udpLru.head;
    const victim = t && (!u || t.lastMs <= u.lastMs) ? t : u;
    if (!victim) return;
    this.stats.evicted++;
    this.finish(victim, victim.proto === IPPROTO_TCP ? this.tcpLru : this.udpLru, 'evicted');
  }

  private finish(flow: Flow, lru: LruList, reason: 'idle' | 'evicted' | 'flush'): void {
    lru.remove(flow);
    const slot = flow.hash & this.mask;
    const head = this.buckets[slot];
    if (head === flow) {
      this.buckets[slot] = flow.nextInBucket;
    } else {
      for (let f = head; f; f = f.nextInBucket) {
        if (f.nextInBucket === flow) {
          f.nextInBucket = flow.nextInBucket;
          break;
        }
      }
    }
    flow.nextInBucket = null;
    if (flow.keyMac !== null && flow.keyMac !== SHARED_KEY_MAC) this.unspecifiedOpen--;
    flow.sniBuf = null;
    flow.dnsStream = null;
    this.stats.active--;
    this.onFlowEnd(flow, reason);
  }
}
