/**
 * The browser-side protections in a real browser (Debian's chromium through playwright-core) against
 * `earshot collect --file`: a page from another origin that frames the status page gets nothing
 * rendered (clickjacking of the label buttons), a page reached by a DNS-rebinding name is refused while
 * the address itself works, and the API docs page (swagger-ui) renders under its Content-Security-Policy
 * with no violation. Chromium's --host-resolver-rules maps the attacker's names to 127.0.0.1, as a
 * rebinding DNS server would. Skipped without /usr/bin/chromium, except in CI (CI=true).
 */
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from './helpers/shared.js';
import { startCollect, type CollectRun } from './helpers/collect.js';

const CHROMIUM = '/usr/bin/chromium';
const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');
const TOKEN = 'browser-token-0123456789';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing (apt-get install chromium, or deploy/setup.sh)`);
  console.warn(`browser protection test skipped: ${CHROMIUM} is missing (apt-get install chromium, or deploy/setup.sh)`);
}

describe.skipIf(!haveChromium)('browser-side protections (chromium against earshot collect --file)', () => {
  let run: CollectRun;
  let browser: Browser;
  let attacker: Server;
  let attackerPort: number;
  let port: string;
  beforeAll(async () => {
    run = await startCollect(CAPTURE, ['--api-token', TOKEN]);
    port = new URL(run.base).port;
    // the attacker's site: a page that frames earshot's status page
    attacker = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>cute cats</title><p>cats</p>
        <iframe id="victim" src="${run.base}/" width="800" height="600"></iframe>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerPort = (attacker.address() as { port: number }).port;
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--host-resolver-rules=MAP rebind.example 127.0.0.1, MAP attacker.example 127.0.0.1'],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => attacker?.close(resolve));
    await run?.stop();
  });

  it('a page from another origin that frames / gets nothing rendered', async () => {
    const page = await browser.newPage();
    const refused: string[] = [];
    page.on('console', (m) => { if (/frame|ancestor/i.test(m.text())) refused.push(m.text()); });
    await page.goto(`http://attacker.example:${attackerPort}/`);
    await page.locator('#victim').waitFor();
    // give the frame every chance to load
    await page.waitForFunction(`document.getElementById('victim').contentWindow !== null`);
    await page.waitForTimeout(1500);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    expect(frame).toBeDefined();
    // a refused frame holds Chromium's error page, not earshot's document: no assistants, no label buttons
    const inside = await frame!.evaluate('document.getElementById("assistants") === null && document.querySelector("button.intended") === null && document.title !== "earshot"').catch(() => true);
    expect(inside).toBe(true);
    expect(refused.join('\n')).toMatch(/frame-ancestors|X-Frame-Options/);
    await page.close();
  }, 30_000);

  it('a DNS-rebinding name is refused, the address itself works', async () => {
    const page = await browser.newPage();
    const rebound = await page.goto(`http://rebind.example:${port}/api/v1/health`);
    expect(rebound?.status()).toBe(403);
    const refusal = JSON.parse((await page.locator('body').textContent()) ?? '{}') as { message: string };
    expect(refusal.message).toMatch(/^Host "rebind\.example:\d+" is not a name of this earshot/);
    // the attacker's script on that origin reads nothing either
    const read = await page.evaluate(`fetch('/api/v1/devices').then((r) => r.status)`);
    expect(read).toBe(403);
    const direct = await page.goto(`${run.base}/api/v1/health`);
    expect(direct?.status()).toBe(200);
    expect(JSON.parse((await page.locator('body').textContent()) ?? '{}')).toHaveProperty('capture');
    await page.close();
  }, 30_000);

  it('the status page runs under its Content-Security-Policy with no violation', async () => {
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text()); });
    await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => console.log('Refused to ' + e.violatedDirective + ' ' + e.blockedURI))`);
    const res = await page.goto(`${run.base}/`);
    expect(res?.headers()['content-security-policy']).toMatch(/script-src 'self';/);
    await page.locator('.assistant').first().waitFor({ timeout: 20_000 });
    await page.locator('#health dt', { hasText: 'capture' }).waitFor();
    expect(violations, violations.join('\n')).toEqual([]);
    await page.close();
  }, 30_000);

  it('the API docs page (swagger-ui) renders under its Content-Security-Policy, with no violation', async () => {
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text()); });
    await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => console.log('Refused to ' + e.violatedDirective + ' ' + e.blockedURI))`);
    const res = await page.goto(`${run.base}/api/v1/docs`);
    expect(res?.headers()['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    await page.locator('.swagger-ui .info .title', { hasText: 'earshot API' }).waitFor({ timeout: 20_000 });
    await page.locator('.opblock-summary-path', { hasText: '/api/v1/wake-events' }).first().waitFor();
    expect(violations, violations.join('\n')).toEqual([]);
    await page.close();
  }, 30_000);
});
