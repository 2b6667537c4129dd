/**
 * The endpoint catalogue: host-name patterns -> vendor and service class, one data file per vendor
 * (collector/tag/catalog/*.json), each entry with its source, plus the user's entries from config.
 * Patterns are compiled once; lookups are cached (names repeat a lot, flows are many).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { earshotError } from '../errors.js';
import { packagePath } from '../paths.js';

export const SERVICES = ['voice', 'telemetry', 'api', 'media', 'update', 'connectivity-check', 'time', 'push', 'network', 'other'] as const;
export type Service = (typeof SERVICES)[number];

/** Whether blocking a name by DNS leaves the assistant working: only 'safe' names with a source are ever put on a blocklist. */
export const BLOCK_VERDICTS = ['safe', 'breaks', 'unknown'] as const;
export type BlockVerdict = (typeof BLOCK_VERDICTS)[number];

export interface CatalogEntry {
  pattern: string;
  vendor: string | null;
  service: Service;
  source: string;
  /** The service holds only when an assistant of this vendor is the client (www.google.com is voice for a Nest, browsing for a phone). */
  assistantOnly?: boolean;
  /** Whether blocking it by DNS breaks the assistant (voice, connectivity, updates); unset = unknown. */
  block?: BlockVerdict;
  /** Who reported what blocking it does (issue threads, vendor documents). */
  blockSource?: string;
  /** Where the entry was loaded from (file name or "config"). */
  origin: string;
}

export interface VoicePrefix {
  vendor: string;
  prefix: string;
  source: string;
}

interface CatalogFile {
  vendor: string | null;
  updated: string;
  entries: Array<{ pattern: string; service: string; source: string; assistantOnly?: boolean; block?: string; blockSource?: string }>;
  voicePrefixes?: Array<{ prefix: string; source: string }>;
}

interface Compiled {
  entry: CatalogEntry;
  regex: RegExp;
  /** Literal characters in the pattern: more is more specific. */
  weight: number;
}

const CACHE_LIMIT = 50_000;

function compile(entry: CatalogEntry): Compiled {
  const pattern = entry.pattern.toLowerCase();
  const body = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.+');
  return { entry, regex: new RegExp(`^${body}$`), weight: pattern.replace(/\*/g, '').length };
}

function checkEntry(e: { pattern?: unknown; service?: unknown }, where: string): void {
  if (typeof e.pattern !== 'string' || !/^[a-z0-9*._-]+$/i.test(e.pattern)) {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `pattern must be a host name with * wildcards, got ${JSON.stringify(e.pattern)}`);
  }
  if (!SERVICES.includes(e.service as Service)) {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `service must be one of ${SERVICES.join(', ')}, got ${JSON.stringify(e.service)}`);
  }
}

/** The block fields of a shipped entry: a verdict from the list; 'safe' needs its source and never goes on a voice or connectivity name. */
function checkBlock(e: { service: string; block?: unknown; blockSource?: unknown }, where: string): void {
  if (e.block === undefined) return;
  if (!BLOCK_VERDICTS.includes(e.block as BlockVerdict)) {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `block must be one of ${BLOCK_VERDICTS.join(', ')}, got ${JSON.stringify(e.block)}`);
  }
  if (typeof e.blockSource !== 'string' || e.blockSource.length < 8) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, 'block needs a blockSource saying who reported it');
  if (e.block === 'safe' && (e.service === 'voice' || e.service === 'connectivity-check')) {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `a ${e.service} endpoint cannot be safe to block`);
  }
}

/** Reads the shipped catalogue files (sync, at setup). */
export function loadCatalogFiles(): { entries: CatalogEntry[]; voicePrefixes: VoicePrefix[]; files: Array<{ file: string; vendor: string | null; updated: string }> } {
  const entries: CatalogEntry[] = [];
  const voicePrefixes: VoicePrefix[] = [];
  const files: Array<{ file: string; vendor: string | null; updated: string }> = [];
  const dir = packagePath('collector', 'tag', 'catalog');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const data = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CatalogFile;
    files.push({ file, vendor: data.vendor, updated: data.updated });
    for (const [i, e] of data.entries.entries()) {
      checkEntry(e, `catalog/${file}: entries[${i}]`);
      checkBlock(e, `catalog/${file}: entries[${i}]`);
      const block = e.block === undefined ? {} : { block: e.block as BlockVerdict, blockSource: e.blockSource };
      entries.push({ pattern: e.pattern, vendor: data.vendor, service: e.service as Service, source: e.source, assistantOnly: e.assistantOnly, ...block, origin: file });
    }
    for (const v of data.voicePrefixes ?? []) if (data.vendor) voicePrefixes.push({ vendor: data.vendor, prefix: v.prefix, source: v.source });
  }
  return { entries, voicePrefixes, files };
}

