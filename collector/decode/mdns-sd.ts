/**
 * mDNS / DNS-SD (UDP 5353): what devices on the LAN announce about themselves and ask about others.
 * A Google Home answers for "_googlecast._tcp.local" with an instance whose TXT says md=Google Home Mini
 * and fn=Kitchen speaker; a HomePod's AirPlay TXT says model=AudioAccessory1,1; an Echo advertises
 * _amzn-wplay._tcp. This module turns one message into those facts:
 *   - services: service types, from the enumeration PTRs (_services._dns-sd._udp.local -> type) and from
 *     instance PTRs (type -> instance; a subtype's "x._sub._type._tcp.local" counts as "_type._tcp.local");
 *   - instances: the PTR targets, with their service type;
 *   - srv: SRV records (instance -> target host and port);
 *   - hosts: A/AAAA records (host name -> address);
 *   - txt: TXT records as key=value maps (keys lower-cased, as DNS-SD keys are case-insensitive; the
 *     first occurrence of a key wins, RFC 6763 §6.4; a key without '=' maps to '');
 *   - questions: the names asked (for DNS-SD queries: the service types a device looks for).
 * Records are read from every section (answers, authority, additional): a responder puts a host's
 * addresses in the additional section, and a prober its proposed records in the authority section.
 *
 * Names are read with dns.ts's reader (compression pointers with a hop limit, labels as UTF-8, no
 * trailing dot), as tshark shows them. mDNS messages are rare compared with other traffic, so this returns
 * a fresh record of copied strings; each list holds at most MAX_MDNS_ITEMS entries.
 */
import { readDnsName, skipDnsName } from './dns.js';
import { formatAddr } from './packet.js';

/** What one mDNS message says. */
export interface MdnsInfo {
  /** QR bit: a response (announcement or answer) rather than a query. */
  isResponse: boolean;
  /** False when the message was damaged part-way: the lists hold what came before the damage. */
  complete: boolean;
  /** Question names, in order, without repeats. */
  questions: string[];
  /** Service types (e.g. "_googlecast._tcp.local"), without repeats. */
  services: string[];
  /** Service instances ("Kitchen._googlecast._tcp.local") with their type. */
  instances: Array<{ instance: string; service: string }>;
  /** SRV records: the instance, the host that serves it and the port. */
  srv: Array<{ instance: string; target: string; port: number }>;
  /** A and AAAA records: host name and address. */
  hosts: Array<{ name: string; address: string }>;
  /** TXT records: owner name and its key=value entries. */
  txt: Array<{ owner: string; entries: Record<string, string> }>;
}

/** Most entries kept per list of one message (a 9000-byte message cannot hold many more records). */
export const MAX_MDNS_ITEMS = 256;

const HEADER_LENGTH = 12;
const TYPE_A = 1;
const TYPE_PTR = 12;
const TYPE_TXT = 16;
const TYPE_AAAA = 28;
const TYPE_SRV = 33;
const SERVICES_ENUMERATION = '_services._dns-sd._udp.';

const addressWords = new Uint32Array(4);

/**
 * Parses the mDNS message in buf[offset, offset + length). Returns null when it is not a DNS message
 * (shorter than a header, or an opcode other than a standard query); never throws.
 */
export function parseMdns(buf: Buffer, offset: number, length: number): MdnsInfo | null {
  if (!(offset >= 0 && length >= 0 && offset + length <= buf.length)) return null;
  if (length < HEADER_LENGTH) return null;
  const start = offset;
  const end = offset + length;
  const flags = buf.readUInt16BE(start + 2);
  if ((flags & 0x7800) !== 0) return null;
  const info: MdnsInfo = {
    isResponse: (flags & 0x8000) !== 0, complete: false,
    questions: [], services: [], instances: [], srv: [], hosts: [], txt: [],
  };
  const questionCount = buf.readUInt16BE(start + 4);
  const recordCount = buf.readUInt16BE(start + 6) + buf.readUInt16BE(start + 8) + buf.readUInt16BE(start + 10);
  let at = start + HEADER_LENGTH;
  for (let i = 0; i < questionCount; i++) {
    const name = readDnsName(buf, start, at, end);
    const after = skipDnsName(buf, at, end);
    if (name === null || after < 0 || after + 4 > end) return info;
    addUnique(info.questions, name);
    at = after + 4;
  }
  for (let i = 0; i < recordCount; i++) {
    const nameAt = at;
    const after = skipDnsName(buf, at, end);
    if (after < 0 || after + 10 > end) return info;
    const type = buf.readUInt16BE(after);
    const dataLength = buf.readUInt16BE(after + 8);
    const dataAt = after + 10;
    const dataEnd = dataAt + dataLength;
    if (dataEnd > end) return info;
    at = dataEnd;
    if (type !== TYPE_PTR && type !== TYPE_SRV && type !== TYPE_TXT && type !== TYPE_A && type !== TYPE_AAAA) continue;
    const owner = readDnsName(buf, start, nameAt, end);
    if (owner === null) return info;
    if (!readRecord(info, buf, start, end, owner, type, dataAt, dataEnd)) return info;
  }
  info.complete = true;
  return info;
}

