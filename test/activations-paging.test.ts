/**
 * GET /api/v1/activations pages and filters on the pipeline's thread (collector/view.ts, pageActivations:
 * only the page crosses the threads). Over a real run of a capture with 16 activations, the answers are
 * those of the report the same run prints: paging through the whole set gives the whole set, a limit-N
 * request returns N, and the filters (device, verdict, since/until) keep what the report says they keep.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { startCollect, type CollectRun } from './helpers/collect.js';
import { describeShared, realCapture } from './helpers/shared.js';
import { untilValue } from './helpers/wait.js';

type Listed = { total: number; offset: number; limit: number; activations: Array<Record<string, unknown> & { id: string; start: string; device: string; verdict: string }> };

const get = async (url: string) => (await (await fetch(url)).json()) as Listed;

describeShared('activations paged on the pipeline thread (a real capture with 16 activations)', () => {
  let run: CollectRun;
  let report: Report;
  /** The report's activations newest first, as the API lists them. */
  let expected: Array<Record<string, unknown>>;
  beforeAll(async () => {
    run = await startCollect(realCapture('amazon-echo_alexa-timed2_xray.pcap'), []);
    await untilValue('the report', async () => (run.stdout().includes('"stats"') ? true : null), 30_000);
    report = JSON.parse(run.stdout()) as Report;
    expected = [...report.activations].reverse();
  }, 40_000);
  afterAll(async () => {
    await run?.stop();
  });

  const strip = (list: Listed['activations']) => list.map(({ open: _open, ...a }) => a);

  it('paging through the whole set, three at a time, gives the whole set; a limit-N request returns N', async () => {
    expect(report.activations.length).toBe(16);
    const pages: Listed['activations'] = [];
    for (let offset = 0; ; offset += 3) {
      const page = await get(`${run.base}/api/v1/activations?limit=3&offset=${offset}`);
      expect(page).toMatchObject({ total: 16, offset, limit: 3 });
      if (page.activations.length === 0) break;
      expect(page.activations.length).toBe(Math.min(3, 16 - offset));
      pages.push(...page.activations);
    }
    expect(strip(pages)).toEqual(expected);
    const five = await get(`${run.base}/api/v1/activations?limit=5`);
    expect(five.total).toBe(16);
    expect(strip(five.activations)).toEqual(expected.slice(0, 5));
    expect(strip((await get(`${run.base}/api/v1/activations?limit=1000`)).activations)).toEqual(expected);
    expect((await get(`${run.base}/api/v1/activations?offset=20`)).activations).toEqual([]);
  });

  it('device, verdict and since/until filter as the report says, and page within the filter', async () => {
    const device = report.activations[0].device;
    const verdict = report.activations[0].verdict;
    const byBoth = expected.filter((a) => a.device === device && a.verdict === verdict);
    const listed = await get(`${run.base}/api/v1/activations?device=${device.replace(/:/g, '-')}&verdict=${verdict}&limit=2&offset=1`);
    expect(listed.total).toBe(byBoth.length);
    expect(strip(listed.activations)).toEqual(byBoth.slice(1, 3));
    // since is inclusive, until exclusive, on the start's millisecond
    const since = report.activations[4].start;
    const until = report.activations[11].start;
    const window = expected.filter((a) => Date.parse(a.start as string) >= Date.parse(since) && Date.parse(a.start as string) < Date.parse(until));
    expect(window.length).toBeGreaterThan(3);
    const inWindow = await get(`${run.base}/api/v1/activations?since=${since}&until=${until}&limit=1000`);
    expect(inWindow.total).toBe(window.length);
    expect(strip(inWindow.activations)).toEqual(window);
    expect((await get(`${run.base}/api/v1/activations?verdict=confirmed`)).total).toBe(expected.filter((a) => a.verdict === 'confirmed').length);
    // one by id, and a device's page of its newest 20
    const one = await (await fetch(`${run.base}/api/v1/activations/${report.activations[7].id}`)).json() as Record<string, unknown>;
    expect(strip([one as Listed['activations'][number]])).toEqual([report.activations[7]]);
    const detail = await (await fetch(`${run.base}/api/v1/devices/${device}`)).json() as { activations: Listed['activations'] };
    expect(strip(detail.activations)).toEqual(expected.filter((a) => a.device === device).slice(0, 20));
  });
});
