/**
 * The generated Grafana files: committed and up to date, and wired together (data source uid, panel
 * ids the alert rules point at, the provider's folder). What the queries return is checked against a
 * real InfluxDB in queries.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../test/helpers/shared.js';
import { DATASOURCE, UID } from './grafana.js';
import { ALERTING_FILE, DASHBOARDS, DASHBOARDS_DIR, generatedFiles } from './index.js';

interface Target { refId: string; datasource?: { type: string; uid: string }; query?: string; rawQuery?: boolean; resultFormat?: string }
interface Panel { id: number; type: string; title: string; targets?: Target[]; gridPos: { x: number; y: number; w: number; h: number } }
interface DashboardJson {
  uid: string;
  title: string;
  tags: string[];
  panels: Panel[];
  templating: { list?: Array<{ name: string; type: string; query: string; datasource: { uid: string } }> };
  annotations: { list?: Array<{ name: string; query: string; datasource: { uid: string }; target: { query: string } }> };
}

const read = (path: string) => readFileSync(join(PROJECT_ROOT, path), 'utf8');
const committed = (): DashboardJson[] => DASHBOARDS.map(({ file }) => JSON.parse(read(`${DASHBOARDS_DIR}/${file}`)) as DashboardJson);

describe('generated Grafana files', () => {
  it('are up to date with dashboards/*.ts (run npm run dashboards)', () => {
    for (const { path, text } of generatedFiles()) {
      expect(read(path), `${path} is stale: run npm run dashboards`).toBe(text);
    }
  });

  it('have unique dashboard uids and unique, non-overlapping panels', () => {
    const dashboards = committed();
    expect(dashboards.map((d) => d.uid).sort()).toEqual(Object.values(UID).sort());
    for (const d of dashboards) {
      expect(d.tags).toContain('earshot');
      const ids = d.panels.map((p) => p.id);
      expect(new Set(ids).size, d.uid).toBe(ids.length);
      const cells = new Set<string>();
      for (const p of d.panels) {
        expect(p.gridPos.x + p.gridPos.w, `${d.uid} panel ${p.id}`).toBeLessThanOrEqual(24);
        for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
          for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
            const cell = `${x},${y}`;
            expect(cells.has(cell), `${d.uid} panel ${p.id} overlaps at ${cell}`).toBe(false);
            cells.add(cell);
          }
        }
      }
    }
  });

  it('query the earshot data source in raw InfluxQL, filtered by the time range, variables only inside regexes', () => {
    let panelQueries = 0;
    for (const d of committed()) {
      const variables = (d.templating.list ?? []).map((v) => v.name);
      const queries: string[] = [];
      for (const p of d.panels) {
        expect(p.targets?.length, `${d.uid} panel ${p.id} has no query`).toBeGreaterThan(0);
        for (const t of p.targets ?? []) {
          expect(t.datasource).toEqual(DATASOURCE);
          expect(t.rawQuery).toBe(true);
          expect(['time_series', 'table']).toContain(t.resultFormat);
          queries.push(t.query as string);
          panelQueries++;
        }
      }
      for (const a of d.annotations.list ?? []) {
        expect(a.datasource).toEqual(DATASOURCE);
        expect(a.target.query).toBe(a.query);
        queries.push(a.query);
      }
      for (const v of d.templating.list ?? []) expect(v.datasource.uid).toBe(DATASOURCE.uid);
      for (const q of queries) {
        expect(q).toMatch(/^SELECT .* FROM .* WHERE (.* AND )?\$timeFilter( |$)/);
        for (const name of q.match(/\$(?!timeFilter|__interval)\w+/g) ?? []) {
          expect(variables, `${d.uid}: ${q}`).toContain(name.slice(1));
          // Grafana regex-escapes values only inside a regex; earshot's values (MACs) need it there
          expect(q, `${name} outside a regex`).toContain(`=~ /^${name}$/`);
        }
      }
    }
    expect(panelQueries).toBeGreaterThanOrEqual(10);
  });

  it('provision the data source, the dashboards and alert rules that point at existing panels', () => {
    const datasources = parse(read('deploy/grafana/provisioning/datasources/earshot.yaml'));
    expect(datasources.apiVersion).toBe(1);
    const [ds] = datasources.datasources;
    expect(ds).toMatchObject({ uid: DATASOURCE.uid, type: 'influxdb', url: 'http://localhost:8086', database: 'earshot', jsonData: { version: 'InfluxQL', dbName: 'earshot' } });

    const providers = parse(read('deploy/grafana/provisioning/dashboards/earshot.yaml'));
    expect(providers.apiVersion).toBe(1);
    expect(providers.providers[0]).toMatchObject({ type: 'file', folder: 'earshot', options: { path: expect.stringMatching(/^\//) } });

    const alerting = parse(read(ALERTING_FILE));
    expect(alerting.apiVersion).toBe(1);
    const rules = alerting.groups.flatMap((g: { rules: unknown[] }) => g.rules) as Array<{ uid: string; condition: string; dashboardUid: string; panelId: number; data: Array<{ refId: string; datasourceUid: string; model: { query?: string } }> }>;
    expect(rules.map((r) => r.uid)).toEqual(['earshot-suspected-activation', 'earshot-collector-silent']);
    const dashboards = new Map(committed().map((d) => [d.uid, d]));
    for (const rule of rules) {
      expect(rule.data.map((q) => q.refId)).toContain(rule.condition);
      expect(dashboards.get(rule.dashboardUid)?.panels.map((p) => p.id)).toContain(rule.panelId);
      const influx = rule.data.filter((q) => q.datasourceUid === DATASOURCE.uid);
      expect(influx).toHaveLength(1);
      expect(influx[0].model.query).toMatch(/\$timeFilter/);
    }
  });
});
