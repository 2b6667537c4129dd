/**
 * Who is behind an endpoint: a flow's server name and address -> the organisation that runs it, with
 * where that came from. Four sources, most specific first:
 *   'domains'   the curated table data/organisations.json: a full name or a registrable domain (public
 *               suffix list, `tldts`) -> organisation, each entry with its source;
 *   'catalogue' the endpoint catalogue's vendor (collector/tag/catalog/*.json) for names the table lacks;
 *   'ip-ranges' the vendors' published ranges earshot already ships (collector/tag/data/);
 *   'asn'       the autonomous system holding the address, for a few dozen networks a home talks to
 *               (data/asn-ranges.bin, cut from @ip-location-db/asn by data/update-asn.mjs, which
 *               also writes the reviewable asn-ranges.json; mapped on first use).
 * A name the table does not know falls back to the address: the organisation is then the network that
 * hosts the name (category 'cloud' or 'cdn'), and `domain` still says whose name it was.
 *
 * Names come from packets: the name cache is bounded (oldest dropped, counted). Lookups by address are
 * binary searches over typed arrays and return shared frozen records.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { ClockMap } from '../clock-map.js';
import { earshotError } from '../errors.js';
import { parseAddr } from '../flow/local-nets.js';
import { packagePath } from '../paths.js';
import { buildCatalog } from '../tag/catalog.js';
import { buildVendorRanges, type VendorRanges } from '../tag/ip-ranges.js';

export const ORG_CATEGORIES = ['assistant-vendor', 'cloud', 'cdn', 'analytics', 'advertising', 'music', 'skill-backend', 'connectivity', 'other'] as const;
export type OrgCategory = (typeof ORG_CATEGORIES)[number];

/** The organisation behind an endpoint. */
export interface Organisation {
  name: string;
  /** Stable id, e.g. 'amazon'. */
  key: string;
  category: OrgCategory;
  /** Registrable domain the name fell under (null when the flow had no usable name). */
  domain: string | null;
  source: 'catalogue' | 'domains' | 'ip-ranges' | 'asn';
}

/** The assistant vendors whose own organisation is first party. */
export const ASSISTANT_VENDORS = ['amazon', 'google', 'apple', 'sonos'] as const;

interface OrgRecord {
  name: string;
  category: OrgCategory;
  /** Category when the organisation only hosts a name someone else owns (AWS, Akamai...). */
  hosting?: OrgCategory;
  /** Parent organisation (Audible -> amazon): first party to the parent's assistants. */
  owner?: string;
  source: string;
}

interface DataFile {
  updated: string;
  organisations: Record<string, OrgRecord>;
  domains: Array<{ domain: string; org: string; category?: OrgCategory; source: string }>;
  asns: Array<{ asn: number; org: string; expect: string; category?: OrgCategory }>;
}

/** Options of buildOrgLookup. */
export interface OrgLookupOptions {
  /** Directory holding organisations.json and asn-ranges.bin; default: the shipped data/. */
  dataDir?: string;
  /** The vendors' published ranges; default: the shipped snapshots. */
  ranges?: VendorRanges;
  /** The endpoint catalogue (only `lookup` is used); default: the shipped catalogue. */
  catalog?: { lookup(name: string): { vendor: string | null; service: string } | null };
  /** Bound of the cache of names (they come from packets). Default 10,000. */
  maxCachedNames?: number;
}

/** Counters for self-metrics and tests. */
export interface OrgLookupStats {
  byDomains: number;
  byCatalogue: number;
  byIpRanges: number;
  byAsn: number;
  unnamed: number;
  /** Names held in the cache now, and names dropped from it to keep the bound. */
  cachedNames: number;
  cacheEvicted: number;
  /** The ASN table: loaded on first use; its ranges and how long the load took. */
  asnLoaded: boolean;
  asnRanges: number;
  asnLoadMs: number;
}

const DEFAULT_CACHE = 10_000;
// a host name: labels of letters, digits, '-' and '_' (seen in real names), at least two of them
const HOST_NAME = /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$/;

function dataDirOf(options: OrgLookupOptions): string {
  return options.dataDir ?? packagePath('collector', 'privacy', 'data');
}

let defaultData: DataFile | null = null;

