/**
 * What the MQTT sink tells about each assistant: whether it is uploading audio now, its last activation
 * and last suspected one, and today's counts. Counts belong to the local day (detect.timeZone) and start
 * again at 0 when it changes. A verdict that changes later (a late wake event, a person's label) moves
 * the suspected count both ways. Devices and activations are bounded; the least recently used go first.
 */
import type { ActivationEvent, EventDevice } from '../events.js';
import type { ReportActivation } from '../report.js';
import { LocalDays, type LocalDay } from './local-day.js';
import { deviceKey } from './topics.js';
import { printable } from '../../text.js';

/** The suspected activation shown as attributes of the "last suspected activation" sensor. */
export interface ActivationSummary {
  id: string;
  start: string;
  end: string;
  verdict: ReportActivation['verdict'];
  reasons: string[];
  server_name: string | null;
  bytes_up: number;
}

/** The retained JSON on PREFIX/device/<key>/state (docs/mqtt.md). */
export interface DeviceStatePayload {
  mac: string;
  name: string | null;
  vendor: string | null;
  model: string | null;
  listening: boolean;
  last_activation: string | null;
  last_suspected: string | null;
  last_suspected_activation: ActivationSummary | null;
  activations_today: number;
  suspected_today: number;
  /** The local day the counts belong to (YYYY-MM-DD). */
  day: string;
  /** When the counts started (local midnight, ISO 8601 with offset): Home Assistant's last_reset. */
  last_reset: string;
}

/** One assistant's state. */
export class DeviceState {
  readonly open = new Set<string>();
  activationsToday = 0;
  suspectedToday = 0;
  lastActivation: string | null = null;
  lastSuspected: ActivationSummary | null = null;
  /** A retained state of an earlier run was merged (at most once). */
  restored = false;
  /** Seen as an assistant (inventory or activation): it gets discovery configs. */
  assistant = false;

  constructor(
    readonly key: string,
    public mac: string,
    public name: string | null,
    public vendor: string | null,
    public model: string | null,
    public day: LocalDay,
  ) {}

  get listening(): boolean {
    return this.open.size > 0;
  }

  /** The device as events describe it. */
  get device(): EventDevice {
    return { mac: this.mac, name: this.name, vendor: this.vendor, model: this.model, assistant: this.assistant };
  }
}

interface TrackedActivation {
  key: string;
  /** Local day it was counted in. */
  day: string;
  suspected: boolean;
  summary: ActivationSummary;
  /** The device's last suspected activation before this one took its place. */
  previous: ActivationSummary | null;
}

export interface DeviceStatesOptions {
  timeZone: string;
  /** Most devices kept (the least recently used are dropped beyond it). */
  maxDevices: number;
  /** Most activations remembered for verdict changes (default 1024). */
  maxActivations?: number;
  /** A state dropped to make room: its retained topics on the broker must go too. */
  onEvicted?: (state: DeviceState) => void;
  /** Keys (deviceKey) of the devices the owner configured: dropped only after every unproven one. */
  configured?: ReadonlySet<string>;
}

/** Most activations open at once on one device; a "finished" never seen must not grow the set. */
const MAX_OPEN_PER_DEVICE = 16;

const later = (a: string, b: string) => Date.parse(a) >= Date.parse(b);

function summarize(a: ReportActivation): ActivationSummary {
  return { id: a.id, start: a.start, end: a.end, verdict: a.verdict, reasons: a.reasons.slice(), server_name: a.serverName, bytes_up: a.bytesUp };
}

/** Per-device states, bounded, in least recently used order. */
export class DeviceStates {
  private readonly states = new Map<string, DeviceState>();
  private readonly activations = new Map<string, TrackedActivation>();
  private readonly days: LocalDays;
  private readonly maxDevices: number;
  private readonly maxActivations: number;
  private readonly onEvicted: (state: DeviceState) => void;
  private readonly configured: ReadonlySet<string>;
  /** Devices dropped because the map was full (a self-metric). */
  evicted = 0;

  constructor(options: DeviceStatesOptions) {
    this.days = new LocalDays(options.timeZone);
    this.maxDevices = Math.max(1, options.maxDevices);
    this.maxActivations = Math.max(1, options.maxActivations ?? 1024);
    this.onEvicted = options.onEvicted ?? (() => {});
    this.configured = options.configured ?? new Set();
  }

  get size(): number {
    return this.states.size;
  }

  /** The local day of `nowMs`. */
  today(nowMs: number): LocalDay {
    return this.days.dayOf(nowMs);
  }

