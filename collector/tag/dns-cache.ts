/**
 * Which name a device asked for when it got an address: DNS answers remembered per client, with CNAME
 * chains followed back to the name the device asked for, valid for the record's TTL plus a grace
 * period (devices keep connections, and reconnect, long after the TTL). Bounded; oldest out first, with
 * a second chance for a name answered again (collector/clock-map.ts).
 */
import { ClockMap } from '../clock-map.js';
import type { DnsAnswer } from '../flow/payload.js';

/** What a flow's server address was called by DNS. */
export interface DnsName {
  /** The name the client asked for (start of the CNAME chain). */
  name: string;
  /** Every name from the asked one to the one holding the address. */
  chain: string[];
  expiresMs: number;
}

/** A kept name: `touched` when an answer refreshed it since it was inserted or last moved (ClockMap). */
interface NameEntry extends DnsName {
  touched: boolean;
}

interface Alias {
  source: string;
  expiresMs: number;
  touched: boolean;
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
  /** "client|address" and "*|address" -> name. */
  private readonly names: ClockMap<NameEntry>;
  /** CNAME target (lower case) -> the name that pointed to it. */
  private readonly aliases: ClockMap<Alias>;

  constructor(maxEntries: number, private readonly graceMs: number) {
    this.names = new ClockMap(maxEntries);
    this.aliases = new ClockMap(maxEntries);
  }

  /** Names kept, and entries (names and CNAMEs) evicted so far: read from the maps when asked. */
  get stats(): DnsCacheStats {
    return { entries: this.names.size, evicted: this.names.evicted + this.aliases.evicted };
  }

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

  /**
   * Takes one answer; answers of one message arrive in order, CNAMEs before the addresses. An answer
   * that repeats what is kept (a home asks for the same names all day) only moves the expiry and marks
   * the entry for a second chance at eviction (ClockMap): no new entry, no reordering. A delete and
   * re-insert per answer left holes in a Map, which made V8 rebuild its table every few hundred
   * answers, and made each eviction walk the holes (collector/clock-map.ts).
   */
  onAnswer(a: DnsAnswer, clientKey: string): void {
    const expiresMs = a.timeMs + a.ttl * 1000 + this.graceMs;
    if (a.type === 'CNAME') {
      const target = a.data.toLowerCase();
      const kept = this.aliases.get(target);
      if (kept !== undefined && kept.source === a.name) {
        kept.expiresMs = expiresMs;
        kept.touched = true;
      } else {
        this.aliases.set(target, { source: a.name, expiresMs, touched: kept !== undefined });
      }
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
    this.keep(`${clientKey}|${a.data}`, asked, chain, expiresMs);
    this.keep(`*|${a.data}`, asked, chain, expiresMs);
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
    return Array.from(this.names.entries(), ([key, v]): DnsCacheRow => [key, v.name, v.chain, v.expiresMs]);
  }

  /** Restores entries from the state file (expired ones are dropped on lookup). */
  load(rows: readonly DnsCacheRow[]): void {
    for (const [key, name, chain, expiresMs] of rows) {
      if (typeof key === 'string' && typeof name === 'string' && Array.isArray(chain) && typeof expiresMs === 'number') {
        this.names.set(key, { name, chain, expiresMs, touched: false });
      }
    }
  }

  /** One key's entry (each key has its own: a refresh of one must not move another's expiry). */
  private keep(key: string, name: string, chain: string[], expiresMs: number): void {
    const kept = this.names.get(key);
    if (kept !== undefined && kept.name === name && sameChain(kept.chain, chain)) {
      kept.expiresMs = expiresMs;
      kept.touched = true;
    } else {
      this.names.set(key, { name, chain, expiresMs, touched: kept !== undefined });
    }
  }
}

function sameChain(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
