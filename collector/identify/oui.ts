/**
 * MAC address -> manufacturer, from the IEEE registry table in data/oui.tsv (generated from
 * Wireshark's manuf file by data/generate-oui.mjs; its header says which snapshot). A device's vendor
 * is the first hint that it is a smart speaker (an Echo's MAC is Amazon's), before DHCP or mDNS say more.
 *
 * The table is read and indexed once, in buildOuiTable() (importing does no I/O). A lookup is at most
 * three Map probes with numeric keys and returns a shared frozen entry: nothing is allocated per call.
 * MA-M (/28) and MA-S (/36) blocks sit inside 24-bit prefixes that the IEEE assigned to itself
 * ("IEEE Registration Authority"); they are probed only under those prefixes, most specific first.
 *
 * Randomised addresses (locally administered bit set) and group addresses have no manufacturer by
 * definition, so they return null even when their first three octets happen to match a block.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { earshotError } from '../errors.js';

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

/** Loads the OUI table (synchronously, once) and returns its lookup. */
export function buildOuiTable(options: OuiTableOptions = {}): OuiTable {
  const path = options.dataPath ?? bundledDataPath();
  let text: string;
  try {
    const raw = readFileSync(path);
    // gzip magic 1f 8b: a compressed table is accepted too (the bundled one is plain: faster to load)
    text = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString('utf8');
  } catch (err) {
    throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, err instanceof Error ? err.message : String(err));
  }
  // Index only: prefix -> offset of its line. Entries are built on first lookup (a few dozen devices
  // in a home), so start-up does not pay for 50,000 objects (~0.35 s before, ~40 ms now).
  const by24 = new Map<number, number>();
  const by28 = new Map<number, number>();
  const by36 = new Map<number, number>();
  // prefixes that hold MA-M / MA-S blocks: only these need the finer probes
  const subdivided = new Set<number>();
  const provenance: string[] = [];
  const entries = new Map<number, OuiEntry>();
  const vendorCache = new Map<string, DeviceVendor | null>();
  let size = 0;
  for (let at = 0; at < text.length; ) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    if (text.charCodeAt(at) === 35 /* # */) {
      provenance.push(text.slice(at, end).replace(/^#\s?/, ''));
    } else if (end > at) {
      // hex digits up to the "/" by hand: no substring and no parseInt per line (50,000 lines at start-up)
      let prefix = 0;
      let slash = at;
      for (; slash < end; slash++) {
        const c = text.charCodeAt(slash);
        const digit = c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
        if (digit < 0) break;
        prefix = prefix * 16 + digit;
      }
      const bits = (slash - at) * 4;
      const map = bits === 24 ? by24 : bits === 28 ? by28 : bits === 36 ? by36 : null;
      const bitsText = bits === 24 ? '24' : bits === 28 ? '28' : '36';
      if (map === null || text.charCodeAt(slash) !== 47 || !text.startsWith(bitsText, slash + 1)) {
        throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, `"${text.slice(at, Math.min(end, at + 40))}" is not PREFIX/BITS<TAB>SHORT<TAB>ORGANIZATION`);
      }
      if (!map.has(prefix)) { // duplicates: the first wins, as the generator wrote them
        map.set(prefix, at);
        if (bits !== 24) subdivided.add(Math.floor(prefix / 2 ** (bits - 24)));
        size++;
      }
    }
    at = end + 1;
  }
  if (size === 0) throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', path, 'no OUI entries');

  /** The entry of the line at `at`, built once. */
  function entryAt(at: number): OuiEntry {
    let entry = entries.get(at);
    if (entry === undefined) {
      let end = text.indexOf('\n', at);
      if (end < 0) end = text.length;
      const [block, shortName, organization = shortName] = text.slice(at, end).split('\t');
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
    size,
    provenance,
    lookup(mac: number): OuiEntry | null {
      if (!(mac >= 0 && mac <= MAX_MAC)) return null; // also rejects NaN and -1 (no link layer)
      const firstOctet = Math.floor(mac / TWO_POW_40);
      // 0x01: group (multicast/broadcast) address; 0x02: locally administered (randomised)
      if ((firstOctet & 0x03) !== 0) return null;
      const prefix24 = Math.floor(mac / TWO_POW_24);
      if (subdivided.has(prefix24)) {
        const ms = by36.get(Math.floor(mac / TWO_POW_12));
        if (ms !== undefined) return entryAt(ms);
        const mm = by28.get(Math.floor(mac / TWO_POW_20));
        if (mm !== undefined) return entryAt(mm);
      }
      const ma = by24.get(prefix24);
      return ma === undefined ? null : entryAt(ma);
    },
  };
}

/** Parses "aa:bb:cc:dd:ee:ff" (or with '-' or '.' separators, or none) into a 48-bit integer; -1 if not a MAC. */
export function parseMac(text: string): number {
  const hex = text.replace(/[:.-]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) return -1;
  return parseInt(hex, 16);
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
