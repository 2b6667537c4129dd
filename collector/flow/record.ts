/**
 * A finished (or snapshotted) flow as a plain record: its counters, names and addresses as text, and
 * nothing of the table's links, parser state or sinks' caches. What leaves the pipeline when a flow ends:
 * the report keeps it instead of the Flow (so the GC takes the flow back), the API's recent flows and the
 * device totals are made from it, and it can cross a thread as it is.
 */
import { formatAddr, ipv4Text } from '../decode/packet.js';
import { isGroupMac } from '../mac.js';
import type { Flow, NameSource } from './flow.js';

export interface FlowRecord {
  readonly id: number;
  readonly proto: number;
  readonly client: string;
  readonly clientPort: number;
  readonly server: string;
  readonly serverPort: number;
  readonly packetsUp: number;
  readonly packetsDown: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly firstMs: number;
  readonly lastMs: number;
  /** The local endpoint's MAC, -1 when none is known. */
  readonly deviceMac: number;
  readonly deviceIsClient: boolean;
  /**
   * A LAN flow's other local device, when it sent from its own MAC (servingPeer): its traffic counts for
   * that device too, as the side it was on (device totals, the privacy ledger: servedView). -1 otherwise.
   */
  readonly peerMac: number;
  readonly sni: string | null;
  readonly serverName: string | null;
  readonly nameSource: NameSource;
  readonly service: string | null;
  readonly vendor: string | null;
}

// scratch words for formatting IPv6 addresses: no array per flow
const scratch = new Uint32Array(4);

function clientText(f: Flow): string {
  return f.ipVersion === 4 ? ipv4Text(f.c3) : formatAddr(f.ipVersion, f.clientInto(scratch));
}

function serverText(f: Flow): string {
  if (f.serverText !== null) return f.serverText; // formatted already when the flow was tagged
  return f.ipVersion === 4 ? ipv4Text(f.s3) : formatAddr(f.ipVersion, f.serverInto(scratch));
}

/** The record of a flow as it is now. */
export function flowRecord(f: Flow): FlowRecord {
  return {
    id: f.id, proto: f.proto, client: clientText(f), clientPort: f.clientPort, server: serverText(f), serverPort: f.serverPort,
    packetsUp: f.packetsUp, packetsDown: f.packetsDown, bytesUp: f.bytesUp, bytesDown: f.bytesDown, firstMs: f.firstMs, lastMs: f.lastMs,
    deviceMac: f.deviceMac, deviceIsClient: f.deviceIsClient, peerMac: servingPeer(f),
    sni: f.sni, serverName: f.serverName, nameSource: f.nameSource, service: f.service, vendor: f.vendor,
  };
}

/**
 * The other local device of a LAN flow whose traffic counts for it too: the peer that sent a frame of
 * the flow from its own MAC (flow.peerSent; a group MAC, or the device's own, is none). -1 otherwise.
 */
export function servingPeer(f: Pick<Flow, 'bothLocal' | 'peerSent' | 'peerMac' | 'deviceMac'>): number {
  if (!f.bothLocal || !f.peerSent || f.peerMac === null || f.peerMac === f.deviceMac || isGroupMac(f.peerMac)) return -1;
  return f.peerMac;
}

/**
 * A LAN flow's record as its peer saw it (r.peerMac >= 0): the peer is the device, on the other side,
 * and the endpoint is the flow's device by address (the flow's names are the peer's own, or of nothing).
 */
export function servedView(r: FlowRecord): FlowRecord {
  return {
    ...r, deviceMac: r.peerMac, deviceIsClient: !r.deviceIsClient, peerMac: r.deviceMac,
    sni: null, serverName: null, nameSource: null, vendor: null,
  };
}
