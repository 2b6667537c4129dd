/**
 * IP fragments: ties every fragment to the ports of its datagram's first fragment, and reassembles the
 * datagram so the payload of a fragmented UDP message (DNS) can be parsed.
 *
 * One bounded table keyed by (IP version, source, destination, identification, protocol). Buffers are
 * bounded in total bytes (oldest evicted first) and entries in number; an entry lives `timeoutMs` of
 * packet time. An entry dropped before its datagram was complete counts in stats.reassemblyEvicted.
 * After completion the entry keeps only the ports (duplicated fragments still map) until it expires.
 *
 * Like tshark, a first fragment whose bytes were cut by the snap length is not reassembled: its captured
 * transport payload is handed on as if the packet were whole (the DNS answers it holds are still seen).
 */
import { u16 } from '../bytes.js';
import type { NetInfo } from './ip.js';
import { IPPROTO_TCP, IPPROTO_UDP, type DecodedPacket, type DecodeStats } from './packet.js';
import { decodeTransport } from './transport.js';

const COLLECTING = 0;
const COMPLETE = 1;
const ABANDONED = 2;
const MAX_DATAGRAM = 65535;
/** Entries (with or without buffers); small records, so a fixed bound is enough. */
const MAX_ENTRIES = 4096;
/** Disjoint byte ranges kept per datagram; more means an attack or garbage. */
const MAX_RANGES = 64;
const MIN_CAPACITY = 2048;
const EMPTY = Buffer.alloc(0);

class FragmentEntry {
  hash = 0;
  version = 0;
  id = 0;
  keyProto = 0;
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  createdMs = 0;
  /** From the first fragment: ports, transport protocol, where the payload starts and ends. */
  firstSeen = false;
  srcPort = -1;
  dstPort = -1;
  proto = -1;
  payloadStart = -1;
  payloadLimit = MAX_DATAGRAM;
  state = COLLECTING;
  data: Buffer | null = null;
  /** Datagram length, known once the last fragment arrived. */
  totalLength = -1;
  /** Received byte ranges [start, end) as sorted, merged pairs. */
  readonly ranges: number[] = [];
  older: FragmentEntry | null = null;
  newer: FragmentEntry | null = null;
  nextInBucket: FragmentEntry | null = null;
}

/** The fragment table of one decoder. */
export class FragmentTable {
  private readonly buckets = new Map<number, FragmentEntry>();
  private oldest: FragmentEntry | null = null;
  private newest: FragmentEntry | null = null;
  private count = 0;
  private bytes = 0;
  private readonly spare: FragmentEntry[] = [];

  constructor(private readonly maxBytes: number, private readonly timeoutMs: number, private readonly stats: DecodeStats) {}

  /** Bytes held by reassembly buffers (for tests and self-metrics). */
  get bufferedBytes(): number { return this.bytes; }

  /**
   * Handles one fragment whose IP layer is decoded (pkt addresses/proto, net fragment fields): sets
   * the ports and, when it completes its datagram, the reassembled payload. False when the transport
   * header of a first fragment is damaged.
   */
  add(buf: Buffer, pkt: DecodedPacket, net: NetInfo, timeMs: number): boolean {
    const isFirst = net.fragmentOffset === 0;
    if (isFirst && !decodeTransport(buf, net.transportOffset, net.end, pkt.proto, pkt)) return false;
    this.stats.fragments++;
    pkt.fragment = true;
    this.expire(timeMs);
    const hash = keyHash(pkt, net);
    let entry = this.find(hash, pkt, net);
    if (entry !== null && Math.abs(timeMs - entry.createdMs) > this.timeoutMs) {
      this.remove(entry);
      entry = null;
    }
    if (entry === null) entry = this.create(hash, pkt, net, timeMs);
    if (isFirst) {
      if (!entry.firstSeen) rememberFirst(entry, buf, pkt, net);
      if (net.snapped) { this.abandon(entry); return true; } // keeps the captured payload view
      pkt.payloadBuf = EMPTY;
      pkt.payloadOffset = 0;
      pkt.payloadLength = 0;
    } else if (entry.firstSeen) {
      pkt.srcPort = entry.srcPort;
      pkt.dstPort = entry.dstPort;
      pkt.proto = entry.proto;
    } else {
      this.stats.fragmentsWithoutFirst++;
    }
    if (entry.state === COLLECTING) this.collect(entry, buf, pkt, net);
    return true;
  }

