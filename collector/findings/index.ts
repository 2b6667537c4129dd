/**
 * Network hygiene findings: what on the home network weakens it, per device, with the evidence, a
 * severity and what to do (docs/privacy.md, "Network hygiene findings"):
 * - port mappings asked of the router (UPnP IGD AddPortMapping, NAT-PMP, PCP), searches for a router
 *   that maps ports, and connections from the internet accepted into the LAN;
 * - DNS that goes around the home's resolver: plain DNS to public resolvers or (when the LAN has a
 *   resolver of its own) to any other server on the internet, DNS over TLS (853), DNS over HTTPS;
 * - plaintext: HTTP to the internet, ClientHellos offering nothing newer than TLS 1.1, mail, file
 *   transfer, Telnet and MQTT sessions to the internet that never start TLS;
 * - assistants on the same segment as computers and phones (advice).
 *
 * The pipeline calls the hooks below (collector/index.ts); each first tests a number or two (a port
 * table, the flow's side flags) so the flows that matter nothing cost next to nothing. Findings go to
 * the bounded store (store.ts); `onFinding(record, isNew)` tells listeners (events) of a new finding
 * and of one whose severity rose.
 */
import { formatAddr, IPPROTO_TCP, type DecodedPacket } from '../decode/packet.js';
import type { SsdpInfo } from '../decode/ssdp.js';
import type { Flow } from '../flow/flow.js';
import type { Inventory } from '../identify/inventory.js';
import { formatMac, parseMac } from '../mac.js';
import { parseHttpRequest, parsePortMapRequest, startsTls } from './parse.js';
import { buildPublicResolvers, type PublicResolvers } from './resolvers.js';
import { computerEvidence, segmentsOf } from './segment.js';
import { cleanText, FindingStore, SEVERITIES, type Finding, type FindingKind, type FindingRecord, type SavedFinding, type Severity } from './store.js';

export type { FindingKind, FindingRecord, SavedFinding, Severity } from './store.js';
export { FINDING_KINDS, SEVERITIES } from './store.js';

/** Called when a finding appears (isNew) or its severity rises; the record is a copy. */
export type FindingListener = (finding: FindingRecord, isNew: boolean) => void;

export interface FindingsDeps {
  /** Names devices and tells assistants (null with tagging off: no names, no segment advice). */
  inventory: Inventory | null;
  resolvers?: PublicResolvers;
  onFinding?: FindingListener;
}

export interface FindingsStats {
  findings: number;
  findingsDropped: number;
  /** Plaintext sessions (mail, FTP, Telnet, MQTT) not followed because MAX_SESSIONS were followed. */
  findingSessionsDropped: number;
}

// server ports the flow-start hook looks at, as bits
const DNS = 1;
const DOT = 2;
const HTTPS = 4;
const PLAIN = 8;
const WATCH = new Uint8Array(65536);
WATCH[53] = DNS;
WATCH[853] = DOT;
WATCH[443] = HTTPS;
/** Protocols that carry names, logins and messages in clear unless they start TLS. */
const PLAIN_PROTOCOLS: Record<number, string> = { 21: 'FTP', 23: 'Telnet', 25: 'SMTP', 110: 'POP3', 143: 'IMAP', 587: 'SMTP submission', 1883: 'MQTT' };
for (const port of Object.keys(PLAIN_PROTOCOLS)) WATCH[Number(port)] = PLAIN;

/** Most plaintext sessions followed at once (their flows end, and leave, within minutes). */
const MAX_SESSIONS = 1024;
/** Most DNS servers held until the LAN shows a resolver of its own (see dns()). */
const MAX_CANDIDATES = 64;
/** Most local resolvers remembered. */
const MAX_RESOLVERS = 16;
/** Most (assistant, computer) pairs remembered for the segment advice. */
const MAX_PAIRS = 4096;
/**
 * The segment advice is worked out this often (collector time), and whenever findings are listed (the
 * API, the report, doctor). It brings every device's verdict up to date (classify), about 1 ms for 80
 * devices, and a replay's clock runs through days in seconds: every 30 s cost a replay 10 %, hourly 2 %.
 * Daily, its event (onFinding) may come a day late on a collector nobody looks at; it shows at once.
 */
const SEGMENT_EVERY_MS = 24 * 3_600_000;

/** Requests that are plaintext by design and carry no more than a certificate's serial or a probe. */
const BENIGN_HTTP = /\.crl$|^\/(generate_204|gen_204|hotspot-detect\.html|success\.txt|connecttest\.txt|ncsi\.txt|canonical\.html|kindle-wifi\/wifistub\.html)/i;

