/**
 * The collector pipeline: source -> decode -> flow table -> payload inspection -> sinks.
 * buildCollector() wires the stages from the frozen config; importing this module does no I/O.
 * The same pipeline serves replay and live capture: time comes from packet timestamps, and one clock
 * (ticks of packet time, plus wall time when live) expires flows.
 */
import type { CaptureSource, CaptureStats } from './capture/types.js';
import type { Config } from './config.js';
import { buildDecoder } from './decode/index.js';
import { IPPROTO_TCP, IPPROTO_UDP, type DecodedPacket, type DecodeStats } from './decode/packet.js';
import type { SsdpInfo } from './decode/ssdp.js';
import { takeDelta, type FlowDelta } from './flow/deltas.js';
import type { Flow } from './flow/flow.js';
import type { Activation, DetectorStats } from './detect/detector.js';
import { buildDetectStage } from './detect/index.js';
import { buildFindings, type FindingListener, type FindingsStats } from './findings/index.js';
import type { DetectorParams } from './detect/params.js';
import { buildCallTracker, type Call, type CallStats } from './detect/calls.js';
import { buildLocalNets } from './flow/local-nets.js';
import { buildPayloadInspector, type DnsAnswer, type PayloadStats } from './flow/payload.js';
import { FlowTable, type FlowTableStats } from './flow/table.js';
import { Inventory } from './identify/inventory.js';
import { buildOuiTable } from './identify/oui.js';
import { buildCatalog } from './tag/catalog.js';
import { buildTagger, type Tagger, type TaggerStats } from './tag/index.js';
import { buildVendorRanges } from './tag/ip-ranges.js';
import { loadCloudSpeechCatalog } from './local/cloud-speech.js';
import { buildLocalStage, type LocalStats } from './local/stage.js';

/** Totals of what the pipeline was given, for the report's `capture` section. */
export class CaptureTotals {
  packets = 0;
  bytes = 0;
  firstMs = Number.NaN;
  lastMs = Number.NaN;
}

/** What stages after the flow table subscribe to. Handlers are fixed at setup. */
export interface CollectorListeners {
  onFlowEnd?: (flow: Flow, reason: 'idle' | 'evicted' | 'flush') => void;
  onDnsAnswer?: (answer: DnsAnswer) => void;
  onSni?: (flow: Flow, sni: string) => void;
  /** Once per second of collector time (packet time in replay, also wall time live). */
  onTick?: (nowMs: number) => void;
  /** An upload qualified as an activation (within ~2 s of its start). */
  onActivationStarted?: (activation: Activation) => void;
  /** An activation ended; its verdict is set. */
  onActivation?: (activation: Activation) => void;
  /** A finished activation's verdict changed when a later member of its arbitration group was confirmed. */
  onVerdictChanged?: (activation: Activation) => void;
  /**
   * Per-interval traffic (every `influx.intervalS`): at each interval's end the growth of the flows active
   * in it, and when a flow ends what is left of it (flow/deltas.ts). Only computed when subscribed.
   */
  onFlowDeltas?: (deltas: readonly FlowDelta[]) => void;
  /** Two-way media of an assistant qualified as a call, and a call ended (detect/calls.ts). */
  onCallStarted?: (call: Call) => void;
  onCall?: (call: Call) => void;
  /** A network hygiene finding appeared (isNew) or its severity rose (findings/index.ts). */
  onFinding?: FindingListener;
}

export interface CollectorStats {
  capture: CaptureTotals;
  decode: DecodeStats;
  flows: FlowTableStats;
  payload: PayloadStats;
  tagging: TaggerStats | null;
  detect: DetectorStats | null;
  calls: CallStats | null;
  findings: FindingsStats;
  /** Local assistants (collector/local/): null when detection is off. */
  local: LocalStats | null;
}

/** Builds the identification and tagging stages (or null when tagging is off). */
function buildTagging(config: Readonly<Config>, localNets: ReturnType<typeof buildLocalNets>): { inventory: Inventory; tagger: Tagger } | null {
  if (!config.tagging.enabled) return null;
  const inventory = new Inventory(buildOuiTable(), { maxDevices: config.tagging.maxDevices, devices: config.devices });
  const tagger = buildTagger(
    {
      dnsGraceMs: config.tagging.dnsGraceS * 1000,
      maxDnsEntries: config.tagging.maxDnsEntries,
      voiceMinDurationMs: config.tagging.voiceMinDurationS * 1000,
      maxPending: 10_000,
    },
    { catalog: buildCatalog(config.catalog), ranges: buildVendorRanges(), inventory, localNets },
  );
  return { inventory, tagger };
}