  private collect(entry: FragmentEntry, buf: Buffer, pkt: DecodedPacket, net: NetInfo): void {
    const start = net.fragmentOffset;
    const length = net.end - net.fragmentDataOffset;
    const stop = start + length;
    if (net.snapped || length < 0 || stop > MAX_DATAGRAM) { this.abandon(entry); return; }
    if (!net.moreFragments) {
      if (entry.totalLength >= 0 && entry.totalLength !== stop) { this.abandon(entry); return; }
      entry.totalLength = stop;
    }
    const ranges = entry.ranges;
    if (entry.totalLength >= 0 && (stop > entry.totalLength || (ranges.length > 0 && ranges[ranges.length - 1] > entry.totalLength))) {
      this.abandon(entry);
      return;
    }
    if (length > 0) {
      if (!this.reserve(entry, entry.totalLength >= 0 ? entry.totalLength : stop)) { this.abandon(entry); return; }
      buf.copy(entry.data as Buffer, start, net.fragmentDataOffset, net.end);
      if (!addRange(ranges, start, stop)) { this.abandon(entry); return; }
    }
    if (entry.totalLength > 0 && ranges.length === 2 && ranges[0] === 0 && ranges[1] === entry.totalLength) {
      this.complete(entry, pkt);
    }
  }

  private complete(entry: FragmentEntry, pkt: DecodedPacket): void {
    const data = entry.data as Buffer;
    this.release(entry);
    entry.state = COMPLETE;
    const limit = Math.min(entry.payloadLimit, entry.totalLength);
    if (entry.payloadStart < 0 || entry.payloadStart > limit) return;
    pkt.payloadBuf = data;
    pkt.payloadOffset = entry.payloadStart;
    pkt.payloadLength = limit - entry.payloadStart;
  }

  /** Makes entry.data hold at least `needed` bytes within the byte budget, evicting the oldest. */
  private reserve(entry: FragmentEntry, needed: number): boolean {
    const capacity = entry.data === null ? 0 : entry.data.length;
    if (needed <= capacity) return true;
    const wanted = entry.totalLength >= 0 ? needed : Math.min(MAX_DATAGRAM, Math.max(needed, capacity * 2, MIN_CAPACITY));
    const growth = wanted - capacity;
    let victim = this.oldest;
    while (this.bytes + growth > this.maxBytes && victim !== null) {
      const next = victim.newer;
      if (victim !== entry && victim.data !== null) this.remove(victim);
      victim = next;
    }
    if (this.bytes + growth > this.maxBytes) return false;
    const data = Buffer.allocUnsafe(wanted);
    if (entry.data !== null) entry.data.copy(data, 0, 0, capacity);
    entry.data = data;
    this.bytes += growth;
    return true;
  }

  private abandon(entry: FragmentEntry): void {
    this.release(entry);
    entry.state = ABANDONED;
  }

  private release(entry: FragmentEntry): void {
    if (entry.data !== null) this.bytes -= entry.data.length;
    entry.data = null;
    entry.ranges.length = 0;
  }

  private expire(timeMs: number): void {
    while (this.oldest !== null && timeMs - this.oldest.createdMs > this.timeoutMs) this.remove(this.oldest);
  }

  private find(hash: number, pkt: DecodedPacket, net: NetInfo): FragmentEntry | null {
    let entry = this.buckets.get(hash) ?? null;
    while (entry !== null) {
      if (entry.id === net.fragmentId && entry.keyProto === net.fragmentProto && entry.version === pkt.ipVersion
        && sameAddress(entry.src, pkt.srcAddr) && sameAddress(entry.dst, pkt.dstAddr)) return entry;
      entry = entry.nextInBucket;
    }
    return null;
  }

