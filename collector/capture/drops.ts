/**
 * One warning line when a live source starts dropping packets, then at most one a minute while it goes
 * on: drops are counted in /metrics and /health, but a person reading the log should see them too,
 * without a line per poll.
 */

/** Watches a source's cumulative drop counters. */
export interface DropWatch {
  /** The counters as they stand now (cumulative since the capture began). */
  update(kernelDrops: number, interfaceDrops: number, nowMs?: number): void;
  /** When the counters last went up (wall time, ms), or null: drops now, not at some time since the start. */
  readonly lastDropMs: number | null;
}

/** Least time between two drop warnings. */
export const DROP_WARNING_INTERVAL_MS = 60_000;

/** Warns through `warn` about the drops of the source named `name` (rate-limited). */
export function buildDropWatch(name: string, warn: ((message: string) => void) | undefined, intervalMs = DROP_WARNING_INTERVAL_MS): DropWatch {
  let warnedTotal = 0;
  let warnedAtMs = -Infinity;
  let seenTotal = 0;
  let lastDropMs: number | null = null;
  return {
    get lastDropMs() {
      return lastDropMs;
    },
    update(kernelDrops, interfaceDrops, nowMs = Date.now()) {
      const total = kernelDrops + interfaceDrops;
      if (total > seenTotal) lastDropMs = nowMs;
      seenTotal = total;
      if (total <= warnedTotal || nowMs - warnedAtMs < intervalMs || warn === undefined) return;
      const since = Number.isFinite(warnedAtMs) ? ` in the last ${Math.round((nowMs - warnedAtMs) / 1000)} s` : '';
      warn(`${name}: ${total - warnedTotal} packets dropped${since} (${total} since capture began; kernel ${kernelDrops}, interface ${interfaceDrops}): ` +
        'the capture does not keep up; a --filter (e.g. "not port 22") or a less busy machine helps');
      warnedTotal = total;
      warnedAtMs = nowMs;
    },
  };
}
