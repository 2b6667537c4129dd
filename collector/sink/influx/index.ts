/**
 * The InfluxDB sink: turns what the pipeline sees into points (docs/influxdb.md has the schema) and
 * hands them to the writer, which batches, compresses, spools and retries. Points carry collector time:
 * packet time in a replay, and wall time live (the offset between the two is measured at each interval).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { version } from '../../version.js';
import type { CaptureStats } from '../../capture/types.js';
import type { Config } from '../../config.js';
import type { Call } from '../../detect/calls.js';
import type { Activation } from '../../detect/detector.js';
import type { WakeEvent } from '../../detect/wake-events.js';
import type { FlowDelta } from '../../flow/deltas.js';
import type { Device } from '../../identify/device.js';
import type { CollectorStats } from '../../index.js';
import type { Logger } from '../../log.js';
import { buildInfluxClient, influxTarget, InfluxQueryError, type WriteClient } from './client.js';
import { int, pointLine, unique } from './line-protocol.js';
import { adminSetupCommand, createCommand, setupDatabase, setupDenied, setupEnabled, writePolicy } from './setup.js';
import { earshotError } from '../../errors.js';
import { Spool } from './spool.js';
import { OTHER_DEVICE, TrafficAggregator } from './traffic.js';
import { parseMac } from '../../mac.js';
import { EndpointAggregator, type EndpointTraffic } from './endpoints.js';
import { activationFrom, retractEarlierRuns, type WrittenActivation } from './earlier-runs.js';
import type { NoticeEvent } from '../events.js';
import { InfluxWriter, type Pending, type WriterStats } from './writer.js';

/** What the sink reads from the running collector. */
export interface InfluxSources {
  /** Devices with their verdicts brought up to date (empty with tagging off). */
  devices(): readonly Device[];
  /** One device with its verdict brought up to date. */
  device(mac: number): Device | undefined;
  stats(): CollectorStats;
  /** Counters of the capture source (kernel drops), when one runs. */
  captureStats(): CaptureStats | null;
}

export interface InfluxSinkDeps {
  log: Logger;
  /** 'wall': points are stamped with wall time (live collectors). */
  clock: 'packet' | 'wall';
  /** For tests: a write client other than HTTP to InfluxDB. */
  client?: WriteClient;
}

/** Activations remembered for verdict changes (the detector re-decides only recent ones). */
const MAX_REMEMBERED_ACTIVATIONS = 10_000;

/** This process among all collectors writing to a database: random, new at each start. */
const INSTANCE = randomBytes(6).toString('hex');

/** Collector time and wall time this far apart (live) mean a clock was set: the offset is measured again. */
const CLOCK_JUMP_MS = 60_000;

