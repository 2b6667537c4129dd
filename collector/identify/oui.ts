/**
 * MAC address -> manufacturer, from the IEEE registry table in data/oui.tsv (generated from
 * Wireshark's manuf file by data/generate-oui.mjs; its header says which snapshot). A device's vendor
 * is the first hint that it is a smart speaker (an Echo's MAC is Amazon's), before DHCP or mDNS say more.
 *
 * The table is read once, in buildOuiTable() (importing does no I/O), and not indexed: its lines are
 * sorted by block, so a lookup is at most three binary searches over the bytes (/36, /28, /24, most
 * specific first: MA-M and MA-S blocks sit inside 24-bit prefixes that the IEEE assigned to itself,
 * "IEEE Registration Authority"). Each block's entry is built once and shared, frozen.
 *
 * Randomised addresses (locally administered bit set) and group addresses have no manufacturer by
 * definition, so they return null even when their first three octets happen to match a block.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { earshotError } from '../errors.js';
import { lazyBuiltin } from '../builtins.js';

const zlib = lazyBuiltin<typeof import('node:zlib')>('node:zlib');

/** earshot's vendor ids for the companies whose devices it cares about. */
export type DeviceVendor =
  | 'amazon' | 'apple' | 'google' | 'sonos' | 'samsung' | 'lg' | 'raspberrypi' | 'espressif' | 'bose' | 'xiaomi' | 'roku';

/** What the registry says about a MAC address's block. */
export interface OuiEntry {
  /** The registered organisation, e.g. "Amazon Technologies Inc.". */
  readonly organization: string;
  /** Wireshark's abbreviation (at most 8 characters), e.g. "AmazonTe". */
  readonly shortName: string;
  /** earshot's normalised vendor id, or null for companies it does not single out. */
  readonly vendor: DeviceVendor | null;
  /** The block as upper-case hex digits and size, e.g. "44650D/24", "70B3D5270/36". */
  readonly block: string;
}

/** The OUI table. */
export interface OuiTable {
  /** The block holding `mac` (a 48-bit integer, as DecodedPacket.srcMac), or null (unknown, random, group). */
  lookup(mac: number): OuiEntry | null;
  /** Number of blocks loaded. */
  readonly size: number;
  /** The header lines of the data file (source, package version, IEEE dates), without "# ". */
  readonly provenance: readonly string[];
}

/** Options of buildOuiTable. */
export interface OuiTableOptions {
  /** A table file in the generator's format (gzip'ed or plain); default: the bundled data/oui.tsv. */
  dataPath?: string;
}

/**
 * Organisation-name patterns -> vendor id. Anchored at the start so that, say, "Digiboard Eletronica da
 * Amazonia" or "SonoSite" do not match; checked once per distinct organisation at build time.
 */
const VENDOR_PATTERNS: ReadonlyArray<readonly [RegExp, DeviceVendor]> = [
  [/^(Amazon Technologies|Amazon\.com|Blink by Amazon)\b/i, 'amazon'],
  [/^Apple\b/, 'apple'],
  [/^(Google|Nest Labs)\b/i, 'google'],
  [/^Sonos, Inc/i, 'sonos'],
  [/^Samsung Electronics\b/i, 'samsung'],
  [/^LG Electronics\b/i, 'lg'],
  [/^Raspberry Pi\b/i, 'raspberrypi'],
  [/^Espressif\b/i, 'espressif'],
  [/^Bose Corporation\b/i, 'bose'],
  [/^(Xiaomi Communications|Xiaomi Electronics)\b/i, 'xiaomi'],
  [/^Roku, Inc\b/i, 'roku'],
];

/** earshot's vendor id for an organisation name, or null. */
export function vendorOfOrganization(organization: string): DeviceVendor | null {
  for (const [pattern, vendor] of VENDOR_PATTERNS) if (pattern.test(organization)) return vendor;
  return null;
}

const TWO_POW_12 = 0x1000;
const TWO_POW_20 = 0x100000;
const TWO_POW_24 = 0x1000000;
const TWO_POW_40 = 0x10000000000;
const MAX_MAC = 0xffffffffffff;

const NEWLINE = 10;
const TAB = 9;
const HASH = 35;

/**
 * Compares the block key of the line at `at` ("44650D/24", up to the tab) with `key` as bytes: the
 * order of the generator's sort (its keys are ASCII, so code units and bytes agree).
 */
