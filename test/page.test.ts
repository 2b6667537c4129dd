/**
 * The status page at / in a real browser (Debian's chromium driven by playwright-core) against
 * `earshot collect --file` on the bundled Echo Dot 3 capture, paced: the assistant and its suspected
 * activation show, a wrong token gets a clear 401 message, the right one labels the activation
 * intended (confirmed through the API), and the page fits a phone's width. The screenshot goes to
 * test-artifacts/status-page.png, and to the README's docs/status-page.png with EARSHOT_UPDATE_DOCS=1
 * (a test run does not change tracked files otherwise). Without /usr/bin/chromium the suite is
 * skipped with a message, except in CI (CI=true), where it fails.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from './helpers/shared.js';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { untilValue } from './helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
// a wake-event source whose events are years away from the capture: the activation starts suspected
const WAKE_EVENTS = join(PROJECT_ROOT, 'test/fixtures/wake-events/events.jsonl');
const TOKEN = 'test-token-0123456789';
const ARTIFACTS = join(PROJECT_ROOT, 'test-artifacts');

const startRun = () => startCollect(CAPTURE, ['--wake-events', WAKE_EVENTS, '--realtime-speed', '8', '--api-token', TOKEN, '--site', 'kitchen-pi']);

const getJson = async <T>(url: string): Promise<T> => (await (await fetch(url)).json()) as T;

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing (apt-get install chromium, or deploy/setup.sh)`);
  console.warn(`status page test skipped: ${CHROMIUM} is missing (apt-get install chromium, or deploy/setup.sh)`);
}

describe.skipIf(!haveChromium)('status page (chromium against earshot collect --file)', () => {
  let run: CollectRun;
  let browser: Browser;
  beforeAll(async () => {
    run = await startRun();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await run?.stop();
  });

  it('serves its three files with their content types', async () => {
    for (const [path, type] of [['/', 'text/html'], ['/page.js', 'text/javascript'], ['/page.css', 'text/css']]) {
      const res = await fetch(run.base + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toContain(type);
      expect((await res.text()).length, path).toBeGreaterThan(100);
    }
  });

  it('shows the assistant and its suspected activation, and labels it with the token', async () => {
    const activation = await untilValue('a suspected activation', async () => {
      const body = await getJson<{ activations: Array<{ id: string; device: string; verdict: string }> }>(`${run.base}/api/v1/activations`);
      return body.activations.find((a) => a.verdict === 'suspected') ?? null;
    });
    const devices = (await getJson<{ devices: Array<{ mac: string; assistant: boolean }> }>(`${run.base}/api/v1/devices`)).devices;
    expect(devices.find((d) => d.mac === activation.device)?.assistant).toBe(true);

    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(run.base + '/');
    // reads on loopback need no token: the data shows, and the page asks for the token once
    const card = page.locator(`.assistant[data-mac="${activation.device}"]`);
    await card.waitFor({ timeout: 20_000 });
    await expect(card.locator('.state').textContent()).resolves.toMatch(/^(idle|listening now)$/);
    const item = page.locator(`#suspected li[data-id="${activation.id}"]`);
    await item.waitFor({ timeout: 20_000 });
    await page.locator(`#timeline .mark.suspected[data-id="${activation.id}"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator('#timeline-note').textContent()).toContain('Replayed capture');
    await page.locator('#health dt', { hasText: 'capture' }).waitFor();
    // which home it is, in the heading and the tab's title
    expect(await page.locator('#site-name').textContent()).toBe('kitchen-pi');
    expect(await page.title()).toBe('earshot · kitchen-pi');
    expect(await page.locator('#token-form').isVisible()).toBe(true);

    // a wrong token: a clear 401 message, nothing labelled
    await page.fill('#token-input', 'wrong-token');
    await page.click('#token-form button[type=submit]');
    await item.locator('button.not-intended').click();
    await page.locator('#message.error', { hasText: '401' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#message').textContent()).toContain('refused the token');
    expect((await getJson<{ verdict: string }>(`${run.base}/api/v1/activations/${activation.id}`)).verdict).toBe('suspected');

    // wait for the sparkline to have a few samples, then the screenshot (the page as the test sees it)
    // (a locator, not waitForFunction: the page's Content-Security-Policy forbids eval, which that polls with)
    await page.locator('.assistant .spark-line').first().waitFor({ state: 'attached', timeout: 20_000 });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button[type=submit]');
    await page.locator('#message:not(.error)', { hasText: 'Token saved' }).waitFor();
    expect(await page.evaluate("localStorage.getItem('earshot-token')")).toBe(TOKEN);
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.EARSHOT_UPDATE_DOCS === '1') copyFileSync(shot, join(PROJECT_ROOT, 'docs/status-page.png'));

    // the right token: "intended" confirms it
    await item.locator('button.intended').click();
    await page.locator('#message', { hasText: 'marked intended' }).waitFor({ timeout: 10_000 });
    const labelled = await getJson<{ verdict: string; reasons: string[] }>(`${run.base}/api/v1/activations/${activation.id}`);
    expect(labelled.verdict).toBe('confirmed');
    expect(labelled.reasons).toContain('label:intended');
    await item.waitFor({ state: 'detached', timeout: 10_000 });
    await page.locator(`#timeline .mark.confirmed[data-id="${activation.id}"]`).waitFor({ timeout: 10_000 });
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it('shows who the assistant talks to, as the API lists it', async () => {
    interface PrivacyBody { devices: Array<{ mac: string; assistant: boolean; endpoints: Array<{ name: string; org: string | null; service: string }>; days: Array<{ day: string; otherUp: number; localUp: number }> }> }
    const echo = await untilValue('the Echo in the privacy ledger', async () => {
      const body = await getJson<PrivacyBody>(`${run.base}/api/v1/privacy`);
      return body.devices.find((d) => d.assistant && d.endpoints.length > 0) ?? null;
    });
    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(run.base + '/');
    const card = page.locator('#privacy .privacy').first();
    await card.waitFor({ timeout: 20_000 });
    // the busiest endpoint first, with its organisation and service, as the API has it
    const first = card.locator('tbody tr').first();
    await first.waitFor({ timeout: 20_000 });
    const cells = await first.locator('td').allTextContents();
    const top = (await getJson<PrivacyBody>(`${run.base}/api/v1/privacy`)).devices.find((d) => d.mac === echo.mac)!.endpoints[0];
    expect(cells[0]).toBe(top.name);
    expect(cells[1]).toContain(top.org ?? '?');
    expect(cells[2]).toBe(top.service);
    expect(await card.locator('.meta').first().textContent()).toMatch(/organisations? · \d+ endpoints? · [\d.]+ % of its bytes to a known organisation/);
    // the 55 kB it streamed to another Echo (UDP 55444, test/privacy-orgs.test.ts has the bytes against
    // tshark) stayed at home: no upload besides voice, said apart on the card
    const day = await untilValue('the Echo-to-Echo stream in the ledger', async () => {
      const d = (await getJson<PrivacyBody>(`${run.base}/api/v1/privacy`)).devices.find((x) => x.mac === echo.mac)!.days.at(-1);
      return d !== undefined && d.localUp > 0 ? d : null;
    });
    expect(day.localUp).toBeGreaterThan(50_000);
    expect(day.otherUp).toBeLessThan(1000);
    const line = card.locator('.meta', { hasText: 'uploaded besides voice' });
    await line.filter({ hasText: 'sent within the home' }).waitFor({ timeout: 20_000 });
    expect(await line.textContent()).toMatch(new RegExp(`^${day.day}: \\d+ B uploaded besides voice, [\\d.]+ kB voice, 1 activation · [\\d.]+ kB sent within the home$`));
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('fits a phone screen', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
    await page.goto(run.base + '/');
    await page.locator('.assistant').first().waitFor({ timeout: 20_000 });
    await page.locator('#privacy .privacy').first().waitFor({ timeout: 20_000 });
    const width = await page.evaluate<number>('document.documentElement.scrollWidth');
    expect(width).toBeLessThanOrEqual(390);
    await page.close();
  }, 30_000);
});
