/**
 * The detect stage: the activation detector plus verdicts. When an activation ends it is matched
 * against wake events (file, API, MQTT, voice history), quiet hours, its arbitration group (assistants
 * that started uploading at the same moment heard the same wake word) and a person's label.
 */
import type { Config } from '../config.js';
import type { Inventory } from '../identify/inventory.js';
import { buildDetector, type Activation } from './detector.js';
import { applyLabel, decideVerdict, parseQuietHours, verdictOptions, type ArbitrationMember } from './verdict.js';
import { readWakeEventsFile, WakeEventStore, type WakeEvent } from './wake-events.js';

/** Most labels kept (and saved with the state); the oldest are dropped. */
const MAX_LABELS = 10_000;

export type Label = 'intended' | 'not-intended';

export interface DetectListeners {
  onActivationStarted?: (activation: Activation) => void;
  onActivation?: (activation: Activation) => void;
}

/** Finished activations kept for arbitration and re-evaluation (a bounded ring). */
const RECENT = 256;

/** Builds the detect stage. Wake events from the config's file are loaded here (sync, at setup). */
export function buildDetectStage(config: Readonly<Config>, inventory: Inventory, listeners: DetectListeners) {
  const options = verdictOptions({
    windowBeforeMs: config.detect.wakeWindowBeforeS * 1000,
    windowAfterMs: config.detect.wakeWindowAfterS * 1000,
    quietHours: parseQuietHours(config.detect.quietHours, 'detect.quietHours'),
    timeZone: config.detect.timeZone,
  });
  const arbitrationMs = config.detect.arbitrationWindowS * 1000;
  // no file configured: no source yet (the API and MQTT add one when they deliver events)
  const store = new WakeEventStore({ sourceConfigured: config.detect.wakeEvents !== null });
  if (config.detect.wakeEvents !== null) store.addAll(readWakeEventsFile(config.detect.wakeEvents));
  // newest last: the oldest go first past MAX_LABELS
  const labels = new Map<string, Label>();
  const recent: Activation[] = [];

  const deviceOf = (a: Activation) => ({ mac: a.device, name: inventory.find(a.deviceMac)?.name ?? null });

  function group(a: Activation): Activation[] {
    return recent.filter((o) => o !== a && o.deviceMac !== a.deviceMac && Math.abs(o.startMs - a.startMs) <= arbitrationMs);
  }

  function decide(a: Activation): void {
    const others = group(a);
    const members: ArbitrationMember[] = others.map((o) => ({ device: deviceOf(o), startMs: o.startMs, confirmed: o.verdict === 'confirmed' && !o.reasons.includes('arbitration') ? true : undefined }));
    const detectorReasons = a.reasons.filter((r) => r === 'sustained-upload' || r === 'arbitration-loser');
    const result = applyLabel(
      decideVerdict({ device: deviceOf(a), startMs: a.startMs, arbitrationGroup: members, followUp: a.reasons.includes('follow-up') }, store, options),
      labels.get(a.id) ?? null,
    );
    a.verdict = result.verdict;
    a.wakeEventMs = result.wakeEvent;
    a.reasons = [...detectorReasons, ...result.reasons];
    if (others.length > 0 && !a.reasons.includes('arbitration')) a.reasons.push('arbitration-group');
  }

  const detector = buildDetector((mac) => inventory.find(mac)?.vendor ?? inventory.find(mac)?.ouiVendor ?? null, {
    onStarted: listeners.onActivationStarted,
    onFinished(a) {
      recent.push(a);
      if (recent.length > RECENT) recent.shift();
      decide(a);
      // an earlier member of the group that was not confirmed may be now: one wake word, several uploads
      if (a.verdict === 'confirmed') for (const o of group(a)) if (o.verdict !== 'confirmed' && !labels.has(o.id)) decide(o);
      listeners.onActivation?.(a);
    },
  }, { arbitrationMs });

  return {
    detector,
    store,
    /** Adds wake events (API, MQTT) and re-decides the recent activations they may confirm. */
    addWakeEvents(events: readonly WakeEvent[]): Activation[] {
      store.addAll(events);
      const changed: Activation[] = [];
      for (const a of recent) {
        const before = a.verdict;
        decide(a);
        if (a.verdict !== before) changed.push(a);
      }
      return changed;
    },
    /** A person's label for an activation; wins over the detector. Returns the activation if known. */
    label(id: string, label: Label): Activation | null {
      const a = recent.find((r) => r.id === id) ?? null;
      // a label for an activation we do not know is not kept: the API answers 404, and made-up ids
      // must not grow the map (it is saved with the state)
      if (a === null) return null;
      labels.delete(id);
      labels.set(id, label);
      if (labels.size > MAX_LABELS) labels.delete(labels.keys().next().value as string);
      decide(a);
      return a;
    },
    labels,
  };
}

export type DetectStage = ReturnType<typeof buildDetectStage>;
