/**
 * tshark as the oracle: what Wireshark's dissectors read from a capture, aggregated into the shapes
 * earshot reports (per-flow counters, DNS answers, SNIs) by code that shares nothing with earshot.
 */
import { execFileSync } from 'node:child_process';

/** Runs tshark; a capture cut short makes tshark exit 2 after printing what it read, which we keep. */
export function tshark(args: string[]): string {
  try {
    return execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    if (e.status === 2 && /cut short in the middle of a packet/.test(e.stderr ?? '')) return e.stdout ?? '';
    throw err;
  }
}

/** Per-direction counters of one flow, keyed by the sending endpoint "addr|port". */
export interface OracleFlow {
  proto: 'tcp' | 'udp';
  /** sender endpoint -> packets, bytes (frame.len) */
  dirs: Map<string, { packets: number; bytes: number }>;
}

/** A direction-free key of a flow: protocol and both endpoints in sorted order. */
export function flowKey(proto: string, a: string, aPort: number, b: string, bPort: number): string {
  const x = `${a}|${aPort}`;
  const y = `${b}|${bPort}`;
  return x < y ? `${proto} ${x} ${y}` : `${proto} ${y} ${x}`;
}

/** What one tshark pass printed of each frame: the fields the flows, totals and SNIs are made from. */
interface OracleFrame {
  /** The first occurrence of each flow field (frame.len ... tcp.hdr_len, in FRAME_FIELDS order). */
  fields: string[];
  /** Every TLS handshake type in the frame. */
  handshakeTypes: string[];
  /** The first SNI in the frame ('' when none). */
  sni: string;
}

const FRAME_FIELDS = [
  'frame.len', 'frame.protocols',
  'ip.src', 'ip.dst', 'ipv6.src', 'ipv6.dst',
  'tcp.srcport', 'tcp.dstport', 'udp.srcport', 'udp.dstport',
  'ip.id', 'ip.frag_offset', 'ip.flags.mf',
  'ipv6.fraghdr.ident', 'ipv6.fraghdr.offset', 'ipv6.fraghdr.more', 'tcp.hdr_len',
];

/** Between a field's occurrences: a character no address, number or host name in a capture holds. */
const AGGREGATOR = '\u0001';

/** The last file's frames: a test asks for its totals, flows and SNIs one after another. */
let lastFrames: { file: string; frames: OracleFrame[] } | null = null;

/**
 * Every frame of `file` in one tshark pass (tshark's start-up, ~0.5 s, is most of a small capture's
 * time): IP fragments are not reassembled (as earshot does not), so each fragment is its own frame.
 */
function oracleFrames(file: string): OracleFrame[] {
  if (lastFrames?.file === file) return lastFrames.frames;
  const out = tshark([
    '-r', file, '-o', 'ip.defragment:FALSE', '-o', 'ipv6.defragment:FALSE',
    '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', `aggregator=${AGGREGATOR}`,
    ...[...FRAME_FIELDS, 'tls.handshake.type', 'tls.handshake.extensions_server_name'].flatMap((f) => ['-e', f]),
  ]);
  const frames: OracleFrame[] = [];
  for (const line of out.split('\n')) {
    if (!line) continue;
    const all = line.split('\t');
    const f = all.map((value) => value.split(AGGREGATOR)[0]);
    frames.push({ fields: f.slice(0, FRAME_FIELDS.length), handshakeTypes: (all[FRAME_FIELDS.length] ?? '').split(AGGREGATOR), sni: f[FRAME_FIELDS.length + 1] ?? '' });
  }
  lastFrames = { file, frames };
  return frames;
}

/**
 * Per-flow packets and bytes as tshark reads them. The transport is the first one after the outer IP
 * header (frame.protocols); fragments are not reassembled, and a non-first fragment is counted to the
 * flow of its datagram's first fragment (matched on addresses, IP id and protocol), as earshot does.
 */
