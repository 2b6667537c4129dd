/**
 * The state file under --data-dir: the device inventory and the DNS cache, so a restarted collector
 * still knows the names it learned (DHCP at boot, DNS answers given before the restart). Written
 * atomically (temporary file, then rename); a damaged file is kept aside, never silently lost.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { earshotError } from '../errors.js';
import type { DnsCache, DnsCacheRow } from '../tag/dns-cache.js';
import type { Inventory, SavedDevice } from './inventory.js';

export const STATE_SCHEMA = 'earshot.state/1';
const FILE = 'state.json';

interface StateFile {
  schema: typeof STATE_SCHEMA;
  savedAt: string;
  devices: SavedDevice[];
  dns: DnsCacheRow[];
  /** A person's labels of activations: [activation id, 'intended' | 'not-intended']. */
  labels?: Array<[string, string]>;
}

/** Labels of activations, kept with the inventory (the detect stage's map). */
export type LabelMap = Map<string, 'intended' | 'not-intended'>;

/** Makes sure the data directory exists and is writable; throws EARSHOT_ERR_DATA_DIR otherwise. */
export function prepareDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.write-test-${process.pid}`);
    writeFileSync(probe, '');
    renameSync(probe, join(dir, '.write-test'));
  } catch (err) {
    throw earshotError('EARSHOT_ERR_DATA_DIR', dir, (err as Error).message);
  }
}

/**
 * Loads the state file into the inventory and DNS cache. Returns a warning when the file was damaged
 * (it is then moved aside as state.json.damaged-<time>), null otherwise (also when there is none yet).
 */
export function loadState(dir: string, inventory: Inventory, dns: DnsCache, labels: LabelMap | null = null): string | null {
  const path = join(dir, FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw earshotError('EARSHOT_ERR_DATA_DIR', dir, `cannot read ${FILE}: ${(err as Error).message}`);
  }
  try {
    const state = JSON.parse(text) as Partial<StateFile>;
    if (state.schema !== STATE_SCHEMA) throw new Error(`schema ${JSON.stringify(state.schema)}, expected ${STATE_SCHEMA}`);
    inventory.load(Array.isArray(state.devices) ? state.devices : []);
    dns.load(Array.isArray(state.dns) ? state.dns : []);
    for (const row of Array.isArray(state.labels) ? state.labels : []) {
      if (Array.isArray(row) && typeof row[0] === 'string' && (row[1] === 'intended' || row[1] === 'not-intended')) labels?.set(row[0], row[1]);
    }
    return null;
  } catch (err) {
    const aside = `${path}.damaged-${Date.now()}`;
    renameSync(path, aside);
    return `${path} is damaged (${(err as Error).message.split('\n')[0]}); kept as ${aside}, starting with an empty inventory`;
  }
}

/** Writes the state file atomically. */
export function saveState(dir: string, inventory: Inventory, dns: DnsCache, labels: LabelMap | null = null, now = new Date()): void {
  const state: StateFile = { schema: STATE_SCHEMA, savedAt: now.toISOString(), devices: inventory.save(), dns: dns.rows(), labels: labels ? [...labels] : [] };
  const path = join(dir, FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, JSON.stringify(state));
    renameSync(tmp, path);
  } catch (err) {
    throw earshotError('EARSHOT_ERR_DATA_DIR', dir, `cannot write ${FILE}: ${(err as Error).message}`);
  }
}
