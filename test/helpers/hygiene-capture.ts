/**
 * A GENERATED capture (none of the real captures has these) with one device per network hygiene finding
 * kind, and negative controls beside them. Built packet by packet here; tests read it with tshark first
 * (the oracle says each packet is what it claims to be) and then with earshot.
 *
 * LAN 192.168.1.0/24: the router 192.168.1.1 (02:00:00:00:00:01) answers DNS and is the UPnP/NAT-PMP
 * gateway. Device 192.168.1.N has MAC 02:11:00:00:00:NN (NN = N in decimal digits).
 */
import { writeFileSync } from 'node:fs';
import { classicPcap, type SyntheticPacket } from './capture-files.js';
import { ipv4Packet, tcpSegment, udpDatagram } from './decode-test-support.js';
import { dhcpRequest } from './flood.js';

export const ROUTER_MAC = '02:00:00:00:00:01';
export const ROUTER_IP = '192.168.1.1';
export const deviceMac = (n: number) => `02:11:00:00:00:${String(n).padStart(2, '0')}`;
export const deviceIp = (n: number) => `192.168.1.${n}`;

/** What each device of the capture does, and the finding kind it must raise (null: none). */
export const HYGIENE_DEVICES: Array<{ n: number; does: string; kind: string | null }> = [
  { n: 10, does: 'SSDP M-SEARCH for an InternetGatewayDevice, then an HTTP POST AddPortMapping to the router', kind: 'port-mapping' },
  { n: 11, does: 'NAT-PMP external address request, then a NAT-PMP map TCP 8080 request', kind: 'port-mapping' },
  { n: 12, does: 'PCP MAP request for TCP 22', kind: 'port-mapping' },
  { n: 13, does: 'accepts a TCP connection from 198.51.100.7 on port 8080 (SYN, SYN-ACK)', kind: 'inbound-connection' },
  { n: 14, does: 'plain DNS to the router (the LAN resolver): no finding', kind: null },
  { n: 15, does: 'plain DNS to 8.8.8.8', kind: 'dns-public-resolver' },
  { n: 16, does: 'plain DNS to 203.0.113.53 while the router answers DNS', kind: 'dns-bypass' },
  { n: 17, does: 'TCP to 1.1.1.1:853 (DNS over TLS)', kind: 'dns-over-tls' },
  { n: 18, does: 'TLS 1.3 ClientHello with SNI dns.google to 142.250.74.46:443', kind: 'dns-over-https' },
  { n: 19, does: 'HTTP GET with Host example.com to 93.184.216.34:80', kind: 'plain-http' },
  { n: 20, does: 'TLS 1.0 ClientHello (no supported_versions) to old.example.net', kind: 'old-tls' },
  { n: 21, does: 'SMTP to 203.0.113.25:25: EHLO, MAIL FROM, never STARTTLS', kind: 'plaintext-protocol' },
  { n: 22, does: 'SMTP to 203.0.113.25:25 with STARTTLS, then a TLS 1.2 ClientHello: no finding', kind: null },
  { n: 23, does: 'the assistant (config devices: assistant true), HTTPS to 52.94.233.1 (TLS 1.2 ClientHello)', kind: 'assistant-shares-segment' },
  { n: 24, does: 'a phone: DHCP host name android-5f2e9a, HTTPS to 142.250.74.47 (TLS 1.3)', kind: null },
];