/** Reads and checks organisations.json (sync, at setup). */
export function loadOrganisationData(dataDir: string = packagePath('collector', 'privacy', 'data')): DataFile {
  const path = join(dataDir, 'organisations.json');
  let data: DataFile;
  try {
    data = JSON.parse(readFileSync(path, 'utf8')) as DataFile;
  } catch (err) {
    throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, (err as Error).message);
  }
  const bad = (what: string) => { throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, what); };
  for (const [key, org] of Object.entries(data.organisations ?? {})) {
    if (!ORG_CATEGORIES.includes(org.category) || (org.hosting !== undefined && !ORG_CATEGORIES.includes(org.hosting))) bad(`organisation ${key} has an unknown category`);
    if (org.owner !== undefined && !data.organisations[org.owner]) bad(`organisation ${key} names an unknown owner ${org.owner}`);
    if (typeof org.source !== 'string' || org.source.length < 4) bad(`organisation ${key} has no source`);
  }
  for (const [i, d] of (data.domains ?? []).entries()) {
    if (!data.organisations[d.org]) bad(`domains[${i}] (${d.domain}) names an unknown organisation ${d.org}`);
    if (d.category !== undefined && !ORG_CATEGORIES.includes(d.category)) bad(`domains[${i}] (${d.domain}) has an unknown category`);
    if (!HOST_NAME.test(d.domain)) bad(`domains[${i}]: "${d.domain}" is not a lower-case host name`);
    if (typeof d.source !== 'string' || d.source.length < 4) bad(`domains[${i}] (${d.domain}) has no source`);
  }
  for (const [i, a] of (data.asns ?? []).entries()) {
    if (!data.organisations[a.org]) bad(`asns[${i}] (AS${a.asn}) names an unknown organisation ${a.org}`);
  }
  return data;
}

// the public suffix list is loaded on the first name, not at import: it costs ~15-20 ms. In the bundle
// (deploy/bundle.mjs, CommonJS) `require` is defined and esbuild bundles tldts behind this call: still
// loaded here, and from the bundle's code cache; the ES modules take it from node_modules
let getDomain: typeof import('tldts').getDomain | null = null;

/** The registrable domain of a host name (public suffix list, ICANN section), or null. */
export function registrableDomain(name: string): string | null {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  getDomain ??= ((typeof require === 'function' ? require('tldts') : createRequire(import.meta.url)('tldts')) as typeof import('tldts')).getDomain;
  return getDomain(name, { allowPrivateDomains: false });
}

/** 'first' when the organisation is the assistant's own vendor ('amazon' | 'google' | 'apple' | 'sonos'), else 'third'. */
export function partyOf(org: Pick<Organisation, 'key'>, assistantVendor: string | null): 'first' | 'third' {
  if (assistantVendor === null) return 'third';
  if (org.key === assistantVendor) return 'first';
  defaultData ??= loadOrganisationData();
  return defaultData.organisations[org.key]?.owner === assistantVendor ? 'first' : 'third';
}

interface AsnTable {
  v4Starts: Uint32Array;
  v4Ends: Uint32Array;
  v4Entry: Uint16Array;
  v6Starts: Uint32Array;
  v6Ends: Uint32Array;
  v6Entry: Uint16Array;
  /** Per entry index: the asns[] row of organisations.json (null: an ASN it no longer lists). */
  entries: Array<{ org: string; category: OrgCategory | undefined } | null>;
  ranges: number;
}

/** Magic and version of asn-ranges.bin (data/update-asn.mjs, binaryTable). */
const ASN_MAGIC = 0x4e534145;
const ASN_VERSION = 1;

/**
 * Maps asn-ranges.bin into typed arrays: already sorted by the refresh script, so loading is one read and
 * a few views (parsing the 545-kB JSON form raised RSS by ~15 MB at the first lookup). The arrays view
 * the file's own buffer: nothing is copied.
 */
