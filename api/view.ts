/**
 * The API's read model: the last answer of each part of the run's view (collector/view.ts), kept for
 * `maxAgeMs`. Requests read it; a part older than that is asked for again, once for all the requests
 * waiting on it. So a flood of requests costs the pipeline at most one part per `maxAgeMs`, whatever
 * the request rate, and the pipeline never waits for the API: it answers between packets, when asked.
 * Commands (labels, wake events, presence) go to the run and are answered once it saved them; after one,
 * every part is asked for again.
 * Activations, flows and one device with its endpoints are asked for a page at a time (filtered where
 * they live: only the page crosses the threads), each distinct query kept as a part is, at most
 * MAX_CACHED_QUERIES of them. Distinct
 * queries the cache cannot answer go to the run at most QUERIES_PER_WINDOW per max age; more wait for the
 * next window (a flood of distinct queries, each a scan of up to 10,000 activations, kept the pipeline's
 * thread busy at normal priority: the isolation held only for identical requests).
 */
import type { ApiFlow } from '../collector/sink/activity.js';
import type { ActivationPage, ActivationQuery, DeviceDetail, FlowQuery, ViewCommand, ViewCommandResult, ViewPart, ViewParts, ViewSource } from '../collector/view.js';

/** Where the parts come from: the run on this thread, or the pipeline's thread (cli/pipeline-thread.ts). */
export interface ViewProvider {
  part<K extends ViewPart>(name: K): Promise<ViewParts[K]>;
  activations(query: ActivationQuery): Promise<ActivationPage>;
  flows(query: FlowQuery): Promise<ApiFlow[]>;
  device(mac: string): Promise<DeviceDetail | null>;
  command(command: ViewCommand): Promise<ViewCommandResult>;
}

/** A provider over a run on this thread. */
export function localProvider(source: ViewSource): ViewProvider {
  return {
    part: async (name) => source.part(name),
    activations: async (query) => source.activations(query),
    flows: async (query) => source.flows(query),
    device: async (mac) => source.device(mac),
    command: async (command) => source.command(command),
  };
}

/** How long the API keeps a part of the view before asking the run again. */
export const VIEW_MAX_AGE_MS = 250;

/** Distinct queries kept at once (a client paging through the activations asks one per page). */
export const MAX_CACHED_QUERIES = 64;

/** Queries the run is asked per max age (a window), however many distinct ones come. */
export const QUERIES_PER_WINDOW = 16;

interface Cached<T> {
  atMs: number;
  value: T;
}

export class RunView {
  private readonly cache = new Map<ViewPart, Cached<unknown>>();
  private readonly pending = new Map<ViewPart, Promise<unknown>>();
  /** Answers to queries by their key ("a|..." activations, "f|..." flows, "d|MAC" one device). */
  private readonly queries = new Map<string, Cached<unknown>>();
  private readonly pendingQueries = new Map<string, Promise<unknown>>();
  /** Bumped by invalidate(): an answer asked for before it is not kept. */
  private generation = 0;
  /** The current window of queries: when it started, and how many it asked the run. */
  private windowStartMs = 0;
  private windowQueries = 0;

  constructor(private readonly provider: ViewProvider, private readonly maxAgeMs: number) {}

  async get<K extends ViewPart>(name: K): Promise<ViewParts[K]> {
    const cached = this.cache.get(name);
    if (cached !== undefined && Date.now() - cached.atMs < this.maxAgeMs) return cached.value as ViewParts[K];
    const inFlight = this.pending.get(name);
    if (inFlight !== undefined) return inFlight as Promise<ViewParts[K]>;
    const generation = this.generation;
    const asked = this.provider.part(name).then((value) => {
      if (generation === this.generation) this.cache.set(name, { atMs: Date.now(), value });
      return value;
    }).finally(() => {
      if (this.pending.get(name) === asked) this.pending.delete(name);
    });
    this.pending.set(name, asked);
    return asked;
  }

  /** A page of activations: the same query within the max age is answered from the last answer. */
  activations(query: ActivationQuery): Promise<ActivationPage> {
    // String() keeps ±Infinity and NaN apart (JSON would make them all null)
    const key = ['a', query.sinceMs, query.untilMs, query.device, query.verdict, query.id, query.offset, query.limit].map(String).join('|');
    return this.query(key, () => this.provider.activations(query));
  }

  /** A page of flows: the same query within the max age is answered from the last answer. */
  flows(query: FlowQuery): Promise<ApiFlow[]> {
    return this.query(['f', query.device, query.limit].map(String).join('|'), () => this.provider.flows(query));
  }

  /** One device with its endpoints (canonical MAC text): the same device within the max age is answered from the last answer. */
  device(mac: string): Promise<DeviceDetail | null> {
    return this.query(`d|${mac}`, () => this.provider.device(mac));
  }

  private async query<T>(key: string, ask: () => Promise<T>): Promise<T> {
    const cached = this.queries.get(key);
    if (cached !== undefined && Date.now() - cached.atMs < this.maxAgeMs) return cached.value as T;
    const inFlight = this.pendingQueries.get(key);
    if (inFlight !== undefined) return inFlight as Promise<T>;
    const generation = this.generation;
    const asked = this.querySlot().then(ask).then((value) => {
      if (generation === this.generation && this.maxAgeMs > 0) {
        this.queries.delete(key);
        // the oldest query goes first (a Map iterates in insertion order)
        if (this.queries.size >= MAX_CACHED_QUERIES) this.queries.delete(this.queries.keys().next().value as string);
        this.queries.set(key, { atMs: Date.now(), value });
      }
      return value;
    }).finally(() => {
      if (this.pendingQueries.get(key) === asked) this.pendingQueries.delete(key);
    });
    this.pendingQueries.set(key, asked);
    return asked;
  }

  /** Resolves when this window (or a later one) has room for one more query to the run. */
  private async querySlot(): Promise<void> {
    if (this.maxAgeMs <= 0) return;
    for (;;) {
      const now = Date.now();
      if (now - this.windowStartMs >= this.maxAgeMs) {
        this.windowStartMs = now;
        this.windowQueries = 0;
      }
      if (this.windowQueries < QUERIES_PER_WINDOW) {
        this.windowQueries++;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, this.windowStartMs + this.maxAgeMs - now));
    }
  }

  /** Forget every part: the next request asks again (after a command, or when the capture ended). */
  invalidate(): void {
    this.generation++;
    this.cache.clear();
    this.pending.clear();
    this.queries.clear();
    this.pendingQueries.clear();
  }

  async command(command: ViewCommand): Promise<ViewCommandResult> {
    try {
      return await this.provider.command(command);
    } finally {
      this.invalidate();
    }
  }
}