  get(key: string): DeviceState | undefined {
    return this.states.get(key);
  }

  values(): IterableIterator<DeviceState> {
    return this.states.values();
  }

  remove(key: string): void {
    this.states.delete(key);
  }

  /** The device's state (made when new), with its name, vendor and model brought up to date. */
  touch(device: EventDevice, nowMs: number): DeviceState {
    const key = deviceKey(device.mac);
    let state = this.states.get(key);
    if (state === undefined) {
      state = this.make(key, device.mac.toLowerCase(), nowMs);
    } else {
      this.states.delete(key);
      this.states.set(key, state);
    }
    // what the inventory learns later (a name from DHCP) wins; it never forgets what it knew
    state.name = device.name ?? state.name;
    state.vendor = device.vendor ?? state.vendor;
    state.model = device.model ?? state.model;
    this.rollover(state, nowMs);
    return state;
  }

  /** Applies an activation event to its device's state; returns that state. */
  apply(event: ActivationEvent, nowMs: number): DeviceState {
    const state = this.touch(event.device, nowMs);
    state.assistant = true;
    const a = event.activation;
    const summary = summarize(a);
    let tracked = this.activations.get(a.id);
    if (tracked === undefined) {
      // first sight (usually "started"): it counts for the local day it started on, which is today for a
      // live capture; one of an old capture's replay counts for no today (it made 2017's activations
      // "today's", and a second replay of them doubled the count read back from the broker)
      const started = Date.parse(a.start);
      const day = Number.isFinite(started) ? this.days.dayOf(started).key : state.day.key;
      tracked = { key: state.key, day, suspected: false, summary, previous: null };
      this.remember(a.id, tracked);
      if (day === state.day.key) state.activationsToday++;
      if (state.lastActivation === null || later(a.start, state.lastActivation)) state.lastActivation = a.start;
    } else {
      tracked.summary = summary;
      this.activations.delete(a.id);
      this.activations.set(a.id, tracked);
    }

    if (event.kind === 'started') {
      if (state.open.size >= MAX_OPEN_PER_DEVICE) state.open.delete(state.open.values().next().value as string);
      state.open.add(a.id);
      return state;
    }
    if (event.kind === 'finished') state.open.delete(a.id);

    // the verdict is set at "finished" and may change later
    const suspected = a.verdict === 'suspected';
    const countsToday = tracked.day === state.day.key;
    if (suspected && !tracked.suspected) {
      tracked.suspected = true;
      if (countsToday) state.suspectedToday++;
      if (state.lastSuspected === null || later(a.start, state.lastSuspected.start)) {
        tracked.previous = state.lastSuspected;
        state.lastSuspected = summary;
      }
    } else if (!suspected && tracked.suspected) {
      tracked.suspected = false;
      if (countsToday) state.suspectedToday = Math.max(0, state.suspectedToday - 1);
      if (state.lastSuspected?.id === a.id) state.lastSuspected = this.latestSuspected(state.key, tracked.previous);
    } else if (suspected && state.lastSuspected?.id === a.id) {
      state.lastSuspected = summary;
    }
    return state;
  }

  /** Starts a new day for every state whose day is over; returns those. */
  rolloverAll(nowMs: number): DeviceState[] {
    const rolled: DeviceState[] = [];
    for (const state of this.states.values()) if (this.rollover(state, nowMs)) rolled.push(state);
    return rolled;
  }

  /**
   * Merges a state retained by an earlier run, once per device: on the same day its counts are added
   * to what this run counted; the later of each time wins. Returns the state, or null for a payload
   * that is not a state.
   */
  restore(key: string, payload: unknown, nowMs: number): DeviceState | null {
    const old = readPayload(payload);
    if (old === null || deviceKey(old.mac) !== key) return null;
    const state = this.states.get(key) ?? this.make(key, old.mac.toLowerCase(), nowMs);
    if (state.restored) return state;
    state.restored = true;
    this.rollover(state, nowMs);
    state.name ??= old.name;
    state.vendor ??= old.vendor;
    state.model ??= old.model;
    if (old.day === state.day.key) {
      state.activationsToday += old.activations_today;
      state.suspectedToday += old.suspected_today;
    }
    if (old.last_activation !== null && (state.lastActivation === null || later(old.last_activation, state.lastActivation))) {
      state.lastActivation = old.last_activation;
    }
    if (old.last_suspected !== null && (state.lastSuspected === null || later(old.last_suspected, state.lastSuspected.start))) {
      state.lastSuspected = old.last_suspected_activation ?? { id: '', start: old.last_suspected, end: old.last_suspected, verdict: 'suspected', reasons: [], server_name: null, bytes_up: 0 };
    }
    return state;
  }