function loadAsnTable(dataDir: string, data: DataFile): AsnTable {
  const path = join(dataDir, 'asn-ranges.bin');
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch (err) {
    throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, (err as Error).message);
  }
  const damaged = (what: string) => earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, what);
  // a small file may sit at an unaligned offset of Node's shared pool: copy it out then
  const bytes = file.byteOffset % 4 === 0 ? file : Buffer.from(file);
  if (bytes.length < 20) throw damaged('too short for the header');
  const header = new Uint32Array(bytes.buffer, bytes.byteOffset, 5);
  if (header[0] !== ASN_MAGIC) throw damaged('not an earshot ASN table (or a big-endian host: run data/update-asn.mjs --binary-only there)');
  if (header[1] !== ASN_VERSION) throw damaged(`format version ${header[1]}, this earshot reads ${ASN_VERSION}`);
  const [, , asnCount, v4Count, v6Count] = header;
  const words = 5 + asnCount + 2 * v4Count + 8 * v6Count;
  if (bytes.length !== words * 4 + 2 * (v4Count + v6Count)) throw damaged(`${bytes.length} bytes where the header announces ${words * 4 + 2 * (v4Count + v6Count)}`);
  let at = bytes.byteOffset + 20;
  const u32 = (n: number) => { const view = new Uint32Array(bytes.buffer, at, n); at += n * 4; return view; };
  const u16 = (n: number) => { const view = new Uint16Array(bytes.buffer, at, n); at += n * 2; return view; };
  const asns = u32(asnCount);
  const table: AsnTable = {
    v4Starts: u32(v4Count), v4Ends: u32(v4Count), v6Starts: u32(v6Count * 4), v6Ends: u32(v6Count * 4),
    v4Entry: u16(v4Count), v6Entry: u16(v6Count),
    entries: [], ranges: v4Count + v6Count,
  };
  // an ASN the file holds but organisations.json no longer lists names nobody (as the JSON loader did)
  const rows = new Map(data.asns.map((row) => [row.asn, row]));
  for (const asn of asns) {
    const row = rows.get(asn);
    table.entries.push(row ? { org: row.org, category: row.category } : null);
  }
  for (const entry of [table.v4Entry, table.v6Entry]) {
    for (const index of entry) if (index >= asnCount) throw damaged(`entry ${index} beyond the ${asnCount} ASNs`);
  }
  return table;
}

/** -1, 0, 1 as table[at..at+3] is below, equal to, above `words`. */
function compareWords(table: ArrayLike<number>, at: number, words: ArrayLike<number>): number {
  for (let w = 0; w < 4; w++) {
    const a = table[at + w] >>> 0;
    const b = words[w] >>> 0;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

/** The asns[] entry holding the address, or -1. */
function asnEntryOf(table: AsnTable, version: 4 | 6, words: Uint32Array): number {
  let low = 0;
  let found = -1;
  if (version === 4) {
    const address = words[3] >>> 0;
    let high = table.v4Starts.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (table.v4Starts[mid] <= address) { found = mid; low = mid + 1; } else high = mid - 1;
    }
    return found >= 0 && address <= table.v4Ends[found] ? table.v4Entry[found] : -1;
  }
  let high = table.v6Entry.length - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    if (compareWords(table.v6Starts, mid * 4, words) <= 0) { found = mid; low = mid + 1; } else high = mid - 1;
  }
  return found >= 0 && compareWords(table.v6Ends, found * 4, words) >= 0 ? table.v6Entry[found] : -1;
}

const scratch = { version: 4 as 4 | 6, words: new Uint32Array(4) };

/** An address's version and words: dotted IPv4 parsed here without allocating, IPv6 by parseAddr. */
function addressOf(ip: string): { version: 4 | 6; words: Uint32Array } | null {
  let value = 0;
  let part = -1;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (part < 0 || dots === 3) return parseAddr(ip);
      value = value * 256 + part;
      part = -1;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = (part < 0 ? 0 : part * 10) + c - 48;
      if (part > 255) return parseAddr(ip);
    } else return parseAddr(ip);
  }
  if (dots !== 3 || part < 0) return parseAddr(ip);
  scratch.version = 4;
  scratch.words[3] = value * 256 + part;
  return scratch;
}

/** What a name alone says: an organisation, or only its registrable domain. */
interface NameResult {
  org: Organisation | null;
  domain: string | null;
  /** Never set: the cache is first in, first out. */
  touched: false;
}

