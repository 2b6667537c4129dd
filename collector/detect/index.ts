/**
 * The detect stage: the activation detector plus verdicts. When an activation ends it is matched
 * against wake events (file, API, MQTT, voice history), quiet hours, its arbitration group (assistants
 * that started uploading at the same moment heard the same wake word) and a person's label. A verdict
 * given earlier may change later (a wake event, a label, a later member of its group confirmed): every
 * such change goes to onVerdictChanged, whatever caused it, so the sinks hear of it.
 */
import type { Config } from '../config.js';
import type { Flow } from '../flow/flow.js';
import type { Inventory } from '../identify/inventory.js';
import { buildDetector, type Activation } from './detector.js';
import type { DetectorParams } from './params.js';
import { parseAwaySchedule, Presence } from './presence.js';
import { applyLabel, decideVerdict, parseQuietHours, verdictOptions, type ArbitrationMember, type Verdict } from './verdict.js';
import { readWakeEventsFile, WakeEventStore, type WakeEvent } from './wake-events.js';

/** Most labels kept (and saved in the data directory); the oldest are dropped. */
export const MAX_LABELS = 10_000;

export type Label = 'intended' | 'not-intended';

export interface DetectListeners {
  onActivationStarted?: (activation: Activation) => void;
  onActivation?: (activation: Activation) => void;
  /**
   * A finished activation's verdict changed because a later member of its arbitration group was
   * confirmed (changes from wake events and labels are returned by addWakeEvents and label).
   */
  onVerdictChanged?: (activation: Activation, before: Verdict) => void;
  /** An unnamed connection carried a voice stream (tagging learns it as the voice channel). */
  onVoiceFlow?: (flow: Flow) => void;
}

/** The detector's own reasons, kept when a verdict is decided again (follow-up is the verdict's). */
const DETECTOR_REASONS = new Set(['sustained-upload', 'arbitration-loser', 'aborted-wake', 'answered', 'long-stream', 'during-call']);

/** Finished activations kept for arbitration and re-evaluation (a bounded ring). */
const RECENT = 256;

