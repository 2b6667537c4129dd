/**
 * The status page where an audit (2026-12-06) found it wrong, in a real browser against real collectors:
 * today's activations on the privacy card were counted by UTC date against days in detect.timeZone (0
 * where the report had them); a stale token in the browser was sent on every poll, five requests at a
 * time, and used up the address's wrong-token budget within seconds, so the right token got 429 too;
 * the lists were drawn again every poll, which took focus (and a selection) away; and when the collector
 * died, the cards went on saying "listening now" and the health table "ok".
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHROMIUM, useChromium } from './helpers/browser.js';
import { startCollect } from './helpers/collect.js';
import { PROJECT_ROOT } from './helpers/shared.js';
import { freePort, untilValue } from './helpers/wait.js';
import { tempDir } from './helpers/temp.js';
import { exampleDevices, generateScenario, writeScenarioPcap } from './scenario/generator.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
// wake events years away from the capture: its activations are suspected (label buttons to focus)
const WAKE_EVENTS = join(PROJECT_ROOT, 'test/fixtures/wake-events/events.jsonl');
const TOKEN = 'page-faults-token-0123456789';

/** An address of this machine beyond loopback: there, reads need the token (api/guards.ts). */
const outside = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? null;

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium || outside === null) {
  const why = !haveChromium ? `${CHROMIUM} is missing (apt-get install chromium)` : 'this machine has no IPv4 address beyond loopback';
  if (process.env.CI === 'true') throw new Error(`status page faults: ${why}`);
  console.warn(`status page faults skipped: ${why}`);
}

const getJson = async <T>(url: string, token?: string): Promise<T> =>
  (await (await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} })).json()) as T;

describe.skipIf(!haveChromium || outside === null)('status page faults (chromium against earshot collect --file)', () => {
  const browser = useChromium();

  it('counts today\'s activations on the privacy card in detect.timeZone (UTC-12 here: the capture\'s UTC day is its next day)', async () => {
    const zone = 'Etc/GMT+12';
    const run = await startCollect(CAPTURE, ['--time-zone', zone]);
    try {
      interface Privacy { timeZone: string; devices: Array<{ mac: string; assistant: boolean; days: Array<{ day: string }> }> }
      const echo = await untilValue('the Echo with its days', async () => {
        const body = await getJson<Privacy>(`${run.base}/api/v1/privacy`);
        return body.devices.find((d) => d.assistant && d.days.length > 0) ?? null;
      });
      const today = echo.days[echo.days.length - 1].day;
      // the expected count from the activations and the zone, by Node's own time zone data
      const dayIn = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });
      const { activations } = await getJson<{ activations: Array<{ device: string; start: string }> }>(`${run.base}/api/v1/activations?limit=1000`);
      const expected = activations.filter((a) => a.device === echo.mac && dayIn.format(new Date(a.start)) === today).length;
      expect(expected).toBeGreaterThan(0);
      // the UTC date differs: counted by it, the card said 0
      expect(activations.filter((a) => a.device === echo.mac && a.start.slice(0, 10) === today)).toHaveLength(0);

      const page = await browser().newPage({ viewport: { width: 1100, height: 1000 } });
      await page.goto(run.base + '/');
      const card = page.locator('#privacy .privacy').first();
      await card.locator('tbody tr').first().waitFor({ timeout: 20_000 });
      const line = await card.locator('p.meta', { hasText: `${today}:` }).textContent();
      // what it sent within the home, when anything, follows the count (test/page.test.ts)
      expect(line).toMatch(new RegExp(`, ${expected} activations?( · [\\d.]+ [kMGT]?B sent within the home)?$`));
      await page.close();
    } finally {
      await run.stop();
    }
  }, 90_000);

  it('shows at most 50 suspected activations as cards and says how many more the API has (it drew every one, up to 1,000, every poll)', async () => {
    const scenario = generateScenario({ seed: 11, startMs: Date.parse('2024-03-02T18:00:00Z'), durationMs: 40 * 60_000, devices: exampleDevices(), randomActivations: 80, followUpRate: 0 });
    const file = join(tempDir('earshot-page-faults-'), 'many.pcap');
    writeScenarioPcap(scenario, file);
    const run = await startCollect(file, ['--wake-events', WAKE_EVENTS]);
    try {
      const suspected = await untilValue('the replay\'s suspected activations', async () => {
        const health = await getJson<{ capture: { running: boolean } }>(`${run.base}/api/v1/health`);
        if (health.capture.running) return null;
        return (await getJson<{ activations: unknown[] }>(`${run.base}/api/v1/activations?verdict=suspected&limit=1000`)).activations.length;
      }, 60_000);
      expect(suspected).toBeGreaterThan(50);
      const page = await browser().newPage({ viewport: { width: 1100, height: 1000 } });
      await page.goto(run.base + '/');
      await page.locator('#suspected li[data-id]').first().waitFor({ timeout: 20_000 });
      expect(await page.locator('#suspected li[data-id]').count()).toBe(50);
      expect(await page.locator('#suspected li.muted').textContent()).toBe(`and ${suspected - 50} more: api/v1/activations?verdict=suspected`);
      await page.close();
    } finally {
      await run.stop();
    }
  }, 120_000);

  it('a refused token is not sent again (the right one is not locked out); focus survives the polls; a dead collector shows as such', async () => {
    // beyond loopback, where reads need the token (startCollect listens on loopback)
    const port = await freePort();
    const base = `http://${outside}:${port}`;
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/cli/main.js'), 'collect', '--file', CAPTURE, '--listen', `${outside}:${port}`,
      '--wake-events', WAKE_EVENTS, '--api-token', TOKEN, '--log-level', 'error'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('close', resolve));
    try {
      await untilValue('the API beyond loopback', async () => ((await fetch(`${base}/api/v1/health`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => null))?.status === 200 ? true : null));
      const page = await browser().newPage({ viewport: { width: 1100, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      // an old token this browser kept
      await page.addInitScript("localStorage.setItem('earshot-token', 'an-old-token-of-this-browser')");
      await page.goto(base + '/');
      await page.locator('#message.error', { hasText: 'refused the token' }).waitFor({ timeout: 10_000 });
      // three polls later: the old token would have spent the 10 wrong tokens a minute of this address
      await page.waitForTimeout(7_000);
      const res = await fetch(`${base}/api/v1/health`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status, await res.text()).toBe(200);
      expect(await page.locator('#token-form').isVisible()).toBe(true);

      // the right token: the data shows
      await page.fill('#token-input', TOKEN);
      await page.click('#token-form button[type=submit]');
      const first = page.locator('#suspected li[data-id] button.intended').first();
      await first.waitFor({ timeout: 20_000 });
      const id = await page.locator('#suspected li[data-id]').first().getAttribute('data-id');
      await first.focus();
      await page.waitForTimeout(4_000);
      expect(await page.evaluate("document.activeElement && document.activeElement.closest('li') && document.activeElement.closest('li').getAttribute('data-id')")).toBe(id);

      // the collector dies: the page says the data is old, and no assistant is "listening now"
      child.kill('SIGKILL');
      await exited;
      await page.locator('body.stale').waitFor({ state: 'attached', timeout: 10_000 });
      expect(await page.locator('.pill.listening').count()).toBe(0);
      expect(await page.locator('.assistant .state').first().textContent()).toBe('unknown');
      expect(await page.locator('#message').textContent()).toMatch(/Showing what it said at/);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);
});
