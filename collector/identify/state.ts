/**
 * The state file under --data-dir: the device inventory, the DNS cache, a person's labels and the network
 * hygiene findings, so a restarted collector still knows the names it learned (DHCP at boot, DNS answers
 * given before the restart), the labels given and what it found (listed, and not announced again). Written with writeFileAtomic (fsynced file and directory: a power cut
 * leaves the old file or the new one). Read back row by row: a file that is not whole (truncated,
 * zero-filled, NUL-padded) or holds rows earshot never writes is damaged; it is moved aside with a
 * warning naming it, and the rows that check out are kept.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealJson, unsealJson } from '../data-dir.js';
import { keepDamagedCopy, quarantine, writeFileAtomic } from '../durable.js';
import { earshotError } from '../errors.js';
import type { DnsCache, DnsCacheRow } from '../tag/dns-cache.js';
import { parseMac } from '../mac.js';
import type { Inventory, SavedDevice } from './inventory.js';
import { FINDING_KINDS, MAX_EVIDENCE, MAX_FINDINGS, SEVERITIES, type SavedFinding } from '../findings/store.js';

export { prepareDataDir } from '../data-dir.js';

export const STATE_SCHEMA = 'earshot.state/1';
const FILE = 'state.json';

interface StateFile {
  schema: typeof STATE_SCHEMA;
  savedAt: string;
  devices: SavedDevice[];
  dns: DnsCacheRow[];
  /** A person's labels of activations: [activation id, 'intended' | 'not-intended']. */
  labels?: Array<[string, string]>;
  /** The network hygiene findings (collector/findings/): a restart lists them and does not announce them again. */
  findings?: SavedFinding[];
}

/** The findings stage as the state file reads and writes it (collector/findings/index.ts). */
export interface FindingsState {
  saved(): SavedFinding[];
  restore(rows: readonly SavedFinding[]): number;
}

/** Labels of activations, kept with the inventory (the detect stage's map). */
export type LabelMap = Map<string, 'intended' | 'not-intended'>;

/** Longest string a row may hold (names, ids): longer ones are not earshot's. */
const MAX_TEXT = 4096;

const isText = (v: unknown): v is string => typeof v === 'string' && v.length <= MAX_TEXT;
const isTextOrNull = (v: unknown) => v === null || v === undefined || isText(v);
const isTexts = (v: unknown) => v === undefined || (Array.isArray(v) && v.length <= 256 && v.every(isText));
const isTime = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** A device row as earshot writes it. */
function isDevice(row: unknown): row is SavedDevice {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return false;
  const d = row as Record<string, unknown>;
  return typeof d.mac === 'string' && parseMac(d.mac) >= 0 && isTime(d.firstSeenMs) && isTime(d.lastSeenMs)
    && ['dhcpHostName', 'dhcpVendorClass', 'mdnsModel', 'mdnsFriendlyName', 'ssdpServer'].every((k) => isTextOrNull(d[k]))
    && ['ips', 'mdnsServices', 'mdnsNames', 'ssdpTypes', 'voiceNames', 'voiceServers', 'speakerPorts', 'localRoles'].every((k) => isTexts(d[k]));
}

/** A DNS cache row: [key, name, chain, expiresMs]. */
function isDnsRow(row: unknown): row is DnsCacheRow {
  return Array.isArray(row) && row.length === 4 && isText(row[0]) && isText(row[1]) && Array.isArray(row[2]) && row[2].length <= 64
    && row[2].every(isText) && isTime(row[3]);
}

const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A finding row as earshot writes it (store.ts saved()). */
function isFinding(row: unknown): row is SavedFinding {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return false;
  const f = row as Record<string, unknown>;
  return (FINDING_KINDS as readonly unknown[]).includes(f.kind) && (SEVERITIES as readonly unknown[]).includes(f.severity)
    && (f.device === null || (typeof f.device === 'string' && parseMac(f.device) >= 0))
    && isText(f.subject) && isText(f.title) && isText(f.advice) && isTime(f.firstMs) && isTime(f.lastMs) && isCount(f.count) && (f.count as number) > 0
    && Array.isArray(f.evidence) && f.evidence.length <= MAX_EVIDENCE && f.evidence.every(isText) && isCount(f.evidenceDropped);
}

function isLabel(row: unknown): row is [string, 'intended' | 'not-intended'] {
  return Array.isArray(row) && row.length === 2 && isText(row[0]) && row[0] !== '' && (row[1] === 'intended' || row[1] === 'not-intended');
}

