/**
 * Which name a device asked for when it got an address: DNS answers remembered per client, with CNAME
 * chains followed back to the name the device asked for, valid for the record's TTL plus a grace
 * period (devices keep connections, and reconnect, long after the TTL). Bounded by addresses; the oldest
 * out first, with a second chance for an address answered again (collector/clock-map.ts).
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

/** What one client was told about an address (its own entry: a refresh by another never moves its expiry). */
interface ClientName extends DnsName {
  client: string;
}

/**
 * An address: the name each client got for it (at most MAX_CLIENTS, the first answered goes first) and
 * the latest answer of any client; `touched` when an answer came for it since it was kept or last moved
 * (ClockMap). One map entry per address: the map's work is one lookup per answer (keys of client and
 * address, twice per answer, were a third of the cost of a flood of forged answers).
 */
interface AddressEntry {
  any: DnsName;
  clients: ClientName[];
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
/** Clients whose own name is kept per address (a home has a few per address; a flood of forged clients cannot grow one). */
export const MAX_CLIENTS = 8;

/** Client keys of MACs, by MAC. */
const macKeys = new Map<number, string>();

export interface DnsCacheStats {
  /** Addresses kept. */
  entries: number;
  /** Addresses and CNAMEs evicted so far. */
  evicted: number;
}

/** The bounded cache (`maxEntries` / 2 addresses, `maxEntries` CNAMEs); `graceMs` extends every TTL. */
export class DnsCache {
  /** Address -> the names clients got for it. */
  private readonly names: ClockMap<AddressEntry>;
  /** CNAME target (lower case) -> the name that pointed to it. */
  private readonly aliases: ClockMap<Alias>;

  constructor(maxEntries: number, private readonly graceMs: number) {
    // two entries an address (its clients' names and the latest answer's), as when each was a key of its own
    this.names = new ClockMap(Math.max(1, Math.floor(maxEntries / 2)));
    this.aliases = new ClockMap(maxEntries);
  }

  /** Addresses kept, and entries (addresses and CNAMEs) evicted so far: read from the maps when asked. */
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
    this.keep(clientKey, a.data, asked, chain, expiresMs);
  }

  /** The name `clientKey` asked for when it learned `address`, else any client's, if still valid at `nowMs`. */
  lookup(clientKey: string, address: string, nowMs: number): DnsName | null {
    const entry = this.names.get(address);
    if (entry === undefined) return null;
    for (const own of entry.clients) {
      if (own.client !== clientKey) continue;
      if (own.expiresMs >= nowMs) return own;
      break;
    }
    return entry.any.expiresMs >= nowMs ? entry.any : null;
  }

  /** Entries for the state file: ["client|address", ...] for each client's, ["*|address", ...] for any client's. */
  rows(): DnsCacheRow[] {
    const rows: DnsCacheRow[] = [];
    for (const [address, entry] of this.names.entries()) {
      for (const c of entry.clients) rows.push([`${c.client}|${address}`, c.name, c.chain, c.expiresMs]);
      rows.push([`*|${address}`, entry.any.name, entry.any.chain, entry.any.expiresMs]);
    }
    return rows;
  }

  /** Restores entries from the state file (expired ones are dropped on lookup; malformed rows skipped). */
  load(rows: readonly DnsCacheRow[]): void {
    for (const [key, name, chain, expiresMs] of rows) {
      if (typeof key !== 'string' || typeof name !== 'string' || !Array.isArray(chain) || typeof expiresMs !== 'number') continue;
      const bar = key.indexOf('|');
      if (bar <= 0 || bar === key.length - 1) continue;
      const client = key.slice(0, bar);
      const address = key.slice(bar + 1);
      if (client !== '*') {
        this.keep(client, address, name, chain, expiresMs, false);
        continue;
      }
      const entry = this.names.get(address);
      if (entry !== undefined) entry.any = { name, chain, expiresMs };
      else this.names.set(address, { any: { name, chain, expiresMs }, clients: [], touched: false });
    }
  }

  /**
   * `client` was told `address` is `name` (by `chain`): its own entry, refreshed in place when it says
   * the same, becomes the latest of any client's unless `asAny` is false (a load: the `*|` row says which).
   */
  private keep(client: string, address: string, name: string, chain: string[], expiresMs: number, asAny = true): void {
    const entry = this.names.get(address);
    if (entry === undefined) {
      const own = { client, name, chain, expiresMs };
      this.names.set(address, { any: own, clients: [own], touched: false });
      return;
    }
    if (asAny) entry.touched = true;
    const clients = entry.clients;
    let i = 0;
    while (i < clients.length && clients[i].client !== client) i++;
    let own: ClientName;
    if (i < clients.length && clients[i].name === name && sameChain(clients[i].chain, chain)) {
      own = clients[i];
      own.expiresMs = expiresMs;
    } else {
      own = { client, name, chain, expiresMs };
      if (i < clients.length) clients[i] = own;
      else {
        if (clients.length >= MAX_CLIENTS) clients.shift();
        clients.push(own);
      }
    }
    // any client's name is the latest answer's: the answering client's own entry (the one object while
    // one client asks, as in a home; another client's answer takes its place, never changes it)
    if (asAny) entry.any = own;
  }
}

function sameChain(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
