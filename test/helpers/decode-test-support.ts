/**
 * TEST-ONLY: tshark as the oracle for the decoder tests (collector/decode). Runs tshark on a capture and
 * returns its per-packet fields, its DNS records with their section, and its ClientHello SNIs.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs tshark with `args`; resolves with stdout (a truncated capture's warning on stderr is fine). */
export async function tshark(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('tshark', args, { maxBuffer: 1 << 30, encoding: 'utf8' });
    return stdout;
  } catch (error) {
    // tshark exits 2 on a capture cut short in the middle of a packet, after printing every whole one
    const failure = error as { stdout?: string; stderr?: string };
    if (failure.stdout && /cut short in the middle of a packet/.test(failure.stderr ?? '')) return failure.stdout;
    throw error;
  }
}

/** Options that turn IP reassembly off, so fields are per packet. */
export const NO_DEFRAGMENT = ['-o', 'ip.defragment:FALSE', '-o', 'ipv6.defragment:FALSE'];

/** One row per packet: field name -> every occurrence (outer first). */
export type FieldRow = Record<string, string[]>;

/** tshark -T fields for `fields` (all occurrences, comma-separated), parsed into rows. */
export async function tsharkFields(file: string, fields: string[], extra: string[] = []): Promise<FieldRow[]> {
  const args = ['-r', file, ...extra, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', '-E', 'separator=\t'];
  for (const field of fields) args.push('-e', field);
  const out = await tshark(args);
  return out.split('\n').filter((line) => line.length > 0).map((line) => {
    const cells = line.split('\t');
    const row: FieldRow = {};
    fields.forEach((field, i) => { row[field] = cells[i] ? cells[i].split(',') : []; });
    return row;
  });
}

/** One A/AAAA/CNAME record as tshark shows it. */
export interface TsharkDnsRecord {
  frame: number;
  section: 'Answers' | 'Authoritative nameservers' | 'Additional records';
  /** The dissector layer: dns, mdns or llmnr. */
  layer: string;
  name: string;
  type: 'A' | 'AAAA' | 'CNAME';
  data: string;
  ttl: number;
}

const TYPES: Record<string, TsharkDnsRecord['type']> = { '1': 'A', '28': 'AAAA', '5': 'CNAME' };
const SECTIONS = ['Answers', 'Authoritative nameservers', 'Additional records'] as const;

/**
 * The A/AAAA/CNAME records of every DNS/mDNS/LLMNR response tshark dissects (JSON output, so fields pair
 * up per record); `filter` narrows the packets further.
 */
export async function tsharkDnsRecords(file: string, filter = ''): Promise<TsharkDnsRecord[]> {
  const display = filter ? `dns.flags.response==1 && (${filter})` : 'dns.flags.response==1';
  const out = await tshark(['-r', file, '-Y', display, '-T', 'json', '--no-duplicate-keys']);
  const packets = JSON.parse(out) as Array<{ _source: { layers: Record<string, unknown> } }>;
  const records: TsharkDnsRecord[] = [];
  for (const packet of packets) {
    const layers = packet._source.layers;
    const frame = Number((layers.frame as Record<string, string>)['frame.number']);
    for (const layer of ['dns', 'mdns', 'llmnr']) {
      for (const message of asArray(layers[layer])) {
        for (const section of SECTIONS) {
          const entries = (message as Record<string, unknown>)[section];
          if (!entries || typeof entries !== 'object') continue;
          for (const value of Object.values(entries as Record<string, unknown>)) {
            for (const record of asArray(value) as Array<Record<string, string>>) {
              const type = TYPES[record['dns.resp.type']];
              if (!type) continue;
              const data = type === 'A' ? record['dns.a'] : type === 'AAAA' ? record['dns.aaaa'] : record['dns.cname'];
              if (data === undefined) continue; // record cut short: tshark shows no data
              const name = record['dns.resp.name'] === '<Root>' ? '' : record['dns.resp.name'];
              records.push({ frame, section, layer, name, type, data, ttl: Number(record['dns.resp.ttl']) });
            }
          }
        }
      }
    }
  }
  return records;
}

function asArray(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** A TCP ClientHello as tshark shows it: the connection (client side first) and the SNI ('' when none). */
export interface TsharkClientHello {
  frame: number;
  flow: string;
  serverName: string;
}

/** The ClientHellos carried over TCP, with their server_name. */
export async function tsharkClientHellos(file: string): Promise<TsharkClientHello[]> {
  const rows = await tsharkFields(file, [
    'frame.number', 'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst', 'tcp.srcport', 'tcp.dstport',
    'tls.handshake.extensions_server_name',
  ], ['-Y', 'tls.handshake.type==1 && tcp']);
  return rows.map((row) => {
    const src = row['ip.src'][0] ?? row['ipv6.src'][0];
    const dst = row['ip.dst'][0] ?? row['ipv6.dst'][0];
    return {
      frame: Number(row['frame.number'][0]),
      flow: flowKey(src, Number(row['tcp.srcport'][0]), dst, Number(row['tcp.dstport'][0])),
      serverName: row['tls.handshake.extensions_server_name'][0] ?? '',
    };
  });
}

/** The key tests use for one direction of a connection. */
export function flowKey(src: string, srcPort: number, dst: string, dstPort: number): string {
  return `${src}:${srcPort}>${dst}:${dstPort}`;
}

// ---- packet builders for synthetic decoder cases (checksums left zero: nothing here checks them) ----

/** An Ethernet II frame from 02:00:00:00:00:02 to 02:00:00:00:00:01. */
export function ethernetFrame(etherType: number, payload: Buffer): Buffer {
  const header = Buffer.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, etherType >> 8, etherType & 255]);
  return Buffer.concat([header, payload]);
}

