/**
 * What the API reads about the run so far: activations (the newest, bounded), the flows that ended
 * lately (bounded ring), and per device its traffic and endpoints by service (the run's device totals).
 * Flows still open are read from the collector when asked. Counts and names only, never payloads.
 */
import type { Call } from '../detect/calls.js';
import type { Activation } from '../detect/detector.js';
import type { FlowRecord } from '../flow/record.js';
import { FlowRecordRing } from '../flow/record-ring.js';
import type { DeviceTotals, DeviceTotalsStore, Endpoint } from './device-totals.js';
import { activationToReport, flowToReport, type ReportActivation, type ReportFlow } from './report.js';
import { NewestRing } from './ring.js';

/** A flow as the API shows it: the report's form (without where the name came from) and whether it is still open. */
export type ApiFlow = Omit<ReportFlow, 'nameSource'> & { open: boolean };

/**
 * The API's form of a flow's record: one literal, so every ApiFlow shares one hidden class (taking the
 * report's form apart with rest and spread gave each object its own, ~0.6 KB of shape per flow).
 */
export function flowToApi(f: FlowRecord, open: boolean): ApiFlow {
  const r = flowToReport(f);
  return {
    proto: r.proto, client: r.client, clientPort: r.clientPort, server: r.server, serverPort: r.serverPort,
    packetsUp: r.packetsUp, packetsDown: r.packetsDown, bytesUp: r.bytesUp, bytesDown: r.bytesDown, first: r.first, last: r.last,
    device: r.device, peer: r.peer, sni: r.sni, serverName: r.serverName, service: r.service, vendor: r.vendor, open,
  };
}

export interface ActivityOptions {
  maxActivations: number;
  maxEndedFlows: number;
  /**
   * Ended flows kept per assistant besides the ring of every flow (0 or absent: none), so that a flood of
   * other flows (a port scan of the LAN: the CIC IDS 2017 slice ends ~4,870 in seven seconds) does not
   * push the assistants' latest flows out of `GET /flows?device=`, and a chatty assistant does not push
   * out a quiet one's.
   */
  maxFlowsPerAssistant?: number;
  /**
   * Assistants with a ring of their own at most (default 16); past it, the one whose latest flow ended
   * longest ago gives its ring up (forged assistants cannot grow this).
   */
  maxAssistantRings?: number;
  /** Whether a device (MAC) is an assistant now (the inventory's verdict). */
  isAssistant?: (mac: number) => boolean;
}

/** Assistants with a ring of their own at most, by default. */
const MAX_ASSISTANT_RINGS = 16;

export class ActivityStore {
  private readonly activations = new Map<string, Activation>();
  private sorted: Activation[] | null = null;
  /** The records, in columns (collector/flow/record-ring.ts): made API flows when read. */
  private readonly ended: FlowRecordRing;
  /** Each assistant's ended flows, in a ring of its own (made at its first ended flow; none without maxFlowsPerAssistant). */
  private readonly assistantEnded = new Map<number, FlowRecordRing>();
  /** Ended flows so far: each flow's number, given to every ring it goes to (their merge follows it). */
  private endedCount = 0;
  /** Assistants' rings given up for a newer assistant's (maxAssistantRings). */
  assistantRingsDropped = 0;

  /** Assistants with a ring of their own now (at most maxAssistantRings). */
  get assistantRings(): number {
    return this.assistantEnded.size;
  }
  /** Finished calls, oldest first (bounded like the activations). */
  private readonly calls: NewestRing<Call>;
  /** Counters for /metrics. */
  readonly counts = { activationsStarted: 0, activationsFinished: 0, byVerdict: new Map<string, number>() };
  /** Per device (MAC text), its finished activations among those kept: /metrics reads this, not the list. */
  readonly finishedByDevice = new Map<string, number>();
  /** Ids of the kept activations that finished (counted in finishedByDevice). */
  private readonly finishedIds = new Set<string>();

  /** `totals`: the run's device totals, fed by the run (the API reads them through deviceTotals). */
  constructor(private readonly options: ActivityOptions, private readonly totals: DeviceTotalsStore) {
    this.ended = new FlowRecordRing(options.maxEndedFlows);
    this.calls = new NewestRing<Call>(options.maxActivations);
  }

  /** A call ended (calls in progress are read from the collector). */
  callFinished(c: Call): void {
    this.calls.push(c);
  }

  /** Finished calls, oldest first. */
  finishedCalls(): Call[] {
    return this.calls.toArray();
  }

  /** An activation started (it shows while open, with the end so far). */
  started(a: Activation): void {
    this.counts.activationsStarted++;
    this.keep(a);
  }

  finished(a: Activation): void {
    this.counts.activationsFinished++;
    this.counts.byVerdict.set(a.verdict, (this.counts.byVerdict.get(a.verdict) ?? 0) + 1);
    this.keep(a);
    if (this.activations.has(a.id) && !this.finishedIds.has(a.id)) {
      this.finishedIds.add(a.id);
      this.finishedByDevice.set(a.device, (this.finishedByDevice.get(a.device) ?? 0) + 1);
    }
  }

  /** A finished activation's verdict changed (wake event, label, arbitration): recount. */
  verdictChanged(a: Activation, before: string): void {
    this.sorted = null;
    this.counts.byVerdict.set(before, Math.max(0, (this.counts.byVerdict.get(before) ?? 0) - 1));
    this.counts.byVerdict.set(a.verdict, (this.counts.byVerdict.get(a.verdict) ?? 0) + 1);
  }