const ADVICE: Record<FindingKind, string> = {
  'port-mapping': 'A device asked the router to open a port to it from the internet. Turn off UPnP IGD and NAT-PMP/PCP on the router unless something you use needs it (then allow it for that device only), and check the router\'s list of port mappings.',
  'igd-discovery': 'A device looked for a router that opens ports on request (UPnP IGD, NAT-PMP or PCP). Nothing was opened by this alone; turning UPnP and NAT-PMP off on the router makes sure nothing will be.',
  'inbound-connection': 'A connection from the internet reached a device on the LAN: the router forwards that port (a port forward, a UPnP/NAT-PMP mapping, a DMZ host, or no IPv4 NAT). Remove the forward unless you meant it.',
  'dns-public-resolver': 'The device sends its DNS queries to a public resolver, not to the home\'s resolver: a Pi-hole or the router\'s filters do not see them. Redirect outgoing port 53 to your resolver on the router, or block it.',
  'dns-bypass': 'The LAN has its own resolver, but this device asks another server on the internet: its queries go around your filters. Redirect outgoing port 53 to your resolver on the router, or block it.',
  'dns-over-tls': 'The device uses encrypted DNS (DNS over TLS or QUIC, port 853) to a server on the internet: private on the wire, but it bypasses the home\'s resolver and its filters. Block port 853 to the internet if you want every device on your resolver.',
  'dns-over-https': 'The device resolves names over HTTPS with a public resolver: the home\'s resolver and its filters never see those queries. Block the DoH names and addresses (Pi-hole and AdGuard publish lists) if you want every device on your resolver.',
  'plain-http': 'The device talks unencrypted HTTP to the internet: anyone on the path sees the server\'s name and what is sent. Certificate checks (OCSP, CRL) and connectivity probes are plaintext by design; anything else is worth a firmware update or a question to the vendor.',
  'old-tls': 'The device offers nothing newer than TLS 1.1 (or SSL 3.0), which are deprecated (RFC 8996) and weak. Update its firmware; a device that cannot be updated belongs on an isolated network.',
  'plaintext-protocol': 'A mail, file-transfer, Telnet or MQTT session to the internet never started TLS: names, logins and contents crossed the internet in clear. Switch the device to the encrypted port (SMTPS 465, IMAPS 993, MQTT 8883, SFTP) or turn the feature off.',
  'assistant-shares-segment': 'Smart speakers share this network with computers and phones: a compromised speaker could reach them, and they can reach it. Put smart devices on a network of their own (a guest or IoT network, a VLAN) that can reach the internet but not your computers.',
};

const TLS_NAMES: Record<number, string> = { 0x0300: 'SSL 3.0', 0x0301: 'TLS 1.0', 0x0302: 'TLS 1.1' };