export function tsharkFlows(file: string): Map<string, OracleFlow> {
  interface Row { len: number; proto: string; src: string; dst: string; sport: number; dport: number; fragKey: string | null; firstFrag: boolean }
  const rows: Row[] = [];
  const fragPorts = new Map<string, { sport: number; dport: number }>();
  for (const { fields: f } of oracleFrames(file)) {
    const protocols = f[1].split(':');
    const ipAt = protocols.findIndex((p) => p === 'ip' || p === 'ipv6');
    if (ipAt < 0) continue;
    let transport = '';
    for (let i = ipAt + 1; i < protocols.length; i++) {
      if (protocols[i].startsWith('ipv6.')) continue;
      transport = protocols[i];
      break;
    }
    const v6 = protocols[ipAt] === 'ipv6';
    const src = v6 ? f[4] : f[2];
    const dst = v6 ? f[5] : f[3];
    let fragKey: string | null = null;
    let firstFrag = false;
    if (!v6 && f[10] && (Number(f[11]) > 0 || f[12] === '1' || f[12] === 'True')) {
      fragKey = `${src} ${dst} ${f[10]}`;
      firstFrag = Number(f[11]) === 0;
    } else if (v6 && f[13]) {
      fragKey = `${src} ${dst} ${f[13]}`;
      firstFrag = Number(f[14]) === 0;
    }
    let proto = transport === 'tcp' || transport === 'udp' ? transport : '';
    let sport = -1;
    let dport = -1;
    // a TCP header whose length field is below 20 is damaged: earshot skips it as a decode error
    if (proto === 'tcp' && Number(f[16]) < 20) continue;
    if (proto === 'tcp') [sport, dport] = [Number(f[6]), Number(f[7])];
    if (proto === 'udp') [sport, dport] = [Number(f[8]), Number(f[9])];
    if (fragKey && firstFrag && proto) fragPorts.set(fragKey, { sport, dport });
    if (fragKey && !firstFrag) proto = 'frag';
    rows.push({ len: Number(f[0]), proto, src, dst, sport, dport, fragKey: fragKey && proto ? `${fragKey}` : null, firstFrag });
  }
  // the first fragment's transport decides the protocol of the datagram's other fragments
  const fragProto = new Map<string, string>();
  for (const r of rows) if (r.fragKey && r.firstFrag && (r.proto === 'tcp' || r.proto === 'udp')) fragProto.set(r.fragKey, r.proto);
  const flows = new Map<string, OracleFlow>();
  for (const r of rows) {
    let { proto, sport, dport } = r;
    if (proto === 'frag' && r.fragKey) {
      const ports = fragPorts.get(r.fragKey);
      const p = fragProto.get(r.fragKey);
      if (!ports || !p) continue;
      proto = p;
      sport = ports.sport;
      dport = ports.dport;
    }
    if (proto !== 'tcp' && proto !== 'udp') continue;
    const key = flowKey(proto, r.src, sport, r.dst, dport);
    let flow = flows.get(key);
    if (!flow) {
      flow = { proto, dirs: new Map() };
      flows.set(key, flow);
    }
    const dirKey = `${r.src}|${sport}`;
    const d = flow.dirs.get(dirKey) ?? { packets: 0, bytes: 0 };
    d.packets++;
    d.bytes += r.len;
    flow.dirs.set(dirKey, d);
  }
  return flows;
}

/**
 * Packets sent from the unspecified address (0.0.0.0, ::: DHCP before an address), per sender MAC and
 * 5-tuple: "mac proto src|sport dst|dport" -> packets, bytes (frame.len).
 */
export function tsharkUnspecifiedSenders(file: string): Map<string, { packets: number; bytes: number }> {
  const out = tshark([
    '-r', file, '-o', 'ip.defragment:FALSE', '-Y', '(ip.src == 0.0.0.0 || ipv6.src == ::) && (udp || tcp) && !icmp && !icmpv6',
    '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=f',
    ...['eth.src', 'ip.src', 'ipv6.src', 'ip.dst', 'ipv6.dst', 'udp.srcport', 'udp.dstport', 'tcp.srcport', 'tcp.dstport', 'frame.len'].flatMap((f) => ['-e', f]),
  ]);
  const senders = new Map<string, { packets: number; bytes: number }>();
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [mac, src4, src6, dst4, dst6, usport, udport, tsport, tdport, len] = line.split('\t');
    const proto = usport ? 'udp' : 'tcp';
    const key = `${mac} ${proto} ${src4 || src6}|${usport || tsport} ${dst4 || dst6}|${udport || tdport}`;
    const s = senders.get(key) ?? { packets: 0, bytes: 0 };
    s.packets++;
    s.bytes += Number(len);
    senders.set(key, s);
  }
  return senders;
}

/** Total packets and frame bytes in the file. */
export function tsharkTotals(file: string): { packets: number; bytes: number } {
  let packets = 0;
  let bytes = 0;
  for (const { fields } of oracleFrames(file)) {
    packets++;
    bytes += Number(fields[0]);
  }
  return { packets, bytes };
}

/** One DNS answer as "name type data ttl". */
export type OracleDns = string;

/**
 * A/AAAA/CNAME answers of DNS and mDNS responses (UDP/TCP ports 53 and 5353; for mDNS also the
 * additional section), from tshark's JSON
 * output so each answer's name, type, data and TTL stay together. Responses quoted inside ICMP errors
 * are not answers anyone received, so they are left out. `options`: tshark preferences (-o name:value).
 */
