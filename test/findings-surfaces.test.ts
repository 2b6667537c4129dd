/**
 * Where network hygiene findings show, on the GENERATED capture (test/helpers/hygiene-capture.ts) plus a
 * device whose HTTP Host header is hostile markup and terminal escapes: GET /api/v1/findings of a real
 * `earshot collect --file` (filters, 400s), the status page's Findings section in Chromium (text only,
 * a phone's width), `earshot doctor` (--api-url of the running collector, --capture of the file), and the
 * report of `earshot replay` (json: the findings list, valid against the published schema; text: the
 * section). Expected kinds come from the capture's construction (checked by tshark in
 * collector/findings/findings.test.ts), not from earshot. A second assistant (device 31, named in the
 * config like device 23) shares device 23's segment with the phone: the same advice for both, which the
 * page and the text report show once, naming both.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishedReportSchema } from '../collector/sink/report-schema.js';
import { CHROMIUM, useChromium } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { describeShared, realCapture } from './helpers/shared.js';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { deviceMac, HYGIENE_CONFIG, HYGIENE_DEVICES, httpGetPackets, writeHygieneCapture } from './helpers/hygiene-capture.js';
import { tempDir } from './helpers/temp.js';
import { untilValue } from './helpers/wait.js';

const HOSTILE_HOST = '<img src=x onerror="document.title=1">\x1b[2J.example';
const dir = tempDir('earshot-findings-surfaces-');
const capture = join(dir, 'hygiene.pcap');
const config = join(dir, 'earshot.json');

interface Finding { kind: string; device: string | null; severity: string; evidence: string[]; title: string }

/** device -> kinds, as the capture was built (igd-discovery beside the port mappings it came with). */
function expectedKinds(): string[] {
  const out = HYGIENE_DEVICES.filter((d) => d.kind !== null).map((d) => `${deviceMac(d.n)} ${d.kind}`);
  out.push(`${deviceMac(10)} igd-discovery`, `${deviceMac(11)} igd-discovery`, `${deviceMac(30)} plain-http`);
  out.push(`${deviceMac(31)} plain-http`, `${deviceMac(31)} assistant-shares-segment`);
  return out.sort();
}
/** Findings shown once for several devices: the segment advice of the two assistants. */
const SHOWN_ONCE = 1;
const kindsOf = (findings: Finding[]) => findings.map((f) => `${f.device} ${f.kind}`).sort();

