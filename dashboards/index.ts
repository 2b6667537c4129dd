/**
 * Every earshot dashboard, as built from TypeScript, and the files generated from them for Grafana:
 * the dashboards' JSON for the file provider and the alert rules' YAML (committed; a test fails when
 * they are stale).
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { renderAlerting } from './alerts.js';
import { collectorDashboard } from './collector.js';
import { deviceDashboard } from './device.js';
import { fleetDashboard } from './fleet.js';
import { overviewDashboard } from './overview.js';
import { privacyDashboard } from './privacy.js';

/** Where the dashboards' JSON lives, relative to the project root. */
export const DASHBOARDS_DIR = 'deploy/grafana/dashboards';
/** The alert rules' provisioning file, relative to the project root. */
export const ALERTING_FILE = 'deploy/grafana/provisioning/alerting/earshot.yaml';

export interface DashboardFile {
  /** File name under DASHBOARDS_DIR. */
  file: string;
  build: () => Dashboard;
}

/** The dashboards, each with its file name. */
export const DASHBOARDS: readonly DashboardFile[] = [
  { file: 'earshot-overview.json', build: overviewDashboard },
  { file: 'earshot-device.json', build: deviceDashboard },
  { file: 'earshot-collector.json', build: collectorDashboard },
  { file: 'earshot-privacy.json', build: privacyDashboard },
  { file: 'earshot-fleet.json', build: fleetDashboard },
];

/** The JSON text Grafana reads: two-space indented, one trailing newline, no functions. */
export function renderDashboard(dashboard: Dashboard): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}

/** Every generated file: its path relative to the project root and its text. */
export function generatedFiles(): Array<{ path: string; text: string }> {
  return [
    ...DASHBOARDS.map(({ file, build }) => ({ path: `${DASHBOARDS_DIR}/${file}`, text: renderDashboard(build()) })),
    { path: ALERTING_FILE, text: renderAlerting() },
  ];
}