const TICK_MS = 1000;
/** The detector's clock: a 100-ms slot closes on time even when its stream sends nothing more (a stall). */
const SLOT_TICK_MS = 100;
/**
 * A wall tick later than this after the one before (callers tick every 100 ms) follows a stall of the
 * thread (wallTick). A GC pause or a burst of work of 300 ms is already a silence the detector could
 * misread (an upload ends after ~1.5 s without packets, and a late tick adds its whole delay at once).
 */
const WALL_TICK_LATE_MS = 300;

/**
 * One listener out of several, the absent ones left out: decided once when the pipeline is built (with
 * tagging off its stages are simply not called). Fixed arity, no rest arguments: onTick and the flow
 * listeners run per tick and per flow, and a nested `(...a) => { f(...a); g(...a); }` chain allocated
 * an array per call and level (~30 ms of the bench replay).
 */
function fanOut<A, B>(...listeners: Array<((a: A, b: B) => void) | undefined>): (a: A, b: B) => void {
  const fns = listeners.filter((f): f is (a: A, b: B) => void => f !== undefined);
  if (fns.length === 0) return () => {};
  if (fns.length === 1) return fns[0];
  if (fns.length === 2) {
    const [f, g] = fns;
    return (a, b) => { f(a, b); g(a, b); };
  }
  return (a, b) => { for (let i = 0; i < fns.length; i++) fns[i](a, b); };
}

/** Knobs for evaluation and tests, not for users: the detector's parameters per vendor. */
export interface CollectorTuning {
  params?: (vendor: string | null) => DetectorParams;
}