/** Adds one record's facts to `info`; false when its data is damaged. */
function readRecord(
  info: MdnsInfo, buf: Buffer, start: number, end: number, owner: string, type: number, dataAt: number, dataEnd: number,
): boolean {
  switch (type) {
    case TYPE_PTR: {
      const target = readTargetName(buf, start, end, dataAt, dataEnd);
      if (target === null) return false;
      const lower = owner.toLowerCase();
      if (lower.startsWith(SERVICES_ENUMERATION)) {
        addUnique(info.services, target);
        return true;
      }
      const service = serviceTypeOf(owner);
      // other PTRs (reverse look-ups of addresses) are not service discovery
      if (service === null) return true;
      addUnique(info.services, service);
      // an instance is "<name>.<service>": anything else cannot be split into name and type
      if (target.length > service.length + 1 && target.toLowerCase().endsWith(`.${service.toLowerCase()}`)) {
        addBounded(info.instances, { instance: target, service });
      }
      return true;
    }
    case TYPE_SRV: {
      if (dataEnd - dataAt < 7) return false;
      const target = readTargetName(buf, start, end, dataAt + 6, dataEnd);
      if (target === null) return false;
      addBounded(info.srv, { instance: owner, target, port: buf.readUInt16BE(dataAt + 4) });
      return true;
    }
    case TYPE_TXT: {
      const entries = readTxt(buf, dataAt, dataEnd);
      if (entries === null) return false;
      if (Object.keys(entries).length > 0) addBounded(info.txt, { owner, entries });
      return true;
    }
    case TYPE_A:
      if (dataEnd - dataAt === 4) {
        addBounded(info.hosts, { name: owner, address: `${buf[dataAt]}.${buf[dataAt + 1]}.${buf[dataAt + 2]}.${buf[dataAt + 3]}` });
      }
      return true;
    default: // AAAA
      if (dataEnd - dataAt === 16) {
        for (let w = 0; w < 4; w++) addressWords[w] = buf.readUInt32BE(dataAt + 4 * w);
        addBounded(info.hosts, { name: owner, address: formatAddr(6, addressWords) });
      }
      return true;
  }
}

/** A name inside record data: it must end within the record (pointers may lead anywhere before `end`). */
function readTargetName(buf: Buffer, start: number, end: number, at: number, dataEnd: number): string | null {
  const after = skipDnsName(buf, at, dataEnd);
  if (after < 0) return null;
  return readDnsName(buf, start, at, end);
}

/**
 * The service type an owner name of a PTR record stands for: "_type._tcp.<domain>" itself, or for a
 * subtype "<sub>._sub._type._tcp.<domain>" the part after "_sub."; null for other names.
 */
export function serviceTypeOf(owner: string): string | null {
  const labels = owner.split('.');
  const isType = (i: number) => labels.length > i + 2 && labels[i].startsWith('_') && labels[i].length > 1
    && /^_(tcp|udp)$/i.test(labels[i + 1]);
  if (isType(0)) return owner;
  if (labels.length > 4 && labels[1].toLowerCase() === '_sub' && isType(2)) return labels.slice(2).join('.');
  return null;
}

/** TXT character-strings as key=value entries; null when a string runs past the record. */
function readTxt(buf: Buffer, from: number, to: number): Record<string, string> | null {
  // no prototype: a key like "__proto__" from the network must stay a plain key
  const entries: Record<string, string> = Object.create(null) as Record<string, string>;
  let count = 0;
  let at = from;
  while (at < to) {
    const size = buf[at];
    const text = at + 1;
    if (text + size > to) return null;
    at = text + size;
    if (size === 0) continue;
    const equals = buf.indexOf(0x3d, text);
    const keyEnd = equals >= 0 && equals < at ? equals : at;
    if (keyEnd === text) continue; // "=value" has no key: RFC 6763 says ignore it
    const key = buf.toString('utf8', text, keyEnd).toLowerCase();
    if (key in entries || count >= MAX_MDNS_ITEMS) continue;
    entries[key] = keyEnd < at ? buf.toString('utf8', keyEnd + 1, at) : '';
    count++;
  }
  return entries;
}

function addUnique(list: string[], value: string): void {
  if (list.length < MAX_MDNS_ITEMS && !list.includes(value)) list.push(value);
}

function addBounded<T>(list: T[], value: T): void {
  if (list.length < MAX_MDNS_ITEMS) list.push(value);
}
