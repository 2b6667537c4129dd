/**
 * A LAN client that may publish on the broker (Home Assistant setups often let every client publish)
 * sends earshot's wake and presence topics what no reader foresaw. Real mosquitto, a real `earshot
 * collect` process. The first payload here ended the collector before (JSON.stringify of a record nested
 * 32,000 deep, under the 64-kB payload bound, overflowed the stack in the message that refused it), and
 * as a retained message it ended every start after it.
 */
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCollect } from './helpers/collect.js';
import { describeMosquitto, Mosquitto } from './helpers/mosquitto.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { until } from './helpers/wait.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
// written by hand: JSON.stringify itself cannot make it
const DEPTH = 32_000;
const DEEP_WAKE = `{"time":${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}}`;

describeMosquitto('hostile MQTT payloads', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterAll(async () => {
    await broker?.close();
  });

  it('a wake record nested 32,000 deep (retained) is refused with one line, at this start and the next', async () => {
    expect(DEEP_WAKE.length).toBeLessThan(64 * 1024);
    const client = await mqtt.connectAsync(broker.url, { clientId: 'hostile-test-client' });
    try {
      await client.publishAsync('hostile-test/wake', DEEP_WAKE, { qos: 1, retain: true });
      await client.publishAsync('hostile-test/presence', `{"away":${'['.repeat(500)}${']'.repeat(500)}}`, { qos: 1, retain: true });
    } finally {
      await client.endAsync();
    }
    const flags = ['--mqtt-url', broker.url, '--mqtt-prefix', 'hostile-test', '--mqtt-discovery', 'false'];
    for (const start of ['first', 'second']) {
      const run = await startCollect(CAPTURE, flags);
      try {
        await until(`${start} start: the retained wake payload refused`, () => run.stderr().includes('wake events rejected on hostile-test/wake'), 20_000, 50);
        await until(`${start} start: the retained presence refused`, () => run.stderr().includes('presence rejected on hostile-test/presence'), 20_000, 50);
        const line = run.stderr().split('\n').find((l) => l.includes('wake events rejected on hostile-test/wake')) ?? '';
        expect(line).toContain('time: [[[[[[[[[...]]]]]]]]] is not an ISO 8601 time or epoch number');
        expect(run.stderr()).toContain('"away" must be true or false, got [[[[[[[[[...]]]]]]]');
        // still alive and counting
        const health = (await (await fetch(`${run.base}/api/v1/health`)).json()) as { alerts: { mqtt: Record<string, number> } };
        expect(health.alerts.mqtt).toMatchObject({ wakePayloads: 1, wakeRejected: 1, presenceRejected: 1, messagesFailed: 0 });
        expect(run.stderr()).not.toContain('internal error');
      } finally {
        expect(await run.stop(), run.stderr()).toBe(0);
      }
    }
  }, 90_000);
});
