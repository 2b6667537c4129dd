/**
 * Server address -> the vendor whose published IP ranges hold it (Amazon, Apple, Google), from the dated
 * snapshots in data/ (see data/update-ranges.mjs and each file's `source`). This names the voice
 * connections that carry no host name at all: an Echo's AVS connection is often open before the
 * capture starts, with no DNS answer and no ClientHello to tell where it goes.
 *
 * Caveat: Amazon's "AMAZON" service and Google's goog.json include their clouds' customer space (EC2,
 * Google Cloud), so a match says whose network the server is in, not that the vendor runs it; the
 * tagger weighs it together with the device's own vendor.
 *
 * At build time every prefix is parsed and the set is flattened into disjoint, sorted segments, each
 * labelled with the most specific prefix covering it (prefixes are either nested or disjoint, so one
 * sweep does it). A lookup is then one binary search over typed arrays and returns a shared frozen
 * record: no allocation per call. IPv6 compares the four 32-bit words in order.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { earshotError } from '../errors.js';
import { parseAddr } from '../flow/local-nets.js';

/** The vendors with published ranges. */
export type RangeVendor = 'amazon' | 'apple' | 'google';

/** What a lookup found. */
export interface RangeMatch {
  readonly vendor: RangeVendor;
  /** The most specific published prefix holding the address, as written in the snapshot. */
  readonly prefix: string;
  /** The snapshot's label, e.g. "amazon ip-ranges.json 2017-07-20". */
  readonly source: string;
}

/** One loaded snapshot, for reports and the API. */
export interface RangeSnapshotInfo {
  readonly vendor: RangeVendor;
  readonly label: string;
  readonly url: string;
  readonly createDate: string;
  readonly ipv4Prefixes: number;
  readonly ipv6Prefixes: number;
}

/** The compiled ranges. */
export interface VendorRanges {
  /** The vendor range holding the address (four big-endian words, IPv4 in word 3), or null. */
  lookup(ipVersion: number, words: ArrayLike<number>): RangeMatch | null;
  readonly snapshots: readonly RangeSnapshotInfo[];
}

/** Options of buildVendorRanges. */
export interface VendorRangesOptions {
  /** Directory holding VENDOR-ip-ranges.json; default: the bundled data/. */
  dataDir?: string;
  /** Vendors to load; default: all. Earlier vendors win when two list the very same prefix. */
  vendors?: readonly RangeVendor[];
}

export const RANGE_VENDORS: readonly RangeVendor[] = ['amazon', 'apple', 'google'];

interface Prefix {
  version: 4 | 6;
  start: bigint;
  end: bigint;
  match: RangeMatch;
}

interface Segment {
  start: bigint;
  end: bigint;
  match: RangeMatch;
}

/** The bundled snapshots, compiled once: tagging and the privacy ledger both look up in them (~8 ms each to build). */
let bundled: VendorRanges | null = null;

/** Loads the snapshots and compiles them for lookups (the bundled ones once per process: lookups hold no state). */
export function buildVendorRanges(options: VendorRangesOptions = {}): VendorRanges {
  if (options.dataDir === undefined && options.vendors === undefined) return (bundled ??= compileVendorRanges(options));
  return compileVendorRanges(options);
}

function compileVendorRanges(options: VendorRangesOptions): VendorRanges {
  const dataDir = options.dataDir ?? bundledDataDir();
  const snapshots: RangeSnapshotInfo[] = [];
  const v4: Prefix[] = [];
  const v6: Prefix[] = [];
  for (const vendor of options.vendors ?? RANGE_VENDORS) {
    const path = join(dataDir, `${vendor}-ip-ranges.json`);
    const snapshot = readSnapshot(path, vendor);
    snapshots.push(Object.freeze({
      vendor, label: snapshot.label, url: snapshot.url, createDate: snapshot.createDate,
      ipv4Prefixes: snapshot.ipv4.length, ipv6Prefixes: snapshot.ipv6.length,
    }));
    for (const [list, version] of [[snapshot.ipv4, 4], [snapshot.ipv6, 6]] as const) {
      for (const text of list) {
        const parsed = parsePrefix(text, version);
        if (parsed === null) throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, `"${text}" is not an IPv${version} prefix`);
        const match: RangeMatch = Object.freeze({ vendor, prefix: text, source: snapshot.label });
        (version === 4 ? v4 : v6).push({ version, start: parsed.start, end: parsed.end, match });
      }
    }
  }

  const segments4 = flatten(v4);
  const starts4 = Uint32Array.from(segments4, (s) => Number(s.start));
  const ends4 = Uint32Array.from(segments4, (s) => Number(s.end));
  const matches4 = segments4.map((s) => s.match);
  const segments6 = flatten(v6);
  const starts6 = new Uint32Array(segments6.length * 4);
  const ends6 = new Uint32Array(segments6.length * 4);
  segments6.forEach((s, i) => {
    for (let w = 0; w < 4; w++) {
      const shift = BigInt(96 - 32 * w);
      starts6[i * 4 + w] = Number((s.start >> shift) & 0xffffffffn);
      ends6[i * 4 + w] = Number((s.end >> shift) & 0xffffffffn);
    }
  });
  const matches6 = segments6.map((s) => s.match);

  /** -1, 0, 1 as table[at..at+3] is below, equal to, above the address words. */
  function compare6(table: Uint32Array, at: number, words: ArrayLike<number>): number {
    for (let w = 0; w < 4; w++) {
      const a = table[at + w];
      const b = words[w] >>> 0;
      if (a !== b) return a < b ? -1 : 1;
    }
    return 0;
  }

  return Object.freeze({
    snapshots: Object.freeze(snapshots),
    lookup(ipVersion: number, words: ArrayLike<number>): RangeMatch | null {
      if (ipVersion === 4) {
        const address = words[3] >>> 0;
        // the last segment starting at or below the address
        let low = 0;
        let high = starts4.length - 1;
        let found = -1;
        while (low <= high) {
          const mid = (low + high) >>> 1;
          if (starts4[mid] <= address) { found = mid; low = mid + 1; } else high = mid - 1;
        }
        return found >= 0 && address <= ends4[found] ? matches4[found] : null;
      }
      if (ipVersion === 6) {
        let low = 0;
        let high = matches6.length - 1;
        let found = -1;
        while (low <= high) {
          const mid = (low + high) >>> 1;
          if (compare6(starts6, mid * 4, words) <= 0) { found = mid; low = mid + 1; } else high = mid - 1;
        }
        return found >= 0 && compare6(ends6, found * 4, words) >= 0 ? matches6[found] : null;
      }
      return null;
    },
  });
}

