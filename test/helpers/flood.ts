/**
 * A hostile LAN host's announcement flood, written as a classic pcap (issue 14, fault 7): DHCP requests,
 * mDNS announcements and SSDP NOTIFYs, each from a new random source MAC, all from one IPv4 host, naming
 * themselves Echo, HomePod, Google Home and Sonos, a few hundred packets a second of packet time. The
 * packets are built here byte by byte (RFC 2131, RFC 6762/6763, UPnP 1.0), so what they claim is known
 * without asking earshot: every MAC in the file is forged and none of them is an assistant.
 *
 * Streams to disk (a million packets is ~250 MB): used by the flood tests and, bundled with esbuild,
 * by bench/flood.mjs.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { classicHeader } from './capture-files.js';
import { seeded as random } from './seeded.js';

export interface FloodOptions {
  /** Packets to write. */
  packets: number;
  /** Seed of the MAC and name generator (same seed, same file). */
  seed?: number;
  /** Packets per second of packet time (default 300: "a few hundred from one host"). */
  rate?: number;
  /** Time of the first packet, in seconds since the epoch (default 2026-01-01). */
  startSeconds?: number;
  /** The flooding host's IPv4 address (default 192.168.1.66). */
  attackerIp?: string;
}

/** What was written: the forged MACs' count by kind, for expectations that do not come from earshot. */
export interface FloodSummary {
  packets: number;
  dhcp: number;
  mdns: number;
  ssdp: number;
  /** Distinct forged source MACs (every packet has a new one, unless the generator repeated itself). */
  macs: number;
  firstSeconds: number;
  lastSeconds: number;
}

/** OUIs of assistant makers (from the IEEE registry: Amazon, Apple, Google, Sonos); a quarter of the MACs are locally administered. */
const VENDOR_OUIS = [0x68dbf5, 0xa4d1d2, 0xf4f5d8, 0x347e5c, 0x48a6b8];


