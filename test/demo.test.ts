/**
 * `earshot demo` as a new user runs it: it ends by itself with a summary that names suspected
 * activations and the URLs, and leaves nothing running (its influxd, API and receiver are gone, its
 * temporary directory removed).
 */
import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { describeShared } from './helpers/shared.js';

const refused = async (url: string) => fetch(url).then(() => false, () => true);

describeShared('earshot demo', () => {
  it('ends by itself with a summary naming suspected activations and the URLs, and leaves nothing running', async () => {
    const r = await runCli(['demo', '--speed', '200'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    // the household's false wakes have no wake event: suspected, and alerted
    expect(out).toMatch(/^\d+ activations, [1-9]\d* suspected/m);
    expect(out).toMatch(/^ {2}\S+ +HomePod +[\d.]+ s {2}suspected {2}sustained-upload, no-wake-event$/m);
    expect(out).toMatch(/webhook received: activation\.suspected/);
    const status = /status page +(http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
    expect(status).toBeDefined();
    expect(out).toMatch(/API docs +http:\/\/127\.0\.0\.1:\d+\/api\/v1\/docs/);
    const dir = /runs on this machine only, in (\S+)/.exec(out)?.[1] as string;
    expect(existsSync(dir)).toBe(false);
    expect(await refused(`${status}/api/v1/health`)).toBe(true);
    const influx = /private influxd on (http:\S+)/.exec(out)?.[1];
    if (influx) expect(await refused(`${influx}/ping`)).toBe(true);
    else expect(out).toMatch(/InfluxDB: .*going on without it/);
  }, 200_000);
});

it('a bad --speed is one line and exit 2 (it was an internal error with a stack trace)', async () => {
  for (const speed of ['abc', '0', '-1', 'Infinity']) {
    const r = await runCli(['demo', `--speed=${speed}`]);
    expect(r.code, speed).toBe(2);
    expect(r.stderr, speed).toBe(`earshot: demo: --speed must be a number above 0, got "${speed}"\n`);
  }
});