  private keep(a: Activation): void {
    this.sorted = null;
    this.activations.delete(a.id);
    this.activations.set(a.id, a);
    if (this.activations.size > this.options.maxActivations) {
      const [oldest, gone] = this.activations.entries().next().value as [string, Activation];
      this.activations.delete(oldest);
      if (this.finishedIds.delete(oldest)) {
        const left = (this.finishedByDevice.get(gone.device) ?? 1) - 1;
        if (left > 0) this.finishedByDevice.set(gone.device, left);
        else this.finishedByDevice.delete(gone.device);
      }
    }
  }

  /** A flow ended: its record goes to the ring of recent flows (copied into its columns), an assistant's to its own too. */
  flowEnded(f: FlowRecord): void {
    const order = ++this.endedCount;
    if (this.options.maxEndedFlows > 0) this.ended.push(f, order);
    if ((this.options.maxFlowsPerAssistant ?? 0) === 0) return;
    if (f.deviceMac >= 0 && this.options.isAssistant?.(f.deviceMac) === true) this.assistantRing(f.deviceMac).push(f, order);
    // a LAN flow is its peer's too (device-totals.ts): an Echo that only answers its group lists those
    if (f.peerMac >= 0 && this.options.isAssistant?.(f.peerMac) === true) this.assistantRing(f.peerMac).push(f, order);
  }

  private assistantRing(mac: number): FlowRecordRing {
    const known = this.assistantEnded.get(mac);
    if (known !== undefined) return known;
    if (this.assistantEnded.size >= Math.max(1, this.options.maxAssistantRings ?? MAX_ASSISTANT_RINGS)) {
      // the assistant whose latest flow ended longest ago (a few rings: one pass, only for a newcomer)
      let quietest = -1;
      let latest = Number.POSITIVE_INFINITY;
      for (const [other, ring] of this.assistantEnded) {
        if (ring.newestOrder() < latest) {
          latest = ring.newestOrder();
          quietest = other;
        }
      }
      this.assistantEnded.delete(quietest);
      this.assistantRingsDropped++;
    }
    const ring = new FlowRecordRing(this.options.maxFlowsPerAssistant ?? 0);
    this.assistantEnded.set(mac, ring);
    return ring;
  }

  activation(id: string): ReportActivation | null {
    const a = this.activations.get(id);
    return a ? activationToReport(a) : null;
  }

  /** Activations, newest first (sorted once per change, not per request). */
  listActivations(): readonly Activation[] {
    this.sorted ??= [...this.activations.values()].sort((x, y) => y.startMs - x.startMs || (x.id < y.id ? -1 : 1));
    return this.sorted;
  }

  /** Ended flows, oldest first. */
  endedFlows(): ApiFlow[] {
    return this.newestEndedFlows(null, Number.POSITIVE_INFINITY).reverse();
  }

  /**
   * At most `limit` ended flows of the device `mac` (null: every device), newest first: those the ring of
   * every flow holds, then the assistants' older ones their own rings kept. Only the flows returned are
   * made into records (a query of GET /api/v1/flows costs its page, not the 10,000 and 16 x 500 held).
   */
  newestEndedFlows(mac: number | null, limit: number): ApiFlow[] {
    const recent = this.ended.newest(limit, mac);
    const left = limit - recent.length;
    // the assistants' flows that the ring of every flow no longer holds ended before the oldest it holds
    const from = this.ended.oldestOrder();
    let older: FlowRecord[] = [];
    if (left > 0 && mac !== null) {
      older = this.assistantEnded.get(mac)?.newest(left, mac, from) ?? [];
    } else if (left > 0) {
      const kept: Array<{ order: number; record: FlowRecord }> = [];
      for (const ring of this.assistantEnded.values()) for (const e of ring.olderThan(from)) kept.push(e);
      kept.sort((a, b) => b.order - a.order);
      // a LAN flow between two assistants is in both their rings: once here
      older = kept.filter((e, i) => i === 0 || e.order !== kept[i - 1].order).slice(0, left).map((e) => e.record);
    }
    const out: ApiFlow[] = [];
    for (const f of recent) out.push(flowToApi(f, false));
    for (const f of older) out.push(flowToApi(f, false));
    return out;
  }

  /** A device's bytes, packets and flows: ended flows plus `open`, the counts of its open ones (no copy, no endpoints). */
  deviceCounts(mac: number, open: DeviceTotals | undefined): { bytesUp: number; bytesDown: number; packetsUp: number; packetsDown: number; flows: number } {
    const d = this.totals.get(mac);
    const sum = (k: 'bytesUp' | 'bytesDown' | 'packetsUp' | 'packetsDown' | 'flows') => (d?.[k] ?? 0) + (open?.[k] ?? 0);
    return { bytesUp: sum('bytesUp'), bytesDown: sum('bytesDown'), packetsUp: sum('packetsUp'), packetsDown: sum('packetsDown'), flows: sum('flows') };
  }

  /** A device's totals and endpoints over ended flows plus `open` ones. */
  deviceTotals(mac: number, open: readonly FlowRecord[]): { bytesUp: number; bytesDown: number; packetsUp: number; packetsDown: number; flows: number; endpoints: Endpoint[] } {
    const d = this.totals.device(mac, open);
    return { bytesUp: d.bytesUp, bytesDown: d.bytesDown, packetsUp: d.packetsUp, packetsDown: d.packetsDown, flows: d.flows, endpoints: d.sortedEndpoints() };
  }
}
