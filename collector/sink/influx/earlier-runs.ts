/**
 * An activation written again by a later run over the same packets (a replay once more, `collect --file`)
 * has the same id and time, but maybe another series: wake events added since give it another verdict, a
 * name configured since another `device_name`. The earlier run's point stays `current = true` in its own
 * series, and every query on `current = true` (the dashboards, the alert rules, the continuous query)
 * would count the activation once per run that saw it differently. When such a run's capture ends, the points
 * of its activations that InfluxDB holds in any other series are marked `current = false` (the same
 * series and time: InfluxDB merges the field into the point, no row is added).
 */
import type { InfluxClient, QuerySeries } from './client.js';
import { ident, literal, pointLine, seriesText } from './line-protocol.js';

/** What a run wrote for one activation: the series (device, name, verdict) and its time. */
export interface WrittenActivation {
  device: string;
  deviceName: string | null;
  verdict: string;
  timeMs: number;
}

/** Activations asked about per query: a bounded answer (each current point of the range is a row). */
const PER_QUERY = 2000;

/**
 * Finds the other runs' current points of `written` (by id, device and time) and emits a `current=false`
 * line into each. `from` is the measurement as InfluxQL names it (with its retention policy when one is
 * configured). Resolves with how many points were retracted; rejects when a query fails.
 */
export async function retractEarlierRuns(
  client: Pick<InfluxClient, 'query'>,
  options: { from: string; site: string },
  written: ReadonlyMap<string, WrittenActivation>,
  emit: (line: string | null) => void,
): Promise<number> {
  // by time, a few thousand a query: one or two queries for a capture's activations, whatever the devices
  const entries = [...written].sort((a, b) => a[1].timeMs - b[1].timeMs);
  let retracted = 0;
  for (let at = 0; at < entries.length; at += PER_QUERY) {
    const part = entries.slice(at, at + PER_QUERY);
    const first = Math.floor(part[0][1].timeMs);
    const last = Math.floor(part[part.length - 1][1].timeMs);
    const statement = `SELECT "id" FROM ${options.from} WHERE "site" = ${literal(options.site)} AND "current" = true AND time >= ${first}ms AND time <= ${last}ms GROUP BY "device", "device_name", "verdict"`;
    // compared with what the run wrote when the answer comes (the live map): a verdict that changed
    // meanwhile has already marked its old point, and its new one is never taken for another run's
    for (const series of await client.query(statement, { epoch: 'ms' })) retracted += retractSeries(series, written, options.site, emit);
  }
  return retracted;
}

function retractSeries(series: QuerySeries, mine: ReadonlyMap<string, WrittenActivation>, site: string, emit: (line: string | null) => void): number {
  const timeAt = series.columns.indexOf('time');
  const idAt = series.columns.indexOf('id');
  if (timeAt < 0 || idAt < 0) return 0;
  // InfluxDB answers an absent tag as ""
  const device = series.tags?.device ?? '';
  const deviceName = series.tags?.device_name || null;
  const verdict = series.tags?.verdict ?? '';
  let retracted = 0;
  for (const row of series.values ?? []) {
    const ours = mine.get(String(row[idAt]));
    const timeMs = Number(row[timeAt]);
    // another activation (an older version found it, another device), or this run's own point
    if (ours === undefined || ours.device !== device || timeMs !== Math.floor(ours.timeMs)) continue;
    // compared as written (escaped): a name InfluxDB stores changed (a control character shown as \x0a) is the same series
    const tags = { site, device, device_name: deviceName, verdict };
    if (seriesText('activation', tags) === seriesText('activation', { site, device, device_name: ours.deviceName, verdict: ours.verdict })) continue;
    emit(pointLine('activation', tags, { current: false }, timeMs));
    retracted++;
  }
  return retracted;
}

/** The `activation` measurement as InfluxQL names it: with the policy points are written to, when one is set. */
export function activationFrom(database: string, policy: string | null): string {
  return policy === null ? ident('activation') : `${ident(database)}.${ident(policy)}.${ident('activation')}`;
}