/** User entries from config (`catalog` key). */
export interface UserCatalogEntry {
  pattern: string;
  service: string;
  vendor?: string | null;
  source?: string;
}

/** Builds the catalogue from the shipped files plus `extra` (config); user entries win over shipped ones. */
export function buildCatalog(extra: readonly UserCatalogEntry[] = []) {
  const shipped = loadCatalogFiles();
  const user = extra.map((e, i): CatalogEntry => {
    checkEntry(e, `catalog[${i}]`);
    return { pattern: e.pattern, vendor: e.vendor ?? null, service: e.service as Service, source: e.source ?? 'user configuration', origin: 'config' };
  });
  // user entries first, then the most specific pattern first
  const compiled = [...user.map(compile), ...shipped.entries.map(compile).sort((a, b) => b.weight - a.weight)];
  const match = indexPatterns(compiled);
  const cache = new Map<string, CatalogEntry | null>();

  return {
    entries: [...user, ...shipped.entries],
    voicePrefixes: shipped.voicePrefixes,
    files: shipped.files,
    /** The entry for a host name (case-insensitive), or null. */
    lookup(name: string): CatalogEntry | null {
      const key = name.toLowerCase();
      let hit = cache.get(key);
      if (hit !== undefined) return hit;
      hit = match(key);
      if (cache.size >= CACHE_LIMIT) cache.clear();
      cache.set(key, hit);
      return hit;
    },
  };
}

export type Catalog = ReturnType<typeof buildCatalog>;

/** Line terminators: `.` in a pattern's regex does not match them (see indexPatterns). */
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/**
 * The first of `compiled` (in order: user entries, then the most specific) whose pattern matches a
 * lower-case name, found by lookups instead of a test of every pattern's regex: a name (`a.b.c`) in a
 * map of the patterns without `*`, each of its suffixes after a dot (`b.c`, `c`) in a map of the
 * `*.suffix` patterns, and the regexes of the few others (`avs-alexa-*.amazon.com`) tried only while
 * they could still come first. The same answer as the regexes (catalog.test.ts compares them): a new
 * name cost a test of all 78 shipped patterns, ~5 us, which names in forged DNS answers paid each.
 */
function indexPatterns(compiled: ReadonlyArray<{ entry: CatalogEntry; regex: RegExp }>): (name: string) => CatalogEntry | null {
  const exact = new Map<string, number>();
  const suffix = new Map<string, number>();
  const other: number[] = [];
  compiled.forEach((c, i) => {
    const pattern = c.entry.pattern.toLowerCase();
    const star = pattern.indexOf('*');
    if (star < 0) {
      if (!exact.has(pattern)) exact.set(pattern, i);
    } else if (star === 0 && pattern[1] === '.' && pattern.indexOf('*', 1) < 0) {
      const rest = pattern.slice(2);
      if (!suffix.has(rest)) suffix.set(rest, i);
    } else {
      other.push(i);
    }
  });
  const byRegex = (name: string): CatalogEntry | null => compiled.find((c) => c.regex.test(name))?.entry ?? null;
  return (name) => {
    // `*` stands for one or more characters other than a line terminator: such a name (forged) takes the regexes
    if (LINE_TERMINATOR.test(name)) return byRegex(name);
    let best = exact.get(name) ?? Number.POSITIVE_INFINITY;
    for (let dot = name.indexOf('.', 1); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      const i = suffix.get(name.slice(dot + 1));
      if (i !== undefined && i < best) best = i;
    }
    for (const i of other) {
      if (i >= best) break;
      if (compiled[i].regex.test(name)) {
        best = i;
        break;
      }
    }
    return best === Number.POSITIVE_INFINITY ? null : compiled[best].entry;
  };
}

/** For tests of the data: checks one shipped entry's block fields as the loader does. */
export const checkBlockFields = checkBlock;