/** Options of an IPv4 header; defaults give a plain 20-byte header with the right total length. */
export interface Ipv4Options {
  id?: number;
  fragmentOffset?: number;
  moreFragments?: boolean;
  optionsLength?: number;
  totalLength?: number;
}

/** An IPv4 packet from `src` to `dst` (dotted quads) carrying `payload` as protocol `proto`. */
export function ipv4Packet(src: string, dst: string, proto: number, payload: Buffer, options: Ipv4Options = {}): Buffer {
  const headerLength = 20 + (options.optionsLength ?? 0);
  const header = Buffer.alloc(headerLength);
  header[0] = 0x40 | (headerLength / 4);
  header.writeUInt16BE(options.totalLength ?? headerLength + payload.length, 2);
  header.writeUInt16BE(options.id ?? 0, 4);
  header.writeUInt16BE(((options.fragmentOffset ?? 0) / 8) | (options.moreFragments ? 0x2000 : 0), 6);
  header[8] = 64;
  header[9] = proto;
  Buffer.from(src.split('.').map(Number)).copy(header, 12);
  Buffer.from(dst.split('.').map(Number)).copy(header, 16);
  return Buffer.concat([header, payload]);
}

/** An IPv6 packet; `body` starts with whatever `nextHeader` names (extension headers included). */
export function ipv6Packet(src: string, dst: string, nextHeader: number, body: Buffer): Buffer {
  const header = Buffer.alloc(40);
  header[0] = 0x60;
  header.writeUInt16BE(body.length, 4);
  header[6] = nextHeader;
  header[7] = 64;
  ipv6Bytes(src).copy(header, 8);
  ipv6Bytes(dst).copy(header, 24);
  return Buffer.concat([header, body]);
}

/** An IPv6 extension header of the 8-octet-unit kind (hop-by-hop, routing, destination options). */
export function ipv6Extension(nextHeader: number, units = 0): Buffer {
  const header = Buffer.alloc(8 + units * 8);
  header[0] = nextHeader;
  header[1] = units;
  header[2] = 1; // PadN
  header[3] = 4 + units * 8;
  return header;
}

/** An IPv6 fragment header. */
export function ipv6FragmentHeader(nextHeader: number, offset: number, more: boolean, id: number): Buffer {
  const header = Buffer.alloc(8);
  header[0] = nextHeader;
  header.writeUInt16BE(offset | (more ? 1 : 0), 2);
  header.writeUInt32BE(id, 4);
  return header;
}

/** 16 bytes of an IPv6 address written with '::' allowed. */
export function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

/** A UDP datagram (length field filled). */
export function udpDatagram(srcPort: number, dstPort: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(srcPort, 0);
  header.writeUInt16BE(dstPort, 2);
  header.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** A TCP segment with a 20-byte header (plus `optionsLength` bytes of NOP options). */
export function tcpSegment(srcPort: number, dstPort: number, seq: number, flags: number, payload: Buffer, optionsLength = 0): Buffer {
  const header = Buffer.alloc(20 + optionsLength, 1);
  header.writeUInt16BE(srcPort, 0);
  header.writeUInt16BE(dstPort, 2);
  header.writeUInt32BE(seq >>> 0, 4);
  header.writeUInt32BE(0, 8);
  header[12] = ((20 + optionsLength) / 4) << 4;
  header[13] = flags;
  header.writeUInt16BE(65535, 14);
  header.writeUInt32BE(0, 16);
  return Buffer.concat([header, payload]);
}

/** A DNS response for `name` with one A record per address (name compressed to the question). */
export function dnsResponse(name: string, addresses: string[], ttl = 300): Buffer {
  const question = Buffer.concat([
    ...name.split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])),
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  const header = Buffer.from([0x12, 0x34, 0x81, 0x80, 0, 1, addresses.length >> 8, addresses.length & 255, 0, 0, 0, 0]);
  const answers = addresses.map((address) => {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0);
    record.writeUInt16BE(1, 2);
    record.writeUInt16BE(1, 4);
    record.writeUInt32BE(ttl, 6);
    record.writeUInt16BE(4, 10);
    Buffer.from(address.split('.').map(Number)).copy(record, 12);
    return record;
  });
  return Buffer.concat([header, question, ...answers]);
}