function compareKeyAt(bytes: Buffer, at: number, key: Uint8Array, keyLength = key.length): number {
  const len = bytes.length;
  for (let i = 0; ; i++, at++) {
    const c = at < len && bytes[at] !== TAB && bytes[at] !== NEWLINE ? bytes[at] : -1;
    const k = i < keyLength ? key[i] : -1;
    if (c !== k || c === -1) return c - k;
  }
}

/** True when the line at `at` starts with key[0, keyLength) and then the byte `next` (or, with -1, a hex digit). */
function startsWithKey(bytes: Buffer, at: number, key: Uint8Array, keyLength: number, next: number): boolean {
  if (at + keyLength >= bytes.length) return false;
  for (let i = 0; i < keyLength; i++) if (bytes[at + i] !== key[i]) return false;
  const c = bytes[at + keyLength];
  return next >= 0 ? c === next : (c >= 48 && c <= 57) || (c >= 65 && c <= 70);
}

/** The offset after the line starting at `at` (the next line's start, or the end). */
function nextLine(bytes: Buffer, at: number): number {
  const end = bytes.indexOf(NEWLINE, at);
  return end < 0 ? bytes.length : end + 1;
}

/** Loads the OUI table (synchronously, once) and returns its lookup. */
export function buildOuiTable(options: OuiTableOptions = {}): OuiTable {
  const path = options.dataPath ?? bundledDataPath();
  let bytes: Buffer;
  try {
    const raw = readFileSync(path);
    // gzip magic 1f 8b: a compressed table is accepted too (the bundled one is plain: faster to load)
    bytes = raw[0] === 0x1f && raw[1] === 0x8b ? zlib().gunzipSync(raw) : raw;
  } catch (err) {
    throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, err instanceof Error ? err.message : String(err));
  }
  // No index at all: the generator writes the blocks sorted by key, so a lookup is a binary search over
  // the bytes, and only the lines looked up are decoded (a few dozen devices in a home). Start-up pays
  // neither for decoding 2 MB of UTF-8 nor for 50,000 map entries (~50 ms before, ~8 ms now, the read).
  const provenance: string[] = [];
  let begin = 0;
  while (begin < bytes.length && bytes[begin] === HASH) {
    const next = nextLine(bytes, begin);
    provenance.push(bytes.toString('utf8', begin, next).replace(/^#\s?/, '').replace(/\n$/, ''));
    begin = next;
  }
  // the bundled table is the generator's output (a test keeps it so); another one is checked whole
  const counted = options.dataPath === undefined ? -1 : checkTable(bytes, begin, path);
  let size = counted;

  /** Offset of the first line whose key does not sort below key[0, keyLength) (or the end). */
  function lowerBound(key: Uint8Array, keyLength: number): number {
    // lo is always a line start; lines before lo sort below key, lines from hi on do not
    let lo = begin;
    let hi = bytes.length;
    while (lo < hi) {
      let mid = lo + Math.floor((hi - lo) / 2);
      while (mid > lo && bytes[mid - 1] !== NEWLINE) mid--;
      if (compareKeyAt(bytes, mid, key, keyLength) < 0) lo = Math.min(nextLine(bytes, mid), hi);
      else hi = mid;
    }
    return lo;
  }

  // the key searched for, as bytes: "PREFIX" or "PREFIX/BITS"
  const key = new Uint8Array(12);
  const HEX = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 65, 66, 67, 68, 69, 70];

  /** Writes `digits` upper-case hex digits of `prefix` into key; returns their count. */
  function keyDigits(prefix: number, digits: number): number {
    for (let i = digits - 1; i >= 0; i--) {
      key[i] = HEX[prefix % 16];
      prefix = Math.floor(prefix / 16);
    }
    return digits;
  }

  /** Offset of the line of block `prefix`/`bits`, or -1. */
  function findBlock(prefix: number, bits: number): number {
    let n = keyDigits(prefix, bits / 4);
    key[n++] = 47; // "/"
    key[n++] = bits === 24 ? 50 : bits === 28 ? 50 : 51;
    key[n++] = bits === 24 ? 52 : bits === 28 ? 56 : 54;
    const at = lowerBound(key, n);
    return at < bytes.length && compareKeyAt(bytes, at, key, n) === 0 ? at : -1;
  }

  /**
   * What a 24-bit prefix holds: its /24 block's line (or -1), and whether MA-M / MA-S blocks lie
   * inside it. Its lines are contiguous, the /24 first ("/" sorts before the hex digits); cached.
   */
  const prefixes = new Map<number, { ma: number; subdivided: boolean }>();
  function prefixInfo(prefix24: number): { ma: number; subdivided: boolean } {
    let info = prefixes.get(prefix24);
    if (info === undefined) {
      const n = keyDigits(prefix24, 6);
      let at = lowerBound(key, n);
      let ma = -1;
      if (startsWithKey(bytes, at, key, n, 47 /* / */)) {
        ma = at; // "PREFIX/24": the only key of the region with a "/" right after the six digits
        at = nextLine(bytes, at);
      }
      info = { ma, subdivided: startsWithKey(bytes, at, key, n, -1) };
      prefixes.set(prefix24, info);
    }
    return info;
  }

  const entries = new Map<number, OuiEntry>();
  const vendorCache = new Map<string, DeviceVendor | null>();

  /** The entry of the line at `at`, built once. */
  function entryAt(at: number): OuiEntry {
    let entry = entries.get(at);
    if (entry === undefined) {
      const [block, shortName, organization = shortName] = bytes.toString('utf8', at, nextLine(bytes, at)).replace(/\n$/, '').split('\t');
      let vendor = vendorCache.get(organization);
      if (vendor === undefined) {
        vendor = vendorOfOrganization(organization);
        vendorCache.set(organization, vendor);
      }
      entry = Object.freeze({ organization, shortName, vendor, block });
      entries.set(at, entry);
    }
    return entry;
  }

  return {
    /** Counted on first use (only tests ask). */
    get size(): number {
      if (size < 0) size = checkTable(bytes, begin, path);
      return size;
    },
    provenance,
    lookup(mac: number): OuiEntry | null {
      if (!(mac >= 0 && mac <= MAX_MAC)) return null; // also rejects NaN and -1 (no link layer)
      const firstOctet = Math.floor(mac / TWO_POW_40);
      // 0x01: group (multicast/broadcast) address; 0x02: locally administered (randomised)
      if ((firstOctet & 0x03) !== 0) return null;
      const { ma, subdivided } = prefixInfo(Math.floor(mac / TWO_POW_24));
      // MA-S (/36) and MA-M (/28) blocks lie inside 24-bit prefixes: most specific first
      if (subdivided) {
        const ms = findBlock(Math.floor(mac / TWO_POW_12), 36);
        if (ms >= 0) return entryAt(ms);
        const mm = findBlock(Math.floor(mac / TWO_POW_20), 28);
        if (mm >= 0) return entryAt(mm);
      }
      return ma < 0 ? null : entryAt(ma);
    },
  };
}