/**
 * Disjoint sorted segments, each labelled by the most specific prefix covering it. Prefixes sorted by
 * start, wider first, form a nesting: a stack holds the prefixes open at the cursor.
 */
function flatten(prefixes: Prefix[]): Segment[] {
  const sorted = prefixes.map((p, order) => ({ p, order }))
    .sort((a, b) => (a.p.start < b.p.start ? -1 : a.p.start > b.p.start ? 1 : a.p.end > b.p.end ? -1 : a.p.end < b.p.end ? 1 : a.order - b.order))
    .map((x) => x.p);
  const segments: Segment[] = [];
  const stack: Prefix[] = [];
  let cursor = 0n;
  const emit = (start: bigint, end: bigint, match: RangeMatch) => {
    if (start <= end) segments.push({ start, end, match });
  };
  const closeBefore = (limit: bigint | null) => {
    while (stack.length > 0 && (limit === null || stack[stack.length - 1].end < limit)) {
      const top = stack.pop() as Prefix;
      emit(cursor, top.end, top.match);
      cursor = top.end + 1n;
    }
  };
  for (const p of sorted) {
    closeBefore(p.start);
    const top = stack[stack.length - 1];
    if (top !== undefined && top.start === p.start && top.end === p.end) continue; // listed twice: first wins
    if (top !== undefined) emit(cursor, p.start - 1n, top.match);
    stack.push(p);
    cursor = p.start;
  }
  closeBefore(null);
  return segments;
}

/** A prefix's first and last address (IPv4 in 32 bits, IPv6 in 128), or null when malformed. */
function parsePrefix(text: string, version: 4 | 6): { start: bigint; end: bigint } | null {
  const slash = text.indexOf('/');
  const address = parseAddr(slash < 0 ? text : text.slice(0, slash));
  const width = version === 4 ? 32 : 128;
  const bits = slash < 0 ? width : Number(text.slice(slash + 1));
  if (address === null || address.version !== version || !Number.isInteger(bits) || bits < 0 || bits > width) return null;
  let value = 0n;
  for (let w = version === 4 ? 3 : 0; w < 4; w++) value = (value << 32n) | BigInt(address.words[w] >>> 0);
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  // host bits set: the published file is damaged (or we misread it); refuse rather than widen silently
  if ((value & hostMask) !== 0n) return null;
  return { start: value, end: value | hostMask };
}

interface Snapshot {
  label: string;
  url: string;
  createDate: string;
  ipv4: string[];
  ipv6: string[];
}

function readSnapshot(path: string, vendor: RangeVendor): Snapshot {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, err instanceof Error ? err.message : String(err));
  }
  const o = json as Record<string, unknown>;
  const source = (o?.source ?? {}) as Record<string, unknown>;
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (o?.vendor !== vendor || typeof o.label !== 'string' || !strings(o.ipv4) || !strings(o.ipv6)) {
    throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, `not a ${vendor} range snapshot (vendor, label, ipv4[], ipv6[])`);
  }
  return {
    label: o.label,
    url: String(source.url ?? ''),
    createDate: String(source.createDate ?? ''),
    ipv4: o.ipv4 as string[],
    ipv6: o.ipv6 as string[],
  };
}

/** data/ beside this module in the source tree, or the source tree's when running from dist/. */
function bundledDataDir(): string {
  const beside = fileURLToPath(new URL('./data/', import.meta.url));
  if (existsSync(join(beside, 'amazon-ip-ranges.json'))) return beside;
  const fromDist = fileURLToPath(new URL('../../../collector/tag/data/', import.meta.url));
  return existsSync(join(fromDist, 'amazon-ip-ranges.json')) ? fromDist : beside;
}
