/**
 * MAC addresses, the one place that reads and writes them. Inside the pipeline a MAC is a 48-bit integer
 * (a number keys maps without building a string per packet); outside it is text in the canonical form
 * aa:bb:cc:dd:ee:ff. Every way a person may spell one (config keys, API paths and filters, wake-event
 * records, the state file) is accepted by the same rule, MAC_PATTERN, so a MAC that works in one place
 * works in all of them.
 */
import { earshotError } from './errors.js';

const H = '[0-9a-fA-F]';
/**
 * The accepted spellings, any case: aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabbccddeeff (one separator
 * throughout, as tools print them) and Cisco's aabb.ccdd.eeff. A JSON Schema pattern as well, so it is
 * written without back-references (the OpenAPI document shows it to other tools).
 */
export const MAC_PATTERN = `^(?:${H}{2}(?::${H}{2}){5}|${H}{2}(?:-${H}{2}){5}|${H}{12}|${H}{4}\\.${H}{4}\\.${H}{4})$`;
const MAC_RE = new RegExp(MAC_PATTERN);
/** What the accepted spellings are, for messages. */
export const MAC_SPELLINGS = 'aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabbccddeeff or aabb.ccdd.eeff';

/** No MAC (a frame without one, a record that names none). */
export const NO_MAC = -1;

/** True when `text` is a MAC in one of the accepted spellings. */
export function isMac(text: string): boolean {
  return MAC_RE.test(text);
}

/** A MAC in any accepted spelling as a 48-bit integer; NO_MAC (-1) for anything else. */
export function parseMac(text: string): number {
  if (!MAC_RE.test(text)) return NO_MAC;
  return parseInt(text.replace(/[:.-]/g, ''), 16);
}

/** parseMac for input a person gave: anything that is not a MAC is the coded error naming `where`. */
export function parseMacOrThrow(text: string, where: string): number {
  const mac = parseMac(text);
  if (mac === NO_MAC) throw earshotError('EARSHOT_ERR_BAD_MAC', where, JSON.stringify(text).slice(0, 60), MAC_SPELLINGS);
  return mac;
}

// two hex digits per byte value: formatMac runs once per device or flow rendered, not per packet, but
// a report of many flows renders many
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** A 48-bit MAC integer as aa:bb:cc:dd:ee:ff; '' for NO_MAC (or any negative or non-integer value). */
export function formatMac(mac: number): string {
  if (!(mac >= 0 && mac <= 0xffffffffffff && Number.isInteger(mac))) return '';
  const high = Math.floor(mac / 0x1000000);
  const low = mac % 0x1000000;
  return `${HEX[high >>> 16]}:${HEX[(high >>> 8) & 255]}:${HEX[high & 255]}:${HEX[low >>> 16]}:${HEX[(low >>> 8) & 255]}:${HEX[low & 255]}`;
}

/** A MAC a person gave, in the canonical form; anything else is the coded error naming `where`. */
export function canonicalMac(text: string, where: string): string {
  return formatMac(parseMacOrThrow(text, where));
}

/** Any accepted spelling in the canonical form aa:bb:cc:dd:ee:ff; null when `text` is not a MAC. */
export function normalizeMac(text: string): string | null {
  const mac = parseMac(text);
  return mac === NO_MAC ? null : formatMac(mac);
}

/** The 48-bit MAC at buf[at, at + 6) as an integer (the caller checks the bounds: this is the decoder's). */
export function readMac(buf: Uint8Array, at: number): number {
  return (buf[at] * 0x10000 + buf[at + 1] * 0x100 + buf[at + 2]) * 0x1000000
    + buf[at + 3] * 0x10000 + buf[at + 4] * 0x100 + buf[at + 5];
}

/** True for a group (multicast or broadcast) MAC: the I/G bit, the lowest bit of the first byte. */
export function isGroupMac(mac: number): boolean {
  return Math.floor(mac / 2 ** 40) % 2 === 1;
}
