/**
 * One run of earshot: the pipeline (buildCollector) with its sinks wired in: the report, InfluxDB, the
 * activity store the API reads, and the activation listeners (webhooks, MQTT). Wake events and labels
 * that arrive while it runs (API, MQTT) re-decide activations; every verdict change, whatever caused it
 * (those, or a later member of an arbitration group), reaches every sink once. With a data directory,
 * labels and wake events are on disk (fsynced) before they are accepted, and a restart applies them.
 * Importing this module does no I/O; buildRuntime() opens nothing until the sinks start.
 */
import { tmpdir } from 'node:os';
import type { CaptureSource, CaptureStats } from './capture/types.js';
import type { Config } from './config.js';
import type { Activation } from './detect/detector.js';
import { MAX_LABELS, type Label } from './detect/index.js';
import { Journal, parseSavedLabel, parseSavedWakeEvent, savedWakeEvent, type SavedLabel } from './detect/journal.js';
import { loadPresence, savePresence, type PresenceState } from './detect/presence.js';
import type { WakeEvent } from './detect/wake-events.js';
import type { Flow } from './flow/flow.js';
import { flowRecord } from './flow/record.js';
import { buildCollector } from './index.js';
import type { Logger } from './log.js';
import { ActivityStore } from './sink/activity.js';
import { DeviceTotalsStore } from './sink/device-totals.js';
import { activationEvent, type ActivationEventKind, type ActivationListener, type EventDevice, type NoticeEvent } from './sink/events.js';
import { buildInfluxSink } from './sink/influx/index.js';
import { buildReportSink, callToReport } from './sink/report.js';
import { buildPrivacy } from './privacy/index.js';
import { parseMac } from './mac.js';
import { buildEndpointOrgLookup } from './privacy/lookup.js';
import { NewestRing } from './sink/ring.js';
import { SpillDir } from './sink/spill.js';

/** What a capture without MAC addresses cannot give, and where to capture instead. */
export const WITHOUT_MAC_WARNING = 'packets without MAC addresses (raw IP: a tun or WireGuard interface, or a loopback capture): '
  + 'earshot tells devices apart by MAC, so no device, assistant or activation comes from them; '
  + 'capture on the LAN side (the bridge, Wi-Fi or Ethernet interface the assistants are on)';

/** Most wake events from the API and MQTT kept in the data directory (the newest). */
export const MAX_SAVED_WAKE_EVENTS = 10_000;

export interface RuntimeOptions {
  /** 'wall': points and events carry wall time (live capture); 'packet': capture time (files). */
  clock: 'packet' | 'wall';
  /** Keep what the API shows (recent flows, per-device endpoints, activations). */
  activity: boolean;
  /**
   * The report's finished flows and DNS answers wait for the end of the run on disk (sink/spill.ts), in
   * the data directory, else the system's temp directory (collect: a run of days). Default: in memory
   * (replay: a file's run is short, and its spill read back at the end peaked higher than the records kept).
   */
  spill?: boolean;
}

export interface RuntimeDeps {
  log: Logger;
}

