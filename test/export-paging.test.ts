/**
 * `earshot export` paging and boundaries against a real influxd, with points written here by hand in
 * line protocol (the shape collector/sink/influx/index.ts writes: activationLine, callLine, the
 * `current=false` retraction, endpoint sums), so every expected row is known without earshot: 4,500
 * activations on one UTC day (more than two pages of 2,000), a few weeks and a month later, points
 * exactly at --since (in) and --until (out); verdict changes; 2,100 calls; 1,200 endpoint series on a
 * day (more than two pages of 500 series) summed per 1d, 6h and 1h here, also from inside an interval.
 */
import { createHmac } from 'node:crypto';
import { expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { HttpProxy } from './helpers/http-proxy.js';
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
    // 1817 and 3634 too: their two points (same time) are rows 1999/2000 and 3999/4000 of the day, across pages
    for (const i of acts.keys()) {
      if (i % 10 !== 0 && i !== 1817 && i !== 3634) continue;
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
  it('calls: 2,100 on one day (two pages) and one a month later, each once in order with its values; the call at --until is out', async () => {
    const calls = [];
    for (let i = 0; i < 2100; i++) calls.push({ ms: Date.parse('2026-03-12T00:00:00Z') + i * 41_000, i });
    calls.push({ ms: Date.parse('2026-04-30T08:00:00Z'), i: 2100 });
    const outside = [{ ms: UNTIL, i: 2101 }, { ms: SINCE - 1, i: 2102 }];
    const line = ({ ms, i }: { ms: number; i: number }) => `call,device=${MACS[i % 3]},site=${SITES[i % 2]} id="call-${idOf(MACS[i % 3], ms)}",duration_s=${60 + i / 8},bytes_up=${9000 + i}i,` +
      `bytes_down=${12_000 + i}i,packets_up=${100 + i}i,packets_down=${110 + i}i,stun_packets=4i,media_seconds=${50 + (i % 9)}i,peers=${1 + (i % 3)}i,end_ms=${ms + 60_000 + i * 125}i ${ms}`;
    await write([...calls, ...outside].map(line));
    const r = await exportCli(['--since', '2026-03-10', '--until', '2026-05-02T12:00:00Z', '--what', 'calls']);
    expect(r.code, r.stderr).toBe(0);
    const rows = csvRows(r.stdout);
    expect(rows.map((x) => ({ ...x, time: Date.parse(x.time) }))).toEqual(calls.map(({ ms, i }) => ({
      time: ms, site: SITES[i % 2], id: pseudoId(MACS[i % 3], ms, 'call-'), device: hmac(MACS[i % 3]), duration_s: String(60 + i / 8), end_ms: String(ms + 60_000 + i * 125),
      bytes_up: String(9000 + i), bytes_down: String(12_000 + i), packets_up: String(100 + i), packets_down: String(110 + i), media_seconds: String(50 + (i % 9)), peers: String(1 + (i % 3)),
    })));
  }, 60_000);

  it('endpoints: 1,200 series on a day (three pages of series) summed per 1d, 6h and 1h as computed here; --interval 5h or 90m refused', async () => {
    const day = Date.parse('2026-03-11T00:00:00Z');
    const orgs = Array.from({ length: 400 }, (_, k) => `Org${k}`);
    const lines: string[] = [];
    const points: Array<{ ms: number; site: string; mac: string; org: string; up: number; down: number; flows: number }> = [];
    for (const [m, mac] of MACS.entries()) {
      for (const [k, org] of orgs.entries()) {
        // each series: points in several hours of the day (two in one hour), one the next day at 00:00
        for (const h of [0, 0.5, 5.99, 6, 13, 23.99]) points.push({ ms: day + Math.round(h * 3_600_000), site: SITES[m % 2], mac, org, up: k + m + Math.round(h * 10), down: 3 * k + 1, flows: 1 + (k % 4) });
      }
    }
    points.push({ ms: day + 86_400_000, site: 'h01', mac: MACS[0], org: 'Org0', up: 5, down: 6, flows: 1 });
    // the first device was renamed at 06:00 (a DHCP name learned later): without --device-names its rows
    // are whole intervals still, one per key (two rows of the same key each held a part, found by an audit)
    const nameOf = (p: { mac: string; ms: number }) => (p.mac === MACS[0] ? `,device_name=${p.ms - day < 21_600_000 ? 'Kitchen' : 'Kitchen\\ Echo'}` : '');
    for (const p of points) lines.push(`endpoint,category=cloud,device=${p.mac}${nameOf(p)},org=${p.org},party=third,service=api,site=${p.site} bytes_up=${p.up}i,bytes_down=${p.down}i,flows=${p.flows}i ${p.ms}`);
    await write(lines);
    for (const [interval, ms] of [['1d', 86_400_000], ['6h', 21_600_000], ['1h', 3_600_000]] as const) {
      const expected = new Map<string, { up: number; down: number; flows: number }>();
      for (const p of points) {
        const k = `${Math.floor(p.ms / ms) * ms}|${p.site}|${hmac(p.mac)}|${p.org}`;
        const e = expected.get(k) ?? { up: 0, down: 0, flows: 0 };
        expected.set(k, { up: e.up + p.up, down: e.down + p.down, flows: e.flows + p.flows });
      }
      const r = await exportCli(['--since', '2026-03-11', '--until', '2026-03-13', '--what', 'endpoints', '--interval', interval]);
      expect(r.code, r.stderr).toBe(0);
      const rows = csvRows(r.stdout);
      const got = rows.map((x) => [`${Date.parse(x.time)}|${x.site}|${x.device}|${x.org}`, { up: Number(x.bytes_up), down: Number(x.bytes_down), flows: Number(x.flows) }] as const);
      expect(new Set(got.map(([k]) => k)).size, interval).toBe(got.length);
      expect(Object.fromEntries(got), interval).toEqual(Object.fromEntries(expected));
      for (const x of rows) expect([x.category, x.service, x.party]).toEqual(['cloud', 'api', 'third']);
    }
    // a --since or --until inside an interval: rows are still whole intervals, labelled with their start
    // (before, the first row held 05:30-06:00 under the label 00:00, and the last row 12:00-13:30 under 12:00)
    for (const [since, until, interval, ms, from, to] of [
      ['2026-03-11T05:30:00Z', '2026-03-11T13:30:00Z', '6h', 21_600_000, '2026-03-11T00:00:00.000Z', '2026-03-11T18:00:00.000Z'],
      ['2026-03-11T12:00:00Z', '2026-03-11T23:00:00Z', '1d', 86_400_000, '2026-03-11T00:00:00.000Z', '2026-03-12T00:00:00.000Z'],
    ] as const) {
      const expected = new Map<string, { up: number; down: number; flows: number }>();
      for (const p of points.filter((q) => q.ms >= Date.parse(from) && q.ms < Date.parse(to))) {
        const k = `${Math.floor(p.ms / ms) * ms}|${p.site}|${hmac(p.mac)}|${p.org}`;
        const e = expected.get(k) ?? { up: 0, down: 0, flows: 0 };
        expected.set(k, { up: e.up + p.up, down: e.down + p.down, flows: e.flows + p.flows });
      }
      const r = await exportCli(['--since', since, '--until', until, '--what', 'endpoints', '--interval', interval]);
      expect(r.code, r.stderr).toBe(0);
      const got = csvRows(r.stdout).map((x) => [`${Date.parse(x.time)}|${x.site}|${x.device}|${x.org}`, { up: Number(x.bytes_up), down: Number(x.bytes_down), flows: Number(x.flows) }] as const);
      expect(Object.fromEntries(got), `${since} ${interval}`).toEqual(Object.fromEntries(expected));
      expect(r.stderr).toContain(`whole ${interval} intervals from ${from} to ${to}`);
    }
    for (const bad of ['5h', '90m', '0h', '2d']) {
      const r = await exportCli(['--since', '2026-03-11', '--what', 'endpoints', '--interval', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr.trim().split('\n'), bad).toHaveLength(1);
      expect(r.stderr).toContain(`--interval: "${bad}" is not 1d or hours dividing a day`);
    }
  }, 60_000);
  it('seven years with four days of calls: empty days cost no query (a few queries, not one per day), no page over 2,000 rows, every call out', async () => {
    const proxy = await HttpProxy.start(server.url);
    try {
      const r = await runCli(['export', '--influx-url', proxy.url, '--influx-db', DB, '--since', '2020-01-01', '--until', '2027-01-01', '--what', 'calls', '--format', 'jsonl'],
        { env: { EARSHOT_EXPORT_SALT: SALT } });
      expect(r.code, r.stderr).toBe(0);
      // the calls written above: 2,100 on 2026-03-12, one on 04-30, and the two outside the first test's range
      const ids = r.stdout.trimEnd().split('\n').map((l) => String((JSON.parse(l) as { id: string }).id));
      expect(ids).toHaveLength(2103);
      expect(new Set(ids).size).toBe(2103);
      const queries = proxy.requests.filter((q) => q.url.startsWith('/query')).map((q) => new URLSearchParams(q.body.toString()).get('q') ?? '');
      // 2,557 days: one query each would be 2,557; four days with calls need a probe and a page or two each
      expect(queries.length).toBeLessThan(20);
      for (const q of queries) expect(Number(/ LIMIT (\d+)/.exec(q)?.[1] ?? Infinity), q).toBeLessThanOrEqual(2000);
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
