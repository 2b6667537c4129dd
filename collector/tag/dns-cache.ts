/**
 * Which name a device asked for when it got an address: DNS answers remembered per client, with CNAME
 * chains followed back to the name the device asked for, valid for the record's TTL plus a grace
 * period (devices keep connections, and reconnect, long after the TTL). Bounded; oldest out first.
 */
import type { DnsAnswer } from '../flow/payload.js';

/** What a flow's server address was called by DNS. */
export interface DnsName {
  /** The name the client asked for (start of the CNAME chain). */
  name: string;
  /** Every name from the asked one to the one holding the address. */
  chain: string[];
  expiresMs: number;
}

interface Alias {
  source: string;
  expiresMs: number;
}

/** A persisted entry: [key, name, chain, expiresMs]. */
export type DnsCacheRow = [string, string, string[], number];

const MAX_CHAIN = 8;

/** Client keys of MACs, by MAC. */
const macKeys = new Map<number, string>();

export interface DnsCacheStats {
  entries: number;
  evicted: number;
}

/** The bounded cache; `graceMs` extends every TTL. */
export class DnsCache {
  readonly stats: DnsCacheStats = { entries: 0, evicted: 0 };
  /** "client|address" and "*|address" -> name. */
  private readonly names = new Map<string, DnsName>();
  /** CNAME target (lower case) -> the name that pointed to it. */
  private readonly aliases = new Map<string, Alias>();

  constructor(private readonly maxEntries: number, private readonly graceMs: number) {}

  /** The key of a client: its MAC when known (stable across address changes), else its address. */
  static clientKey(mac: number, address: string): string {
    if (mac < 0) return `a${address}`;
    // asked for every flow and every answer: a home's few MACs are printed once
    let key = macKeys.get(mac);
    if (key === undefined) {
      key = `m${mac}`;
      if (macKeys.size < 4096) macKeys.set(mac, key);
    }
    return key;
  }

  /** Takes one answer; answers of one message arrive in order, CNAMEs before the addresses. */
  onAnswer(a: DnsAnswer, clientKey: string): void {
    const expiresMs = a.timeMs + a.ttl * 1000 + this.graceMs;
    if (a.type === 'CNAME') {
      this.setBounded(this.aliases, a.data.toLowerCase(), { source: a.name, expiresMs });
      return;
    }
    const chain = [a.name];
    let asked = a.name;
    for (let hops = 0; hops < MAX_CHAIN; hops++) {
      const alias = this.aliases.get(asked.toLowerCase());
      if (!alias || alias.expiresMs < a.timeMs || chain.includes(alias.source)) break;
      asked = alias.source;
      chain.unshift(asked);
    }
    const entry: DnsName = { name: asked, chain, expiresMs };
    this.setBounded(this.names, `${clientKey}|${a.data}`, entry);
    this.setBounded(this.names, `*|${a.data}`, entry);
    this.stats.entries = this.names.size;
  }

  /** The name `clientKey` asked for when it learned `address`, else any client's, if still valid at `nowMs`. */
  lookup(clientKey: string, address: string, nowMs: number): DnsName | null {
    const own = this.names.get(`${clientKey}|${address}`);
    if (own && own.expiresMs >= nowMs) return own;
    const any = this.names.get(`*|${address}`);
    return any && any.expiresMs >= nowMs ? any : null;
  }

  /** Entries for the state file. */
  rows(): DnsCacheRow[] {
    return [...this.names].map(([key, v]) => [key, v.name, v.chain, v.expiresMs]);
  }

  /** Restores entries from the state file (expired ones are dropped on lookup). */
  load(rows: readonly DnsCacheRow[]): void {
    for (const [key, name, chain, expiresMs] of rows) {
      if (typeof key === 'string' && typeof name === 'string' && Array.isArray(chain) && typeof expiresMs === 'number') {
        this.setBounded(this.names, key, { name, chain, expiresMs });
      }
    }
    this.stats.entries = this.names.size;
  }

  private setBounded<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key); // re-insert at the end: Map order is our age order
    map.set(key, value);
    while (map.size > this.maxEntries) {
      const oldest = map.keys().next().value as string;
      map.delete(oldest);
      this.stats.evicted++;
    }
  }
}