/** A MAC written aa:bb:cc:dd:ee:ff as its six bytes. */
export function macBytes(text: string): Buffer {
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

function frame(src: string, dst: string, ip: Buffer): Buffer {
  return Buffer.concat([macBytes(dst), macBytes(src), Buffer.from([0x08, 0x00]), ip]);
}

/** A TLS ClientHello record: `version` the legacy one, `supported` the supported_versions list (none when empty). */
export function clientHello(serverName: string, version: number, supported: number[] = []): Buffer {
  const name = Buffer.from(serverName, 'ascii');
  const sni = Buffer.alloc(9 + name.length);
  sni.writeUInt16BE(0, 0);
  sni.writeUInt16BE(5 + name.length, 2);
  sni.writeUInt16BE(3 + name.length, 4);
  sni[6] = 0;
  sni.writeUInt16BE(name.length, 7);
  name.copy(sni, 9);
  const extensions = [sni];
  if (supported.length > 0) {
    const sv = Buffer.alloc(5 + supported.length * 2);
    sv.writeUInt16BE(43, 0);
    sv.writeUInt16BE(1 + supported.length * 2, 2);
    sv[4] = supported.length * 2;
    supported.forEach((v, i) => sv.writeUInt16BE(v, 5 + i * 2));
    extensions.push(sv);
  }
  const ext = Buffer.concat(extensions);
  const body = Buffer.concat([
    Buffer.from([version >> 8, version & 255]), Buffer.alloc(32, 7), Buffer.from([0]),
    Buffer.from([0, 2, 0x00, 0x2f]), Buffer.from([1, 0]), Buffer.from([ext.length >> 8, ext.length & 255]), ext,
  ]);
  const handshake = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 255]), body]);
  return Buffer.concat([Buffer.from([0x16, 3, 1, handshake.length >> 8, handshake.length & 255]), handshake]);
}