/** Builds the pipeline. Feed it packets with ingest() (a PacketSink), or run a source through it. */
export function buildCollector(config: Readonly<Config>, listeners: CollectorListeners = {}, tuning: CollectorTuning = {}) {
  const totals = new CaptureTotals();
  const decoder = buildDecoder();
  const localNets = buildLocalNets(config.localNets);
  const tagging = buildTagging(config, localNets);
  const t = tagging?.tagger;
  const inv = tagging?.inventory;
  // detection needs the voice flows that tagging finds: without tagging there is nothing to watch
  // a device seen uploading audio is the last the inventory drops (a flood of forged assistants must not)
  const started = inv ? (a: Activation) => { inv.markUploaded(a.deviceMac); listeners.onActivationStarted?.(a); } : undefined;
  const detect = inv && t && config.detect.enabled
    ? buildDetectStage(config, inv, {
      onActivationStarted: started,
      onActivation: listeners.onActivation,
      onVerdictChanged: listeners.onVerdictChanged,
      onVoiceFlow: t.learnVoice,
    }, { ...tuning, inCall: (mac, timeMs) => calls?.inCall(mac, timeMs) ?? false })
    : null;
  const detector = detect?.detector ?? null;
  // calls: the assistants' two-way UDP media (Drop In, calls), never activations
  const calls = inv && config.detect.enabled ? buildCallTracker((mac) => inv.describe(mac)?.assistant === true, { onStarted: listeners.onCallStarted, onFinished: listeners.onCall }) : null;
  // local assistants: satellites streaming to a local server are activations like cloud ones (same listeners)
  const local = inv && config.detect.enabled
    ? buildLocalStage(inv, loadCloudSpeechCatalog(), { onStarted: started, onFinished: listeners.onActivation })
    : null;
  // per-interval traffic, pushed: what is left of a flow when it ends
  // network hygiene: a few numeric tests per flow start and end, the rest on rare payloads
  const findings = buildFindings({ inventory: inv ?? null, onFinding: listeners.onFinding });
  const onDeltas = listeners.onFlowDeltas;
  const flowEndDelta = onDeltas ? (flow: Flow) => { const d = takeDelta(flow); if (d !== null) onDeltas([d]); } : undefined;
  const onFlowEnd = fanOut<Flow, 'idle' | 'evicted' | 'flush'>(t?.onFlowEnd, detector ? (flow: Flow) => { if (flow.voiceTrack !== null) detector.forget(flow); } : undefined, flowEndDelta, findings.onFlowEnd, local?.onFlowEnd, listeners.onFlowEnd);
  const onTick = fanOut<number, void>(t?.onTick, calls?.tick, findings.onTick, local?.onTick, listeners.onTick);
  const table = new FlowTable(
    {
      maxFlows: config.flows.maxFlows,
      tcpIdleTimeoutMs: config.flows.tcpIdleTimeoutS * 1000,
      udpIdleTimeoutMs: config.flows.udpIdleTimeoutS * 1000,
    },
    localNets,
    onFlowEnd,
    fanOut<Flow, void>(t?.onFlowStart, findings.onFlowStart, local?.onFlowStart),
  );
  const inspector = buildPayloadInspector({
    onDnsAnswer: fanOut<DnsAnswer, void>(t?.onDnsAnswer, listeners.onDnsAnswer),
    onSni: fanOut<Flow, string>(t?.onSni, findings.onSni, local?.onSni, listeners.onSni),
    onDhcp: inv ? (info, p) => inv.observeDhcp(info, p.srcMac, p.timeMs) : undefined,
    onMdns: inv ? (info, p) => { inv.observeMdns(info, p.srcMac, p.timeMs); local?.onMdns(info); } : undefined,
    onSsdp: fanOut<SsdpInfo, DecodedPacket>(inv ? (info, p) => inv.observeSsdp(info, p.srcMac, p.timeMs) : undefined, findings.onSsdp),
    admitAnnouncement: inv ? (p) => inv.admitAnnouncement(p.srcMac, p.timeMs) : undefined,
    onClientHello: findings.onClientHello,
    onPlaintext: findings.onPlaintext,
    onPortMapRequest: findings.onPortMapRequest,
  });
  let clockMs = Number.NEGATIVE_INFINITY;
  let nextTickMs = Number.NEGATIVE_INFINITY;
  let nextSlotMs = Number.NEGATIVE_INFINITY;
  let nextDeltaMs = Number.NEGATIVE_INFINITY;
  const deltaIntervalMs = config.influx.intervalS * 1000;
  let running: CaptureSource | null = null;

  /** Advances the one clock to `nowMs` (never backwards): the detector's slots, then the per-second work. */
  function tick(nowMs: number): void {
    if (nowMs <= clockMs) return;
    clockMs = nowMs;
    nextSlotMs = Math.floor(nowMs / SLOT_TICK_MS) * SLOT_TICK_MS + SLOT_TICK_MS;
    detector?.tick(nowMs);
    if (nowMs < nextTickMs) return;
    nextTickMs = Math.floor(nowMs / TICK_MS) * TICK_MS + TICK_MS;
    table.expire(nowMs);
    if (onDeltas && nowMs >= nextDeltaMs) {
      // the interval that ends: the growth of the flows active in it (the most recent first, until one had none)
      if (nextDeltaMs > Number.NEGATIVE_INFINITY) {
        const deltas: FlowDelta[] = [];
        table.forEachRecent((f) => {
          const d = takeDelta(f);
          if (d !== null) deltas.push(d);
          return d !== null;
        });
        if (deltas.length > 0) onDeltas(deltas);
      }
      nextDeltaMs = Math.floor(nowMs / deltaIntervalMs) * deltaIntervalMs + deltaIntervalMs;
    }
    onTick(nowMs);
  }

  // wall time of the latest packet, so wall-clock ticks advance packet time by the time that passed
  let lastPacketWallMs = 0;
  let wallClockUsed = false;
  // wall time of the latest wall tick, and whether it was skipped as late (wallTick)
  let lastWallTickMs = Number.POSITIVE_INFINITY;
  let skippedLateTick = false;

  /** Takes one captured packet (the PacketSink of every source). */
  function ingest(buf: Buffer, offset: number, capLen: number, wireLen: number, timeMs: number, linkType: number): void {
    if (wallClockUsed) lastPacketWallMs = Date.now();
    totals.packets++;
    totals.bytes += wireLen;
    if (totals.packets === 1) totals.firstMs = timeMs;
    if (!(timeMs <= totals.lastMs)) totals.lastMs = timeMs;
    if (timeMs >= nextSlotMs) tick(timeMs);
    const p = decoder.decode(buf, offset, capLen, wireLen, timeMs, linkType);
    if (p === null || p.srcPort < 0 || (p.proto !== IPPROTO_TCP && p.proto !== IPPROTO_UDP)) return;
    const flow = table.account(p);
    inspector.inspect(flow, table.up, p);
    if (calls !== null && p.proto === IPPROTO_UDP) calls.onPacket(flow, table.up, p);
    if (local !== null && flow.bothLocal) local.onPacket(flow, table.up, p);
    // the voice channels, and the assistants' unnamed connections that may be one (a name that says
    // otherwise sets the service and takes the flow out)
    if (detector !== null && (flow.service === 'voice' || (flow.voiceCandidate && flow.service === null))) detector.onPacket(flow, table.up, p.wireLen, p.timeMs, p.proto === IPPROTO_TCP ? p.tcpSeq : -1);
  }

  /**
   * Live (and paced replay): advances the clock by the wall time since the latest packet, so uploads
   * end and flows expire on time when no packet comes, whatever the capture's own clock says
   * (a router with a wrong clock, a replayed file). `speed`: capture seconds per wall second.
   * `notAfterMs`: a paced replay's next packet (CaptureSource.heldPacketMs): the clock stays before it.
   */
  function wallTick(wallNowMs: number, speed = 1, notAfterMs = Number.POSITIVE_INFINITY): void {
    const sinceTick = wallNowMs - lastWallTickMs;
    lastWallTickMs = wallNowMs;
    if (!wallClockUsed || totals.packets === 0) {
      // the first tick calibrates: packets so far did not note their wall time
      wallClockUsed = true;
      lastPacketWallMs = wallNowMs;
      return;
    }
    // A tick this late means the thread was stalled: live, the packets of the stall wait in the kernel's
    // buffer, and timers run before they are read. Moving the clock now would put a silence of the
    // stall's length into an upload; the next tick moves it from the packets read by then. Only one tick
    // in a row is skipped, so a thread always this late still ends uploads, a tick later.
    if (sinceTick > WALL_TICK_LATE_MS && !skippedLateTick) {
      skippedLateTick = true;
      return;
    }
    skippedLateTick = false;
    tick(Math.min(totals.lastMs + Math.max(0, wallNowMs - lastPacketWallMs) * speed, notAfterMs - 1));
  }

  return {
    ingest,
    tick,
    wallTick,
    /** Reads `source` to its end (or until stop()), then finishes every open flow. */
    async run(source: CaptureSource): Promise<CaptureStats> {
      running = source;
      try {
        return await source.run(ingest);
      } finally {
        running = null;
        table.flush();
        calls?.flush();
        detector?.flush();
        local?.flush(totals.lastMs);
      }
    },
    /** Stops the running source; run() then resolves after flushing. */
    stop(): void {
      running?.stop();
    },
    /** Open flows (allocates: tests use it as a plain list; the API walks forEachOpenFlow). */
    activeFlows: () => table.activeFlows(),
    /** Visits open flows, the most recently active first, until `visit` returns false (allocates nothing). */
    forEachOpenFlow: (visit: (flow: Flow) => boolean) => table.forEachNewest(visit),
    /** Counters of the running source (null when none runs). */
    captureStats: () => running?.stats() ?? null,
    /** The decoder's counters, live (read each second without making stats()). */
    decodeStats: decoder.stats as Readonly<DecodeStats>,
    stats(): CollectorStats {
      return { capture: totals, decode: decoder.stats, flows: table.stats, payload: inspector.stats, tagging: t?.stats ?? null, detect: detector?.stats ?? null, calls: calls?.stats ?? null, findings: findings.stats, local: local?.stats ?? null };
    },
    /** The device inventory (null with tagging off). */
    inventory: inv ?? null,
    /** The tagger (its DNS cache is saved with the inventory). */
    tagger: t ?? null,
    /** The detect stage: wake events, labels (null when detection is off). */
    detect,
    /** Calls of the assistants, and inCall(mac, timeMs) for the detector (null when detection is off). */
    calls,
    /** Network hygiene findings: list() for the API, the report and doctor (findings/index.ts). */
    findings,
  };
}

export type Collector = ReturnType<typeof buildCollector>;
