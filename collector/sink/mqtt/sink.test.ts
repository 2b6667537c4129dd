/**
 * The MQTT sink against a real mosquitto: what a Home Assistant (here a plain MQTT client) sees.
 * Each test uses its own topic prefixes, so retained messages of one never reach another.
 */
import { Writable } from 'node:stream';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import type { WakeEvent } from '../../detect/wake-events.js';
import type { ActivationEvent, ActivationEventKind, EventDevice } from '../events.js';
import type { ReportActivation } from '../report.js';
import { describeMosquitto, freePort, Mosquitto, TcpProxy, until } from '../../../test/helpers/mosquitto.js';
import { buildMqttSink, type MqttSink, type MqttSinkDeps } from './index.js';

const ECHO: EventDevice = { mac: 'aa:bb:cc:dd:ee:01', name: 'Kitchen Echo', vendor: 'Amazon', model: 'Echo Dot (3rd Gen)', assistant: true };
const LAPTOP: EventDevice = { mac: 'aa:bb:cc:dd:ee:09', name: 'Laptop', vendor: 'Dell', model: null, assistant: false };
const NOW = Date.parse('2024-05-01T10:00:00Z');

function reportActivation(id: string, start: string, verdict: ReportActivation['verdict'] = 'unverified'): ReportActivation {
  return {
    id, device: ECHO.mac, start, end: new Date(Date.parse(start) + 4000).toISOString(), bytesUp: 90_000, bytesDown: 20_000,
    server: '52.94.1.1', serverName: 'avs-alexa-4-na.amazon.com', score: 0.9, verdict,
    reasons: verdict === 'suspected' ? ['no-wake-event'] : [], wakeEvent: null,
  };
}

const event = (kind: ActivationEventKind, activation: ReportActivation, device = ECHO): ActivationEvent => ({ kind, activation, device, atMs: NOW });

interface Message {
  topic: string;
  text: string;
  retain: boolean;
}

/** Log records as objects, for counting what the sink said. */
function captureLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

