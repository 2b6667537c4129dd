import { setFlagsFromString } from 'node:v8';

/** V8 heap sizes: the process's (set by cli/start.ts) and where the pipeline's thread differs (cli/pipeline-thread.ts). */

/**
 * The young generation's semi-spaces: 8 MB at most. Node 24's V8 lets each grow to 32 MB where Node 20's
 * stopped at 16, and a replay of the bench capture peaked at 187-252 MB on Node 24 against 142 MB on Node
 * 20; with 8 MB, 135-141 MB and 123-125 MB, no slower (5 interleaved runs each; README, Performance).
 * V8 sizes a heap when it makes it: set at run time (cli/start.ts), the flag holds for threads made after,
 * not for the main thread, which gets it from the command line (`node --max-semi-space-size=8`, as the
 * installed `earshot` command and the container run it: deploy/install.sh, deploy/Dockerfile). start.ts
 * sets it all the same so that V8's flags, and with them the code cache's check, are the same with or
 * without it.
 *
 * The pipeline's thread has a smaller young generation of its own (PIPELINE_YOUNG_GENERATION_MB,
 * cli/pipeline-thread.ts), which the flag would override: V8 takes a flag over a worker's
 * resourceLimits, and flags are the process's. So the flag is unset while that thread is made.
 */
export const MAX_SEMI_SPACE_MB = 8;

/**
 * V8's heap sizing for a long run (`collect`, live or paced), switched by the packet rate. Quiet (a
 * home's traffic: tens to a few thousand packets/s), V8 sizes its heaps for memory (`--optimize-for-size`:
 * its conservative growing mode, where an old generation grows 2 MB past what its last full collection
 * kept before the next one instead of 8 MB or more, and a young generation kept small; V8 keeps the pages
 * it grew into, so that room is RSS). Under load it sizes them for speed, as V8 does by default: with the
 * flag a flood of new flows took 1.35x the time (1M one-datagram flows through `collect --file`: 12.1 s
 * against 9.0 s, 14x the scavenges) and the bench capture's replay 1.11x.
 * 24 h of a home (`node bench/soak.mjs`, 2026-12-06, interleaved): end/start 1.049-1.074 (7 runs, the flag
 * always on or switched by this) and peaks of 109-120 MB, against 1.077-1.100 (3 runs; 1.12-1.15 the day
 * before) and 127-130 MB without.
 * A run at full speed (`replay`, `collect --file` without `--realtime-speed`) keeps V8's default. The
 * flag is the process's (both threads'); V8 reads it at each collection, so it takes effect at the next.
 * Node documents flags changed after start as unsupported ("may result in unpredictable behavior"): this
 * one only steers the heap's sizing and the GC's choices, and was switched while running through the
 * soaks, the live bench (to speed within the first second at 50k-200k packets/s, on both sources' threads)
 * and the test suite without a fault; a Node whose V8 drops it fails test/heap-sizing.test.ts.
 */
export const QUIET_PACKETS_PER_S = 20_000;
/** Seconds in a row below QUIET_PACKETS_PER_S before memory comes first again (a burst's pauses are not quiet). */
export const QUIET_SECONDS = 10;

export type HeapMode = 'memory' | 'speed';

/**
 * The switch: `start()` sizes for memory; `sample(packets, nowMs)` with the run's packet count, about once
 * a second, switches to speed at once when the rate since the last sample passes QUIET_PACKETS_PER_S and
 * back after QUIET_SECONDS quiet seconds. Each returns the mode it switched to, or null when unchanged.
 */
export function heapSizing(setFlags: (flags: string) => void = setFlagsFromString) {
  let mode: HeapMode | null = null;
  let lastPackets = 0;
  let lastMs = 0;
  let quietMs = 0;
  const to = (next: HeapMode): HeapMode | null => {
    if (mode === next) return null;
    setFlags(next === 'memory' ? '--optimize-for-size' : '--no-optimize-for-size');
    mode = next;
    return next;
  };
  return {
    get mode(): HeapMode | null {
      return mode;
    },
    start(packets: number, nowMs: number): HeapMode | null {
      lastPackets = packets;
      lastMs = nowMs;
      quietMs = 0;
      return to('memory');
    },
    sample(packets: number, nowMs: number): HeapMode | null {
      const ms = nowMs - lastMs;
      if (!(ms > 0)) return null;
      const rate = ((packets - lastPackets) * 1000) / ms;
      lastPackets = packets;
      lastMs = nowMs;
      if (rate > QUIET_PACKETS_PER_S) {
        quietMs = 0;
        return to('speed');
      }
      quietMs += ms;
      return quietMs >= QUIET_SECONDS * 1000 ? to('memory') : null;
    },
    /** Back to V8's default (the run ended: the report is written at full speed). */
    stop(): HeapMode | null {
      return mode === null ? null : to('speed');
    },
  };
}
