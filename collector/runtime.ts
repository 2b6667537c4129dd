/**
 * One run of earshot: the pipeline (buildCollector) with its sinks wired in: the report, InfluxDB, the
 * activity store the API reads, and the activation listeners (webhooks, MQTT). Wake events and labels
 * that arrive while it runs (API, MQTT) re-decide activations, and the changes reach the same sinks.
 * Importing this module does no I/O; buildRuntime() opens nothing until the sinks start.
 */
import type { CaptureSource, CaptureStats } from './capture/types.js';
import type { Config } from './config.js';
import type { Activation } from './detect/detector.js';
import type { Label } from './detect/index.js';
import type { WakeEvent } from './detect/wake-events.js';
import type { Flow } from './flow/flow.js';
import { buildCollector } from './index.js';
import type { Logger } from './log.js';
import { ActivityStore } from './sink/activity.js';
import { activationEvent, type ActivationEventKind, type ActivationListener, type EventDevice } from './sink/events.js';
import { buildInfluxSink } from './sink/influx/index.js';
import { buildReportSink } from './sink/report.js';

export interface RuntimeOptions {
  /** 'wall': points and events carry wall time (live capture); 'packet': capture time (files). */
  clock: 'packet' | 'wall';
  /** Keep what the API shows (recent flows, per-device endpoints, activations). */
  activity: boolean;
}

export interface RuntimeDeps {
  log: Logger;
}

/** Builds a run. Listeners (webhooks, MQTT, the API's own) are added with addListener() before run(). */
export function buildRuntime(config: Readonly<Config>, options: RuntimeOptions, deps: RuntimeDeps) {
  const report = buildReportSink({ ...config.report, maxDevices: config.tagging.maxDevices });
  const influx = buildInfluxSink(config, { log: deps.log, clock: options.clock });
  const activity = options.activity ? new ActivityStore({ maxActivations: 10_000, maxEndedFlows: 10_000, maxDevices: config.tagging.maxDevices }) : null;
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
  const remember = (a: Activation) => {
    announced.set(a.id, a.verdict);
    if (announced.size > 10_000) announced.delete(announced.keys().next().value as string);
  };

  const onFlowEnd = (f: Flow) => {
    report.onFlowEnd(f);
    influx?.onFlowEnd(f);
    activity?.flowEnded(f);
  };
  const collector = buildCollector(config, {
    onFlowEnd,
    onDnsAnswer: report.onDnsAnswer,
    onTick: influx?.onTick,
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
  });
  if (influx) {
    influx.attach({
      forEachRecentFlow: collector.forEachRecentFlow,
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

  return {
    collector,
    report,
    influx,
    activity,
    addListener(listener: ActivationListener): void {
      listeners.push(listener);
    },
    /** Runs the capture to its end (or stop()); flows are flushed, the last points sealed. */
    async run(source: CaptureSource): Promise<CaptureStats> {
      const stats = await collector.run(source);
      influx?.end();
      return stats;
    },
    /** Wake events from the API or MQTT: stored, written, and recent activations re-decided. */
    addWakeEvents(events: readonly WakeEvent[]): Activation[] {
      if (!collector.detect) return [];
      influx?.onWakeEvents(events);
      return announceChanges(collector.detect.addWakeEvents(events));
    },
    /** A person's label for an activation. Null when the activation is not among the recent ones. */
    label(id: string, label: Label): Activation | null {
      if (!collector.detect) return null;
      const a = collector.detect.label(id, label);
      if (a) announceChanges([a]);
      return a;
    },
  };
}

export type Runtime = ReturnType<typeof buildRuntime>;
