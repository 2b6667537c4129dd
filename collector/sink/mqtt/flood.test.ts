/**
 * Issue 14, fault 7: the broker keeps what earshot retains, so the MQTT sink's bound on devices must hold
 * on the broker too. Real mosquitto: a new subscriber (as Home Assistant after a restart) gets only the
 * devices the sink still holds; an evicted one's discovery configs and state are cleared.
 */
import { connectAsync } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import type { EventDevice } from '../events.js';
import { describeMosquitto, Mosquitto, until } from '../../../test/helpers/mosquitto.js';
import { buildMqttSink } from './index.js';

const assistant = (i: number): EventDevice => ({ mac: `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`, name: `Forged ${i}`, vendor: 'amazon', model: null, assistant: true });

/** Retained messages with a payload under `filters`, as a new subscriber gets them. */
async function retained(url: string, filters: string[]): Promise<Map<string, string>> {
  const client = await connectAsync(url, { clientId: `flood-listener-${Math.random().toString(36).slice(2)}`, reconnectPeriod: 0 });
  const seen = new Map<string, string>();
  client.on('message', (topic, payload, packet) => {
    if (packet.retain && payload.length > 0) seen.set(topic, payload.toString('utf8'));
  });
  await client.subscribeAsync(filters, { qos: 1 });
  await client.publishAsync('flood-test/ping', 'x', { qos: 1 });
  await new Promise((r) => setTimeout(r, 300));
  await client.endAsync();
  return seen;
}

describeMosquitto('MQTT devices bounded on the broker (real mosquitto)', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterAll(async () => {
    await broker?.close();
  });

  it('clears the retained discovery configs and state of a device it evicts', async () => {
    let current: EventDevice[] = [];
    const config = loadConfig({ flags: { 'mqtt-url': broker.url, 'mqtt-prefix': 'fl', 'mqtt-discovery-prefix': 'ha-fl', 'mqtt-client-id': 'earshot-flood', 'max-devices': '3' } });
    const sink = buildMqttSink(config, { log: pino({ level: 'silent' }), onWakeEvents: () => {}, devices: () => current, reconnectPeriodMs: 200 })!;
    try {
      await sink.start();
      // ten assistants, one after the other (as a flood of forged ones would come)
      for (let i = 1; i <= 10; i++) {
        current = [assistant(i)];
        sink.onDevicesChanged();
      }
      await until('the sink holds 3 devices', () => sink.stats.devices === 3);
      // the clears are published after the sink let the devices go: wait until the broker has them all
      const macsOnBroker = async () => {
        const kept = await retained(broker.url, ['ha-fl/#', 'fl/device/+/state']);
        return [...new Set([...kept.values()].map((p) => {
          const body = JSON.parse(p) as { mac?: string; device?: { connections: string[][] } };
          return body.mac ?? body.device?.connections[0][1];
        }))].sort();
      };
      const expected = [8, 9, 10].map((i) => assistant(i).mac);
      let last: Array<string | undefined> = [];
      await until('the broker keeps only the last 3 devices', async () => {
        last = await macsOnBroker();
        return JSON.stringify(last) === JSON.stringify(expected);
      }, 10_000).catch(() => undefined);
      expect(last).toEqual(expected);
      expect(sink.stats.devicesEvicted).toBe(7);
    } finally {
      await sink.close();
    }
  }, 30_000);

  it('keeps the assistant seen uploading audio on the broker through a flood of forged ones, with its counts', async () => {
    const echo: EventDevice = { mac: 'f0:81:73:00:00:01', name: 'Kitchen Echo', vendor: 'amazon', model: null, assistant: true };
    let current: EventDevice[] = [echo];
    const config = loadConfig({ flags: { 'mqtt-url': broker.url, 'mqtt-prefix': 'fk', 'mqtt-discovery-prefix': 'ha-fk', 'mqtt-client-id': 'earshot-flood-keep', 'max-devices': '3' } });
    const sink = buildMqttSink(config, { log: pino({ level: 'silent' }), onWakeEvents: () => {}, devices: () => current, reconnectPeriodMs: 200 })!;
    try {
      await sink.start();
      sink.onDevicesChanged();
      const start = new Date(Date.now() - 10_000).toISOString();
      const activation = {
        id: 'real-1', device: echo.mac, start, end: new Date(Date.parse(start) + 4000).toISOString(), bytesUp: 90_000, bytesDown: 20_000,
        server: '52.94.1.1', serverName: 'avs-alexa-4-na.amazon.com', score: 0.9, verdict: 'suspected' as const, reasons: ['no-wake-event'], wakeEvent: null,
      };
      sink.onActivationEvent({ kind: 'started', activation, device: echo, atMs: Date.now() });
      sink.onActivationEvent({ kind: 'finished', activation, device: echo, atMs: Date.now() });
      // then a flood, as in the test above, long after the Echo's last activation
      for (let i = 1; i <= 10; i++) {
        current = [assistant(i)];
        sink.onDevicesChanged();
      }
      await until('the sink holds 3 devices', () => sink.stats.devices === 3);
      let kept = new Map<string, string>();
      const expected = [echo.mac, assistant(9).mac, assistant(10).mac].sort();
      const macs = () => [...new Set([...kept.values()].map((p) => {
        const body = JSON.parse(p) as { mac?: string; device?: { connections: string[][] } };
        return body.mac ?? body.device?.connections[0][1];
      }))].sort();
      await until('the broker keeps the Echo and the last 2 forged devices', async () => {
        kept = await retained(broker.url, ['ha-fk/#', 'fk/device/+/state']);
        return JSON.stringify(macs()) === JSON.stringify(expected);
      }, 10_000).catch(() => undefined);
      expect(macs()).toEqual(expected);
      expect(sink.stats.devicesEvicted).toBe(8);
      // its state was never dropped: today's counts and its last suspected activation are intact
      expect(JSON.parse(kept.get('fk/device/f08173000001/state') ?? '{}')).toMatchObject({ activations_today: 1, suspected_today: 1, last_suspected: start });
      expect([...kept.keys()].filter((t) => t.startsWith('ha-fk/') && t.includes('f08173000001')).length).toBeGreaterThanOrEqual(5);
    } finally {
      await sink.close();
    }
  }, 30_000);
});