export function tsharkDnsAnswers(file: string, options: string[] = []): OracleDns[] {
  const json = tshark(['-r', file, ...options, '-Y', 'dns.flags.response == 1 && (udp.port == 53 || tcp.port == 53 || udp.port == 5353) && !icmp && !icmpv6', '-T', 'json', '-J', 'dns mdns']);
  const packets = JSON.parse(json || '[]') as Array<{ _source: { layers: Record<string, unknown> } }>;
  const answers: OracleDns[] = [];
  const collect = (dnsLayer: unknown, sections: string[]) => {
    const layers = Array.isArray(dnsLayer) ? dnsLayer : [dnsLayer];
    for (const layer of layers) {
      for (const section of sections) {
      const ans = (layer as Record<string, unknown>)?.[section] as Record<string, Record<string, string>> | undefined;
      if (!ans) continue;
      for (const rec of Object.values(ans)) {
        const type = rec['dns.resp.type'];
        const name = rec['dns.resp.name'];
        const ttl = rec['dns.resp.ttl'];
        // the data field must be there too: tshark's JSON lists an NSEC record's type bitmap under the
        // same key as the record type, so an NSEC can look like an AAAA without an address
        if (type === '1' && rec['dns.a']) answers.push(`${name} A ${rec['dns.a']} ${ttl}`);
        else if (type === '28' && rec['dns.aaaa']) answers.push(`${name} AAAA ${rec['dns.aaaa']} ${ttl}`);
        else if (type === '5' && rec['dns.cname']) answers.push(`${name} CNAME ${rec['dns.cname']} ${ttl}`);
      }
      }
    }
  };
  for (const p of packets) {
    const layers = p._source.layers;
    // mDNS hosts announce their addresses in the additional section: earshot reads it for mDNS only
    if (layers.mdns) collect(layers.mdns, ['Answers', 'Additional records']);
    else collect(layers.dns, ['Answers']);
  }
  return answers.sort();
}

/** SNIs of ClientHellos (in TCP): "client|port server|port" -> host name. */
export function tsharkSnis(file: string): Map<string, string> {
  const snis = new Map<string, string>();
  for (const { fields: f, handshakeTypes, sni } of oracleFrames(file)) {
    if (!handshakeTypes.includes('1') || sni === '') continue;
    if (!f[6]) continue; // QUIC and DTLS ClientHellos are not TCP
    snis.set(`${f[2] || f[4]}|${f[6]} ${f[3] || f[5]}|${f[7]}`, sni);
  }
  return snis;
}

/**
 * What each client asked DNS for to learn each address: "client|address" -> the query names (the
 * question of the response that carried the address, so CNAME chains lead back to what was asked).
 */
export function tsharkAskedNames(file: string): Map<string, Set<string>> {
  const out = tshark([
    '-r', file, '-Y', 'dns.flags.response == 1 && (udp.srcport == 53 || tcp.srcport == 53) && !icmp && !icmpv6',
    '-T', 'fields', '-E', 'separator=\t', '-E', 'aggregator=,', '-E', 'occurrence=a',
    '-e', 'ip.dst', '-e', 'ipv6.dst', '-e', 'dns.qry.name', '-e', 'dns.a', '-e', 'dns.aaaa',
  ]);
  const asked = new Map<string, Set<string>>();
  for (const line of out.split('\n')) {
    if (!line) continue;
    const [v4, v6, qname, a, aaaa] = line.split('\t');
    const client = (v4 || v6).split(',')[0];
    const name = qname.split(',')[0];
    for (const address of [...(a ? a.split(',') : []), ...(aaaa ? aaaa.split(',') : [])]) {
      const key = `${client}|${address}`;
      const set = asked.get(key) ?? new Set<string>();
      set.add(name);
      asked.set(key, set);
    }
  }
  return asked;
}

/**
 * Which IPv4 addresses each MAC sent TCP or UDP frames from, and which it received them at from an
 * address outside RFC 1918 (a router delivering to it): "mac" -> addresses.
 */
