/** InfluxDB's refusals (4xx) in the log: one line per distinct reason, then every 100th, with a hint where one helps. */
import type { Logger } from '../../log.js';

/** Distinct reasons remembered; beyond it a new reason is logged every time (it cannot be counted). */
const MAX_REASONS = 1000;

export class RejectionLog {
  private readonly seen = new Map<string, number>();

  constructor(private readonly logger: Logger) {}

  /** Logs a refusal of `points` points, unless the same reason was logged just before (a bad setup must not flood the log). */
  log(status: number, reason: string, points: number): void {
    const key = `${status} ${reason.replace(/\d+/g, 'N')}`;
    const times = (this.seen.get(key) ?? 0) + 1;
    if (this.seen.size < MAX_REASONS || this.seen.has(key)) this.seen.set(key, times);
    if (times !== 1 && times % 100 !== 0) return;
    let hint = '';
    if (/beyond retention policy/.test(reason)) hint = ' (points older than the retention policy: replaying an old capture? keep them with --influx-raw-retention INF, or --influx-rp naming a policy of your own that keeps them)';
    else if (/database not found/.test(reason)) hint = ' (create it, or let earshot: --influx-setup true)';
    else if (status === 401 || status === 403) hint = ' (check --influx-token or --influx-username/EARSHOT_INFLUX_PASSWORD)';
    this.logger.error({ status, reason, points, times }, `InfluxDB refused a write with ${status}: ${reason}${hint}; ${points} points dropped`);
  }
}
