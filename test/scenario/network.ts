/**
 * The LAN a scenario runs on: a router at 192.168.1.1 that answers DHCP and DNS, the Internet behind
 * it (every remote frame carries the router's MAC), and the exchanges devices share: joining the
 * network, looking up a name, announcing on mDNS, opening TLS over TCP, a short HTTPS or HTTP request.
 */
import { dhcpAckMessage, dhcpRequestMessage, dnsQuery, dnsResponse, type DnsRecord, mdnsAnnouncement, mdnsQuery } from './messages.js';
import { BROADCAST_MAC, type Host, multicastMac, parseIp, parseMac, Timeline, udpFrame } from './packets.js';
import { hashLabel, type Rng } from './rng.js';
import { TcpStream } from './tcp-stream.js';
import { applicationData, clientFinished, clientHelloRecord, serverFlight } from './tls.js';

const GATEWAY_IP = '192.168.1.1';
const GATEWAY_MAC = '00:1a:2b:3c:4d:5e';
const MDNS_GROUP = parseIp('224.0.0.251');
/** TTL of frames from the Internet as they reach the LAN: some hops from a 64-TTL server. */
const REMOTE_TTL = 52;

/** What a device says about itself when it asks for its address. */
export interface DhcpIdentity {
  hostName: string;
  vendorClass: string | null;
  parameterList: readonly number[];
}

/** Names whose DNS answers go through a CNAME, as the real ones do (FACTS.md). */
const CNAMES: Record<string, string> = {
  'guzzoni.apple.com': 'origin.guzzoni-apple.com.akadns.net',
};

/** Address blocks to draw a name's address from, by the name's domain; the rest look like CDNs. */
const BLOCKS: Array<[RegExp, string]> = [
  [/guzzoni/, '17.36'],
  [/\.apple\.com$|\.icloud\.com$/, '17.253'],
  [/\.google\.com$|\.googleapis\.com$/, '142.250'],
  [/\.gstatic\.com$|\.youtube\.com$|\.googlevideo\.com$/, '142.251'],
  [/\.amazon\.com$|\.amazonalexa\.com$|\.a2z\.com$/, '3.219'],
  [/\.sonos\.com$/, '35.170'],
  [/\.nflxvideo\.net$|\.netflix\.com$/, '45.57'],
];
const CDN_BLOCKS = ['151.101', '104.18', '23.45', '185.199'];

export class Net {
  readonly timeline = new Timeline();
  readonly gateway: Host = { mac: parseMac(GATEWAY_MAC), ip: parseIp(GATEWAY_IP) };
  private readonly streams: TcpStream[] = [];
  private readonly nextPorts = new Map<number, number>();

  constructor(readonly seed: number, readonly startUs: number, readonly endUs: number) {}

  /** A host on the Internet: frames to and from it pass the router, so they carry the router's MAC. */
  remote(address: string): Host {
    return { mac: this.gateway.mac, ip: parseIp(address) };
  }

  /** The address DNS gives for a name: stable for the seed, in a block that fits the name's owner. */
  addressOf(name: string): string {
    const h = hashLabel(this.seed, name.toLowerCase());
    const block = BLOCKS.find(([pattern]) => pattern.test(name))?.[1] ?? CDN_BLOCKS[h % CDN_BLOCKS.length];
    return `${block}.${(h >>> 8) & 255}.${1 + ((h >>> 16) % 253)}`;
  }

  /**
   * The next ephemeral port of a host: counted up from a seeded start, as stacks do, so that one
   * device never reuses a port while an earlier connection on it may still be remembered.
   */
  ephemeralPort(host: Host): number {
    const port = this.nextPorts.get(host.ip) ?? 32768 + (hashLabel(this.seed, `port:${host.ip}`) % 20000);
    this.nextPorts.set(host.ip, port >= 60999 ? 32768 : port + 1);
    return port;
  }

  /** One UDP datagram; `ttl` is the sender's. */
  udp(from: Host, to: Host, srcPort: number, dstPort: number, timeUs: number, payload: Buffer, ttl = 64): void {
    const frame = udpFrame({ srcMac: from.mac, dstMac: to.mac, src: from.ip, dst: to.ip, ttl, ipId: this.timeline.nextIpId(from.ip) }, srcPort, dstPort, payload);
    this.timeline.add(timeUs, frame);
  }

  /** A datagram from the Internet to a device. */
  udpFromRemote(from: Host, to: Host, srcPort: number, dstPort: number, timeUs: number, payload: Buffer): void {
    this.udp(from, to, srcPort, dstPort, timeUs, payload, REMOTE_TTL);
  }

  /** DHCPREQUEST broadcast from 0.0.0.0 and the router's ACK a few ms later. */
  dhcp(device: Host, rng: Rng, timeUs: number, identity: DhcpIdentity): void {
    const xid = rng.int(0, 0xffffffff);
    const request = dhcpRequestMessage({ xid, mac: device.mac, requestedIp: device.ip, serverIp: this.gateway.ip, ...identity });
    this.udp({ mac: device.mac, ip: 0 }, { mac: BROADCAST_MAC, ip: 0xffffffff }, 68, 67, timeUs, request);
    const ack = dhcpAckMessage({ xid, mac: device.mac, clientIp: device.ip, serverIp: this.gateway.ip, leaseS: 86400 });
    this.udp(this.gateway, device, 67, 68, timeUs + rng.int(1500, 6000), ack);
  }