  /** The retained JSON of a state. */
  payload(state: DeviceState): DeviceStatePayload {
    return {
      mac: state.mac,
      // names come from packets: control and bidi characters escaped, as in the discovery configs
      name: state.name === null ? null : printable(state.name),
      vendor: state.vendor === null ? null : printable(state.vendor),
      model: state.model === null ? null : printable(state.model),
      listening: state.listening,
      last_activation: state.lastActivation,
      last_suspected: state.lastSuspected?.start ?? null,
      last_suspected_activation: state.lastSuspected,
      activations_today: state.activationsToday,
      suspected_today: state.suspectedToday,
      day: state.day.key,
      last_reset: state.day.startIso,
    };
  }

  private make(key: string, mac: string, nowMs: number): DeviceState {
    if (this.states.size >= this.maxDevices) {
      const victim = this.victim();
      this.states.delete(victim.key);
      this.evicted++;
      this.onEvicted(victim);
    }
    const state = new DeviceState(key, mac, null, null, null, this.days.dayOf(nowMs));
    this.states.set(key, state);
    return state;
  }

  /**
   * The state to drop for a new one: the least recently used of those never seen uploading audio and not
   * configured, else the least recently used of all. Any LAN host can announce forged assistants from
   * made-up MACs (and send them traffic to a vendor's cloud): they must not push out, and so remove from
   * Home Assistant, the Echo whose activations the owner follows. At most maxDevices (256) steps.
   */
  private victim(): DeviceState {
    let oldest: DeviceState | undefined;
    for (const state of this.states.values()) {
      oldest ??= state;
      if (state.lastActivation === null && !this.configured.has(state.key)) return state;
    }
    return oldest as DeviceState;
  }

  private rollover(state: DeviceState, nowMs: number): boolean {
    const today = this.days.dayOf(nowMs);
    if (state.day.key === today.key) return false;
    state.day = today;
    state.activationsToday = 0;
    state.suspectedToday = 0;
    return true;
  }

  private remember(id: string, tracked: TrackedActivation): void {
    if (this.activations.size >= this.maxActivations) this.activations.delete(this.activations.keys().next().value as string);
    this.activations.set(id, tracked);
  }

  /** The latest activation of the device still suspected, else what was last before (if still suspected). */
  private latestSuspected(key: string, fallback: ActivationSummary | null): ActivationSummary | null {
    let best: ActivationSummary | null = null;
    for (const tracked of this.activations.values()) {
      if (tracked.key === key && tracked.suspected && (best === null || later(tracked.summary.start, best.start))) best = tracked.summary;
    }
    if (best !== null) return best;
    if (fallback === null) return null;
    return this.activations.get(fallback.id)?.suspected === false ? null : fallback;
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isTimeOrNull = (v: unknown): v is string | null => v === null || (typeof v === 'string' && Number.isFinite(Date.parse(v)));
const isTextOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/** A retained state payload checked field by field, or null. */
function readPayload(value: unknown): DeviceStatePayload | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const p = value as Record<string, unknown>;
  if (typeof p.mac !== 'string' || typeof p.day !== 'string') return null;
  if (!isCount(p.activations_today) || !isCount(p.suspected_today)) return null;
  if (!isTimeOrNull(p.last_activation) || !isTimeOrNull(p.last_suspected)) return null;
  const name = isTextOrNull(p.name) ? p.name : null;
  const vendor = isTextOrNull(p.vendor) ? p.vendor : null;
  const model = isTextOrNull(p.model) ? p.model : null;
  const s = p.last_suspected_activation as Partial<ActivationSummary> | null | undefined;
  const summary =
    s && typeof s === 'object' && typeof s.id === 'string' && typeof s.start === 'string' && s.start === p.last_suspected && typeof s.end === 'string'
      ? { id: s.id, start: s.start, end: s.end, verdict: 'suspected' as const, reasons: Array.isArray(s.reasons) ? s.reasons.filter((r): r is string => typeof r === 'string') : [], server_name: typeof s.server_name === 'string' ? s.server_name : null, bytes_up: isCount(s.bytes_up) ? s.bytes_up : 0 }
      : null;
  return {
    mac: p.mac, name, vendor, model, listening: false,
    last_activation: p.last_activation, last_suspected: p.last_suspected, last_suspected_activation: summary,
    activations_today: p.activations_today, suspected_today: p.suspected_today,
    day: p.day, last_reset: typeof p.last_reset === 'string' ? p.last_reset : '',
  };
}
