/**
 * What the alert sinks (webhooks, MQTT) and the API are told about activations. The pipeline calls
 * these in collector time order: started (an upload qualified, within ~2 s of its start), finished
 * (its verdict is set), and verdict-changed (a late wake event, a person's label, or a later member of
 * its arbitration group re-decided it): once per change, whatever caused it.
 */
import type { Activation } from '../detect/detector.js';
import { withLocal } from '../local/record.js';
import { activationToReport, type ReportActivation, type ReportCall } from './report.js';

export type ActivationEventKind = 'started' | 'finished' | 'verdict-changed';

/** The device an activation belongs to, as the inventory knows it. */
export interface EventDevice {
  mac: string;
  name: string | null;
  vendor: string | null;
  model: string | null;
  assistant: boolean;
}

export interface ActivationEvent {
  kind: ActivationEventKind;
  /** The activation in the report's form (docs/report.md): id, device, start, end, verdict, reasons, ... */
  activation: ReportActivation;
  device: EventDevice;
  /** Wall time the event was made (ms since the epoch). */
  atMs: number;
}

/** A finished call as the sinks are told of it: the report's form and the device. */
export interface CallEvent {
  call: ReportCall;
  device: EventDevice;
  /** Wall time the event was made (ms since the epoch). */
  atMs: number;
}

/** Something that wants activation events (and, optionally, finished calls). */
export interface ActivationListener {
  onActivationEvent(event: ActivationEvent): void;
  onCallEvent?(event: CallEvent): void;
}

/** Builds an event from a live Activation; `device` resolves its MAC in the inventory. */
export function activationEvent(kind: ActivationEventKind, a: Activation, device: (mac: number) => EventDevice | null, atMs = Date.now()): ActivationEvent {
  return {
    kind,
    activation: withLocal(activationToReport(a), a.local),
    device: device(a.deviceMac) ?? { mac: a.device, name: null, vendor: null, model: null, assistant: true },
    atMs,
  };
}