/** Builds a run. Listeners (webhooks, MQTT, the API's own) are added with addListener() before run(). */
export function buildRuntime(config: Readonly<Config>, options: RuntimeOptions, deps: RuntimeDeps) {
  // per device, every ended flow's traffic: the report and the API read the same totals
  const totals = new DeviceTotalsStore({ maxDevices: config.tagging.maxDevices, endpoints: options.activity });
  // the report's records wait on disk, not in the pipeline's heap (made at the first write, removed by close())
  const spill = new SpillDir(options.spill === true ? config.dataDir ?? tmpdir() : null, (message) => deps.log.warn(message));
  const report = buildReportSink({ ...config.report, maxDevices: config.tagging.maxDevices, site: config.site }, { totals, spill });
  const influx = buildInfluxSink(config, { log: deps.log, clock: options.clock });
  const activity = options.activity
    ? new ActivityStore({ maxActivations: 10_000, maxEndedFlows: 10_000, maxFlowsPerAssistant: 500, isAssistant: (mac) => collector.inventory?.describe(mac)?.assistant === true }, totals)
    : null;
  const listeners: ActivationListener[] = [];
  /** The verdict each activation was last announced with, to tell changes (bounded like the store). */
  const announced = new Map<string, string>();

  const deviceOf = (mac: number): EventDevice | null => {
    const d = collector.inventory?.describe(mac);
    return d ? { mac: d.macText, name: d.name, vendor: d.vendor ?? d.ouiVendor, model: d.model, assistant: d.assistant } : null;
  };
  const emit = (kind: ActivationEventKind, a: Activation) => {
    if (listeners.length === 0) return;
    const event = activationEvent(kind, a, deviceOf);
    for (const l of listeners) {
      try {
        l.onActivationEvent(event);
      } catch (err) {
        deps.log.error({ err: (err as Error).message }, 'an activation listener failed');
      }
    }
  };
  const notify = (event: NoticeEvent) => {
    influx?.onNotice(event);
    for (const l of listeners) {
      try {
        l.onNotice?.(event);
      } catch (err) {
        deps.log.error({ err: (err as Error).message }, 'a notice listener failed');
      }
    }
  };
  const remember = (a: Activation) => {
    announced.set(a.id, a.verdict);
    if (announced.size > 10_000) announced.delete(announced.keys().next().value as string);
  };

  const onFlowEnd = (f: Flow) => {
    const record = flowRecord(f);
    totals.add(record);
    report.onFlowEnd(record);
    activity?.flowEnded(record);
    privacy?.onFlowEnd(record);
  };
  const privacy = config.privacy.enabled && config.tagging.enabled
    ? buildPrivacy(config, { log: deps.log, device: (mac) => collector.inventory?.describe(mac), lookup: buildEndpointOrgLookup(config), onNotice: notify, onTraffic: influx?.onEndpointTraffic })
    : null;
  // a link without MAC addresses (a tun interface, a raw-IP capture): said once, the first second it shows
  let macWarned = false;
  const warnWithoutMac = (): void => {
    if (collector.decodeStats.withoutMac === 0) return;
    macWarned = true;
    deps.log.warn(WITHOUT_MAC_WARNING);
  };
  const collector = buildCollector(config, {
    onFlowEnd,
    // a hygiene finding that appeared, or whose severity rose: a notice (webhooks, MQTT, InfluxDB)
    onFinding(f) {
      const mac = f.device === null ? -1 : parseMac(f.device);
      notify({
        kind: 'finding',
        finding: { id: f.id, kind: f.kind, severity: f.severity, subject: f.subject, title: f.title, evidence: f.evidence, advice: f.advice, firstSeen: f.firstSeen, lastSeen: f.lastSeen, count: f.count },
        device: mac < 0 ? null : deviceOf(mac) ?? { mac: f.device as string, name: f.deviceName, vendor: null, model: null, assistant: f.assistant },
        seenMs: Date.parse(f.firstSeen),
        atMs: Date.now(),
      });
    },
    onDnsAnswer: report.onDnsAnswer,
    onFlowDeltas: influx?.onFlowDeltas,
    onTick(nowMs) {
      influx?.onTick(nowMs);
      if (!macWarned) warnWithoutMac();
    },
    onActivationStarted(a) {
      activity?.started(a);
      emit('started', a);
    },
    onActivation(a) {
      report.onActivation(a);
      influx?.onActivation(a);
      activity?.finished(a);
      remember(a);
      emit('finished', a);
    },
    onVerdictChanged(a) {
      announceChanges([a]);
    },
    onCall(call) {
      report.onCall(call);
      influx?.onCall(call);
      activity?.callFinished(call);
      if (listeners.length === 0) return;
      const event = { call: callToReport(call), device: deviceOf(call.deviceMac) ?? { mac: call.device, name: null, vendor: null, model: null, assistant: true }, atMs: Date.now() };
      for (const l of listeners) {
        try {
          l.onCallEvent?.(event);
        } catch (err) {
          deps.log.error({ err: (err as Error).message }, 'a call listener failed');
        }
      }
    },
  });
  if (influx) {
    influx.attach({
      devices: () => collector.inventory?.all() ?? [],
      device: (mac) => collector.inventory?.describe(mac),
      stats: collector.stats,
      captureStats: collector.captureStats,
    });
    influx.onWakeEvents(collector.detect?.store.list() ?? []);
  }

  /** Activations whose verdict differs from the one announced: tell everyone. */
  function announceChanges(changed: readonly Activation[]): Activation[] {
    const out: Activation[] = [];
    for (const a of changed) {
      const before = announced.get(a.id);
      if (before === undefined || before === a.verdict) continue;
      activity?.verdictChanged(a, before);
      influx?.onVerdictChanged(a);
      remember(a);
      emit('verdict-changed', a);
      out.push(a);
    }
    return out;
  }

  let labelJournal: Journal<SavedLabel> | null = null;
  let wakeJournal: Journal<WakeEvent> | null = null;
  const savedWakeEvents = new NewestRing<WakeEvent>(MAX_SAVED_WAKE_EVENTS);
  let labelsInJournal = false;
  /** Where the owner's live presence is saved (the data directory), once openJournals ran. */
  let presenceDir: string | null = null;

  return {
    collector,
    report,
    influx,
    activity,
    privacy,
    addListener(listener: ActivationListener): void {
      listeners.push(listener);
    },
    /** Runs the capture to its end (or stop()); flows are flushed, the last points sealed. */
    async run(source: CaptureSource): Promise<CaptureStats> {
      const stats = await collector.run(source);
      if (!macWarned) warnWithoutMac();
      influx?.end();
      return stats;
    },
    /**
     * Opens the journals of labels and wake events in `dataDir` and applies what an earlier run saved
     * there (after loadState: the journal is newer than labels an old state file held). Returns warnings.
     */
    openJournals(dataDir: string): string[] {
      const warnings: string[] = [];
      const ledgerWarning = privacy?.open(dataDir);
      if (ledgerWarning) warnings.push(ledgerWarning);
      const detect = collector.detect;
      if (!detect) return warnings;
      labelJournal = new Journal<SavedLabel>(dataDir, {
        file: 'labels.jsonl', what: 'labels', max: MAX_LABELS, parse: parseSavedLabel,
        live: () => [...detect.labels].map(([id, label]) => ({ id, label })),
      });
      labelsInJournal = true;
      const fromJournal = new Set<string>();
      const labelWarning = labelJournal.load((records) => {
        for (const { id, label } of records) {
          detect.restoreLabel(id, label);
          fromJournal.add(id);
        }
      });
      if (labelWarning) warnings.push(labelWarning);
      // labels an older version kept in state.json move into the journal once
      const older = [...detect.labels].filter(([id]) => !fromJournal.has(id)).map(([id, label]) => ({ id, label }));
      try {
        labelJournal.append(older);
      } catch (err) {
        labelsInJournal = false;
        warnings.push(`${(err as Error).message} (the state file keeps the labels)`);
      }
      wakeJournal = new Journal<WakeEvent>(dataDir, {
        file: 'wake-events.jsonl', what: 'wake events', max: MAX_SAVED_WAKE_EVENTS, parse: parseSavedWakeEvent,
        live: () => savedWakeEvents.toArray(),
      });
      const wakeWarning = wakeJournal.load((records) => {
        for (const e of records) savedWakeEvents.push(e);
        detect.restoreWakeEvents(savedWakeEvents.toArray());
      });
      if (wakeWarning) warnings.push(wakeWarning);
      presenceDir = dataDir;
      const presence = loadPresence(dataDir);
      if (presence.state !== null) detect.presence.set(presence.state);
      if (presence.warning) warnings.push(presence.warning);
      return warnings;
    },
    /** True when labels are kept in labels.jsonl (the state file need not carry them). */
    get labelsInJournal(): boolean {
      return labelsInJournal;
    },
    /** Closes the journals' files. */
    closeJournals(): void {
      privacy?.close();
      labelJournal?.close();
      wakeJournal?.close();
    },
    /** Removes the report's spilled records (after the report is written): the run's last step. */
    close(): void {
      spill.close();
    },
    /**
     * Wake events from the API or MQTT: saved (with a data directory; throws NotSavedError when that
     * fails, and nothing changes), written to InfluxDB, and recent activations re-decided.
     */
    addWakeEvents(events: readonly WakeEvent[], options: { save?: boolean } = {}): Activation[] {
      if (!collector.detect) return [];
      const saved = events.map(savedWakeEvent);
      if (options.save !== false) wakeJournal?.append(saved);
      for (const e of saved) savedWakeEvents.push(e);
      influx?.onWakeEvents(saved);
      const changed = announceChanges(collector.detect.addWakeEvents(saved));
      // on disk before the answer, as the events themselves: a kill now must not leave an old verdict current
      if (changed.length > 0 || options.save !== false) influx?.writer.saveUnsent();
      return changed;
    },
    /**
     * The owner's live presence (MQTT, API): saved first (with a data directory; throws NotSavedError
     * when that fails, and nothing changes), then it counts for activations that start from `nowMs` on.
     * Null when detection is off.
     */
    setPresence(away: boolean, source: string, options: { save?: boolean; nowMs?: number } = {}): PresenceState | null {
      const detect = collector.detect;
      if (!detect) return null;
      const state: PresenceState = { away, sinceMs: options.nowMs ?? Date.now(), source };
      if (presenceDir !== null && options.save !== false) savePresence(presenceDir, state);
      detect.presence.set(state);
      deps.log.info({ away, source }, `the owner is ${away ? 'away' : 'home'} (${source})`);
      return state;
    },
    /** The owner's presence: the live state (null: never set) and the configured schedule. */
    presence(): { state: PresenceState | null; schedule: string[]; awayNow: boolean } | null {
      const presence = collector.detect?.presence;
      if (!presence) return null;
      return { state: presence.state, schedule: presence.schedule.map((r) => r.text), awayNow: presence.awayAt(Date.now()) };
    },
    /**
     * A person's label for an activation: saved (with a data directory; throws NotSavedError when that
     * fails, and nothing changes), then applied. Null when the activation is not among the recent ones.
     */
    label(id: string, label: Label): Activation | null {
      if (!collector.detect) return null;
      const known = collector.detect.find(id);
      if (known === null) return null;
      labelJournal?.append([{ id, label }]);
      const result = collector.detect.label(id, label);
      if (result === null) return null;
      // the points of the verdict change (the old one not current, the new one) reach the spool before the
      // answer, as the label reached its journal: killed right after, the next start still writes them
      if (announceChanges(result.changed).length > 0) influx?.writer.saveUnsent();
      return result.activation;
    },
  };
}

export type Runtime = ReturnType<typeof buildRuntime>;
