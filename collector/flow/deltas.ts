/**
 * Per-interval traffic, pushed by the pipeline: each flow's growth since it was last taken, as a plain
 * record. The pipeline takes the flows active in each interval when it closes (a suffix of the flow
 * table's activity lists) and what is left of a flow when it ends, so every byte and packet is taken
 * exactly once, whatever the interval and however the flow ends; the InfluxDB sink sums the deltas into
 * its series. The `taken*` fields of Flow and `peerTaken` are this stage's. A LAN flow's growth is its
 * peer's too (record.ts servingPeer: the other local device, once it sent from its MAC), from the flow's
 * start the first time the peer is known: device totals count the whole flow for it as well.
 */
import type { Flow } from './flow.js';
import { servingPeer } from './record.js';

/** A flow's growth since it was last taken. Counters in the flow's own terms: up = client to server. */
export interface FlowDelta {
  readonly deviceMac: number;
  readonly deviceIsClient: boolean;
  readonly service: string | null;
  /** The server's name: the tagger's, else the SNI. */
  readonly name: string | null;
  /** The name comes from the endpoint catalogue (the flow has a service and a vendor). */
  readonly inCatalogue: boolean;
  readonly packetsUp: number;
  readonly packetsDown: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** The time of the flow's latest packet (epoch ms). */
  readonly lastMs: number;
  /** A LAN flow's other local device (servingPeer), -1 when none; the peer* counters are its share (flow terms). */
  readonly peerMac: number;
  readonly peerPacketsUp: number;
  readonly peerPacketsDown: number;
  readonly peerBytesUp: number;
  readonly peerBytesDown: number;
}

/** Takes the flow's growth since it was last taken; null when it had none (a walk can stop there). */
export function takeDelta(flow: Flow): FlowDelta | null {
  const packetsUp = flow.packetsUp - flow.takenPacketsUp;
  const packetsDown = flow.packetsDown - flow.takenPacketsDown;
  if (packetsUp === 0 && packetsDown === 0) return null;
  const bytesUp = flow.bytesUp - flow.takenBytesUp;
  const bytesDown = flow.bytesDown - flow.takenBytesDown;
  flow.takenPacketsUp = flow.packetsUp;
  flow.takenPacketsDown = flow.packetsDown;
  flow.takenBytesUp = flow.bytesUp;
  flow.takenBytesDown = flow.bytesDown;
  const peerMac = flow.bothLocal ? servingPeer(flow) : -1;
  // the first growth the peer takes is the whole flow so far (it answered after the flow's first bytes)
  const whole = peerMac >= 0 && !flow.peerTaken;
  if (whole) flow.peerTaken = true;
  return {
    deviceMac: flow.deviceMac, deviceIsClient: flow.deviceIsClient, service: flow.service,
    name: flow.serverName ?? flow.sni, inCatalogue: flow.service !== null && flow.vendor !== null,
    packetsUp, packetsDown, bytesUp, bytesDown, lastMs: flow.lastMs,
    peerMac,
    peerPacketsUp: whole ? flow.packetsUp : packetsUp, peerPacketsDown: whole ? flow.packetsDown : packetsDown,
    peerBytesUp: whole ? flow.bytesUp : bytesUp, peerBytesDown: whole ? flow.bytesDown : bytesDown,
  };
}
