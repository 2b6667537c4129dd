/**
 * Per-interval traffic, pushed by the pipeline: each flow's growth since it was last taken, as a plain
 * record. The pipeline takes the flows active in each interval when it closes (a suffix of the flow
 * table's activity lists) and what is left of a flow when it ends, so every byte and packet is taken
 * exactly once, whatever the interval and however the flow ends; the InfluxDB sink sums the deltas into
 * its series. The `taken*` fields of Flow are this stage's.
 */
import type { Flow } from './flow.js';

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
  return {
    deviceMac: flow.deviceMac, deviceIsClient: flow.deviceIsClient, service: flow.service,
    name: flow.serverName ?? flow.sni, inCatalogue: flow.service !== null && flow.vendor !== null,
    packetsUp, packetsDown, bytesUp, bytesDown, lastMs: flow.lastMs,
  };
}
