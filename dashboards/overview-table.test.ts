/**
 * The Overview's assistant table as Grafana shows it (its three queries on a real InfluxDB, then the
 * panel's transformations: test/helpers/grafana-table.ts) when one assistant moved between two homes of
 * a fleet: a row per site and MAC, each with the activations it had there. The points are written here
 * by hand, so every expected cell is known without earshot. Joined on the MAC alone (the table before),
 * both rows showed the device's activations at both sites.
 */
import { expect, it } from 'vitest';
import { describeInflux, useInfluxd } from '../test/helpers/influxd.js';
import { readDashboard, runDashboard } from '../test/helpers/dashboard-queries.js';
import { records, tableFrame, transform, type Transformation } from '../test/helpers/grafana-table.js';

const DB = 'earshot';
const NOW_MS = Date.UTC(2026, 10, 20, 18, 0, 0);
const MOVED = 'a4:08:01:00:00:01';
const STAYED = 'f0:f0:a4:00:00:02';

describeInflux('Overview: the assistant table of a fleet (real InfluxDB)', () => {
  const server = useInfluxd();

  it('one assistant at two sites: a row at each, with that site\'s activations only', async () => {
    await server.query(null, `CREATE DATABASE "${DB}"`);
    // the long-term policy other panels of the dashboard read (empty here)
    await server.query(null, `CREATE RETENTION POLICY "earshot_long" ON "${DB}" DURATION 730d REPLICATION 1`);
    const t = (hoursAgo: number) => NOW_MS - hoursAgo * 3_600_000;
    const acts = [
      // site, device, verdict, bytes up, hours ago
      ['flat-a', MOVED, 'suspected', 1000, 20],
      ['flat-a', MOVED, 'confirmed', 2000, 19],
      ['flat-a', MOVED, 'confirmed', 4000, 18],
      ['house-b', MOVED, 'unverified', 8000, 5],
      ['house-b', MOVED, 'unverified', 16000, 4],
    ] as const;
    const lines = [
      ...['flat-a', 'house-b'].map((site) => `collector,site=${site} packets=1i ${t(1)}`),
      `traffic,site=flat-a,device=${MOVED},assistant=true,service=voice bytes_up=1i ${t(18)}`,
      `traffic,site=house-b,device=${MOVED},assistant=true,service=voice bytes_up=1i ${t(4)}`,
      `traffic,site=house-b,device=${STAYED},assistant=true,service=voice bytes_up=1i ${t(3)}`,
      `device,site=flat-a,device=${MOVED} name="Kitchen",vendor="Amazon",model="Echo Dot",ips="192.168.1.20",last_seen_ms=${t(17)}i,assistant=true ${t(17)}`,
      `device,site=house-b,device=${MOVED} name="Study",vendor="Amazon",model="Echo Dot",ips="10.0.0.7",last_seen_ms=${t(3)}i,assistant=true ${t(3)}`,
      `device,site=house-b,device=${STAYED} name="Hall",vendor="Amazon",model="Echo",ips="10.0.0.8",last_seen_ms=${t(2)}i,assistant=true ${t(2)}`,
      ...acts.map(([site, device, verdict, up, ago]) => `activation,site=${site},device=${device},verdict=${verdict} duration_s=3,bytes_up=${up}i,current=true ${t(ago)}`),
    ];
    const res = await fetch(`${server.url}/write?db=${DB}&precision=ms`, { method: 'POST', body: lines.join('\n') });
    expect(res.status, await res.text()).toBe(204);

    const dashboard = readDashboard('earshot-overview.json');
    const view = { range: { fromMs: NOW_MS - 24 * 3_600_000, toMs: NOW_MS }, minIntervalMs: 10_000, maxDataPoints: 1000, nowMs: NOW_MS };
    const ran = await runDashboard(server, DB, dashboard, view);
    const title = 'Assistants and their state';
    const panel = (dashboard.panels as Array<{ title: string; transformations?: Transformation[] }>).find((p) => p.title === title);
    expect(panel, title).toBeDefined();
    const frames = ran.filter((q) => q.panel?.title === title).map((q) => tableFrame(q.results[0] ?? []));
    expect(frames).toHaveLength(3);
    const shown = transform(frames, panel?.transformations ?? []);
    expect(shown).toHaveLength(1);
    const rows = records(shown[0]).map((r) => ({ site: r.Site, mac: r.MAC, name: r.Name, activations: r.Activations ?? 0, suspected: r.Suspected ?? 0, uploaded: r.Uploaded ?? 0 }));
    const want = (site: string, mac: string, name: string) => {
      const here = acts.filter(([s, d]) => s === site && d === mac);
      return { site, mac, name, activations: here.length, suspected: here.filter(([, , v]) => v === 'suspected').length, uploaded: here.reduce((n, [, , , up]) => n + up, 0) };
    };
    const bySite = (a: { site: unknown; mac: unknown }, b: { site: unknown; mac: unknown }) => `${String(a.site)}${String(a.mac)}`.localeCompare(`${String(b.site)}${String(b.mac)}`);
    expect(rows.sort(bySite)).toEqual([want('flat-a', MOVED, 'Kitchen'), want('house-b', MOVED, 'Study'), want('house-b', STAYED, 'Hall')].sort(bySite));
  }, 60_000);
});