describeMosquitto('MQTT sink (real mosquitto)', () => {
  let broker: Mosquitto;
  let sinks: MqttSink[] = [];
  let clients: MqttClient[] = [];
  let extra: Array<{ close(): Promise<void> }> = [];

  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterEach(async () => {
    await Promise.all(sinks.map((s) => s.close()));
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await Promise.all(extra.map((x) => x.close()));
    sinks = [];
    clients = [];
    extra = [];
  });
  afterAll(async () => {
    await broker?.close();
  });

  function sinkFor(prefix: string, deps: Partial<MqttSinkDeps> & { url?: string; flags?: Record<string, string> } = {}) {
    const config = loadConfig({
      flags: {
        'mqtt-url': deps.url ?? broker.url,
        'mqtt-prefix': prefix,
        'mqtt-discovery-prefix': `ha-${prefix}`,
        'mqtt-client-id': `earshot-test-${prefix}-${sinks.length}`,
        'time-zone': 'Europe/Berlin',
        ...deps.flags,
      },
    });
    const { log, lines } = captureLog();
    const wakeEvents: WakeEvent[] = [];
    const sink = buildMqttSink(config, {
      log,
      onWakeEvents: (events) => wakeEvents.push(...events),
      devices: () => [ECHO, LAPTOP],
      now: () => NOW,
      reconnectPeriodMs: 200,
      version: '9.9.9',
      ...deps,
    })!;
    sinks.push(sink);
    return { sink, lines, wakeEvents };
  }

  /** A client like Home Assistant: subscribes and records every message with its retain flag. */
  async function listen(filters: string[], url = broker.url): Promise<Message[]> {
    const client = await connectAsync(url, { clientId: `listener-${Math.random().toString(36).slice(2)}`, reconnectPeriod: 0 });
    clients.push(client);
    const messages: Message[] = [];
    client.on('message', (topic, payload, packet) => messages.push({ topic, text: payload.toString('utf8'), retain: packet.retain }));
    await client.subscribeAsync(filters, { qos: 1 });
    return messages;
  }

  async function publisher(): Promise<MqttClient> {
    const client = await connectAsync(broker.url, { clientId: `publisher-${Math.random().toString(36).slice(2)}`, reconnectPeriod: 0 });
    clients.push(client);
    return client;
  }

  const on = (messages: Message[], topic: string) => messages.filter((m) => m.topic === topic);
  const lastJson = (messages: Message[], topic: string) => {
    const all = on(messages, topic);
    return all.length === 0 ? undefined : (JSON.parse(all[all.length - 1].text) as Record<string, unknown>);
  };

  it('returns null without mqtt.url and refuses a URL that is not MQTT', () => {
    const { log } = captureLog();
    const deps = { log, onWakeEvents: () => undefined, devices: () => [] };
    expect(buildMqttSink(loadConfig({}), deps)).toBeNull();
    expect(() => buildMqttSink(loadConfig({ flags: { 'mqtt-url': 'http://127.0.0.1:1883' } }), deps)).toThrow(/mqtt\.url: "http" is not an MQTT scheme/);
    expect(() => buildMqttSink(loadConfig({ flags: { 'mqtt-url': 'mqtt://h', 'mqtt-wake-topic': 'a/b#' } }), deps)).toThrow(/mqtt\.wakeTopic/);
    // "/" made the topics "/status" and the Home Assistant ids "_<mac>_..."
    for (const flag of ['mqtt-prefix', 'mqtt-discovery-prefix']) {
      expect(() => loadConfig({ flags: { 'mqtt-url': 'mqtt://h', [flag]: '//' } }), flag).toThrow(`--${flag}: must be a topic without # or +, not only slashes, got "//"`);
    }
  });

  it('publishes retained discovery for each assistant, with its state and availability', async () => {
    const { sink } = sinkFor('e1');
    await sink.start();
    expect(sink.stats.connected).toBe(true);
    // a Home Assistant that comes up later gets it all from the retained messages
    const seen = await listen(['ha-e1/#', 'e1/#']);
    const configs = () => seen.filter((m) => m.topic.startsWith('ha-e1/'));
    await until('five retained discovery configs', () => configs().length === 5 && on(seen, 'e1/status').length === 1 && on(seen, 'e1/device/aabbccddee01/state').length === 1);
    expect(configs().every((m) => m.retain)).toBe(true);
    expect(configs().map((m) => m.topic).sort()).toEqual([
      'ha-e1/binary_sensor/e1_aabbccddee01_listening/config',
      'ha-e1/sensor/e1_aabbccddee01_activations_today/config',
      'ha-e1/sensor/e1_aabbccddee01_last_activation/config',
      'ha-e1/sensor/e1_aabbccddee01_last_suspected/config',
      'ha-e1/sensor/e1_aabbccddee01_suspected_today/config',
    ]);
    expect(on(seen, 'e1/status')[0]).toEqual({ topic: 'e1/status', text: 'online', retain: true });

    const listening = lastJson(seen, 'ha-e1/binary_sensor/e1_aabbccddee01_listening/config')!;
    expect(listening).toMatchObject({
      name: 'Listening',
      unique_id: 'e1_aabbccddee01_listening',
      object_id: 'e1_aabbccddee01_listening',
      default_entity_id: 'binary_sensor.e1_aabbccddee01_listening',
      state_topic: 'e1/device/aabbccddee01/state',
      availability_topic: 'e1/status',
      device_class: 'sound',
      value_template: "{{ 'ON' if value_json.listening else 'OFF' }}",
      json_attributes_topic: 'e1/device/aabbccddee01/state',
      device: { identifiers: ['e1_aabbccddee01'], connections: [['mac', 'aa:bb:cc:dd:ee:01']], name: 'Kitchen Echo', manufacturer: 'Amazon', model: 'Echo Dot (3rd Gen)' },
      origin: { name: 'earshot', sw_version: '9.9.9' },
    });
    expect(lastJson(seen, 'ha-e1/sensor/e1_aabbccddee01_last_suspected/config')).toMatchObject({
      name: 'Last suspected activation', device_class: 'timestamp', value_template: '{{ value_json.last_suspected }}', default_entity_id: 'sensor.e1_aabbccddee01_last_suspected',
    });
    expect(lastJson(seen, 'ha-e1/sensor/e1_aabbccddee01_suspected_today/config')).toMatchObject({
      name: 'Suspected today', state_class: 'total', value_template: '{{ value_json.suspected_today }}', last_reset_value_template: '{{ value_json.last_reset }}',
    });
    expect(lastJson(seen, 'e1/device/aabbccddee01/state')).toEqual({
      site: loadConfig({}).site, mac: 'aa:bb:cc:dd:ee:01', name: 'Kitchen Echo', vendor: 'Amazon', model: 'Echo Dot (3rd Gen)', listening: false,
      last_activation: null, last_suspected: null, last_suspected_activation: null, activations_today: 0, suspected_today: 0,
      day: '2024-05-01', last_reset: '2024-05-01T00:00:00+02:00',
    });
    // the laptop is no assistant: nothing about it
    expect(seen.some((m) => m.topic.includes('aabbccddee09'))).toBe(false);
  });

  it('sends each activation event and moves the state: listening, counts, last suspected', async () => {
    const seen = await listen(['e2/#', 'ha-e2/#']);
    const devices = [ECHO, LAPTOP];
    const { sink } = sinkFor('e2', { devices: () => devices });
    await sink.start();
    const state = () => lastJson(seen, 'e2/device/aabbccddee01/state');
    await until('the first state', () => state() !== undefined);

    const a = reportActivation('act-1', '2024-05-01T09:59:58.000Z');
    sink.onActivationEvent(event('started', a));
    await until('listening', () => state()?.listening === true);
    expect(state()).toMatchObject({ activations_today: 1, suspected_today: 0, last_activation: a.start });

    sink.onActivationEvent(event('finished', { ...a, verdict: 'suspected', reasons: ['no-wake-event'] }));
    await until('not listening, one suspected', () => state()?.listening === false && state()?.suspected_today === 1);
    expect(state()).toMatchObject({ activations_today: 1, last_suspected: a.start, last_suspected_activation: { id: 'act-1', reasons: ['no-wake-event'] } });

    sink.onActivationEvent(event('verdict-changed', { ...a, verdict: 'confirmed' }));
    await until('no suspected after the late confirmation', () => state()?.suspected_today === 0);
    expect(state()).toMatchObject({ activations_today: 1, last_suspected: null });

    const activations = on(seen, 'e2/activation').map((m) => JSON.parse(m.text) as { kind: string; activation: ReportActivation; device: EventDevice; at: string });
    expect(activations.map((x) => [x.kind, x.activation.verdict])).toEqual([['started', 'unverified'], ['finished', 'suspected'], ['verdict-changed', 'confirmed']]);
    expect(activations[0]).toMatchObject({ activation: { id: 'act-1', start: a.start }, device: ECHO, at: new Date(NOW).toISOString() });
    expect(on(seen, 'e2/activation').every((m) => !m.retain)).toBe(true);

    // a new assistant in the inventory gets its entities; a renamed one new configs; a demoted one loses them
    const listeningConfig = (mac: string) => on(seen, `ha-e2/binary_sensor/e2_${mac}_listening/config`);
    const bedroom: EventDevice = { mac: 'AA:BB:CC:DD:EE:02', name: null, vendor: 'Google', model: null, assistant: true };
    devices.push(bedroom);
    sink.onDevicesChanged();
    await until('discovery of the new assistant', () => listeningConfig('aabbccddee02').length === 1 && state !== undefined && lastJson(seen, 'e2/device/aabbccddee02/state') !== undefined);
    expect(JSON.parse(listeningConfig('aabbccddee02')[0].text)).toMatchObject({ device: { name: 'Google dd:ee:02', manufacturer: 'Google', connections: [['mac', 'aa:bb:cc:dd:ee:02']] } });
    expect(JSON.parse(listeningConfig('aabbccddee02')[0].text).device).not.toHaveProperty('model');
    sink.onDevicesChanged();
    devices[2] = { ...bedroom, name: 'Bedroom Nest' };
    sink.onDevicesChanged();
    await until('discovery again with the new name', () => listeningConfig('aabbccddee02').length === 2);
    expect(JSON.parse(listeningConfig('aabbccddee02')[1].text)).toMatchObject({ device: { name: 'Bedroom Nest' } });
    devices[2] = { ...bedroom, name: 'Bedroom Nest', assistant: false };
    sink.onDevicesChanged();
    await until('its entities removed', () => listeningConfig('aabbccddee02').length === 3);
    expect(listeningConfig('aabbccddee02')[2].text).toBe('');
  });

  it('is offline by its Last Will when its connection dies, online again after reconnecting, offline on close', async () => {
    const proxy = await TcpProxy.start(broker.port);
    extra.push(proxy);
    const seen = await listen(['e3/status']);
    const status = () => on(seen, 'e3/status').map((m) => m.text);
    const { sink, lines } = sinkFor('e3', { url: proxy.url });
    await sink.start();
    await until('online', () => status().at(-1) === 'online');
    proxy.cut();
    await until('the Last Will, then online again', () => status().join(',') === 'online,offline,online');
    await until('connected again', () => sink.stats.connected && sink.stats.connects === 2);
    expect(lines.some((l) => l.msg === 'MQTT: connection lost; reconnecting')).toBe(true);
    await sink.close();
    await until('offline on close', () => status().at(-1) === 'offline');
    const later = await listen(['e3/status']);
    await until('offline retained', () => later.length === 1);
    expect(later[0]).toEqual({ topic: 'e3/status', text: 'offline', retain: true });
  });

  it('passes wake events on the wake topic to onWakeEvents and counts bad payloads, logging one line', async () => {
    const { sink, wakeEvents, lines } = sinkFor('e4');
    await sink.start();
    const client = await publisher();
    await client.publishAsync('e4/wake', JSON.stringify({ time: '2024-05-01T12:00:00+02:00', device: 'AA-BB-CC-DD-EE-01' }), { qos: 1 });
    await client.publishAsync('e4/wake', JSON.stringify([{ time: 1714557600, source: 'ha-voice', intended: false }, { time: 1714557601000, device: 'Kitchen Echo' }]), { qos: 1 });
    await until('three wake events', () => wakeEvents.length === 3);
    expect(wakeEvents).toEqual([
      { time: Date.parse('2024-05-01T10:00:00Z'), device: 'aa:bb:cc:dd:ee:01', source: 'mqtt' },
      { time: 1714557600000, device: null, source: 'ha-voice', intended: false },
      { time: 1714557601000, device: 'Kitchen Echo', source: 'mqtt' },
    ]);

    await client.publishAsync('e4/wake', 'the wake word', { qos: 1 });
    await client.publishAsync('e4/wake', '{"device":"x"}', { qos: 1 });
    await client.publishAsync('e4/wake', '[{"time":"soon"},{"time":1714557602}]', { qos: 1 });
    await until('three rejected', () => sink.stats.wakeRejected === 3 && sink.stats.wakePayloads === 5);
    expect(wakeEvents).toHaveLength(4);
    expect(sink.stats.wakeEvents).toBe(4);
    const warnings = lines.filter((l) => l.msg.startsWith('MQTT: wake events rejected'));
    expect(warnings.map((l) => l.msg)).toEqual(['MQTT: wake events rejected on e4/wake: not valid JSON (a record { "time": ... } or an array of them)']);
  });

  it('listens on a wake topic with wildcards', async () => {
    const { sink, wakeEvents } = sinkFor('e5', { flags: { 'mqtt-wake-topic': 'voice/+/wake' } });
    await sink.start();
    const client = await publisher();
    await client.publishAsync('voice/kitchen/wake', '{"time":1714557600}', { qos: 1 });
    await until('the wake event', () => wakeEvents.length === 1);
  });

  it('takes the owner\'s presence (retained one too), never as wake events even under a wide wake filter', async () => {
    const client = await publisher();
    // retained before earshot connects: read at connect
    await client.publishAsync('e7/presence', '{"away": true}', { qos: 1, retain: true });
    const presence: boolean[] = [];
    const { sink, wakeEvents, lines } = sinkFor('e7', { flags: { 'mqtt-wake-topic': 'e7/#' }, onPresence: (away) => presence.push(away) });
    await sink.start();
    await until('the retained presence', () => presence.length === 1);
    await client.publishAsync('e7/presence', '{"away": false}', { qos: 1 });
    await client.publishAsync('e7/presence', '"home"', { qos: 1 });
    await client.publishAsync('e7/wake', '{"time":1714557600}', { qos: 1 });
    await until('the wake event', () => wakeEvents.length === 1 && presence.length === 2 && sink.stats.presenceRejected === 1);
    // once each: the wide wake filter brings the presence topic, so it has no subscription of its own
    expect(presence).toEqual([true, false]);
    expect([sink.stats.presenceMessages, sink.stats.wakePayloads, sink.stats.wakeRejected]).toEqual([2, 1, 0]);
    expect(lines.filter((l) => l.msg.startsWith('MQTT: presence rejected')).map((l) => l.msg)).toEqual(['MQTT: presence rejected on e7/presence: not a JSON object {"away": true} or {"away": false}']);
    // clearing the retained copy is no news about the owner
    await client.publishAsync('e7/presence', '', { qos: 1, retain: true });
    await client.publishAsync('e7/wake', '{"time":1714557601}', { qos: 1 });
    await until('the second wake event', () => wakeEvents.length === 2);
    expect([presence.length, sink.stats.presenceRejected]).toEqual([2, 1]);
  });

  it('starts without a broker, keeps events meanwhile, and sends everything once the broker is up', async () => {
    const port = await freePort();
    const { sink, lines } = sinkFor('e6', { url: `mqtt://127.0.0.1:${port}` });
    await sink.start();
    expect(sink.stats.connected).toBe(false);
    expect(lines.filter((l) => l.msg.startsWith('MQTT: cannot connect'))).toHaveLength(1);
    sink.onActivationEvent(event('started', reportActivation('act-6', '2024-05-01T09:59:58.000Z')));
    expect(sink.stats.eventsQueued).toBe(1);

    const late = await Mosquitto.start(port);
    extra.push(late);
    const seen = await listen(['e6/#', 'ha-e6/#'], late.url);
    await until('connected', () => sink.stats.connected);
    await until('the queued event and the state', () => on(seen, 'e6/activation').length === 1 && lastJson(seen, 'e6/device/aabbccddee01/state')?.listening === true);
    expect(sink.stats.eventsQueued).toBe(0);
    await until('discovery', () => seen.filter((m) => m.topic.startsWith('ha-e6/')).length === 5);
  });

  it('keeps today\'s counts across a restart (read back from the retained state) and starts a new day at 0', async () => {
    const first = sinkFor('e7').sink;
    await first.start();
    const a = reportActivation('act-7a', '2024-05-01T08:00:00.000Z');
    first.onActivationEvent(event('started', a));
    first.onActivationEvent(event('finished', { ...a, verdict: 'suspected' }));
    await first.close();

    const seen = await listen(['e7/device/+/state']);
    const state = () => lastJson(seen, 'e7/device/aabbccddee01/state');
    await until('the retained state of the first run', () => state()?.suspected_today === 1);
    const second = sinkFor('e7').sink;
    await second.start();
    const b = reportActivation('act-7b', '2024-05-01T09:00:00.000Z');
    second.onActivationEvent(event('started', b));
    await until('both runs counted', () => state()?.activations_today === 2 && state()?.listening === true);
    expect(state()).toMatchObject({ suspected_today: 1, last_suspected: a.start, last_activation: b.start });
    await second.close();

    const nextDay = sinkFor('e7', { now: () => Date.parse('2024-05-01T22:30:00Z') }).sink;
    await nextDay.start();
    await until('a new day', () => state()?.day === '2024-05-02');
    expect(state()).toMatchObject({ activations_today: 0, suspected_today: 0, last_reset: '2024-05-02T00:00:00+02:00', last_activation: b.start, last_suspected: a.start, listening: false });
  });

  it('an activation of an old capture\'s replay is the last activation, but no activation of today (2017\'s counted as today\'s)', async () => {
    const seen = await listen(['e10/#']);
    const { sink } = sinkFor('e10');
    await sink.start();
    const state = () => lastJson(seen, 'e10/device/aabbccddee01/state');
    await until('the first state', () => state() !== undefined);
    const old = reportActivation('old-1', '2017-03-23T16:00:00.000Z');
    sink.onActivationEvent(event('started', old));
    sink.onActivationEvent(event('finished', { ...old, verdict: 'suspected', reasons: ['no-wake-event'] }));
    await until('the old activation in the state', () => state()?.last_suspected === old.start);
    expect(state()).toMatchObject({ day: '2024-05-01', activations_today: 0, suspected_today: 0, last_activation: old.start, listening: false });
  });

  it('sends discovery again when Home Assistant comes online', async () => {
    const { sink } = sinkFor('e8');
    await sink.start();
    const seen = await listen(['ha-e8/+/+/config']);
    await until('retained configs', () => seen.length === 5);
    const homeAssistant = await publisher();
    await homeAssistant.publishAsync('ha-e8/status', 'online', { qos: 1 });
    await until('configs again, live', () => seen.length === 10);
    expect(seen.slice(5).every((m) => !m.retain)).toBe(true);
  });

  it('an assistant of an earlier run that is no assistant now loses its retained entities and state; a "#" wake filter keeps Home Assistant\'s birth message and earshot\'s own configs out; names are escaped in the state', async () => {
    // a broker of its own: a "#" filter on the shared one would read the other tests' retained messages
    const own = await Mosquitto.start();
    extra.push(own);
    const first = sinkFor('e9', { url: own.url }).sink;
    await first.start();
    const before = await listen(['ha-e9/#', 'e9/#'], own.url);
    await until('the Echo\'s retained configs and state', () => before.filter((m) => m.topic.includes('aabbccddee01')).length === 6);
    await first.close();

    // the next start: the owner marks the Echo no assistant (it was kept, state and entities, for ever);
    // a Nest whose name carries a right-to-left override; and a wake filter as wide as it gets
    const nest: EventDevice = { mac: 'aa:bb:cc:dd:ee:03', name: 'Nest\u202e', vendor: 'Google', model: null, assistant: true };
    const { sink, lines, wakeEvents } = sinkFor('e9', { url: own.url, devices: () => [{ ...ECHO, assistant: false }, nest], flags: { 'mqtt-wake-topic': '#' } });
    await sink.start();
    const retained = async () => {
      const seen = await listen(['ha-e9/#', 'e9/#'], own.url);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return seen.filter((m) => m.retain && m.text !== '');
    };
    await until('the Nest announced', async () => (await retained()).some((m) => m.topic.includes('aabbccddee03')));
    const left = await retained();
    expect(left.filter((m) => m.topic.includes('aabbccddee01')).map((m) => m.topic)).toEqual([]);
    expect(JSON.parse(left.find((m) => m.topic === 'e9/device/aabbccddee03/state')!.text)).toMatchObject({ name: 'Nest\\u202e' });

    // Home Assistant restarts: its birth message is no wake event, and the Nest's configs come again
    const configs = await listen(['ha-e9/+/+/config'], own.url);
    await until('the Nest\'s retained configs', () => configs.filter((m) => m.topic.includes('aabbccddee03')).length === 5);
    const homeAssistant = await connectAsync(own.url, { clientId: 'home-assistant-e9', reconnectPeriod: 0 });
    clients.push(homeAssistant);
    await homeAssistant.publishAsync('ha-e9/status', 'online', { qos: 1 });
    await until('configs again, live', () => configs.filter((m) => m.topic.includes('aabbccddee03')).length === 10);
    expect(sink.stats.wakeRejected).toBe(0);
    expect(wakeEvents).toEqual([]);
    expect(lines.filter((l) => /wake events rejected/.test(l.msg))).toEqual([]);
  });
});