export function tsharkMacAddresses(file: string): { sent: Map<string, Set<string>>; receivedFromOutside: Map<string, Set<string>> } {
  const out = tshark(['-r', file, '-Y', 'ip && (tcp || udp) && !icmp', '-T', 'fields', '-E', 'separator=\t', '-e', 'eth.src', '-e', 'eth.dst', '-e', 'ip.src', '-e', 'ip.dst']);
  const sent = new Map<string, Set<string>>();
  const receivedFromOutside = new Map<string, Set<string>>();
  const add = (map: Map<string, Set<string>>, mac: string, ip: string) => {
    const set = map.get(mac) ?? new Set<string>();
    set.add(ip);
    map.set(mac, set);
  };
  for (const line of out.split('\n')) {
    const [src, dst, ipSrc, ipDst] = line.split('\t');
    // tunnelled frames (GTP, IP in IP) carry several addresses: the outer ones are the frame's
    if (!src || !ipSrc) continue;
    const from = ipSrc.split(',')[0];
    const to = ipDst.split(',')[0];
    add(sent, src, from);
    if (!isRfc1918(from)) add(receivedFromOutside, dst, to);
  }
  return { sent, receivedFromOutside };
}

export function isRfc1918(ip: string): boolean {
  return /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(ip);
}

/** The home's own addresses, as a reader of the packets tells them: private, link-local, multicast, broadcast. */
export function isHomeAddress(ip: string): boolean {
  return isRfc1918(ip) || /^(169\.254\.|22[4-9]\.|23\d\.|255\.255\.255\.255$)/.test(ip) || /^(fe[89ab]|f[cd]|ff)/i.test(ip);
}

/**
 * What one MAC sent in TCP/UDP frames over IPv4 or IPv6 (frame bytes), per address it sent them to. A TCP
 * header shorter than 20 bytes is damaged and not counted (earshot skips it as a decode error); IP
 * fragments are not reassembled, and a non-first fragment (no ports) is not counted: use it on captures
 * without fragmented TCP/UDP.
 */
export function tsharkSentByMac(file: string, mac: string): Array<{ peer: string; bytes: number }> {
  const out = tshark(['-r', file, '-o', 'ip.defragment:FALSE', '-o', 'ipv6.defragment:FALSE', '-Y', `eth.src == ${mac} && (ip || ipv6) && ((tcp && tcp.hdr_len >= 20) || udp) && !icmp && !icmpv6`,
    '-T', 'fields', '-E', 'separator=\t', '-e', 'ip.dst', '-e', 'ipv6.dst', '-e', 'frame.len']);
  const sent = new Map<string, number>();
  for (const line of out.split('\n')) {
    const [ip4Dst, ip6Dst, len] = line.split('\t');
    // tunnelled frames (GTP, IP in IP) carry several addresses: the outer ones are the frame's
    const to = (ip4Dst || ip6Dst || '').split(',')[0];
    if (!to) continue;
    sent.set(to, (sent.get(to) ?? 0) + Number(len));
  }
  return [...sent].map(([peer, bytes]) => ({ peer, bytes }));
}

/**
 * The protocols tshark's dissectors found in each TCP/UDP conversation (frame.protocols after the
 * transport: "dns", "mdns", "ntp", ...), by flowKey. Non-first IP fragments (no ports) are left out.
 */
export function tsharkFlowProtocols(file: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const { fields: f } of oracleFrames(file)) {
    const protocols = f[1].split(':');
    // the outer IP header and the transport right after it (as tsharkFlows)
    const ipAt = protocols.findIndex((p) => p === 'ip' || p === 'ipv6');
    if (ipAt < 0) continue;
    let at = ipAt + 1;
    while (at < protocols.length && protocols[at].startsWith('ipv6.')) at++;
    const proto = protocols[at];
    if (proto !== 'tcp' && proto !== 'udp') continue;
    const v6 = protocols[ipAt] === 'ipv6';
    const [sport, dport] = proto === 'tcp' ? [f[6], f[7]] : [f[8], f[9]];
    if (!sport || !dport) continue;
    const key = flowKey(proto, v6 ? f[4] : f[2], Number(sport), v6 ? f[5] : f[3], Number(dport));
    const set = out.get(key) ?? new Set<string>();
    for (const p of protocols.slice(at + 1)) set.add(p);
    out.set(key, set);
  }
  return out;
}

/**
 * What an assistant uploads is what left the home: the bytes tshark shows its MAC sending to addresses
 * beyond the home. What it sent to the home network (another Echo, the router, multicast) is counted
 * apart: every byte tshark shows it sending to home addresses (a LAN flow counts for both its devices:
 * what it answered too).
 */
export function tsharkUploads(file: string, mac: string): { beyond: number; home: number; to: (peer: string) => number } {
  const sent = tsharkSentByMac(file, mac);
  const sum = (keep: (s: (typeof sent)[number]) => boolean) => sent.filter(keep).reduce((n, s) => n + s.bytes, 0);
  return { beyond: sum((s) => !isHomeAddress(s.peer)), home: sum((s) => isHomeAddress(s.peer)), to: (peer) => sum((s) => s.peer === peer) };
}