/** Builds the detect stage. Wake events from the config's file are loaded here (sync, at setup). */
export function buildDetectStage(config: Readonly<Config>, inventory: Inventory, listeners: DetectListeners, tuning: { params?: (vendor: string | null) => DetectorParams; inCall?: (mac: number, timeMs: number) => boolean } = {}) {
  const options = verdictOptions({
    windowBeforeMs: config.detect.wakeWindowBeforeS * 1000,
    windowAfterMs: config.detect.wakeWindowAfterS * 1000,
    quietHours: parseQuietHours(config.detect.quietHours, 'detect.quietHours'),
    timeZone: config.detect.timeZone,
  });
  const arbitrationMs = config.detect.arbitrationWindowS * 1000;
  const presence = new Presence(parseAwaySchedule(config.detect.away, 'detect.away'), config.detect.timeZone);
  // no file configured: no source yet (the API and MQTT add one when they deliver events)
  const store = new WakeEventStore({ sourceConfigured: config.detect.wakeEvents !== null });
  if (config.detect.wakeEvents !== null) store.addAll(readWakeEventsFile(config.detect.wakeEvents));
  // newest last: the oldest go first past MAX_LABELS
  const labels = new Map<string, Label>();
  const recent: Activation[] = [];

  function restoreLabel(id: string, label: Label): void {
    labels.delete(id);
    labels.set(id, label);
    if (labels.size > MAX_LABELS) labels.delete(labels.keys().next().value as string);
  }

  const deviceOf = (a: Activation) => ({ mac: a.device, name: inventory.find(a.deviceMac)?.name ?? null });

  function group(a: Activation): Activation[] {
    return recent.filter((o) => o !== a && o.deviceMac !== a.deviceMac && Math.abs(o.startMs - a.startMs) <= arbitrationMs);
  }

  function decide(a: Activation): void {
    const others = group(a);
    const members: ArbitrationMember[] = others.map((o) => ({ device: deviceOf(o), startMs: o.startMs, confirmed: o.verdict === 'confirmed' && !o.reasons.includes('arbitration') ? true : undefined }));
    const detectorReasons = a.reasons.filter((r) => DETECTOR_REASONS.has(r));
    if (tuning.inCall?.(a.deviceMac, a.startMs) && !detectorReasons.includes('during-call')) detectorReasons.push('during-call');
    const evidence = decideVerdict({ device: deviceOf(a), startMs: a.startMs, arbitrationGroup: members, followUp: a.reasons.includes('follow-up'), ownerAway: presence.awayAt(a.startMs) }, store, options);
    const result = applyLabel(evidence, labels.get(a.id) ?? null);
    a.verdict = result.verdict;
    a.unlabelledVerdict = evidence.verdict !== result.verdict ? evidence.verdict : null;
    a.wakeEventMs = result.wakeEvent;
    a.reasons = [...detectorReasons, ...result.reasons];
    if (others.length > 0 && !a.reasons.includes('arbitration')) a.reasons.push('arbitration-group');
  }

  /**
   * Re-decides the members of `a`'s group whose verdict may rest on `a`: those not confirmed, and those
   * confirmed only by arbitration. A member with a label keeps it. Returns the ones that changed.
   */
  function redecideGroup(a: Activation): Array<{ activation: Activation; before: Verdict }> {
    const changed: Array<{ activation: Activation; before: Verdict }> = [];
    for (const o of group(a)) {
      if (labels.has(o.id) || (o.verdict === 'confirmed' && !o.reasons.includes('arbitration'))) continue;
      const before = o.verdict;
      decide(o);
      if (o.verdict !== before) changed.push({ activation: o, before });
    }
    return changed;
  }

  const detector = buildDetector((mac) => inventory.find(mac)?.vendor ?? inventory.find(mac)?.ouiVendor ?? null, {
    onStarted: listeners.onActivationStarted,
    onVoiceFlow: listeners.onVoiceFlow,
    onFinished(a) {
      recent.push(a);
      if (recent.length > RECENT) recent.shift();
      decide(a);
      // an earlier member of the group that was not confirmed may be now: one wake word, several uploads
      const changed = a.verdict === 'confirmed' ? redecideGroup(a) : [];
      listeners.onActivation?.(a);
      // the earlier members were announced with their old verdict: they are announced again
      for (const { activation, before } of changed) listeners.onVerdictChanged?.(activation, before);
    },
  }, { arbitrationMs, params: tuning.params });

  return {
    detector,
    store,
    /** The owner's presence (detect.away and the live state from MQTT and the API). */
    presence,
    /** Adds wake events (API, MQTT) and re-decides the recent activations they may confirm. */
    addWakeEvents(events: readonly WakeEvent[]): Activation[] {
      store.addAll(events);
      const before = new Map(recent.map((a) => [a, a.verdict]));
      // twice: a verdict decided early in the ring may rest on a group member decided after it
      for (let pass = 0; pass < 2; pass++) for (const a of recent) decide(a);
      return recent.filter((a) => a.verdict !== before.get(a));
    },
    /** Wake events saved by an earlier run (API, MQTT): stored, for the activations still to come. */
    restoreWakeEvents(events: readonly WakeEvent[]): void {
      if (events.length > 0) store.addAll(events);
    },
    /** A finished activation among the recent ones (those a label or a wake event can still change). */
    find(id: string): Activation | null {
      return recent.find((r) => r.id === id) ?? null;
    },
    /**
     * A person's label for an activation; wins over the detector. Returns the activation (null when it
     * is not among the recent ones) and every activation whose verdict changed with it: the labelled
     * one, and members of its arbitration group that rested on it.
     */
    label(id: string, label: Label): { activation: Activation; changed: Activation[] } | null {
      const a = recent.find((r) => r.id === id) ?? null;
      // a label for an activation we do not know is not kept: the API answers 404, and made-up ids
      // must not grow the map (it is saved in the data directory)
      if (a === null) return null;
      restoreLabel(id, label);
      const before = a.verdict;
      decide(a);
      const changed = [...(a.verdict !== before ? [a] : []), ...redecideGroup(a).map((c) => c.activation)];
      return { activation: a, changed };
    },
    /** A label saved by an earlier run: kept for when its activation is seen (a replay, a restart). */
    restoreLabel,
    labels,
  };
}

export type DetectStage = ReturnType<typeof buildDetectStage>;
