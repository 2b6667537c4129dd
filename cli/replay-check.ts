/** Checks a replay must pass before its capture is read. */
import { firstPacketTimeMs } from '../collector/capture/peek.js';
import { influxTarget } from '../collector/sink/influx/client.js';
import { refuseReplayBeyondRetention } from '../collector/sink/influx/retention.js';
import type { ParsedCommand } from './args.js';

/**
 * Refuses (a usage error) a replay into InfluxDB whose capture is older than the raw retention: every
 * point would be dropped. Stdin cannot be looked at twice: there InfluxDB's refusal is logged instead.
 */
export async function checkReplay(parsed: ParsedCommand): Promise<void> {
  const path = parsed.positionals[0];
  const influx = parsed.config.influx;
  if (path === undefined || path === '-' || influx.url === null) return;
  // a URL that is none is the first thing to say: the retention advice would send the user to fix the wrong flag
  influxTarget(influx);
  let first: number | null;
  try {
    first = await firstPacketTimeMs(path);
  } catch {
    // a file that cannot be read: the replay says so in its own words
    return;
  }
  if (first !== null) refuseReplayBeyondRetention(influx, first);
}
