/**
 * Looks into the few payloads earshot reads: DNS answers (UDP and TCP, mDNS), the TLS ClientHello's
 * SNI (over TCP, buffering a stream start that spans segments, and in QUIC Initial packets), and the
 * announcements devices make about themselves (DHCP, mDNS service discovery, SSDP).
 * Only names and addresses leave this module; payload bytes are dropped as soon as they are parsed.
 */
import { parseDhcp, type DhcpInfo } from '../decode/dhcp.js';
import { parseDns, parseDnsOverTcp } from '../decode/dns.js';
import { parseMdns, type MdnsInfo } from '../decode/mdns-sd.js';
import { extractQuicInitialCrypto, QuicSniAssembler } from '../decode/quic-initial.js';
import { parseSsdp, type SsdpInfo } from '../decode/ssdp.js';
import { IPPROTO_TCP, IPPROTO_UDP, TCP_SYN, type DecodedPacket } from '../decode/packet.js';
import { clientHelloVersion, parseClientHelloSni } from '../decode/tls-sni.js';
import { SNI_DONE, type Flow } from './flow.js';
import { TcpStream } from './tcp-stream.js';

/** One A, AAAA or CNAME answer as it was seen, with who asked (the receiver of the response). */
export class DnsAnswer {
  constructor(
    readonly timeMs: number,
    readonly name: string,
    readonly type: 'A' | 'AAAA' | 'CNAME',
    readonly data: string,
    readonly ttl: number,
    /** MAC of the receiver (48-bit integer) or -1, and its address words. */
    readonly clientMac: number,
    readonly clientIpVersion: number,
    readonly clientWords: readonly number[],
  ) {}
}

export interface PayloadStats {
  dnsMessages: number;
  dnsMalformed: number;
  /** DNS-over-TCP streams given up: a gap that did not fill (segments lost, or too far out of order). */
  dnsStreamsLost: number;
  sniFound: number;
  /** ClientHellos abandoned: not in order, too many segments, or too large. */
  sniGaveUp: number;
  quicSni: number;
  announcements: number;
  /** Announcements (DHCP, mDNS, SSDP) left unread: from unknown MACs beyond the inventory's budget. */
  announcementsSkipped: number;
}

export interface PayloadHandlers {
  onDnsAnswer(answer: DnsAnswer): void;
  /** Called once per flow when its ClientHello (TLS over TCP, or QUIC Initial) names a server. */
  onSni(flow: Flow, sni: string): void;
  /** Device announcements: DHCP, mDNS (services, names, TXT) and SSDP, with the packet they came in. */
  onDhcp?(info: DhcpInfo, p: DecodedPacket): void;
  onMdns?(info: MdnsInfo, p: DecodedPacket): void;
  onSsdp?(info: SsdpInfo, p: DecodedPacket): void;
  /**
   * Whether an announcement packet is worth reading (checked before parsing it): false skips it whole.
   * A forged flood's packets cost a map lookup instead of a parse (Inventory.admitAnnouncement).
   */
  admitAnnouncement?(p: DecodedPacket): boolean;
  /** Network hygiene (findings/): each whole TCP ClientHello's newest TLS version (0x0303 is TLS 1.2). */
  onClientHello?(flow: Flow, version: number): void;
  /** The client's first segments of a TCP flow that are not (yet) TLS, `index` from 0 (HTTP, STARTTLS). */
  onPlaintext?(flow: Flow, p: DecodedPacket, index: number): void;
  /** A UDP datagram to port 5351: NAT-PMP or PCP. */
  onPortMapRequest?(p: DecodedPacket): void;
}

const MAX_SNI_SEGMENTS = 16;
/** Client segments without a TLS handshake record after which a flow is taken for not-TLS. */
const MAX_SNI_PROBES = 8;
const TLS_HANDSHAKE = 0x16;