/** The rows of a list that check out, and how many did not. */
function rowsOf<T>(list: unknown, check: (row: unknown) => row is T, name: string, problems: string[]): T[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    problems.push(`${name} is not a list`);
    return [];
  }
  const good = list.filter(check);
  if (good.length < list.length) problems.push(`${list.length - good.length} of ${list.length} ${name} rows unreadable`);
  return good;
}

/** What went wrong with a text that should be a state file, or null when it parses. */
function textProblem(text: string): string | null {
  if (text.length === 0) return 'empty file';
  // a power cut before the data reached the disk leaves zeros where the text should be
  if (text.includes('\0')) return 'NUL bytes in the file (a write cut short)';
  return null;
}

/**
 * Loads the state file into the inventory, DNS cache and labels. Returns a warning when the file was
 * damaged (moved aside as state.json.damaged-<time>; when rows could be read, a copy is kept there instead
 * and the file waits for the caller's next save, which it should make at once), null
 * otherwise (also when there is none yet). Throws EARSHOT_ERR_DATA_DIR only when the file cannot be
 * read at all (permissions).
 */
export function loadState(dir: string, inventory: Inventory, dns: DnsCache, labels: LabelMap | null = null, findings: FindingsState | null = null): string | null {
  const path = join(dir, FILE);
  let text: string | null = null;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code !== 'EISDIR') throw earshotError('EARSHOT_ERR_DATA_DIR', dir, `cannot read ${FILE}: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  let state: Partial<StateFile> | null = null;
  const problem = text === null ? 'a directory, not a file' : textProblem(text);
  if (problem !== null) {
    problems.push(problem);
  } else {
    try {
      const parsed = JSON.parse(text as string) as unknown;
      // a whole file whose bytes changed (a bad sector, a flipped bit): its rows are still checked one by one
      try {
        unsealJson(text as string);
      } catch (err) {
        problems.push((err as Error).message);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) problems.push('not a JSON object');
      else if ((parsed as Partial<StateFile>).schema !== STATE_SCHEMA) problems.push(`schema ${JSON.stringify((parsed as Partial<StateFile>).schema)?.slice(0, 60)}, expected ${STATE_SCHEMA}`);
      else state = parsed as Partial<StateFile>;
    } catch (err) {
      problems.push(`not JSON: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (state !== null) {
    inventory.load(rowsOf(state.devices, isDevice, 'device', problems));
    dns.load(rowsOf(state.dns, isDnsRow, 'DNS', problems));
    for (const [id, label] of rowsOf(state.labels, isLabel, 'label', problems)) labels?.set(id, label);
    const rows = rowsOf(state.findings, isFinding, 'finding', problems);
    if (rows.length > MAX_FINDINGS) problems.push(`${rows.length} findings, more than the ${MAX_FINDINGS} earshot keeps`);
    findings?.restore(rows.slice(0, MAX_FINDINGS));
  }
  if (problems.length === 0) return null;
  if (state === null || text === null) {
    const aside = quarantine(path);
    return `${path} is damaged (${problems.join('; ')}); ${aside === null ? 'removed' : `kept as ${aside}`}, starting with an empty inventory`;
  }
  // readable rows: the file stays until the next save replaces it atomically with them (the caller saves
  // at once), so a power cut in between finds them again
  const copy = keepDamagedCopy(path, text);
  return `${path} is damaged (${problems.join('; ')}); ${copy === null ? 'no copy kept (the disk refused it)' : `a copy kept as ${copy}`}, the readable rows were kept`;
}

/** Writes the state file atomically and durably (fsync of the file and the directory). */
export function saveState(dir: string, inventory: Inventory, dns: DnsCache, labels: LabelMap | null = null, findings: FindingsState | null = null, now = new Date()): void {
  const state: StateFile = {
    schema: STATE_SCHEMA, savedAt: now.toISOString(), devices: inventory.save(), dns: dns.rows(), labels: labels ? [...labels] : [],
    findings: findings ? findings.saved() : [],
  };
  try {
    writeFileAtomic(join(dir, FILE), sealJson(JSON.stringify(state)));
  } catch (err) {
    throw earshotError('EARSHOT_ERR_DATA_DIR', dir, `cannot write ${FILE}: ${(err as Error).message}`);
  }
}