/**
 * Checks every line after the header: PREFIX/BITS<TAB>SHORT<TAB>ORGANIZATION, sorted by key as the
 * generator writes them (binary search depends on it). Returns the number of blocks.
 */
function checkTable(bytes: Buffer, begin: number, path: string): number {
  const len = bytes.length;
  let size = 0;
  let previous = -1;
  for (let at = begin; at < len; ) {
    const end = nextLine(bytes, at);
    const lineEnd = bytes[end - 1] === NEWLINE ? end - 1 : end;
    let slash = at;
    // upper-case hex digits, as the generator writes them (lookups search for upper-case keys)
    while (slash < lineEnd && ((bytes[slash] >= 48 && bytes[slash] <= 57) || (bytes[slash] >= 65 && bytes[slash] <= 70))) slash++;
    const bits = (slash - at) * 4;
    const bitsText = `/${bits}`;
    if ((bits !== 24 && bits !== 28 && bits !== 36) || bytes.toString('latin1', slash, slash + 3) !== bitsText) {
      const line = bytes.toString('utf8', at, Math.min(lineEnd, at + 40));
      throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, `"${line}" is not PREFIX/BITS<TAB>SHORT<TAB>ORGANIZATION`);
    }
    if (previous >= 0) {
      const order = compareKeyAt(bytes, previous, bytes.subarray(at, slash + 3));
      if (order > 0) {
        throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, `"${bytes.toString('latin1', at, slash + 3)}" is out of order (blocks are sorted by key, as generate-oui.mjs writes them)`);
      }
      if (order < 0) size++; // duplicates: the first wins, as the generator wrote them
    } else {
      size++;
    }
    previous = at;
    at = end;
  }
  if (size === 0) throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, 'no OUI entries');
  return size;
}

/**
 * The bundled table: beside this module in the source tree; when running from dist/ (which holds only
 * compiled code), in the source tree's collector/identify/data/ three levels up.
 */
function bundledDataPath(): string {
  const beside = fileURLToPath(new URL('./data/oui.tsv', import.meta.url));
  if (existsSync(beside)) return beside;
  const fromDist = fileURLToPath(new URL('../../../collector/identify/data/oui.tsv', import.meta.url));
  return existsSync(fromDist) ? fromDist : beside;
}