/** The stream so far: the packet's payload alone (a view), or appended to what a flow buffered (a copy). */
function streamView(buffered: Buffer | null, p: DecodedPacket): { buf: Buffer; off: number; len: number } {
  const end = p.payloadOffset + p.payloadLength;
  if (buffered === null) return { buf: p.payloadBuf, off: p.payloadOffset, len: p.payloadLength };
  const buf = Buffer.concat([buffered, p.payloadBuf.subarray(p.payloadOffset, end)]);
  return { buf, off: 0, len: buf.length };
}

/** Builds the payload inspector; `inspect` is called for every TCP/UDP packet after flow accounting. */
export function buildPayloadInspector(handlers: PayloadHandlers) {
  const stats: PayloadStats = { dnsMessages: 0, dnsMalformed: 0, dnsStreamsLost: 0, sniFound: 0, sniGaveUp: 0, quicSni: 0, announcements: 0, announcementsSkipped: 0 };
  const quicAssemblers = new WeakMap<Flow, QuicSniAssembler>();
  // context for the answer callback, set before each parseDns call (one callback, no closure per packet)
  let ctxTime = 0;
  let ctxMac = -1;
  let ctxVersion = 0;
  let ctxWords: number[] = [];
  const onAnswer = (name: string, type: 'A' | 'AAAA' | 'CNAME', data: string, ttl: number) => {
    handlers.onDnsAnswer(new DnsAnswer(ctxTime, name, type, data, ttl, ctxMac, ctxVersion, ctxWords));
  };

  function setContext(p: DecodedPacket): void {
    ctxTime = p.timeMs;
    ctxMac = p.dstMac;
    ctxVersion = p.ipVersion;
    ctxWords = [p.dstAddr[0], p.dstAddr[1], p.dstAddr[2], p.dstAddr[3]];
  }

  /** DNS over UDP; mDNS hosts announce their own addresses in the additional section, so read it too. */
  function dnsOverUdp(p: DecodedPacket): void {
    setContext(p);
    stats.dnsMessages++;
    const mdns = p.srcPort === 5353 || p.dstPort === 5353;
    if (!parseDns(p.payloadBuf, p.payloadOffset, p.payloadLength, onAnswer, mdns)) stats.dnsMalformed++;
  }

  const parseDnsStream = (buf: Buffer, off: number, len: number) => parseDnsOverTcp(buf, off, len, onAnswer, false, stats);

  /**
   * DNS over TCP: 2-byte length prefix; the server's stream is put in sequence order (retransmissions
   * dropped, early segments held) and parsed as whole messages arrive.
   */
  function dnsOverTcp(flow: Flow, p: DecodedPacket): void {
    const stream = flow.dnsStream ?? (flow.dnsStream = new TcpStream());
    if ((p.tcpFlags & TCP_SYN) !== 0) stream.syn(p.tcpSeq);
    if (p.payloadLength === 0) return;
    setContext(p);
    if (!stream.push(p.tcpSeq, p.payloadBuf, p.payloadOffset, p.payloadLength, parseDnsStream)) stats.dnsStreamsLost++;
  }

  function sni(flow: Flow, p: DecodedPacket): void {
    if (p.payloadLength === 0) return;
    const seq = p.tcpSeq;
    if (flow.sniNextSeq !== null && seq !== flow.sniNextSeq) {
      // a retransmission of what we have already is harmless; a gap ends the attempt
      if (((seq - flow.sniNextSeq) | 0) < 0) return;
      flow.sniState = SNI_DONE;
      flow.sniBuf = null;
      stats.sniGaveUp++;
      return;
    }
    const { buf, off, len } = streamView(flow.sniBuf, p);
    if (!flow.sniBuf && buf[off] !== TLS_HANDSHAKE) {
      // not (yet) TLS: STARTTLS protocols (SMTP, IMAP, XMPP) send a ClientHello after a few plaintext
      // exchanges, so look at the client's first few segments before giving up
      if (handlers.onPlaintext !== undefined) handlers.onPlaintext(flow, p, flow.sniSegments);
      if (++flow.sniSegments >= MAX_SNI_PROBES) flow.sniState = SNI_DONE;
      return;
    }
    const result = parseClientHelloSni(buf, off, len);
    const version = clientHelloVersion();
    if (typeof result === 'number' && ++flow.sniSegments < MAX_SNI_SEGMENTS) {
      flow.sniBuf = flow.sniBuf ? buf : Buffer.from(buf.subarray(off, off + len));
      flow.sniNextSeq = (seq + p.payloadLength) >>> 0;
      return;
    }
    flow.sniState = SNI_DONE;
    flow.sniBuf = null;
    if (typeof result === 'string') {
      stats.sniFound++;
      flow.sni = result;
      handlers.onSni(flow, result);
    } else if (typeof result === 'number') {
      stats.sniGaveUp++;
    }
    if (version !== 0 && handlers.onClientHello !== undefined) handlers.onClientHello(flow, version);
  }

  function announce<T>(info: T | null, p: DecodedPacket, handler: (info: T, p: DecodedPacket) => void): void {
    if (info === null) return;
    stats.announcements++;
    handler(info, p);
  }

  /** QUIC: the client's Initial packets carry the ClientHello, encrypted with keys anyone can derive. */
  function quic(flow: Flow, p: DecodedPacket): void {
    if (++flow.sniSegments > MAX_SNI_PROBES) {
      flow.sniState = SNI_DONE;
      quicAssemblers.delete(flow);
      return;
    }
    const crypto = extractQuicInitialCrypto(p.payloadBuf, p.payloadOffset, p.payloadLength);
    if (crypto === null) return;
    let assembler = quicAssemblers.get(flow);
    if (!assembler) {
      assembler = new QuicSniAssembler();
      quicAssemblers.set(flow, assembler);
    }
    const result = assembler.push(crypto.frames);
    if (result === undefined) return;
    flow.sniState = SNI_DONE;
    quicAssemblers.delete(flow);
    if (result !== null) {
      stats.quicSni++;
      flow.sni = result;
      handlers.onSni(flow, result);
    }
  }

  return {
    stats,
    /** Reads DNS answers and the SNI from this packet of `flow` (up: client to server). */
    inspect(flow: Flow, up: boolean, p: DecodedPacket): void {
      if (p.proto === IPPROTO_UDP) {
        if (p.payloadLength === 0) return;
        const sport = p.srcPort;
        const dport = p.dstPort;
        if (handlers.admitAnnouncement && (sport === 5353 || dport === 5353 || dport === 67 || dport === 68 || sport === 1900 || dport === 1900) &&
          !handlers.admitAnnouncement(p)) {
          stats.announcementsSkipped++;
          return;
        }
        if (sport === 53 || sport === 5353 || dport === 5353) dnsOverUdp(p);
        if (sport === 5353 && handlers.onMdns) announce(parseMdns(p.payloadBuf, p.payloadOffset, p.payloadLength), p, handlers.onMdns);
        else if ((dport === 67 || dport === 68) && handlers.onDhcp) announce(parseDhcp(p.payloadBuf, p.payloadOffset, p.payloadLength), p, handlers.onDhcp);
        else if ((sport === 1900 || dport === 1900) && handlers.onSsdp) announce(parseSsdp(p.payloadBuf, p.payloadOffset, p.payloadLength), p, handlers.onSsdp);
        else if (dport === 5351 && handlers.onPortMapRequest) handlers.onPortMapRequest(p);
        else if (up && dport === 443 && flow.sniState !== SNI_DONE) quic(flow, p);
        return;
      }
      if (p.proto !== IPPROTO_TCP) return;
      if (up) {
        if (flow.sniState !== SNI_DONE) {
          if ((p.tcpFlags & TCP_SYN) !== 0) return;
          sni(flow, p);
        }
      } else if (p.srcPort === 53 && (p.payloadLength > 0 || (p.tcpFlags & TCP_SYN) !== 0)) {
        dnsOverTcp(flow, p);
      }
    },
  };
}

export type PayloadInspector = ReturnType<typeof buildPayloadInspector>;