function dnsQuery(name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([Buffer.from([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;

/** The packets, in time order from 2024-05-01T10:00:00Z, one every 10 ms. */
export function hygienePackets(): Buffer[] {
  const out: Buffer[] = [];
  const up = (n: number, dst: string, transport: number, payload: Buffer) => out.push(frame(deviceMac(n), ROUTER_MAC, ipv4Packet(deviceIp(n), dst, transport, payload)));
  const down = (n: number, src: string, transport: number, payload: Buffer) => out.push(frame(ROUTER_MAC, deviceMac(n), ipv4Packet(src, deviceIp(n), transport, payload)));
  /** A TCP connection from device n: SYN, SYN-ACK, then the client's payload segments. */
  const tcp = (n: number, server: string, port: number, segments: Buffer[]) => {
    const sport = 40000 + n;
    up(n, server, 6, tcpSegment(sport, port, 1000, SYN, Buffer.alloc(0)));
    down(n, server, 6, tcpSegment(port, sport, 5000, SYN | ACK, Buffer.alloc(0)));
    let seq = 1001;
    for (const s of segments) {
      up(n, server, 6, tcpSegment(sport, port, seq, PSH | ACK, s));
      seq += s.length;
    }
  };
  // 10: UPnP IGD search, then AddPortMapping
  up(10, '239.255.255.250', 17, udpDatagram(50000, 1900, Buffer.from(
    'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 2\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n')));
  const soap = '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
    '<u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewRemoteHost></NewRemoteHost><NewExternalPort>8443</NewExternalPort>' +
    '<NewProtocol>TCP</NewProtocol><NewInternalPort>8443</NewInternalPort><NewInternalClient>192.168.1.10</NewInternalClient><NewEnabled>1</NewEnabled>' +
    '<NewPortMappingDescription>speaker remote</NewPortMappingDescription><NewLeaseDuration>0</NewLeaseDuration></u:AddPortMapping></s:Body></s:Envelope>\r\n';
  tcp(10, ROUTER_IP, 5000, [Buffer.from(`POST /ctl/IPConn HTTP/1.1\r\nHost: 192.168.1.1:5000\r\nContent-Type: text/xml; charset="utf-8"\r\n` +
    `SOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"\r\nContent-Length: ${soap.length}\r\n\r\n${soap}`)]);
  // 11: NAT-PMP (RFC 6886): external address, then map TCP 8080 -> 8080 for 7200 s
  up(11, ROUTER_IP, 17, udpDatagram(5350, 5351, Buffer.from([0, 0])));
  const natpmp = Buffer.alloc(12);
  natpmp[1] = 2;
  natpmp.writeUInt16BE(8080, 4);
  natpmp.writeUInt16BE(8080, 6);
  natpmp.writeUInt32BE(7200, 8);
  up(11, ROUTER_IP, 17, udpDatagram(5350, 5351, natpmp));
  // 12: PCP (RFC 6887) MAP TCP 22, lifetime 3600
  const pcp = Buffer.alloc(60);
  pcp[0] = 2;
  pcp[1] = 1;
  pcp.writeUInt32BE(3600, 4);
  Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 12]).copy(pcp, 8);
  pcp.fill(9, 24, 36); // nonce
  pcp[36] = 6;
  pcp.writeUInt16BE(22, 40);
  pcp.writeUInt16BE(2222, 42);
  up(12, ROUTER_IP, 17, udpDatagram(5350, 5351, pcp));
  // 13: a connection from the internet, answered
  down(13, '198.51.100.7', 6, tcpSegment(51000, 8080, 77, SYN, Buffer.alloc(0)));
  up(13, '198.51.100.7', 6, tcpSegment(8080, 51000, 900, SYN | ACK, Buffer.alloc(0)));
  // 14: the LAN's resolver; 15: Google Public DNS; 16: another server on the internet
  up(14, ROUTER_IP, 17, udpDatagram(53000, 53, dnsQuery('example.org')));
  up(15, '8.8.8.8', 17, udpDatagram(53001, 53, dnsQuery('example.org')));
  up(16, '203.0.113.53', 17, udpDatagram(53002, 53, dnsQuery('example.org')));
  // 17: DNS over TLS; 18: DNS over HTTPS by name
  tcp(17, '1.1.1.1', 853, [clientHello('one.one.one.one', 0x0303, [0x0304, 0x0303])]);
  tcp(18, '142.250.74.46', 443, [clientHello('dns.google', 0x0303, [0x0304, 0x0303])]);
  // 19: plain HTTP; 20: TLS 1.0 only
  tcp(19, '93.184.216.34', 80, [Buffer.from('GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n')]);
  tcp(20, '93.184.216.35', 443, [clientHello('old.example.net', 0x0301)]);
  // 21: SMTP in clear; 22: SMTP that starts TLS
  tcp(21, '203.0.113.25', 25, [Buffer.from('EHLO speaker\r\n'), Buffer.from('MAIL FROM:<speaker@example.com>\r\n')]);
  tcp(22, '203.0.113.25', 25, [Buffer.from('EHLO speaker\r\n'), Buffer.from('STARTTLS\r\n'), clientHello('mail.example.com', 0x0303)]);
  // 23: the assistant; 24: a phone that says so in DHCP
  tcp(23, '52.94.233.1', 443, [clientHello('avs-alexa-eu.amazon.com', 0x0303)]);
  out.push(frame(deviceMac(24), 'ff:ff:ff:ff:ff:ff', ipv4Packet('0.0.0.0', '255.255.255.255', 17, udpDatagram(68, 67, dhcpRequest(parseInt(deviceMac(24).replace(/:/g, ''), 16), 'android-5f2e9a', 'android-dhcp-14')))));
  tcp(24, '142.250.74.47', 443, [clientHello('www.google.com', 0x0303, [0x0304])]);
  return out;
}

/** An HTTP GET from device n to `server`:80 with this Host header (SYN, SYN-ACK, request). */
export function httpGetPackets(n: number, server: string, host: string): Buffer[] {
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 'latin1');
  return [
    frame(deviceMac(n), ROUTER_MAC, ipv4Packet(deviceIp(n), server, 6, tcpSegment(41000, 80, 1, SYN, Buffer.alloc(0)))),
    frame(ROUTER_MAC, deviceMac(n), ipv4Packet(server, deviceIp(n), 6, tcpSegment(80, 41000, 9, SYN | ACK, Buffer.alloc(0)))),
    frame(deviceMac(n), ROUTER_MAC, ipv4Packet(deviceIp(n), server, 6, tcpSegment(41000, 80, 2, PSH | ACK, request))),
  ];
}

/** Writes the capture to `path` (classic pcap, Ethernet), with `extra` packets after the rest. */
export function writeHygieneCapture(path: string, extra: Buffer[] = []): void {
  const start = Date.parse('2024-05-01T10:00:00Z') / 1000;
  const packets: SyntheticPacket[] = [...hygienePackets(), ...extra].map((data, i) => ({ seconds: start + Math.floor(i / 100), fraction: (i % 100) * 10_000, data }));
  writeFileSync(path, classicPcap(packets));
}

/** earshot's config for the capture: the assistant is named in config (it has no voice traffic here). */
export const HYGIENE_CONFIG = { devices: { [deviceMac(23)]: { assistant: true, name: 'Kitchen speaker' } } };
