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

/**
 * A notice: something an owner wants to hear about that is not an activation. Kinds:
 * `new-endpoint`: after its learning period, an assistant contacted an organisation (or used a service
 * class) it had never been seen with (collector/privacy/ledger.ts);
 * `finding`: a network hygiene finding appeared, or its severity rose (collector/findings/).
 */
export interface NewEndpointNotice {
  kind: 'new-endpoint';
  /** What is new: 'new-organisation' or 'new-service'. */
  what: 'new-organisation' | 'new-service';
  /** The organisation's name (or the server name when no organisation is known), or the service class. */
  subject: string;
  organisation: string | null;
  service: string;
  /** The server name (or address) of the first flow that showed it. */
  endpoint: string;
  device: EventDevice;
  /** When the flow began (ms since the epoch; capture time in a replay). */
  seenMs: number;
  /** Wall time the event was made (ms since the epoch). */
  atMs: number;
}

/** A hygiene finding as the sinks are told of it (the API's and the report's record). */
export interface NoticeFinding {
  id: string;
  kind: string;
  severity: string;
  subject: string;
  title: string;
  evidence: string[];
  advice: string;
  firstSeen: string;
  lastSeen: string;
  count: number;
}

export interface FindingNotice {
  kind: 'finding';
  finding: NoticeFinding;
  /** The device it is about (null: none in particular, e.g. the network's segment). */
  device: EventDevice | null;
  /** When it was first seen (ms since the epoch; capture time in a replay). */
  seenMs: number;
  /** Wall time the event was made (ms since the epoch). */
  atMs: number;
}

export type NoticeEvent = NewEndpointNotice | FindingNotice;

export type NoticeKind = NoticeEvent['kind'];

/** Something that wants activation events (and, optionally, finished calls and notices). */
export interface ActivationListener {
  onActivationEvent(event: ActivationEvent): void;
  onCallEvent?(event: CallEvent): void;
  onNotice?(event: NoticeEvent): void;
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