  /**
   * Asks the router for a name's A record (following a CNAME where the real name has one); returns the
   * address and when the answer arrived.
   */
  lookup(device: Host, rng: Rng, timeUs: number, name: string): { address: string; readyUs: number } {
    const id = rng.int(0, 0xffff);
    const port = this.ephemeralPort(device);
    this.udp(device, this.gateway, port, 53, timeUs, dnsQuery(id, name));
    const address = this.addressOf(name);
    const answers: DnsRecord[] = [];
    let owner = name;
    const cname = CNAMES[name];
    if (cname) {
      answers.push({ name, type: 'CNAME', ttl: 300, target: cname });
      owner = cname;
    }
    answers.push({ name: owner, type: 'A', ttl: 60, address });
    const readyUs = timeUs + rng.int(2000, 25000);
    this.udp(this.gateway, device, 53, port, readyUs, dnsResponse(id, name, 'A', answers));
    return { address, readyUs };
  }

  /** An mDNS announcement from a device to 224.0.0.251:5353 (sent twice, a second apart, RFC 6762 §8.3). */
  mdnsAnnounce(device: Host, timeUs: number, answers: DnsRecord[], additionals: DnsRecord[] = []): void {
    const group: Host = { mac: multicastMac(MDNS_GROUP), ip: MDNS_GROUP };
    const message = mdnsAnnouncement(answers, additionals);
    this.udp(device, group, 5353, 5353, timeUs, message, 255);
    this.udp(device, group, 5353, 5353, timeUs + 1_000_000, message, 255);
  }

  /** An mDNS query for service types, as an app looking for speakers sends it. */
  mdnsBrowse(device: Host, timeUs: number, serviceTypes: string[]): void {
    this.udp(device, { mac: multicastMac(MDNS_GROUP), ip: MDNS_GROUP }, 5353, 5353, timeUs, mdnsQuery(serviceTypes), 255);
  }

  /** A TCP connection from a device; `openBeforeCapture` leaves out the handshake. */
  tcp(device: Host, server: Host, rng: Rng, serverPort: number, rttUs: number): TcpStream {
    const stream = new TcpStream({
      client: device, server, clientPort: this.ephemeralPort(device), serverPort,
      clientIsn: rng.int(0, 0xffffffff), serverIsn: rng.int(0, 0xffffffff), serverAckDelayUs: rttUs,
      serverTtl: server.mac.equals(this.gateway.mac) ? REMOTE_TTL : 64,
    });
    this.streams.push(stream);
    return stream;
  }

  /**
   * Opens TLS to `address`:443 with SNI `serverName` at `timeUs`: handshake, ClientHello, the server's
   * flight, the client's Finished. Returns the stream and when application data may flow.
   */
  tls(device: Host, rng: Rng, serverName: string, address: string, timeUs: number): { stream: TcpStream; readyUs: number; rttUs: number } {
    const rttUs = rng.int(15000, 60000);
    const stream = this.tcp(device, this.remote(address), rng, 443, rttUs);
    const hello = clientHelloRecord(rng, serverName);
    let t = stream.open(timeUs);
    t = stream.write('up', t, hello);
    t = stream.write('down', t + rttUs, serverFlight(rng, hello, rng.int(2500, 4500)));
    t = stream.write('up', t + rng.int(1000, 4000), clientFinished(rng));
    return { stream, readyUs: t + 1000, rttUs };
  }

  /** Looks a name up, then one HTTPS request and response over a fresh connection; returns the end time. */
  https(device: Host, rng: Rng, serverName: string, timeUs: number, upBytes: number, downBytes: number): number {
    const { address, readyUs } = this.lookup(device, rng, timeUs, serverName);
    const session = this.tls(device, rng, serverName, address, readyUs + 500);
    let t = session.stream.write('up', session.readyUs, applicationData(rng, upBytes));
    t = this.download(session.stream, rng, t + session.rttUs, downBytes);
    session.stream.close(t + rng.int(50_000, 2_000_000));
    return t;
  }

  /** A server's answer of `bytes` in 16-kB records written back to back. */
  download(stream: TcpStream, rng: Rng, timeUs: number, bytes: number): number {
    let t = timeUs;
    for (let left = bytes; left > 0;) {
      const size = left - 16384 < 22 ? left : 16384;
      t = stream.write('down', t, applicationData(rng, Math.max(22, size)));
      left -= size;
    }
    return t;
  }

  /** A plain HTTP GET with a small response (connectivity checks); returns the end time. */
  http(device: Host, rng: Rng, host: string, path: string, timeUs: number, response: string): number {
    const { address, readyUs } = this.lookup(device, rng, timeUs, host);
    const rttUs = rng.int(10000, 40000);
    const stream = this.tcp(device, this.remote(address), rng, 80, rttUs);
    let t = stream.open(readyUs + 300);
    t = stream.write('up', t, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: Dalvik/2.1.0 (Linux; U; Android 9)\r\nAccept-Encoding: gzip\r\n\r\n`, 'latin1'));
    t = stream.write('down', t + rttUs, Buffer.from(response, 'latin1'));
    stream.close(t + rng.int(1000, 20000));
    return t;
  }

  /** Every frame, TCP streams included, in capture order and within the capture's time window. */
  frames(): Array<{ timeUs: number; frame: Buffer }> {
    for (const stream of this.streams) stream.flush(this.timeline);
    this.streams.length = 0;
    return this.timeline.sorted().filter((f) => f.timeUs >= this.startUs && f.timeUs <= this.endUs);
  }
}
