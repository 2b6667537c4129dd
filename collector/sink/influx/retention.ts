/**
 * A replay stamps points with the packets' own times, and InfluxDB drops every point older than the
 * retention policy's duration ("partial write: points beyond retention policy dropped=N"). A replay of
 * an old capture into the raw policy earshot sets up would run to its end and then exit 3 with nothing
 * written; this check refuses it before the capture is read, naming the flag that makes it work.
 */
import type { Config } from '../../config.js';
import { earshotError } from '../../errors.js';
import { setupEnabled, writePolicy } from './setup.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of an InfluxQL duration as the config takes it ('30d', '1h30m'); INF is Infinity. */
export function durationMs(text: string): number {
  if (text === 'INF') return Infinity;
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([wdhms])/g)) ms += Number(n) * UNIT_MS[unit];
  return ms;
}

/**
 * Throws a usage error when a replay whose first packet is at `firstPacketMs` would write into the raw
 * policy that earshot's setup gives `influx.rawRetention`, and that policy keeps nothing that old. Only
 * the policy earshot sets up is known here; one the user manages (`--influx-rp`, `--influx-setup false`)
 * is theirs, and a refusal still shows in the log with InfluxDB's reason.
 */
export function refuseReplayBeyondRetention(influx: Readonly<Config['influx']>, firstPacketMs: number, nowMs = Date.now()): void {
  if (influx.url === null || !setupEnabled(influx) || writePolicy(influx) !== influx.rawPolicy) return;
  const keepMs = durationMs(influx.rawRetention);
  if (firstPacketMs >= nowMs - keepMs) return;
  const start = new Date(firstPacketMs).toISOString().slice(0, 16).replace('T', ' ');
  throw earshotError('EARSHOT_ERR_USAGE',
    `replay: the capture starts ${start} UTC, but InfluxDB keeps raw points ${influx.rawRetention} (influx.rawRetention) and would drop every older one; ` +
    `add --influx-raw-retention INF to keep them in the retention policy "${influx.rawPolicy}" of database "${influx.database}", where the dashboards read them`);
}