describe('network hygiene findings in the API, the status page, doctor and the report', () => {
  let run: CollectRun;
  beforeAll(async () => {
    writeHygieneCapture(capture, [...httpGetPackets(30, '203.0.113.80', HOSTILE_HOST), ...httpGetPackets(31, '203.0.113.81', 'example.net')]);
    writeFileSync(config, JSON.stringify({ devices: { ...HYGIENE_CONFIG.devices, [deviceMac(31)]: { assistant: true, name: 'Hall speaker' } } }));
    run = await startCollect(capture, ['--config', config]);
  }, 60_000);
  afterAll(async () => {
    await run?.stop();
  });

  it('GET /api/v1/findings lists them, filters by device, kind and severity, and refuses bad filters', async () => {
    const all = await untilValue('the findings', async () => {
      const body = (await (await fetch(`${run.base}/api/v1/findings?limit=1000`)).json()) as { total: number; dropped: number; findings: Finding[] };
      return body.findings.some((f) => f.kind === 'assistant-shares-segment') && body.total >= expectedKinds().length ? body : null;
    });
    expect(kindsOf(all.findings)).toEqual(expectedKinds());
    expect([all.total, all.dropped]).toEqual([expectedKinds().length, 0]);
    const high = (await (await fetch(`${run.base}/api/v1/findings?severity=high`)).json()) as { findings: Finding[] };
    expect(high.findings.every((f) => f.severity === 'high')).toBe(true);
    expect(high.findings.map((f) => f.kind).sort()).toEqual(['inbound-connection', 'port-mapping', 'port-mapping', 'port-mapping']);
    const one = (await (await fetch(`${run.base}/api/v1/findings?device=${deviceMac(15).toUpperCase()}&kind=dns-public-resolver`)).json()) as { findings: Finding[] };
    expect(kindsOf(one.findings)).toEqual([`${deviceMac(15)} dns-public-resolver`]);
    for (const [query, field] of [['kind=nope', 'querystring/kind'], ['device=zz', 'querystring/device'], ['severity=dire', 'querystring/severity'], ['limit=0', 'querystring/limit']]) {
      const res = await fetch(`${run.base}/api/v1/findings?${query}`);
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { message: string };
      expect(body.message, query).toContain(field);
      expect(body.message.split('\n'), query).toHaveLength(1);
    }
  }, 60_000);

  describe.skipIf(!existsSync(CHROMIUM))('the status page (chromium)', () => {
    const browser = useChromium();

    it('shows a card per finding (one naming every device for the same finding), packet text as text, readable on a phone', async () => {
      const page = await browser().newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(run.base + '/');
      const cards = page.locator('#findings li.finding');
      await page.locator('#findings li.finding[data-kind="assistant-shares-segment"]').waitFor({ timeout: 20_000 });
      expect(await cards.count()).toBe(expectedKinds().length - SHOWN_ONCE);
      // the segment advice of both assistants: one card that names them; each saw the one phone
      const segment = page.locator('#findings li.finding[data-kind="assistant-shares-segment"]');
      expect(await segment.count()).toBe(1);
      expect(await segment.getAttribute('data-devices')).toBe('2');
      expect(await segment.locator('.who').textContent()).toMatch(/^(Kitchen speaker, Hall speaker|Hall speaker, Kitchen speaker) \(2 assistants\) · seen 1× each · /);
      // the same title with other evidence stays apart: devices 19, 30 and 31 each asked another host over HTTP
      expect(await page.locator('#findings li.finding[data-kind="plain-http"]').count()).toBe(3);
      // the most severe first, each with its advice
      expect(await cards.first().locator('.pill').textContent()).toBe('high');
      expect(await cards.first().locator('.advice').textContent()).toMatch(/^What to do: /);
      // the hostile Host header: shown as text (escape replaced), never parsed as markup
      const hostile = page.locator('#findings .evidence', { hasText: 'onerror' });
      expect(await hostile.textContent()).toBe('GET to <img src=x onerror="document.title=1">?[2J.example (203.0.113.80:80)');
      expect(await page.locator('#findings img').count()).toBe(0);
      expect(await page.title()).toMatch(/^earshot · [a-z0-9][a-z0-9_-]*$/);
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      expect(errors).toEqual([]);
      await page.close();
    }, 60_000);
  });

  it('earshot doctor --api-url lists the running collector\'s findings', async () => {
    const r = await runCli(['doctor', '--interface', 'earshot-none0', '--seconds', '1', '--api-url', run.base, '--format', 'json']);
    const checks = (JSON.parse(r.stdout) as { checks: Array<{ check: string; status: string; message: string; fix?: string }> }).checks;
    const summary = checks.find((c) => c.check === 'findings');
    expect(summary?.message).toBe(`${expectedKinds().length} network hygiene findings in the collector at ${run.base} (10 medium or high)`);
    const lines = checks.filter((c) => c.check === 'finding');
    expect(lines).toHaveLength(expectedKinds().length);
    expect(lines[0]).toMatchObject({ status: 'warn' });
    expect(lines.every((l) => (l.fix ?? '').length > 40)).toBe(true);
  }, 60_000);

  it('earshot doctor --capture lists the file\'s findings (only those), exit 0; an unreadable file exits 2 in one line', async () => {
    const r = await runCli(['doctor', '--capture', capture, '--config', config]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`warn findings: ${expectedKinds().length} network hygiene findings in ${capture} (10 medium or high) — docs/privacy.md, "Network hygiene findings", says what each means`);
    expect(lines.filter((l) => /^(warn|ok) +finding: /.test(l))).toHaveLength(expectedKinds().length);
    // terminal escapes from packets never reach the terminal
    expect(r.stdout).not.toContain('\x1b');
    const bad = await runCli(['doctor', '--capture', join(dir, 'missing.pcap')]);
    expect(bad.code).toBe(2);
    expect(bad.stdout.split('\n')[0]).toMatch(/^FAIL findings: .*missing\.pcap/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('earshot replay: the json report has the findings (valid against the published schema), the text report a section', async () => {
    const json = await runCli(['replay', capture, '--config', config, '--format', 'json', '--no-progress']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as { findings: Finding[] };
    expect(kindsOf(report.findings)).toEqual(expectedKinds());
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    const validate = ajv.compile(publishedReportSchema() as object);
    expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
    const text = await runCli(['replay', capture, '--config', config, '--format', 'text', '--no-progress']);
    expect(text.stdout).toContain(`Network hygiene findings (${expectedKinds().length})`);
    expect(text.stdout).toMatch(/\[high\] Asked the router to open a port \(UPnP AddPortMapping\): 02:11:00:00:00:10/);
    expect(text.stdout).toContain('what to do: ');
    expect(text.stdout).not.toContain('\x1b');
    // the two assistants' segment advice: one block naming both
    const segment = text.stdout.split('\n').filter((l) => l.includes('with computers or phones'));
    expect(segment).toHaveLength(1);
    expect(segment[0]).toContain(`${deviceMac(23)} (Kitchen speaker)`);
    expect(segment[0]).toContain(`${deviceMac(31)} (Hall speaker)`);
    expect(segment[0]).toMatch(/ \(2 assistants\), seen 1x each /);
    expect(text.stdout.split('\n').filter((l) => l.includes('Unencrypted HTTP to the internet'))).toHaveLength(3);
  }, 60_000);
});

describeShared('doctor --capture on a real capture', () => {
  it('earshot doctor --capture counts in words a person reads: "1 network hygiene finding", "2 ... findings"', async () => {
    // a real capture: the Echo Dot 2 asks Google Public DNS (tshark: its queries to 8.8.8.8), and little else
    const real = realCapture('amazon-echodot2_normal-use_jhautry.pcap');
    const r = await runCli(['doctor', '--capture', real]);
    expect(r.code, r.stderr).toBe(0);
    const summary = /^\w+ +findings: (\d+) network hygiene (finding|findings) in /.exec(r.stdout);
    expect(summary, r.stdout).not.toBeNull();
    const [, count, noun] = summary as RegExpExecArray;
    expect(noun).toBe(count === '1' ? 'finding' : 'findings');
    expect(r.stdout.split('\n').filter((l) => / finding: /.test(l))).toHaveLength(Number(count));
  }, 60_000);
});
