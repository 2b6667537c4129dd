/**
 * What a hostile LAN can push through MQTT, against a real mosquitto: wake events whose source or device
 * is longer than the API accepts (the same limits, one rule), and an assistant whose name from mDNS holds
 * control characters, MQTT wildcards and topic separators (topics never carry a name; Home Assistant's
 * discovery shows it escaped).
 */
import { Writable } from 'node:stream';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import type { WakeEvent } from '../../detect/wake-events.js';
import type { EventDevice } from '../events.js';
import { describeMosquitto, Mosquitto, until } from '../../../test/helpers/mosquitto.js';
import { buildMqttSink, type MqttSink } from './index.js';

const HOSTILE: EventDevice = {
  mac: 'aa:bb:cc:dd:ee:07',
  name: 'Echo/+/#\x1b[2J\u202e',
  vendor: 'Amazon',
  model: 'Dot\x1b]0;x\x07',
  assistant: true,
};

describeMosquitto('MQTT and hostile input (real mosquitto)', () => {
  let broker: Mosquitto;
  const sinks: MqttSink[] = [];
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((s) => s.close()));
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });
  afterAll(async () => {
    await broker?.close();
  });

  function sinkFor(prefix: string) {
    const config = loadConfig({ flags: { 'mqtt-url': broker.url, 'mqtt-prefix': prefix, 'mqtt-discovery-prefix': `ha-${prefix}`, 'mqtt-client-id': `earshot-hostile-${prefix}` } });
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) warnings.push((JSON.parse(line) as { msg: string }).msg);
        done();
      },
    }));
    const wakeEvents: WakeEvent[] = [];
    const sink = buildMqttSink(config, { log, onWakeEvents: (events) => wakeEvents.push(...events), devices: () => [HOSTILE], reconnectPeriodMs: 200 })!;
    sinks.push(sink);
    return { sink, wakeEvents, warnings };
  }

  async function client(): Promise<MqttClient> {
    const c = await connectAsync(broker.url, { clientId: `hostile-${Math.random().toString(36).slice(2)}`, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  }

  it('refuses a wake event whose source is longer than 64 characters, or device longer than 128, as the API does', async () => {
    const { sink, wakeEvents, warnings } = sinkFor('h1');
    await sink.start();
    const publisher = await client();
    const at = 1714557600;
    await publisher.publishAsync('h1/wake', JSON.stringify([
      { time: at, source: 's'.repeat(64) },
      { time: at + 1, source: 's'.repeat(65) },
      { time: at + 2, source: `${'x'.repeat(10_000)}` },
      { time: at + 3, device: 'd'.repeat(129) },
      { time: at + 4, device: 'd'.repeat(128) },
    ]), { qos: 1 });
    await until('one payload read', () => sink.stats.wakePayloads === 1);
    expect(wakeEvents.map((e) => e.time / 1000)).toEqual([at, at + 4]);
    expect(wakeEvents[0].source).toBe('s'.repeat(64));
    expect(sink.stats.wakeRejected).toBe(3);
    expect(warnings.join('\n')).toMatch(/record 2: source: longer than 64 characters/);
  });

  it('never puts a name into a topic, and shows it escaped in discovery', async () => {
    const seen: Array<{ topic: string; text: string }> = [];
    const listener = await client();
    listener.on('message', (topic, payload) => seen.push({ topic, text: payload.toString('utf8') }));
    await listener.subscribeAsync(['h2/#', 'ha-h2/#'], { qos: 1 });
    const { sink } = sinkFor('h2');
    await sink.start();
    await until('discovery configs', () => seen.filter((m) => m.topic.startsWith('ha-h2/')).length >= 5);
    for (const { topic } of seen) {
      // each level is earshot's own: the prefix, a fixed word, the MAC's hex digits or an id made of them
      expect(topic).toMatch(/^(h2|ha-h2)(\/[a-z_]+)?(\/[a-z0-9_]+)*(\/(state|config|status|activation))?$/);
      // eslint-disable-next-line no-control-regex -- no control character may reach a topic
      expect(topic).not.toMatch(/Echo|[+#\x00-\x1f]/);
    }
    const config = JSON.parse(seen.find((m) => m.topic.startsWith('ha-h2/'))!.text) as { device: { name: string; model: string } };
    expect(config.device.name).toBe('Echo/+/#\\x1b[2J\\u202e');
    expect(config.device.model).toBe('Dot\\x1b]0;x\\x07');
  });
});