/** Builds the lookup (reads organisations.json; the ASN table loads on the first address lookup). */
export function buildOrgLookup(options: OrgLookupOptions = {}) {
  const dataDir = dataDirOf(options);
  const data = options.dataDir === undefined ? (defaultData ??= loadOrganisationData(dataDir)) : loadOrganisationData(dataDir);
  const ranges = options.ranges ?? buildVendorRanges();
  const catalog = options.catalog ?? buildCatalog();
  const maxCached = Math.max(1, options.maxCachedNames ?? DEFAULT_CACHE);
  const domains = new Map(data.domains.map((d) => [d.domain, d]));
  const stats: OrgLookupStats = { byDomains: 0, byCatalogue: 0, byIpRanges: 0, byAsn: 0, unnamed: 0, cachedNames: 0, cacheEvicted: 0, asnLoaded: false, asnRanges: 0, asnLoadMs: 0 };
  // oldest out first, without walking a Map's holes for the first key (collector/clock-map.ts)
  const names = new ClockMap<NameResult>(maxCached);
  // records without a domain are few (organisation x category x source): shared and frozen
  const shared = new Map<string, Organisation>();
  let asnTable: AsnTable | null = null;

  function record(key: string, category: OrgCategory, domain: string | null, source: Organisation['source']): Organisation {
    const org = data.organisations[key];
    if (domain !== null) return Object.freeze({ name: org.name, key, category, domain, source });
    const id = `${key}|${category}|${source}`;
    let hit = shared.get(id);
    if (!hit) {
      hit = Object.freeze({ name: org.name, key, category, domain: null, source });
      shared.set(id, hit);
    }
    return hit;
  }

  function byName(name: string): NameResult {
    let hit = names.get(name);
    if (hit !== undefined) return hit;
    const domain = registrableDomain(name);
    hit = { org: null, domain, touched: false };
    // the most specific entry wins: the full name first, then each parent down to two labels
    for (let suffix = name; suffix.includes('.'); suffix = suffix.slice(suffix.indexOf('.') + 1)) {
      const entry = domains.get(suffix);
      if (entry) {
        hit.org = record(entry.org, entry.category ?? data.organisations[entry.org].category, domain ?? suffix, 'domains');
        break;
      }
    }
    if (hit.org === null) {
      const entry = catalog.lookup(name);
      if (entry?.vendor && data.organisations[entry.vendor]) {
        const category = entry.service === 'connectivity-check' ? 'connectivity' : data.organisations[entry.vendor].category;
        hit.org = record(entry.vendor, category, domain, 'catalogue');
      }
    }
    names.set(name, hit);
    stats.cacheEvicted = names.evicted;
    stats.cachedNames = names.size;
    return hit;
  }

  function byAddress(ip: string, hostedDomain: string | null): Organisation | null {
    const address = addressOf(ip);
    if (!address) return null;
    if (asnTable === null) {
      const started = performance.now();
      asnTable = loadAsnTable(dataDir, data);
      stats.asnLoadMs = Math.round((performance.now() - started) * 10) / 10;
      stats.asnLoaded = true;
      stats.asnRanges = asnTable.ranges;
    }
    const asnIndex = asnEntryOf(asnTable, address.version, address.words);
    const asn = asnIndex >= 0 ? asnTable.entries[asnIndex] : null;
    const range = ranges.lookup(address.version, address.words);
    const key = range ? range.vendor : asn?.org;
    if (key === undefined || !data.organisations[key]) return null;
    const org = data.organisations[key];
    // a name nobody listed, hosted here: the network is the organisation, as host
    const category = hostedDomain !== null ? (org.hosting ?? org.category) : ((asn?.org === key ? asn.category : undefined) ?? org.category);
    if (range) stats.byIpRanges++;
    else stats.byAsn++;
    return record(key, category, hostedDomain, range ? 'ip-ranges' : 'asn');
  }

  return {
    stats,
    /** The organisation behind a server name (SNI or DNS; null or a non-name is ignored) and address, or null. */
    lookup(serverName: string | null, ip: string | null): Organisation | null {
      let hostedDomain: string | null = null;
      if (serverName !== null) {
        const name = serverName.toLowerCase().replace(/\.$/, '');
        if (HOST_NAME.test(name) && parseAddr(name) === null) {
          const hit = byName(name);
          if (hit.org) {
            if (hit.org.source === 'domains') stats.byDomains++;
            else stats.byCatalogue++;
            return hit.org;
          }
          hostedDomain = hit.domain;
        }
      }
      const org = ip === null ? null : byAddress(ip, hostedDomain);
      if (org === null) stats.unnamed++;
      return org;
    },
  };
}

export type OrgLookup = ReturnType<typeof buildOrgLookup>;