/** Builds the InfluxDB sink, or returns null when no influx.url is configured. */
export function buildInfluxSink(config: Readonly<Config>, deps: InfluxSinkDeps) {
  const influx = config.influx;
  const target = influxTarget(influx);
  if (target === null) return null;
  const { log } = deps;
  // the site tag on every point: many collectors can write into one database (docs/fleet.md)
  const { site } = config;
  const intervalMs = influx.intervalS * 1000;
  const deviceIntervalMs = influx.deviceIntervalS * 1000;
  const spool = new Spool(config.dataDir === null ? null : join(config.dataDir, 'spool', 'influx'), influx.spoolMaxMB * 1024 * 1024, { log });
  const client = buildInfluxClient(target);
  let prepared = !setupEnabled(influx);
  /** The setup was refused: a write-only user, which earshot then asks nothing (retractEarlierRuns). */
  let setupRefused = false;
  const who = target.token !== null ? 'the token' : target.username !== null ? `user "${target.username}"` : 'an anonymous client';
  const writer = new InfluxWriter(
    {
      batchSize: influx.batchSize,
      flushIntervalMs: influx.flushIntervalS * 1000,
      gzip: influx.gzip,
      retentionPolicy: writePolicy(influx),
      maxQueuedBatches: 64,
      retryMinMs: 500,
      retryMaxMs: 10_000,
      // database setup is the first "write": until it succeeds, batches wait in the spool
      prepare: prepared ? null : async () => {
        try {
          await setupDatabase(client, influx);
          prepared = true;
          log.info({ database: influx.database, raw: influx.rawPolicy, long: influx.longPolicy }, 'InfluxDB: database, retention policies and continuous queries ready');
          return { kind: 'ok' };
        } catch (err) {
          // a user without admin rights (a site's write-only user): say what an admin runs instead, and write
          if (err instanceof InfluxQueryError && setupDenied(err.status, err.message)) {
            const e = earshotError('EARSHOT_ERR_INFLUX_SETUP_DENIED', who, err.message, adminSetupCommand(influx, target.username));
            log.error({ code: e.code, status: err.status }, e.message);
            prepared = true;
            setupRefused = true;
            return { kind: 'ok' };
          }
          return setupOutcome(err);
        }
      },
      explainDenied: (outcome) => earshotError('EARSHOT_ERR_INFLUX_AUTH', `${outcome.status} ${outcome.reason}`, target.token !== null
        ? `influx.token (--influx-token, EARSHOT_INFLUX_TOKEN): revoked, mistyped, or without write access to "${influx.database}"`
        : target.username !== null
          ? `influx.username "${target.username}" and its password (EARSHOT_INFLUX_PASSWORD), and its rights (GRANT WRITE ON "${influx.database}" TO "${target.username}")`
          : 'the server wants credentials: set influx.token (2.x, 3.x) or influx.username and influx.password (1.x)').message,
      explainMissing: (outcome) =>
        earshotError('EARSHOT_ERR_INFLUX_MISSING', outcome.missing.what === 'DBRP mapping' ? `DBRP mapping for database "${influx.database}"` : `${outcome.missing.what} "${outcome.missing.name || influx.database}"`,
          `${outcome.status} ${outcome.reason}`, createCommand(influx, outcome.missing, outcome.server, target.username)).message,
    },
    deps.client ?? client,
    spool,
    log,
  );
  let sources: InfluxSources | null = null;
  const device = (mac: number) => sources?.device(mac);
  const traffic = new TrafficAggregator({ topServerNames: influx.topServerNames, device, site });
  const endpoints = new EndpointAggregator(site);
  let intervalStartMs = Number.NaN;
  let nextDeviceMs = Number.NaN;
  let lastDeviceMs = Number.NEGATIVE_INFINITY;
  /**
   * Devices with traffic since the last `device` points, and when (collector time): a speaker whose
   * traffic stays on connections it opened earlier is seen again only by its packets (the inventory
   * notes a device at a flow's start, a name, an announcement), and got no more `device` points.
   * Only devices with a `device` tag value of their own (traffic.ts DeviceTags, at most MAX_DEVICE_TAGS):
   * the others get no `device` point anyway. It was the first 4,096 devices with traffic in a minute,
   * and a flood of forged MACs kept the speakers out.
   */
  const withTraffic = new Map<number, number>();
  let offsetMs = 0;
  let pointsMade = 0;
  let clockMs = Number.NaN;
  let selfTimer: NodeJS.Timeout | null = null;
  let ended = false;
  const emit = (line: string | null) => {
    if (line === null) return;
    pointsMade++;
    writer.add(line);
  };
  // wall clock (live): collector time plus an offset measured at the first interval and again only when
  // the clocks jump apart (a router's clock set by NTP), so intervals keep distinct times
  let offsetKnown = false;
  let lastIntervalStamp = Number.NEGATIVE_INFINITY;
  const stamp = (ms: number) => ms + offsetMs;
  const intervalStamp = (startMs: number) => {
    const t = Math.max(stamp(startMs), lastIntervalStamp + intervalMs);
    lastIntervalStamp = t;
    return t;
  };

  /** The series and time each recent activation was written with, to retract it when its verdict changes. */
  const written = new Map<string, WrittenActivation>();
  /** Activations this run wrote and no longer remembers (past MAX_REMEMBERED_ACTIVATIONS). */
  let forgotten = 0;

  /** Ends the open interval: its traffic, pushed by the pipeline as it closed. */
  function closeInterval(): void {
    if (Number.isNaN(intervalStartMs)) return;
    const timeMs = intervalStamp(intervalStartMs);
    if (traffic.pending) pointsMade += traffic.drain(timeMs, device, (line) => writer.add(line));
    if (endpoints.pending) pointsMade += endpoints.drain(timeMs, (line) => writer.add(line));
  }

  function selfMetrics(): void {
    if (Number.isFinite(clockMs)) emit(collectorPoint(Math.floor(stamp(clockMs))));
    // live, before the first packet (a quiet network, a capture that sees nothing): the collector is
    // alive all the same, and a fleet tells live sites by this point, so it comes at wall time
    else if (deps.clock === 'wall') emit(collectorPoint(Date.now()));
  }

  function collectorPoint(timeMs: number): string | null {
    if (sources === null) return null;
    const s = sources.stats();
    const c = sources.captureStats();
    const w: WriterStats = writer.stats;
    const memory = process.memoryUsage();
    return pointLine('collector', { site }, {
      packets: int(s.capture.packets),
      bytes: int(s.capture.bytes),
      kernel_drops: int(c?.kernelDrops ?? 0),
      interface_drops: int(c?.interfaceDrops ?? 0),
      decode_errors: int(s.decode.decodeErrors),
      flows_active: int(s.flows.active),
      flows_created: int(s.flows.created),
      flows_evicted: int(s.flows.evicted),
      activations: int(s.detect?.activations ?? 0),
      points: int(pointsMade),
      points_written: int(w.pointsWritten),
      points_rejected: int(w.pointsRejected),
      points_dropped: int(w.spool.droppedPoints),
      write_errors: int(w.writeErrors),
      queue_depth: int(w.queueDepth),
      spool_points: int(w.spool.points),
      spool_bytes: int(w.spool.bytes),
      // the disk refused spool writes (full, read-only): what is held in memory meanwhile
      spool_write_errors: int(w.spool.writeErrors),
      spool_held_points: int(w.spool.heldPoints),
      batches_quarantined: int(w.spool.quarantinedBatches),
      points_quarantined: int(w.spool.quarantinedPoints),
      // the process's resident memory and the V8 heap in use of the thread that runs the pipeline (and
      // this sink): a collector that grows shows here over weeks, as on /metrics
      rss_bytes: int(memory.rss),
      heap_used_bytes: int(memory.heapUsed),
      // which process wrote it: two instances at one site in the same minutes are two collectors sharing
      // a site name by mistake (the Fleet overview counts them); the version, for upgrading a fleet
      instance: INSTANCE,
      version: version(),
    }, timeMs);
  }

  function devicePoints(nowMs: number): void {
    const timeMs = Math.floor(nowMs / deviceIntervalMs) * deviceIntervalMs;
    for (const d of sources?.devices() ?? []) {
      // only devices with a `device` tag value of their own (traffic.ts): a flood of forged MACs adds no series
      const trafficMs = withTraffic.get(d.mac);
      if ((d.lastSeenMs < lastDeviceMs && trafficMs === undefined) || !traffic.devices.admit(d.mac, d)) continue;
      emit(pointLine('device', { site, device: d.macText }, {
        name: d.name ?? '',
        vendor: d.vendor ?? d.ouiVendor ?? '',
        organization: d.organization ?? '',
        model: d.model ?? '',
        assistant: d.assistant,
        ips: [...d.ips].join(','),
        first_seen_ms: int(d.firstSeenMs),
        last_seen_ms: int(Math.max(d.lastSeenMs, trafficMs ?? Number.NEGATIVE_INFINITY)),
      }, stamp(timeMs)));
    }
    withTraffic.clear();
    lastDeviceMs = nowMs;
  }

  return {
    /** Connects the sink to the collector it reads self-metrics and flows from. */
    attach(from: InfluxSources): void {
      sources = from;
      // self-metrics follow the process, so they come every interval of wall time (a fast replay
      // crosses thousands of packet-time intervals a second), stamped with collector time
      selfTimer = setInterval(selfMetrics, intervalMs);
      selfTimer.unref();
    },
    /** Per-interval traffic pushed by the pipeline (flow/deltas.ts): into the open interval. */
    onFlowDeltas(deltas: readonly FlowDelta[]): void {
      for (const d of deltas) {
        traffic.take(d);
        // only devices with a tag value of their own get `device` points: at most MAX_DEVICE_TAGS, and a
        // flood of forged MACs (under "other") cannot crowd a speaker out of them
        // seen at its packet's time: the collector's clock, in a paced replay or live, moves with wall time
        // between packets, and a point said whenever the delta happened to be taken
        if (d.deviceMac >= 0 && traffic.devices.has(d.deviceMac) && d.lastMs > (withTraffic.get(d.deviceMac) ?? Number.NEGATIVE_INFINITY)) withTraffic.set(d.deviceMac, d.lastMs);
        // a LAN flow's other device was there too (its traffic counts for it: flow/deltas.ts)
        if (d.peerMac >= 0 && traffic.devices.has(d.peerMac) && d.lastMs > (withTraffic.get(d.peerMac) ?? Number.NEGATIVE_INFINITY)) withTraffic.set(d.peerMac, d.lastMs);
      }
    },
    onTick(nowMs: number): void {
      if (ended) return;
      clockMs = nowMs;
      if (deps.clock === 'wall') {
        const measured = Date.now() - nowMs;
        if (!offsetKnown || Math.abs(measured - offsetMs) > CLOCK_JUMP_MS) offsetMs = measured;
        offsetKnown = true;
      }
      if (Number.isNaN(intervalStartMs)) {
        intervalStartMs = Math.floor(nowMs / intervalMs) * intervalMs;
        nextDeviceMs = Math.floor(nowMs / deviceIntervalMs) * deviceIntervalMs + deviceIntervalMs;
        return;
      }
      if (nowMs >= intervalStartMs + intervalMs) {
        closeInterval();
        intervalStartMs = Math.floor(nowMs / intervalMs) * intervalMs;
      }
      if (nowMs >= nextDeviceMs) {
        devicePoints(nowMs);
        nextDeviceMs = Math.floor(nowMs / deviceIntervalMs) * deviceIntervalMs + deviceIntervalMs;
      }
    },
    /** A finished activation: one point at its start. */
    onActivation(a: Activation): void {
      const timeMs = stamp(a.startMs);
      const deviceName = device(a.deviceMac)?.name ?? null;
      // decided by a label before it finished (a replay or restart whose journal has the label): an earlier run
      // may have written it under the verdict the evidence gives, and may have died before marking that point
      // not current (chaos test, seed 1001: two current verdicts). Written here not current, whole (a
      // verdict it had), so queries on current = true count the activation once either way
      if (a.unlabelledVerdict !== null && a.unlabelledVerdict !== a.verdict) {
        const line = activationLine(a, timeMs, deviceName, site, { verdict: a.unlabelledVerdict, current: false });
        if (line !== null) emit(line);
      }
      emit(activationLine(a, timeMs, deviceName, site));
      written.set(a.id, { device: a.device, timeMs, deviceName, verdict: a.verdict });
      if (written.size > MAX_REMEMBERED_ACTIVATIONS) {
        written.delete(written.keys().next().value as string);
        forgotten++;
      }
    },
    /**
     * A written activation changed its verdict (a late wake event, a label): the point under the old
     * verdict is marked `current=false` (same series and time: InfluxDB merges the field into it) and
     * the activation is written again under the new one, so queries on `current = true` count it once.
     */
    onVerdictChanged(a: Activation): void {
      const before = written.get(a.id);
      if (before === undefined || before.verdict === a.verdict) return;
      emit(pointLine('activation', { site, device: a.device, device_name: before.deviceName, verdict: before.verdict }, { current: false }, before.timeMs));
      // under the same device name as before: only the verdict moves (the downsampled row stays one)
      emit(activationLine(a, before.timeMs, before.deviceName, site));
      written.set(a.id, { ...before, verdict: a.verdict });
    },
    /** A finished call: one point at its start (a call is never an activation). */
    onCall(c: Call): void {
      emit(callLine(c, stamp(c.startMs), device(c.deviceMac)?.name ?? null, site));
    },
    /** An ended flow's traffic by organisation (the privacy ledger): summed into the interval's `endpoint` points. */
    onEndpointTraffic(t: EndpointTraffic): void {
      // the `device` tag's bound (issue 14) holds across measurements: a device without a tag value of
      // its own in `traffic` is "other" here too, or forged MACs filled this one by another road
      endpoints.add(traffic.devices.admit(t.mac) ? t : { ...t, device: OTHER_DEVICE, deviceName: null });
    },
    /** A notice (a new organisation or service for an assistant): one `notice` point when the flow began. */
    onNotice(n: NoticeEvent): void {
      if (n.kind === 'finding') {
        // a finding can be about any host, forged ones too: its tag value as the traffic's (above)
        const mac = n.device === null ? -1 : parseMac(n.device.mac);
        const own = n.device === null || (mac >= 0 && traffic.devices.admit(mac));
        emit(pointLine('notice', { site, device: n.device === null ? 'none' : own ? n.device.mac : OTHER_DEVICE, device_name: own ? n.device?.name : null, kind: n.kind, what: n.finding.kind },
          { count: int(1), subject: n.finding.subject, severity: n.finding.severity, title: n.finding.title }, stamp(n.seenMs)));
        return;
      }
      emit(pointLine('notice', { site, device: n.device.mac, device_name: n.device.name, kind: n.kind, what: n.what },
        { count: int(1), subject: n.subject, organisation: n.organisation ?? '', service: n.service, endpoint: n.endpoint }, stamp(n.seenMs)));
    },
    /** Wake events (from the configured file, the API, MQTT). */
    onWakeEvents(events: readonly WakeEvent[]): void {
      for (const e of events) {
        emit(pointLine('wake_event', { site, device: e.device, source: e.source }, { count: int(1), intended: e.intended ?? true }, stamp(e.time)));
      }
    },
    /** The pipeline ended (flows flushed): the last interval and the inventory, sealed into a batch. */
    end(): void {
      if (ended) return;
      ended = true;
      closeInterval();
      if (!Number.isNaN(intervalStartMs)) devicePoints(intervalStartMs);
      intervalStartMs = Number.NaN;
      if (selfTimer) clearInterval(selfTimer);
      selfMetrics();
      writer.flush();
    },
    /**
     * When a run on a capture's own times ends its capture: marks the points an earlier run over the same
     * packets wrote for this run's activations under another verdict or device name `current=false`
     * (earlier-runs.ts). Resolves with how many; says in the log when InfluxDB could not be asked.
     */
    async retractEarlierRuns(): Promise<number> {
      // a token (2.x, 3.x, a shared server) or a write-only user writes, and reads nothing
      if (written.size === 0 || target.token !== null || setupRefused) return 0;
      try {
        const retracted = await retractEarlierRuns(client, { from: activationFrom(influx.database, writePolicy(influx)), site }, written, emit);
        if (retracted > 0) log.info({ retracted }, `InfluxDB: ${retracted} activation points of an earlier run over the same packets (another verdict or device name) marked current=false; each activation counts once`);
        if (forgotten > 0) log.warn({ forgotten }, `InfluxDB: the earliest ${forgotten} activations of this run were not compared with earlier runs (the newest ${MAX_REMEMBERED_ACTIVATIONS} were)`);
        return retracted;
      } catch (err) {
        // a database or policy not made yet (its setup comes with the first batch) holds no earlier run
        if (err instanceof InfluxQueryError && /(database|retention policy) not found/.test(err.message)) return 0;
        log.warn({ err: (err as Error).message }, `InfluxDB: could not look for an earlier run's points of these activations (${(err as Error).message}); if this capture was written before with other wake events or device names, its activations may count twice until marked current=false (docs/influxdb.md)`);
        return 0;
      }
    },
    /**
     * Waits up to `waitMs` for InfluxDB to take every point. Returns what is left (then in the spool:
     * on disk when `persistent`) and how many points InfluxDB refused over the whole run.
     */
    async deliver(waitMs: number): Promise<Pending & { persistent: boolean; rejected: number; dropped: number; held: number }> {
      const pending = await writer.close(waitMs);
      // a last try for batches held in memory while the disk was full: space may have come back
      spool.writeHeld();
      return { ...pending, persistent: spool.persistent, rejected: writer.stats.pointsRejected, dropped: spool.stats.droppedPoints, held: spool.stats.heldPoints };
    },
    writer,
    /** Sums of the traffic taken (bytes, packets): equal to the flows' totals. */
    trafficTotals: traffic.totals,
    /** Points made so far. */
    get points(): number {
      return pointsMade;
    },
  };
}

