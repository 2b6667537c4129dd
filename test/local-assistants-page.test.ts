/**
 * The status page's "Local assistants: where the voice went" in Chromium, against `earshot collect
 * --file` on the GENERATED local-assistant capture (test/scenario/local-assistant.ts, cloud variant):
 * the satellite's activation says where Home Assistant sent the voice, the ESPHome device's that it
 * stayed at home; the API's activation carries the same `local` part. Skipped without /usr/bin/chromium
 * outside CI, like test/page.test.ts.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { tempDir } from './helpers/temp.js';
import { untilValue } from './helpers/wait.js';
import { localAssistantPcap } from './scenario/local-assistant.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing (apt-get install chromium, or deploy/setup.sh)`);

describe.skipIf(!haveChromium)('status page: local assistants (chromium, generated capture)', () => {
  const { pcap, truth } = localAssistantPcap('cloud');
  const file = join(tempDir('earshot-local-page-'), 'local-cloud.pcap');
  writeFileSync(file, pcap);
  let run: CollectRun;
  let browser: Browser;
  beforeAll(async () => {
    run = await startCollect(file, []);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await run?.stop();
  });

  it('shows where each local activation\'s voice went, as the API says', async () => {
    type Local = { id: string; device: string; local?: { voiceDestination: string; cloud: Array<{ name: string }> } };
    const activations = await untilValue('three decided local activations', async () => {
      const body = (await (await fetch(`${run.base}/api/v1/activations`)).json()) as { activations: Local[] };
      const local = body.activations.filter((a) => a.local && a.local.voiceDestination !== 'pending');
      return local.length === 3 ? local : null;
    });
    const satellite = activations.find((a) => a.device === truth.satellite.mac)!;
    expect(satellite.local!.voiceDestination).toBe('cloud');
    expect(satellite.local!.cloud.map((c) => c.name)).toEqual([truth.cloud!.name]);
    const esphome = activations.find((a) => a.device === truth.esphome.mac)!;
    expect(esphome.local!.voiceDestination).toBe('home');

    const page = await browser.newPage({ viewport: { width: 390, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(run.base + '/');
    const item = page.locator(`#local li[data-id="${satellite.id}"]`);
    await item.waitFor({ timeout: 20_000 });
    expect(await item.locator('strong').textContent()).toBe(`voice went to ${truth.cloud!.name} (Google Cloud Speech-to-Text)`);
    expect(await page.locator(`#local li[data-id="${esphome.id}"] strong`).textContent()).toBe('voice stayed at home');
    expect(await page.locator('#local-section').isVisible()).toBe(true);
    // readable on a phone: nothing wider than the screen
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    expect(errors).toEqual([]);
    await page.close();
  });
});