export function ipv4Bytes(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

function macBytes(mac: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(mac, 0, 6);
  return b;
}

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Ethernet + IPv4 + UDP around a payload (UDP checksum 0: allowed over IPv4). */
export function udpFrame(srcMac: number, dstMac: number, src: Buffer, dst: Buffer, srcPort: number, dstPort: number, payload: Buffer): Buffer {
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(srcPort, 0);
  udp.writeUInt16BE(dstPort, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[8] = dst[0] >= 224 ? 255 : 64;
  ip[9] = 17;
  src.copy(ip, 12);
  dst.copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const eth = Buffer.alloc(14);
  macBytes(dstMac).copy(eth, 0);
  macBytes(srcMac).copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  return Buffer.concat([eth, ip, udp, payload]);
}

/** A DHCPREQUEST from `mac` naming itself `hostName` (options 53, 12, 60, 55). */
export function dhcpRequest(mac: number, hostName: string, vendorClass: string | null): Buffer {
  const bootp = Buffer.alloc(240);
  bootp[0] = 1; // BOOTREQUEST
  bootp[1] = 1; // Ethernet
  bootp[2] = 6;
  bootp.writeUInt32BE(mac % 0xffffffff, 4); // xid
  macBytes(mac).copy(bootp, 28);
  bootp.writeUInt32BE(0x63825363, 236); // magic cookie
  const name = Buffer.from(hostName, 'latin1');
  const options = [Buffer.from([53, 1, 3]), Buffer.from([12, name.length]), name];
  if (vendorClass !== null) {
    const vc = Buffer.from(vendorClass, 'latin1');
    options.push(Buffer.from([60, vc.length]), vc);
  }
  options.push(Buffer.from([55, 4, 1, 3, 6, 15, 255]));
  return Buffer.concat([bootp, ...options]);
}

function dnsName(name: string): Buffer {
  const parts = name.split('.').map((label) => {
    const b = Buffer.from(label, 'utf8');
    return Buffer.concat([Buffer.from([b.length]), b]);
  });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function record(name: string, type: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(type === 12 ? 1 : 0x8001, 2); // IN, cache-flush on unique records
  fixed.writeUInt32BE(4500, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([dnsName(name), fixed, data]);
}

/** An mDNS announcement: PTR service -> instance, TXT with `entries`, SRV and A for `host`. */
export function mdnsAnnouncement(service: string, instance: string, entries: Record<string, string>, host: string, address: Buffer, port: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(0x8400, 2); // response, authoritative
  header.writeUInt16BE(4, 6);
  const full = `${instance}.${service}`;
  const txt = Buffer.concat(Object.entries(entries).map(([k, v]) => {
    const b = Buffer.from(`${k}=${v}`, 'utf8');
    return Buffer.concat([Buffer.from([b.length]), b]);
  }));
  const srv = Buffer.alloc(6);
  srv.writeUInt16BE(port, 4);
  return Buffer.concat([
    header,
    record(service, 12, dnsName(full)),
    record(full, 16, txt),
    record(full, 33, Buffer.concat([srv, dnsName(host)])),
    record(host, 1, address),
  ]);
}

/** An SSDP NOTIFY ssdp:alive of a Sonos ZonePlayer. */
export function ssdpNotify(uuid: string, location: string): Buffer {
  return Buffer.from([
    'NOTIFY * HTTP/1.1',
    'HOST: 239.255.255.250:1900',
    'CACHE-CONTROL: max-age = 1800',
    `LOCATION: ${location}`,
    'NT: urn:schemas-upnp-org:device:ZonePlayer:1',
    'NTS: ssdp:alive',
    'SERVER: Linux UPnP/1.0 Sonos/70.3-35220 (ZPS9)',
    `USN: uuid:${uuid}::urn:schemas-upnp-org:device:ZonePlayer:1`,
    '', '',
  ].join('\r\n'), 'latin1');
}

const MDNS_MAC = 0x01005e0000fb;
const SSDP_MAC = 0x01005e7ffffa;
const BROADCAST_MAC = 0xffffffffffff;

/** Yields the flood's frames with their time (seconds, microseconds). */
export function* floodFrames(options: FloodOptions): Generator<{ seconds: number; micros: number; data: Buffer; kind: 'dhcp' | 'mdns' | 'ssdp'; mac: number }> {
  const next = random(options.seed ?? 14);
  const rate = options.rate ?? 300;
  const start = options.startSeconds ?? 1_767_225_600;
  const attacker = ipv4Bytes(options.attackerIp ?? '192.168.1.66');
  const mdnsGroup = ipv4Bytes('224.0.0.251');
  const ssdpGroup = ipv4Bytes('239.255.255.250');
  const hex = (n: number, digits: number) => Math.floor(n * 16 ** digits).toString(16).padStart(digits, '0');
  for (let i = 0; i < options.packets; i++) {
    const low = Math.floor(next() * 0x1000000);
    // three in four carry an assistant maker's OUI, one in four is locally administered (randomised)
    const pick = Math.floor(next() * (VENDOR_OUIS.length + 2));
    const mac = pick < VENDOR_OUIS.length ? VENDOR_OUIS[pick] * 0x1000000 + low : (0x02 + 4 * Math.floor(next() * 64)) * 2 ** 40 + Math.floor(next() * 2 ** 32) * 256 + (low & 0xff);
    const micros = Math.floor((i * 1_000_000) / rate);
    const seconds = start + Math.floor(micros / 1_000_000);
    const kind = i % 3 === 0 ? 'dhcp' : i % 3 === 1 ? 'mdns' : 'ssdp';
    let data: Buffer;
    if (kind === 'dhcp') {
      data = udpFrame(mac, BROADCAST_MAC, Buffer.from([0, 0, 0, 0]), Buffer.from([255, 255, 255, 255]), 68, 67,
        dhcpRequest(mac, `amazon-${hex(next(), 9)}`, i % 2 ? 'udhcp 1.30.1' : null));
    } else if (kind === 'mdns') {
      const variant = i % 4;
      const id = hex(next(), 8);
      data = variant === 0
        ? udpFrame(mac, MDNS_MAC, attacker, mdnsGroup, 5353, 5353, mdnsAnnouncement('_googlecast._tcp.local', `Google-Home-Mini-${id}`, { id, md: 'Google Home Mini', fn: `Kitchen ${id}` }, `${id}.local`, attacker, 8009))
        : variant === 1
          ? udpFrame(mac, MDNS_MAC, attacker, mdnsGroup, 5353, 5353, mdnsAnnouncement('_airplay._tcp.local', `HomePod-${id}`, { model: 'AudioAccessory5,1', deviceid: id }, `HomePod-${id}.local`, attacker, 7000))
          : variant === 2
            ? udpFrame(mac, MDNS_MAC, attacker, mdnsGroup, 5353, 5353, mdnsAnnouncement('_sonos._tcp.local', `Sonos-${id}`, { info: '/api/v1/players/RINCON', mdl: 'S27' }, `Sonos-${id}.local`, attacker, 1443))
            : udpFrame(mac, MDNS_MAC, attacker, mdnsGroup, 5353, 5353, mdnsAnnouncement('_amzn-wplay._tcp.local', `Echo-${id}`, { n: `Echo Dot ${id}`, sp: '55443' }, `echo-${id}.local`, attacker, 55443));
    } else {
      data = udpFrame(mac, SSDP_MAC, attacker, ssdpGroup, 1900, 1900, ssdpNotify(`RINCON_${hex(next(), 12)}01400`, `http://${[...attacker].join('.')}:1400/xml/device_description.xml`));
    }
    yield { seconds, micros: micros % 1_000_000, data, kind, mac };
  }
}

/** Writes `frames` as a classic pcap (Ethernet, microseconds), a MiB at a time; `onFrame` sees each one. */
function writeClassicPcap<F extends { seconds: number; micros: number; data: Buffer }>(path: string, frames: Iterable<F>, onFrame: (f: F) => void): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, classicHeader());
    const chunk: Buffer[] = [];
    let chunkBytes = 0;
    for (const f of frames) {
      const rec = Buffer.alloc(16);
      rec.writeUInt32LE(f.seconds, 0);
      rec.writeUInt32LE(f.micros, 4);
      rec.writeUInt32LE(f.data.length, 8);
      rec.writeUInt32LE(f.data.length, 12);
      chunk.push(rec, f.data);
      chunkBytes += 16 + f.data.length;
      if (chunkBytes >= 1 << 20) {
        writeSync(fd, Buffer.concat(chunk));
        chunk.length = 0;
        chunkBytes = 0;
      }
      onFrame(f);
    }
    if (chunk.length > 0) writeSync(fd, Buffer.concat(chunk));
  } finally {
    closeSync(fd);
  }
}

/** Writes the flood as a classic pcap (Ethernet, microseconds); returns what it holds. */
export function writeFloodPcap(path: string, options: FloodOptions): FloodSummary {
  const summary: FloodSummary = { packets: 0, dhcp: 0, mdns: 0, ssdp: 0, macs: 0, firstSeconds: Number.NaN, lastSeconds: Number.NaN };
  const macs = new Set<number>();
  writeClassicPcap(path, floodFrames(options), (f) => {
    summary.packets++;
    summary[f.kind]++;
    if (macs.size < 2_000_000) macs.add(f.mac);
    if (Number.isNaN(summary.firstSeconds)) summary.firstSeconds = f.seconds;
    summary.lastSeconds = f.seconds;
  });
  summary.macs = macs.size;
  return summary;
}

export interface FlowFloodOptions {
  /** Flows to open, one UDP datagram each. */
  flows: number;
  /** Datagrams per second of packet time (default 20,000: the whole flood within UDP's idle timeout). */
  rate?: number;
  /** Time of the first packet, in seconds since the epoch (default 2026-01-01). */
  startSeconds?: number;
}

/** The flow flood's sender: one LAN host (a scanner, or a compromised device), and the router's MAC. */
export const FLOW_FLOOD_HOST = { mac: 0x0242c0a80142, ip: '192.168.1.66', routerMac: 0x0242c0a80101 };

/**
 * A flood of new flows (a scan of the internet, or a host told to exhaust the flow table): one UDP
 * datagram from one LAN host to each of `flows` distinct addresses (11.0.0.0 up), port 9999, source
 * ports cycling: every datagram is a flow of its own. Returns the datagrams written.
 */
export function writeFlowFloodPcap(path: string, options: FlowFloodOptions): number {
  const rate = options.rate ?? 20_000;
  const start = options.startSeconds ?? 1_767_225_600;
  const src = ipv4Bytes(FLOW_FLOOD_HOST.ip);
  const payload = Buffer.from('earshot flow flood');
  function* frames(): Generator<{ seconds: number; micros: number; data: Buffer }> {
    for (let i = 0; i < options.flows; i++) {
      const dst = Buffer.alloc(4);
      dst.writeUInt32BE(0x0b000000 + i);
      const micros = Math.floor((i * 1_000_000) / rate);
      const data = udpFrame(FLOW_FLOOD_HOST.mac, FLOW_FLOOD_HOST.routerMac, src, dst, 40_000 + (i % 20_000), 9999, payload);
      yield { seconds: start + Math.floor(micros / 1_000_000), micros: micros % 1_000_000, data };
    }
  }
  let written = 0;
  writeClassicPcap(path, frames(), () => { written++; });
  return written;
}

/** The host the forged answers go to (192.168.1.50). */
const DNS_FLOOD_VICTIM_MAC = 0x0242c0a80132;

export interface DnsFloodOptions {
  /** DNS responses to write. */
  packets: number;
  /** A records in each, every one a new name and address (default 30: a full 1,500-byte frame). */
  answersPerPacket?: number;
  /** Responses per second of packet time (default 10,000). */
  rate?: number;
  /** Time of the first packet, in seconds since the epoch (default 2026-01-01). */
  startSeconds?: number;
}

/**
 * Forged DNS answers: UDP responses from port 53 of a LAN host to another (a spoofer needs no query),
 * each with `answersPerPacket` A records of names never seen before (n<i>.flood.example ->
 * 10.x.y.z). What a host can make every cache of names do: returns the answers written (tshark counts
 * the same: bench/flood.mjs).
 */
export function writeDnsFloodPcap(path: string, options: DnsFloodOptions): number {
  const per = options.answersPerPacket ?? 30;
  const rate = options.rate ?? 10_000;
  const start = options.startSeconds ?? 1_767_225_600;
  const src = ipv4Bytes(FLOW_FLOOD_HOST.ip);
  const dst = ipv4Bytes('192.168.1.50');
  let answers = 0;
  function* frames(): Generator<{ seconds: number; micros: number; data: Buffer }> {
    for (let i = 0; i < options.packets; i++) {
      const header = Buffer.alloc(12);
      header.writeUInt16BE(i & 0xffff, 0);
      header.writeUInt16BE(0x8180, 2); // a response, recursion available, no error
      header.writeUInt16BE(1, 4);
      header.writeUInt16BE(per, 6);
      const question = Buffer.concat([dnsName(`q${i}.flood.example`), Buffer.from([0, 1, 0, 1])]);
      const records: Buffer[] = [];
      for (let k = 0; k < per; k++, answers++) {
        const fixed = Buffer.alloc(14);
        fixed.writeUInt16BE(1, 0); // A
        fixed.writeUInt16BE(1, 2); // IN
        fixed.writeUInt32BE(300, 4);
        fixed.writeUInt16BE(4, 8);
        fixed.writeUInt32BE(0x0a000000 + (answers % 0x1000000), 10);
        records.push(dnsName(`n${answers}.flood.example`), fixed);
      }
      const micros = Math.floor((i * 1_000_000) / rate);
      const data = udpFrame(FLOW_FLOOD_HOST.mac, DNS_FLOOD_VICTIM_MAC, src, dst, 53, 40_000 + (i % 20_000), Buffer.concat([header, question, ...records]));
      yield { seconds: start + Math.floor(micros / 1_000_000), micros: micros % 1_000_000, data };
    }
  }
  writeClassicPcap(path, frames(), () => {});
  return answers;
}