/** The `activation` point of an activation. */
export function activationLine(a: Activation, timeMs: number, deviceName: string | null, site: string, as: { verdict: Activation['verdict']; current: boolean } = { verdict: a.verdict, current: true }): string | null {
  return pointLine(
    'activation',
    { site, device: a.device, device_name: deviceName, verdict: as.verdict },
    {
      id: unique(a.id),
      // in microseconds at most: the times' own precision, without the float a subtraction leaves
      duration_s: Math.round(Math.max(0, a.endMs - a.startMs) * 1000) / 1e6,
      bytes_up: int(a.bytesUp),
      bytes_down: int(a.bytesDown),
      score: a.score,
      reasons: a.reasons.join(','),
      server_name: a.serverName ?? '',
      wake_event_ms: a.wakeEventMs === null ? null : int(a.wakeEventMs),
      // 1 under its verdict, 0 under the others: the downsampled rows count verdicts with sum()
      confirmed: int(as.verdict === 'confirmed' ? 1 : 0),
      suspected: int(as.verdict === 'suspected' ? 1 : 0),
      unverified: int(as.verdict === 'unverified' ? 1 : 0),
      // false once the activation got another verdict (then it is written again under that one)
      current: as.current,
    },
    timeMs,
  );
}

/** The `call` point of a finished call. */
export function callLine(c: Call, timeMs: number, deviceName: string | null, site: string): string | null {
  return pointLine(
    'call',
    { site, device: c.device, device_name: deviceName },
    {
      id: unique(c.id),
      duration_s: c.durationS,
      bytes_up: int(c.bytesUp),
      bytes_down: int(c.bytesDown),
      packets_up: int(c.packetsUp),
      packets_down: int(c.packetsDown),
      stun_packets: int(c.stunPackets),
      media_seconds: int(c.mediaSeconds),
      peers: int(c.peers.length),
      end_ms: int(Math.floor(c.endMs)),
    },
    timeMs,
  );
}

/** A failed setup: InfluxDB away (retry later) or refusing (say why, and go on writing). */
function setupOutcome(err: unknown): { kind: 'retry'; reason: string } | { kind: 'rejected'; status: number; reason: string } {
  const e = err as Error & { code?: string };
  if (err instanceof InfluxQueryError) {
    const { status } = err;
    // 200: the statement failed in its result (a bad statement, a duration InfluxDB does not take);
    // 4xx: refused (credentials, permissions); retrying will not help either
    if (status < 300 || (status >= 400 && status < 500 && status !== 408 && status !== 429)) {
      return { kind: 'rejected', status, reason: `database setup: ${e.message}` };
    }
  }
  return { kind: 'retry', reason: `database setup: ${e.code ? `${e.code} ` : ''}${e.message}` };
}

export type InfluxSink = NonNullable<ReturnType<typeof buildInfluxSink>>;
