/**
 * What a replay wrote to InfluxDB, summed per device, beside what its report and tshark say: the checks of
 * test/influx.test.ts and test/fleet.test.ts (one site, many sites in one database).
 */
import type { Report } from '../../collector/sink/report.js';
import type { Influxd } from './influxd.js';
import { isRfc1918, tsharkFlows } from './tshark.js';

/** tshark's totals over TCP and UDP flows: packets and frame bytes. */
export function tsharkFlowTotals(file: string): { packets: number; bytes: number } {
  let packets = 0;
  let bytes = 0;
  for (const flow of tsharkFlows(file).values()) {
    for (const d of flow.dirs.values()) {
      packets += d.packets;
      bytes += d.bytes;
    }
  }
  return { packets, bytes };
}

/** A home's own unicast address, as a reader of the packets tells them: private, link-local, unique local. */
const homeUnicast = (ip: string) => isRfc1918(ip) || /^169\.254\./.test(ip) || /^(fe[89ab]|f[cd])/i.test(ip);

/**
 * What a home's per-device sums hold beyond each frame once, as tshark reads the capture: the frames of
 * conversations between two home unicast addresses in which both sides sent (each such frame is one
 * device's upload and the other's download). Exact where every host answers from its own MAC.
 */
export function tsharkLanAnswered(file: string): { packets: number; bytes: number } {
  let packets = 0;
  let bytes = 0;
  for (const flow of tsharkFlows(file).values()) {
    const ends = [...flow.dirs.keys()].map((end) => end.slice(0, end.lastIndexOf('|')));
    if (flow.dirs.size !== 2 || !ends.every(homeUnicast)) continue;
    for (const d of flow.dirs.values()) {
      packets += d.packets;
      bytes += d.bytes;
    }
  }
  return { packets, bytes };
}

export interface DeviceSums {
  bytesUp: number;
  bytesDown: number;
  packets: number;
}

/** Per-device sums of `traffic` in InfluxDB (device tag -> counters). */
export async function trafficByDevice(server: Influxd, db: string, where = ''): Promise<Map<string, DeviceSums>> {
  const rows = await server.rows(db, `SELECT sum(bytes_up) AS bu, sum(bytes_down) AS bd, sum(packets_up) AS pu, sum(packets_down) AS pd FROM traffic ${where} GROUP BY device`);
  return new Map(rows.map((r) => [String(r.device), { bytesUp: Number(r.bu), bytesDown: Number(r.bd), packets: Number(r.pu) + Number(r.pd) }]));
}

/**
 * The report's per-device counters: its devices section, and flows without a device under "none"; packets
 * from its flows, a LAN flow's for both its devices (`peer`: the one that answered it).
 */
export function reportByDevice(report: Report): Map<string, DeviceSums> {
  const out = new Map<string, DeviceSums>();
  for (const d of report.devices) {
    if (d.bytesUp + d.bytesDown > 0) out.set(d.mac, { bytesUp: d.bytesUp, bytesDown: d.bytesDown, packets: 0 });
  }
  for (const f of report.flows) {
    const key = f.device ?? 'none';
    let c = out.get(key);
    if (!c) {
      c = { bytesUp: 0, bytesDown: 0, packets: 0 };
      out.set(key, c);
    }
    if (f.device === null) {
      c.bytesUp += f.bytesUp;
      c.bytesDown += f.bytesDown;
    }
    c.packets += f.packetsUp + f.packetsDown;
    if (f.peer !== null) {
      const peer = out.get(f.peer);
      if (peer) peer.packets += f.packetsUp + f.packetsDown;
      else out.set(f.peer, { bytesUp: 0, bytesDown: 0, packets: f.packetsUp + f.packetsDown });
    }
  }
  return out;
}

/** What the report's LAN flows add to the devices' sums beyond each frame once: the flows their peer answered. */
export function answeredLanFlows(report: Report): { packets: number; bytes: number } {
  let packets = 0;
  let bytes = 0;
  for (const f of report.flows) {
    if (f.peer === null) continue;
    packets += f.packetsUp + f.packetsDown;
    bytes += f.bytesUp + f.bytesDown;
  }
  return { packets, bytes };
}

/** The activation points, as the report states activations. */
export async function activationsIn(server: Influxd, db: string, where = ''): Promise<Array<Record<string, unknown>>> {
  const rows = await server.rows(db, `SELECT * FROM activation ${where}`);
  return rows.map((r) => ({
    id: r.id, device: r.device, start: new Date(Number(r.time)).toISOString(), verdict: r.verdict,
    bytesUp: r.bytes_up, bytesDown: r.bytes_down, score: r.score, reasons: r.reasons === '' ? [] : String(r.reasons).split(','),
  })).sort((a, b) => String(a.start).localeCompare(String(b.start)));
}

export function reportActivations(report: Report): Array<Record<string, unknown>> {
  return report.activations.map((a) => ({
    // points carry whole milliseconds
    id: a.id, device: a.device, start: new Date(Math.floor(Date.parse(a.start))).toISOString(), verdict: a.verdict,
    bytesUp: a.bytesUp, bytesDown: a.bytesDown, score: a.score, reasons: a.reasons,
  })).sort((a, b) => a.start.localeCompare(b.start));
}
