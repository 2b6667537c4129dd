/**
 * The MQTT sink, for Home Assistant and anything else that speaks MQTT (docs/mqtt.md): availability on
 * PREFIX/status, every activation event on PREFIX/activation, one retained state per assistant on
 * PREFIX/device/<mac>/state with Home Assistant discovery for it, wake events in from PREFIX/wake and
 * the owner's presence in from PREFIX/presence.
 *
 * Nothing is handed to mqtt.js while the broker is away (its queues have no bound): states are kept
 * here and published whole on every connect, and activation events wait in a small bounded queue.
 * On the first connect the states retained by an earlier run are read back, so today's counts and the
 * last activation times survive a restart.
 */
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import { createRequire } from 'node:module';
import type { Config } from '../../config.js';
import type { WakeEvent } from '../../detect/wake-events.js';
import { earshotError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ActivationEvent, ActivationListener, CallEvent, EventDevice, NoticeEvent } from '../events.js';
import { type DeviceState, DeviceStates } from './device-state.js';
import { discoveryMessages, discoverySignature, removalMessages } from './discovery.js';
import { deviceKey, mqttTopics, topicMatches } from './topics.js';
import { parsePresencePayload } from './presence-payload.js';
import { parseWakePayload } from './wake-payload.js';
import { printable } from '../../text.js';

/** A device as the messages carry it: its names (from packets) with control and bidi characters escaped. */
function shownDevice(device: EventDevice | null): EventDevice | null {
  if (device === null) return null;
  const shown = (text: string | null) => (text === null ? null : printable(text));
  return { ...device, name: shown(device.name), vendor: shown(device.vendor), model: shown(device.model) };
}

export interface MqttSinkDeps {
  log: Logger;
  /** Wake events that arrived on the wake topic (already parsed, source defaulting to "mqtt"). */
  onWakeEvents: (events: WakeEvent[]) => void;
  /** The owner's presence arrived on PREFIX/presence (already parsed). */
  onPresence?: (away: boolean) => void;
  /** The inventory's devices now; those with `assistant` get discovery and a state. */
  devices: () => EventDevice[];
  /** Wall clock (ms); decides the local day of the daily counts. */
  now?: () => number;
  /** earshot's version, sent as origin.sw_version in discovery. */
  version?: string;
  /** Wait between reconnect attempts (default 5000 ms). */
  reconnectPeriodMs?: number;
}

/** Self-metrics of the sink. */
export interface MqttSinkStats {
  connected: boolean;
  /** Successful connections (1 + reconnects). */
  connects: number;
  /** Messages handed to the broker connection. */
  published: number;
  /** Publishes that failed (connection lost before the broker took them). */
  publishErrors: number;
  activationEvents: number;
  /** Finished calls published (PREFIX/call). */
  callEvents: number;
  /** Notices published (PREFIX/notice, the kinds in mqtt.notices). */
  notices: number;
  /** Activation events waiting for the broker. */
  eventsQueued: number;
  /** Activation events dropped because the queue was full while the broker was away. */
  eventsDropped: number;
  /** Payloads received on the wake topic. */
  wakePayloads: number;
  /** Wake events passed on. */
  wakeEvents: number;
  /** Wake records (or whole payloads) rejected. */
  wakeRejected: number;
  /** Presence messages taken. */
  presenceMessages: number;
  /** Presence messages rejected (not {"away": true|false}). */
  presenceRejected: number;
  /** Messages a reader threw on (a bug): logged and ignored. */
  messagesFailed: number;
  /** Device states held. */
  devices: number;
  /** Device states dropped because there were more than tagging.maxDevices. */
  devicesEvicted: number;
}

export interface MqttSink extends ActivationListener {
  /** Connects; resolves once connected (discovery and states sent) or once the first attempt failed. */
  start(): Promise<void>;
  /** An activation started, finished or changed its verdict. */
  onActivationEvent(event: ActivationEvent): void;
  /** The inventory changed: new assistants get discovery and a state, renamed ones new discovery. */
  onDevicesChanged(): void;
  readonly stats: MqttSinkStats;
  /** Publishes offline and disconnects (waits at most a few seconds). */
  close(): Promise<void>;
}

const PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:']);
/** Activation events kept while the broker is away; the oldest are dropped beyond it. */
const MAX_QUEUED_EVENTS = 256;
/**
 * Devices with a state and discovery configs on the broker, at most: a home has a handful of assistants,
 * and each one is six retained messages that Home Assistant turns into a device (issue 14: a flood of
 * forged ones once left 13,650 behind). Beyond it the least recently used goes (one with activations or
 * configured only when every other one has gone: collector/sink/mqtt/device-state.ts), and its retained
 * messages are cleared.
 */
const MAX_MQTT_DEVICES = 256;
/** At most one log line per this long about rejected wake events. */
const WAKE_WARNING_INTERVAL_MS = 60_000;
const CLOSE_WAIT_MS = 5000;
const CONNECT_TIMEOUT_MS = 10_000;

const load = createRequire(import.meta.url);

/** Builds the MQTT sink, or returns null when no mqtt.url is configured. Connects only in start(). */
export function buildMqttSink(config: Readonly<Config>, deps: MqttSinkDeps): MqttSink | null {
  const mqtt = config.mqtt;
  if (mqtt.url === null) return null;
  const url = mqtt.url;
  const where = checkUrl(url);
  const topics = mqttTopics(mqtt, config.site);
  const { site } = config;
  checkFilter(topics.wake);
  const { log } = deps;
  const now = deps.now ?? Date.now;
  const states = new DeviceStates({
    timeZone: config.detect.timeZone,
    maxDevices: Math.min(config.tagging.maxDevices, MAX_MQTT_DEVICES),
    onEvicted: forget,
    configured: new Set(Object.keys(config.devices).map(deviceKey)),
  });
  const reconnectPeriod = deps.reconnectPeriodMs ?? 5000;

  let client: MqttClient | null = null;
  let closed = false;
  /** Counts connections, so work begun for one that dropped is not finished on the next. */
  let generation = 0;
  let ready = false;
  let restored = false;
  let restoring = false;
  let lastError = '';
  let midnightTimer: NodeJS.Timeout | null = null;
  let firstOutcome: (() => void) | null = null;
  /** Discovery signature of each assistant announced on this connection. */
  const announced = new Map<string, string>();
  /** Events waiting for the broker: topic and message (activations, calls). */
  const queue: Array<[string, string]> = [];
  /** Devices evicted while the broker was away: their retained messages are cleared on the next connect. */
  const toClear = new Set<string>();
  const noticeKinds = new Set<string>(mqtt.notices);
  const counters = { connects: 0, published: 0, publishErrors: 0, activationEvents: 0, callEvents: 0, notices: 0, eventsDropped: 0, wakePayloads: 0, wakeEvents: 0, wakeRejected: 0, presenceMessages: 0, presenceRejected: 0, messagesFailed: 0 };
  let wakeWarnedMs = Number.NEGATIVE_INFINITY;
  let wakeSuppressed = 0;
  let presenceWarnedMs = Number.NEGATIVE_INFINITY;

  /** An event now, or (broker away) into the bounded queue, the oldest dropped. */
  function send(topic: string, message: string): void {
    if (ready) {
      publish(topic, message, false);
      return;
    }
    if (queue.length >= MAX_QUEUED_EVENTS) {
      queue.shift();
      counters.eventsDropped++;
    }
    queue.push([topic, message]);
  }

  function publish(topic: string, payload: string, retain: boolean): void {
    const c = client;
    if (c === null || !c.connected) return;
    counters.published++;
    c.publish(topic, payload, { qos: 1, retain }, (err) => {
      if (!err) return;
      counters.publishErrors++;
      log.debug({ topic, err: err.message }, 'MQTT: publish failed');
    });
  }

  function publishState(state: DeviceState): void {
    if (ready) publish(topics.deviceState(state.key), JSON.stringify({ site, ...states.payload(state) }), true);
  }

  /**
   * Announces an assistant on this connection: its discovery configs (when discovery is on), sent again
   * when its name, vendor or model changed. True when it was new or changed.
   */
  function announce(state: DeviceState): boolean {
    if (!ready || !state.assistant) return false;
    const signature = discoverySignature(state.device);
    if (announced.get(state.key) === signature) return false;
    announced.set(state.key, signature);
    if (mqtt.discovery) {
      for (const m of discoveryMessages(state.device, state.key, { topics, version: deps.version })) publish(m.topic, m.payload, true);
    }
    return true;
  }

  /** Clears a device's retained state and discovery configs on the broker. */
  function clearRetained(key: string): void {
    if (mqtt.discovery) for (const m of removalMessages(key, topics)) publish(m.topic, m.payload, true);
    publish(topics.deviceState(key), '', true);
  }

  /** A state evicted from the bounded map, or of a device that is no assistant: Home Assistant must not keep its device either. */
  function forget(state: DeviceState): void {
    announced.delete(state.key);
    if (ready && client?.connected) {
      clearRetained(state.key);
      return;
    }
    toClear.add(state.key);
    if (toClear.size > MAX_MQTT_DEVICES) toClear.delete(toClear.values().next().value as string);
  }

  function takeInventory(): void {
    const t = now();
    for (const device of deps.devices()) {
      if (device.assistant) {
        states.touch(device, t).assistant = true;
        continue;
      }
      const state = states.get(deviceKey(device.mac));
      // the inventory says it is no assistant after all (or the owner says so): its entities and state go.
      // A state exists for assistants only: made for one in this run, or read back from the broker (an
      // assistant of an earlier run), which went on being published; and while the broker is away the
      // removal waits for the connection (it was dropped)
      if (state !== undefined) {
        states.remove(state.key);
        forget(state);
      }
    }
  }

  /** Everything, after a connect or Home Assistant's birth: discovery, states, waiting events. */
  function publishAll(): void {
    announced.clear();
    for (const key of toClear) if (states.get(key) === undefined) clearRetained(key);
    toClear.clear();
    takeInventory();
    for (const state of states.values()) {
      announce(state);
      publishState(state);
    }
    while (queue.length > 0) {
      const [topic, message] = queue.shift()!;
      publish(topic, message, false);
    }
  }

  function onWakePayload(topic: string, payload: Buffer): void {
    counters.wakePayloads++;
    const { events, problems } = parseWakePayload(payload);
    if (problems.length > 0) {
      counters.wakeRejected += problems.length;
      const t = now();
      if (t - wakeWarnedMs >= WAKE_WARNING_INTERVAL_MS) {
        log.warn({ topic, rejected: problems.length, suppressedSinceLastWarning: wakeSuppressed }, `MQTT: wake events rejected on ${topic}: ${problems[0]}`);
        wakeWarnedMs = t;
        wakeSuppressed = 0;
      } else {
        wakeSuppressed += problems.length;
      }
    }
    if (events.length === 0) return;
    counters.wakeEvents += events.length;
    try {
      deps.onWakeEvents(events);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'MQTT: wake events could not be taken');
    }
  }

  function onPresencePayload(payload: Buffer): void {
    const parsed = parsePresencePayload(payload);
    if (parsed.problem !== undefined) {
      counters.presenceRejected++;
      const t = now();
      if (t - presenceWarnedMs >= WAKE_WARNING_INTERVAL_MS) {
        log.warn({ topic: topics.presence, rejected: counters.presenceRejected }, `MQTT: presence rejected on ${topics.presence}: ${parsed.problem}`);
        presenceWarnedMs = t;
      }
      return;
    }
    counters.presenceMessages++;
    try {
      deps.onPresence?.(parsed.away);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'MQTT: presence could not be taken');
    }
  }

  /**
   * Every message, whatever it holds: anything a reader did not foresee is one error line, never the end
   * of the collector (a retained message that threw would end every start after it).
   */
  function onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    try {
      readMessage(topic, payload, packet);
    } catch (err) {
      counters.messagesFailed++;
      log.error({ topic: topic.slice(0, 200), bytes: payload.length, err: (err as Error)?.message }, 'MQTT: a message could not be read (a bug; please report it): ignored');
    }
  }

  function readMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    // first: a wake filter as wide as PREFIX/# must not read the presence as wake events
    if (topic === topics.presence || topic === topics.legacyPresence) {
      // an empty retained message clears the broker's copy; it says nothing about the owner
      if (payload.length > 0) onPresencePayload(payload);
      return;
    }
    // Home Assistant's birth message before the wake filter: a filter as wide as # swallowed it, and
    // Home Assistant restarted without earshot's entities
    if (topic === topics.homeAssistantStatus) {
      if (ready && payload.toString('utf8') === 'online') publishAll();
      return;
    }
    // a wake filter wide enough to cover earshot's own topics (its discovery configs too) must not read them as wake events
    if ((topicMatches(topics.wake, topic) && !topics.isOwn(topic)) || topic === topics.legacyWake) {
      onWakePayload(topic, payload);
      return;
    }
    const key = topics.deviceKeyOf(topic);
    if (key !== null && restoring && packet.retain && payload.length > 0) {
      try {
        states.restore(key, JSON.parse(payload.toString('utf8')), now());
      } catch {
        // not our JSON: nothing to restore from it
      }
    }
  }

  async function onConnect(): Promise<void> {
    const c = client!;
    const mine = ++generation;
    counters.connects++;
    log.info({ broker: where }, counters.connects === 1 ? 'MQTT: connected' : 'MQTT: connected again');
    lastError = '';
    publish(topics.status, 'online', true);
    // a wake filter that covers the presence topic already brings it: a second subscription would bring it twice
    const presence = deps.onPresence && !topicMatches(topics.wake, topics.presence) ? [topics.presence] : [];
    if (deps.onPresence && topics.legacyPresence !== null) presence.push(topics.legacyPresence);
    const legacyWake = topics.legacyWake === null ? [] : [topics.legacyWake];
    const filters = [topics.wake, ...legacyWake, ...presence, ...(mqtt.discovery ? [topics.homeAssistantStatus] : [])];
    try {
      await c.subscribeAsync(filters, { qos: 1 });
    } catch (err) {
      // a broker's ACL refuses with an error; a dropped connection is logged by onClose
      if (mine === generation && c.connected) log.warn({ topics: filters, err: (err as Error).message }, `MQTT: subscribing to ${filters.join(', ')} failed`);
    }
    if (!restored && mine === generation) {
      // the broker sends retained states right after the SUBACK and before the UNSUBACK
      restoring = true;
      try {
        await c.subscribeAsync(topics.stateWildcard, { qos: 0 });
        await c.unsubscribeAsync(topics.stateWildcard);
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'MQTT: reading back retained states failed');
      } finally {
        restoring = false;
      }
    }
    if (mine !== generation || !c.connected || closed) return;
    // states are read back once per run: later, what is retained is this run's own
    restored = true;
    ready = true;
    publishAll();
    settleStart();
  }

  function onError(err: Error): void {
    const message = err.message;
    if (message !== lastError) {
      log.warn({ broker: where, err: message }, `MQTT: ${counters.connects === 0 ? 'cannot connect' : 'connection problem'}; retrying every ${reconnectPeriod / 1000} s`);
      lastError = message;
    } else {
      log.debug({ broker: where, err: message }, 'MQTT: still cannot connect');
    }
    settleStart();
  }

  function onClose(): void {
    if (ready && !closed) log.warn({ broker: where }, 'MQTT: connection lost; reconnecting');
    ready = false;
    generation++;
    settleStart();
  }

  function settleStart(): void {
    const done = firstOutcome;
    firstOutcome = null;
    done?.();
  }

  function scheduleMidnight(): void {
    const t = now();
    const delay = Math.min(Math.max(states.today(t).endMs - t + 1000, 1000), 2 ** 31 - 1);
    midnightTimer = setTimeout(() => {
      // a new local day: every count starts again at 0, also for devices quiet today
      for (const state of states.rolloverAll(now())) publishState(state);
      scheduleMidnight();
    }, delay);
    midnightTimer.unref();
  }

  return {
    async start(): Promise<void> {
      if (client !== null || closed) return;
      // loaded here rather than at the top: the pipeline thread's bundle (an ES module, deploy/bundle.mjs)
      // hoists a static import, and loaded the package at every start (~90 ms), with MQTT configured or
      // not. With require: the main bundle runs in node:vm, which has no dynamic import()
      const { connect } = load('mqtt') as typeof import('mqtt');
      const options: IClientOptions = {
        clientId: mqtt.clientId ?? `earshot-${config.site}`,
        username: mqtt.username ?? undefined,
        password: mqtt.password ?? undefined,
        will: { topic: topics.status, payload: Buffer.from('offline'), qos: 1, retain: true },
        protocolVersion: 4,
        clean: true,
        keepalive: 30,
        connectTimeout: CONNECT_TIMEOUT_MS,
        reconnectPeriod,
        reconnectOnConnackError: true,
        resubscribe: false,
        queueQoSZero: false,
      };
      const outcome = new Promise<void>((resolve) => {
        firstOutcome = resolve;
      });
      const c = connect(url, options);
      client = c;
      c.on('connect', () => void onConnect());
      c.on('message', onMessage);
      c.on('error', onError);
      c.on('close', onClose);
      scheduleMidnight();
      const timer = setTimeout(settleStart, CONNECT_TIMEOUT_MS + 1000);
      await outcome;
      clearTimeout(timer);
    },

    onActivationEvent(event: ActivationEvent): void {
      counters.activationEvents++;
      const state = states.apply(event, now());
      announce(state);
      publishState(state);
      const message = JSON.stringify({ kind: event.kind, site, activation: event.activation, device: shownDevice(event.device), at: new Date(event.atMs).toISOString() });
      send(topics.activation, message);
    },

    onNotice(notice: NoticeEvent): void {
      if (!noticeKinds.has(notice.kind)) return;
      counters.notices++;
      const times = { seen: new Date(notice.seenMs).toISOString(), at: new Date(notice.atMs).toISOString() };
      send(topics.notice, JSON.stringify(notice.kind === 'finding'
        ? { kind: notice.kind, site, finding: notice.finding, device: shownDevice(notice.device), ...times }
        : { kind: notice.kind, site, what: notice.what, subject: notice.subject, organisation: notice.organisation, service: notice.service, endpoint: notice.endpoint, device: shownDevice(notice.device), ...times }));
    },

    onCallEvent(event: CallEvent): void {
      counters.callEvents++;
      send(topics.call, JSON.stringify({ kind: 'call', site, call: event.call, device: shownDevice(event.device), at: new Date(event.atMs).toISOString() }));
    },

    onDevicesChanged(): void {
      takeInventory();
      for (const state of states.values()) if (announce(state)) publishState(state);
    },

    get stats(): MqttSinkStats {
      return { ...counters, connected: ready, eventsQueued: queue.length, devices: states.size, devicesEvicted: states.evicted };
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (midnightTimer !== null) clearTimeout(midnightTimer);
      settleStart();
      const c = client;
      if (c === null) return;
      ready = false;
      try {
        if (c.connected) await withTimeout(c.publishAsync(topics.status, 'offline', { qos: 1, retain: true }), CLOSE_WAIT_MS);
        await withTimeout(c.endAsync(), CLOSE_WAIT_MS);
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'MQTT: no clean disconnect');
        c.end(true);
      }
    },
  };
}

/** `promise`, or a rejection after `ms`. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The broker's address for logs (no credentials); a URL mqtt.js cannot use is a configuration error. */
function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', 'mqtt.url', `${JSON.stringify(url)} is not a URL such as mqtt://127.0.0.1:1883`);
  }
  if (!PROTOCOLS.has(parsed.protocol)) {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', 'mqtt.url', `${JSON.stringify(parsed.protocol.slice(0, -1))} is not an MQTT scheme (mqtt, mqtts, ws, wss)`);
  }
  return `${parsed.protocol}//${parsed.host}`;
}

/** A topic filter the broker accepts: + and # only as whole levels, # only last. */
function checkFilter(filter: string): void {
  const levels = filter.split('/');
  const bad = filter === '' || levels.some((level, i) => (level.includes('+') && level !== '+') || (level.includes('#') && (level !== '#' || i !== levels.length - 1)));
  if (bad) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', 'mqtt.wakeTopic', `${JSON.stringify(filter)} is not a topic filter (+ and # stand for whole levels, # only at the end)`);
}
