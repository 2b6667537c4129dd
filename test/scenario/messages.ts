/**
 * Application messages in wire format for the scenario generator: DNS queries and answers, mDNS
 * (DNS-SD) announcements, DHCP requests and acknowledgements. Names are written uncompressed, which
 * RFC 1035 allows and every parser reads; the point is well-formed messages that tshark dissects
 * without complaint and earshot's own parsers read as they would a real device's.
 */

const TYPE_CODES = { A: 1, CNAME: 5, PTR: 12, TXT: 16, AAAA: 28, SRV: 33 } as const;
const CLASS_IN = 1;
/** mDNS: the top bit of a record's class asks caches to flush older records of the same name (RFC 6762 §10.2). */
const CACHE_FLUSH = 0x8000;

export type DnsType = keyof typeof TYPE_CODES;

/** One resource record. `data` is an address (A), a name (CNAME, PTR), an SRV target or TXT entries. */
export type DnsRecord =
  | { name: string; type: 'A'; ttl: number; address: string; cacheFlush?: boolean }
  | { name: string; type: 'CNAME' | 'PTR'; ttl: number; target: string; cacheFlush?: boolean }
  | { name: string; type: 'SRV'; ttl: number; target: string; port: number; cacheFlush?: boolean }
  | { name: string; type: 'TXT'; ttl: number; entries: string[]; cacheFlush?: boolean };

/** A domain name as length-prefixed labels ending with the root's zero byte. */
export function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.replace(/\.$/, '').split('.')) {
    const bytes = Buffer.from(label, 'utf8');
    if (bytes.length === 0 || bytes.length > 63) throw new Error(`scenario: bad DNS label in ${name}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value, 0);
  return b;
}

function recordData(r: DnsRecord): Buffer {
  switch (r.type) {
    case 'A':
      return Buffer.from(r.address.split('.').map(Number));
    case 'CNAME':
    case 'PTR':
      return encodeName(r.target);
    case 'SRV':
      return Buffer.concat([u16(0), u16(0), u16(r.port), encodeName(r.target)]);
    case 'TXT':
      return Buffer.concat(r.entries.map((e) => {
        const bytes = Buffer.from(e, 'utf8');
        return Buffer.concat([Buffer.from([bytes.length]), bytes]);
      }));
  }
}

function encodeRecord(r: DnsRecord): Buffer {
  const data = recordData(r);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(TYPE_CODES[r.type], 0);
  fixed.writeUInt16BE(CLASS_IN | (r.cacheFlush ? CACHE_FLUSH : 0), 2);
  fixed.writeUInt32BE(r.ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([encodeName(r.name), fixed, data]);
}

function encodeQuestion(name: string, type: DnsType): Buffer {
  return Buffer.concat([encodeName(name), u16(TYPE_CODES[type]), u16(CLASS_IN)]);
}

function header(id: number, flags: number, questions: number, answers: number, additionals: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(questions, 4);
  h.writeUInt16BE(answers, 6);
  h.writeUInt16BE(additionals, 10);
  return h;
}

/** A recursive query (RD set) for one name. */
export function dnsQuery(id: number, name: string, type: DnsType = 'A'): Buffer {
  return Buffer.concat([header(id, 0x0100, 1, 0, 0), encodeQuestion(name, type)]);
}

/** The resolver's answer (QR, RD, RA, NOERROR), repeating the question. */
export function dnsResponse(id: number, name: string, type: DnsType, answers: readonly DnsRecord[]): Buffer {
  return Buffer.concat([header(id, 0x8180, 1, answers.length, 0), encodeQuestion(name, type), ...answers.map(encodeRecord)]);
}

/** An unsolicited mDNS response (an announcement): id 0, QR and AA set, no questions (RFC 6762 §8.3). */
export function mdnsAnnouncement(answers: readonly DnsRecord[], additionals: readonly DnsRecord[] = []): Buffer {
  return Buffer.concat([header(0, 0x8400, 0, answers.length, additionals.length), ...answers.map(encodeRecord), ...additionals.map(encodeRecord)]);
}

/** An mDNS query for service types (PTR questions), as a controller app browsing the LAN sends. */
export function mdnsQuery(serviceTypes: readonly string[]): Buffer {
  return Buffer.concat([header(0, 0, serviceTypes.length, 0, 0), ...serviceTypes.map((s) => encodeQuestion(s, 'PTR'))]);
}

/** What a DHCP client says about itself in a REQUEST. */
export interface DhcpRequest {
  xid: number;
  mac: Buffer;
  requestedIp: number;
  serverIp: number;
  hostName: string;
  vendorClass: string | null;
  parameterList: readonly number[];
}

/** What the server hands out in its ACK. */
export interface DhcpAck {
  xid: number;
  mac: Buffer;
  clientIp: number;
  serverIp: number;
  leaseS: number;
}

const DHCP_MAGIC = 0x63825363;
/** BOOTP's fixed part plus the magic cookie; many clients pad the whole message to 300 bytes. */
const BOOTP_FIXED = 236;
const BOOTP_MIN = 300;

function option(code: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([code, value.length]), value]);
}

function ipBytes(ip: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(ip >>> 0, 0);
  return b;
}

function bootp(op: number, xid: number, mac: Buffer, yiaddr: number, siaddr: number, options: Buffer[]): Buffer {
  const fixed = Buffer.alloc(BOOTP_FIXED + 4);
  fixed[0] = op;
  fixed[1] = 1; // htype Ethernet
  fixed[2] = 6; // hlen
  fixed.writeUInt32BE(xid >>> 0, 4);
  fixed.writeUInt32BE(yiaddr >>> 0, 16);
  fixed.writeUInt32BE(siaddr >>> 0, 20);
  mac.copy(fixed, 28);
  fixed.writeUInt32BE(DHCP_MAGIC, BOOTP_FIXED);
  const message = Buffer.concat([fixed, ...options, Buffer.from([255])]);
  return message.length >= BOOTP_MIN ? message : Buffer.concat([message, Buffer.alloc(BOOTP_MIN - message.length)]);
}

/** A DHCPREQUEST (op 1, option 53 = 3) from a client in SELECTING state, broadcast from 0.0.0.0. */
export function dhcpRequestMessage(r: DhcpRequest): Buffer {
  const options = [
    option(53, Buffer.from([3])),
    option(61, Buffer.concat([Buffer.from([1]), r.mac])),
    option(50, ipBytes(r.requestedIp)),
    option(54, ipBytes(r.serverIp)),
    option(57, Buffer.from([0x05, 0xdc])), // maximum message size 1500
    option(12, Buffer.from(r.hostName, 'latin1')),
  ];
  if (r.vendorClass !== null) options.push(option(60, Buffer.from(r.vendorClass, 'latin1')));
  options.push(option(55, Buffer.from(r.parameterList)));
  return bootp(1, r.xid, r.mac, 0, 0, options);
}

/** The server's DHCPACK (op 2, option 53 = 5) with lease, mask, router and DNS server. */
export function dhcpAckMessage(a: DhcpAck): Buffer {
  return bootp(2, a.xid, a.mac, a.clientIp, a.serverIp, [
    option(53, Buffer.from([5])),
    option(54, ipBytes(a.serverIp)),
    option(51, ipBytes(a.leaseS)),
    option(1, ipBytes(0xffffff00)),
    option(3, ipBytes(a.serverIp)),
    option(6, ipBytes(a.serverIp)),
  ]);
}