  private create(hash: number, pkt: DecodedPacket, net: NetInfo, timeMs: number): FragmentEntry {
    if (this.count >= MAX_ENTRIES && this.oldest !== null) this.remove(this.oldest);
    const entry = this.spare.pop() ?? new FragmentEntry();
    entry.hash = hash;
    entry.version = pkt.ipVersion;
    entry.id = net.fragmentId;
    entry.keyProto = net.fragmentProto;
    entry.src.set(pkt.srcAddr);
    entry.dst.set(pkt.dstAddr);
    entry.createdMs = timeMs;
    entry.firstSeen = false;
    entry.srcPort = -1;
    entry.dstPort = -1;
    entry.proto = -1;
    entry.payloadStart = -1;
    entry.payloadLimit = MAX_DATAGRAM;
    entry.state = COLLECTING;
    entry.totalLength = -1;
    entry.nextInBucket = this.buckets.get(hash) ?? null;
    this.buckets.set(hash, entry);
    entry.older = this.newest;
    entry.newer = null;
    if (this.newest !== null) this.newest.newer = entry;
    else this.oldest = entry;
    this.newest = entry;
    this.count++;
    return entry;
  }

  /** Drops an entry; one still collecting counts as an eviction (its datagram is lost). */
  private remove(entry: FragmentEntry): void {
    if (entry.state === COLLECTING) this.stats.reassemblyEvicted++;
    this.release(entry);
    if (entry.older !== null) entry.older.newer = entry.newer;
    else this.oldest = entry.newer;
    if (entry.newer !== null) entry.newer.older = entry.older;
    else this.newest = entry.older;
    const head = this.buckets.get(entry.hash) as FragmentEntry;
    if (head === entry) {
      if (entry.nextInBucket === null) this.buckets.delete(entry.hash);
      else this.buckets.set(entry.hash, entry.nextInBucket);
    } else {
      let previous = head;
      while (previous.nextInBucket !== entry) previous = previous.nextInBucket as FragmentEntry;
      previous.nextInBucket = entry.nextInBucket;
    }
    entry.older = entry.newer = entry.nextInBucket = null;
    this.count--;
    this.spare.push(entry);
  }
}

function rememberFirst(entry: FragmentEntry, buf: Buffer, pkt: DecodedPacket, net: NetInfo): void {
  entry.firstSeen = true;
  entry.srcPort = pkt.srcPort;
  entry.dstPort = pkt.dstPort;
  entry.proto = pkt.proto;
  if (pkt.proto !== IPPROTO_TCP && pkt.proto !== IPPROTO_UDP) return;
  const transportStart = net.transportOffset - net.fragmentDataOffset;
  entry.payloadStart = pkt.payloadOffset - net.fragmentDataOffset;
  if (pkt.proto === IPPROTO_UDP) {
    const udpLength = u16(buf, net.transportOffset + 4);
    if (udpLength >= 8) entry.payloadLimit = transportStart + udpLength;
  }
}

/** Adds [start, stop) to sorted merged pairs; false when there would be too many disjoint ranges. */
function addRange(ranges: number[], start: number, stop: number): boolean {
  let i = 0;
  while (i < ranges.length && ranges[i + 1] < start) i += 2;
  let j = i;
  let mergedStart = start;
  let mergedStop = stop;
  while (j < ranges.length && ranges[j] <= mergedStop) {
    if (ranges[j] < mergedStart) mergedStart = ranges[j];
    if (ranges[j + 1] > mergedStop) mergedStop = ranges[j + 1];
    j += 2;
  }
  if (i === j && ranges.length >= MAX_RANGES * 2) return false;
  ranges.splice(i, j - i, mergedStart, mergedStop);
  return true;
}

function sameAddress(a: Uint32Array, b: Uint32Array): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

function keyHash(pkt: DecodedPacket, net: NetInfo): number {
  const src = pkt.srcAddr;
  const dst = pkt.dstAddr;
  let hash = Math.imul(net.fragmentId ^ (pkt.ipVersion << 28) ^ (net.fragmentProto << 20), 0x9e3779b1);
  for (let i = 0; i < 4; i++) {
    hash = Math.imul(hash ^ src[i], 0x85ebca6b);
    hash = Math.imul(hash ^ dst[i], 0xc2b2ae35);
  }
  return hash ^ (hash >>> 15);
}