/** Builds the findings stage; its hooks are wired into the pipeline by buildCollector. */
export function buildFindings(deps: FindingsDeps) {
  const resolvers = deps.resolvers ?? buildPublicResolvers();
  const inventory = deps.inventory;
  const listener = deps.onFinding;
  const store = new FindingStore(listener ? (f, isNew) => listener(toRecord(f), isNew) : undefined);
  const stats: FindingsStats = { findings: 0, findingsDropped: 0, findingSessionsDropped: 0 };
  const words = new Uint32Array(4);
  /** Open plaintext sessions to the internet: whether the client started TLS. */
  const sessions = new Map<Flow, boolean>();
  /** DNS to non-public servers on the internet, held until the LAN shows a resolver of its own. */
  let candidates: Array<{ mac: number; server: string; timeMs: number; proto: string }> = [];
  const resolverMacs = new Set<number>();
  let localResolver: string | null = null;
  const pairs = new Set<string>();
  let nextSegmentMs = Number.NEGATIVE_INFINITY;
  let clockMs = 0;

  const serverText = (flow: Flow) => formatAddr(flow.ipVersion, flow.serverInto(words));
  const clientText = (flow: Flow) => formatAddr(flow.ipVersion, flow.clientInto(words));
  const protoName = (flow: Flow) => (flow.proto === IPPROTO_TCP ? 'TCP' : 'UDP');
  const add = (kind: FindingKind, severity: Severity, deviceMac: number, subject: string, timeMs: number, title: string, evidence: string) => {
    if (timeMs > clockMs) clockMs = timeMs;
    store.add({ kind, severity, deviceMac, subject, timeMs, title, advice: ADVICE[kind], evidence });
  };

  function toRecord(f: Finding): FindingRecord {
    const d = f.deviceMac >= 0 ? inventory?.describe(f.deviceMac) : undefined;
    return {
      id: f.id, kind: f.kind, severity: f.severity, device: f.deviceMac >= 0 ? formatMac(f.deviceMac) : null,
      deviceName: d ? cleanText(d.name ?? d.model ?? '', 64) || null : null, assistant: d?.assistant ?? false, subject: f.subject,
      firstSeen: new Date(f.firstMs).toISOString(), lastSeen: new Date(f.lastMs).toISOString(), count: f.count,
      title: f.title, evidence: [...f.evidence], evidenceDropped: f.evidenceDropped, advice: f.advice,
    };
  }

  /** Plain DNS (53): to a public resolver, or around the LAN's own resolver; the LAN's resolvers noted. */
  function dns(flow: Flow): void {
    if (flow.bothLocal) {
      // a resolver on the LAN: from now on any other DNS server on the internet is a bypass
      if (localResolver === null) localResolver = serverText(flow);
      if (flow.peerMac !== null && !resolverMacs.has(flow.peerMac) && resolverMacs.size < MAX_RESOLVERS) {
        const mac = flow.peerMac;
        resolverMacs.add(mac);
        // what a resolver asks upstream is its job, not a bypass
        store.removeWhere((f) => (f.kind === 'dns-public-resolver' || f.kind === 'dns-bypass') && f.deviceMac === mac);
      }
      if (candidates.length > 0) {
        const held = candidates;
        candidates = [];
        for (const c of held) if (!resolverMacs.has(c.mac)) bypass(c.mac, c.server, c.timeMs, c.proto);
      }
      return;
    }
    // a query must be seen, not only answers (a recursive resolver's answers from root and authoritative
    // servers, caught without its queries, say nothing about which resolver the LAN's devices use)
    if (flow.packetsUp === 0 || resolverMacs.has(flow.deviceMac)) return;
    const server = serverText(flow);
    const provider = resolvers.providerOf(flow.ipVersion, flow.serverInto(words));
    if (provider !== null) {
      add('dns-public-resolver', 'medium', flow.deviceMac, server, flow.firstMs, `Plain DNS to ${provider} (${server}), not the home's resolver`,
        `${protoName(flow)} ${clientText(flow)}:${flow.clientPort} -> ${server}:53 (${provider})`);
    } else if (localResolver !== null) {
      bypass(flow.deviceMac, server, flow.firstMs, protoName(flow));
    } else if (candidates.length < MAX_CANDIDATES) {
      candidates.push({ mac: flow.deviceMac, server, timeMs: flow.firstMs, proto: protoName(flow) });
    }
  }

  function bypass(mac: number, server: string, timeMs: number, proto: string): void {
    add('dns-bypass', 'medium', mac, server, timeMs, `Plain DNS to ${server} on the internet, around the LAN's resolver (${localResolver})`,
      `${proto} DNS to ${server}:53 while ${localResolver} answers DNS on the LAN`);
  }

  /** The segment advice: each assistant with the computers and phones on its /24. */
  function segments(nowMs: number): void {
    if (inventory === null) return;
    nextSegmentMs = nowMs + SEGMENT_EVERY_MS;
    const devices = inventory.all();
    const computers = new Map<string, Array<{ mac: number; text: string }>>();
    for (const d of devices) {
      const why = computerEvidence(d);
      if (why === null) continue;
      for (const s of segmentsOf(d)) {
        const list = computers.get(s) ?? [];
        if (list.length < 16) list.push({ mac: d.mac, text: `${cleanText(d.name ?? d.model ?? d.macText, 64)} (${d.macText}): ${why}` });
        computers.set(s, list);
      }
    }
    if (computers.size === 0) return;
    for (const a of devices) {
      if (!a.assistant) continue;
      for (const s of segmentsOf(a)) {
        for (const c of computers.get(s) ?? []) {
          const pair = `${a.mac}/${c.mac}/${s}`;
          if (pairs.has(pair) || pairs.size >= MAX_PAIRS) continue;
          pairs.add(pair);
          add('assistant-shares-segment', 'info', a.mac, s, Math.max(a.lastSeenMs, 0), `Assistant on ${s} with computers or phones`, `shares ${s} with ${c.text}`);
        }
      }
    }
  }

  return {
    /** A flow began (after its first packet): DNS, DoT, DoH by address, plaintext sessions. */
    onFlowStart(flow: Flow): void {
      const watch = WATCH[flow.serverPort];
      if (watch === 0 || !flow.hasLocal || !flow.deviceIsClient) return;
      if (watch === DNS) {
        dns(flow);
        return;
      }
      if (flow.bothLocal) return;
      if (watch === DOT) {
        const server = serverText(flow);
        const provider = resolvers.providerOf(flow.ipVersion, flow.serverInto(words));
        add('dns-over-tls', 'medium', flow.deviceMac, server, flow.firstMs, `Encrypted DNS (port 853) to ${provider ?? server}, around the home's resolver`,
          `${flow.proto === IPPROTO_TCP ? 'DNS over TLS' : 'DNS over QUIC'} to ${server}:853${provider ? ` (${provider})` : ''}`);
      } else if (watch === HTTPS) {
        const provider = resolvers.providerOf(flow.ipVersion, flow.serverInto(words));
        if (provider === null) return;
        const server = serverText(flow);
        add('dns-over-https', 'medium', flow.deviceMac, server, flow.firstMs, `DNS over HTTPS to ${provider}, around the home's resolver`,
          `${protoName(flow)} ${server}:443 is an address of ${provider}'s DNS service`);
      } else if (flow.proto === IPPROTO_TCP) {
        if (sessions.size >= MAX_SESSIONS) stats.findingSessionsDropped++;
        else sessions.set(flow, false);
      }
    },

    /** A flow ended: connections from the internet, and plaintext sessions that never started TLS. */
    onFlowEnd(flow: Flow): void {
      if (!flow.deviceIsClient && flow.proto === IPPROTO_TCP && flow.sawSyn && flow.hasLocal && !flow.bothLocal) {
        const answered = flow.packetsDown > 0;
        const server = serverText(flow);
        add('inbound-connection', answered ? 'high' : 'medium', flow.deviceMac, `tcp/${flow.serverPort}`, flow.firstMs,
          `Connection from the internet to TCP port ${flow.serverPort}${answered ? ', answered' : ''}`,
          `${clientText(flow)}:${flow.clientPort} -> ${server}:${flow.serverPort}, ${answered ? `answered (${flow.packetsDown} packets back)` : 'no answer seen'}`);
        return;
      }
      if (sessions.size === 0) return;
      const upgraded = sessions.get(flow);
      if (upgraded === undefined) return;
      sessions.delete(flow);
      if (upgraded || flow.sni !== null || flow.sniSegments === 0) return;
      const protocol = PLAIN_PROTOCOLS[flow.serverPort];
      add('plaintext-protocol', protocol === 'Telnet' || protocol === 'FTP' ? 'high' : 'medium', flow.deviceMac, protocol, flow.firstMs,
        `${protocol} to the internet without TLS`, `${protocol} session to ${serverText(flow)}:${flow.serverPort} never started TLS (${flow.bytesUp} bytes sent)`);
    },

    /** A ClientHello named its server: DNS over HTTPS by name. */
    onSni(flow: Flow, name: string): void {
      if (!flow.hasLocal || flow.bothLocal || !flow.deviceIsClient || flow.serverPort === 853) return;
      const provider = resolvers.providerOfName(name);
      if (provider === null) return;
      add('dns-over-https', 'medium', flow.deviceMac, cleanText(name, 100), flow.firstMs, `DNS over HTTPS to ${provider}, around the home's resolver`,
        `${protoName(flow)} ${serverText(flow)}:${flow.serverPort} with server name ${name} (${provider})`);
    },

    /** A whole ClientHello was read over TCP; `version` is the newest it offers (0x0303 is TLS 1.2). */
    onClientHello(flow: Flow, version: number): void {
      if (version >= 0x0303 || version === 0) return;
      if (sessions.size > 0 && sessions.has(flow)) sessions.set(flow, true);
      const tls = TLS_NAMES[version] ?? `TLS version 0x${version.toString(16)}`;
      const mac = flow.deviceIsClient ? flow.deviceMac : -1;
      add('old-tls', version <= 0x0300 ? 'high' : 'medium', mac, '', flow.firstMs, `TLS older than 1.2 offered (${tls})`,
        `${tls} ClientHello to ${flow.sni ?? serverText(flow)}:${flow.serverPort}`);
    },

    /**
     * A client segment of a TCP flow that is not (yet) TLS, `index` counting them from 0 (only the first
     * few come): HTTP requests (plain HTTP, UPnP AddPortMapping), STARTTLS.
     */
    onPlaintext(flow: Flow, p: DecodedPacket, index: number): void {
      if (sessions.size > 0 && sessions.get(flow) === false && startsTls(p.payloadBuf, p.payloadOffset, p.payloadLength)) {
        sessions.set(flow, true);
        return;
      }
      if (index !== 0) return;
      const req = parseHttpRequest(p.payloadBuf, p.payloadOffset, p.payloadLength);
      if (req === null) return;
      const mac = flow.deviceIsClient ? flow.deviceMac : -1;
      const server = `${serverText(flow)}:${flow.serverPort}`;
      if (req.portMapping !== null) {
        const m = req.portMapping;
        add('port-mapping', 'high', mac, 'UPnP IGD', p.timeMs, 'Asked the router to open a port (UPnP AddPortMapping)',
          `${req.soapAction ?? 'AddPortMapping'} to ${server}: external ${m.protocol ?? '?'} port ${m.externalPort ?? '?'} -> ${m.internalClient ?? clientText(flow)}:${m.internalPort ?? '?'}${m.description ? ` "${m.description}"` : ''}`);
        return;
      }
      if (!flow.hasLocal || flow.bothLocal || !flow.deviceIsClient) return;
      const benign = BENIGN_HTTP.test(req.path) || /ocsp/i.test(req.contentType ?? '') || /^\/?ocsp/i.test(req.path);
      const host = req.host === null ? null : cleanText(req.host, 100);
      add('plain-http', benign ? 'info' : 'low', mac, '', p.timeMs, 'Unencrypted HTTP to the internet',
        `${req.method} to ${host ?? server}${host ? ` (${server})` : ''}${benign ? ' (certificate check or connectivity probe)' : ''}`);
    },

    /** An SSDP message: a search for an Internet Gateway Device (the first step of UPnP port mapping). */
    onSsdp(info: SsdpInfo, p: DecodedPacket): void {
      if (info.kind !== 'search' || info.st === null || !/InternetGatewayDevice|WAN(IP|PPP)Connection|WANCommonInterfaceConfig/i.test(info.st)) return;
      add('igd-discovery', 'info', p.srcMac, 'UPnP IGD', p.timeMs, 'Looked for a router that opens ports (UPnP IGD search)',
        `SSDP M-SEARCH for ${info.st}${info.userAgent ? ` (${info.userAgent})` : ''}`);
    },

    /** A UDP datagram to port 5351: a NAT-PMP or PCP request. */
    onPortMapRequest(p: DecodedPacket): void {
      const r = parsePortMapRequest(p.payloadBuf, p.payloadOffset, p.payloadLength);
      if (r === null) return;
      const name = r.protocol === 'pcp' ? 'PCP' : 'NAT-PMP';
      const router = formatAddr(p.ipVersion, p.dstAddr);
      if (r.op === 'external-address' || r.op === 'announce') {
        add('igd-discovery', 'info', p.srcMac, name, p.timeMs, `Looked for a router that opens ports (${name})`,
          `${name} ${r.op === 'announce' ? 'ANNOUNCE' : 'external address request'} to ${router}`);
        return;
      }
      const what = `${r.op.toUpperCase()} ${r.transport ?? '?'} port ${r.internalPort} -> external ${r.externalPort}`;
      add('port-mapping', 'high', p.srcMac, name, p.timeMs, `Asked the router to open a port (${name})`,
        `${name} ${what}, ${r.lifetime === 0 ? 'deleting it' : `for ${r.lifetime} s`}, to ${router}`);
    },

    /** The collector's clock: the segment advice is worked out now and then. */
    onTick(nowMs: number): void {
      if (nowMs > clockMs) clockMs = nowMs;
      if (nowMs >= nextSegmentMs) segments(nowMs);
    },

    /** Every finding, the most severe first, then in the order they appeared. */
    list(): FindingRecord[] {
      segments(clockMs);
      const all = store.all();
      const order = all.map((f, i) => ({ f, i })).sort((a, b) => SEVERITIES.indexOf(b.f.severity) - SEVERITIES.indexOf(a.f.severity) || a.i - b.i);
      return order.map(({ f }) => toRecord(f));
    },

    /** The findings as the state file keeps them (collector/identify/state.ts): what list() would show. */
    saved(): SavedFinding[] {
      segments(clockMs);
      return store.saved();
    },

    /** Findings an earlier run kept (checked rows), taken back without announcing them; returns how many. */
    restore: (rows: readonly SavedFinding[]): number => store.restore(rows, parseMac),

    /** Counters for the report's and the API's stats. */
    get stats(): FindingsStats {
      stats.findings = store.stats.findings;
      stats.findingsDropped = store.stats.findingsDropped;
      return stats;
    },
  };
}

export type Findings = ReturnType<typeof buildFindings>;
