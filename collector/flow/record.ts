/**
 * A finished (or snapshotted) flow as a plain record: its counters, names and addresses as text, and
 * nothing of the table's links, parser state or sinks' caches. What leaves the pipeline when a flow ends:
 * the report keeps it instead of the Flow (so the GC takes the flow back), the API's recent flows and the
 * device totals are made from it, and it can cross a thread as it is.
 */
import { formatAddr, ipv4Text } from '../decode/packet.js';
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
    deviceMac: f.deviceMac, deviceIsClient: f.deviceIsClient,
    sni: f.sni, serverName: f.serverName, nameSource: f.nameSource, service: f.service, vendor: f.vendor,
  };
}
