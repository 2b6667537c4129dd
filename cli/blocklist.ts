/**
 * `earshot blocklist`: the catalogue's names that are safe to block by DNS (telemetry, analytics, ads:
 * entries marked `"block": "safe"` with a `blockSource`), as a hosts file, dnsmasq, Pi-hole, AdGuard or
 * plain list, for one assistant vendor or all; with --explain also the names that must not be blocked
 * (voice, connectivity checks, entries marked "breaks"), why, and who said so.
 *
 * The guarantee: no rule ever covers a name that must not be blocked. Each rule is turned back into the
 * set of names its format makes it cover (dnsmasq and AdGuard rules also cover every subdomain; a
 * hosts line only its own name) and intersected with every protected pattern; a rule that meets one is
 * left out and said so in a comment. Wildcards (`mads-*.amazon.com`) become a Pi-hole regex over one
 * label and an AdGuard `*`; hosts and dnsmasq cannot say them, so those formats list them as comments.
 */
import { registrableDomain } from '../collector/privacy/orgs.js';
import { buildCatalog, type CatalogEntry } from '../collector/tag/catalog.js';
import { earshotError } from '../collector/errors.js';
import type { CommandSpec, ParsedCommand } from './args.js';
import type { CliIo } from './run-capture.js';

export const BLOCKLIST_FORMATS = ['hosts', 'dnsmasq', 'pihole', 'adguard', 'list'] as const;
export type BlocklistFormat = (typeof BLOCKLIST_FORMATS)[number];
export const BLOCKLIST_VENDORS = ['amazon', 'google', 'apple', 'sonos', 'all'] as const;

export const blocklistSpec: CommandSpec = {
  name: 'blocklist',
  summary: 'Prints the telemetry and ad names that are safe to block for an assistant (from the catalogue, each with its source) as hosts, dnsmasq, Pi-hole, AdGuard or a plain list; --explain adds the voice and connectivity names that must not be blocked, and why.',
  usage: 'earshot blocklist [--vendor amazon|google|apple|sonos|all] [--format hosts|dnsmasq|pihole|adguard|list] [--explain]',
  positionals: [0, 0],
  config: true,
  flags: {
    vendor: { type: 'string', value: 'VENDOR', description: 'Only this assistant vendor\'s names: amazon, google, apple, sonos or all.', default: 'all' },
    format: { type: 'string', value: 'FORMAT', description: 'hosts (0.0.0.0 name), dnsmasq (address=/name/), pihole (domain list; wildcards as regex comments), adguard (||name^) or list (one name or pattern a line).', default: 'hosts' },
    explain: { type: 'boolean', description: 'Also list, as comments, the names that must not be blocked, with the reason and its source.' },
  },
  epilog: 'Only entries marked safe with a cited source are listed; a name reported to break an assistant is never listed, even when others call it telemetry. See docs/privacy.md.',
};

// ---- name patterns as small automata: literal characters, "any one char" and "one non-dot char", each optionally repeated ----

interface Item { cls: string | 'ANY' | 'LABEL'; star: boolean }

/** A catalogue pattern: `*` is one or more characters of any kind (as the catalogue matches it). */
function catalogueItems(pattern: string): Item[] {
  return [...pattern.toLowerCase()].flatMap((c): Item[] => (c === '*' ? [{ cls: 'ANY', star: false }, { cls: 'ANY', star: true }] : [{ cls: c, star: false }]));
}

/** What a rule covers as items: `*` as `star` (one or more of any, or of one label's characters). */
function ruleItems(text: string, star: 'ANY' | 'LABEL'): Item[] {
  return [...text].flatMap((c): Item[] => (c === '*' ? [{ cls: star, star: false }, { cls: star, star: true }] : [{ cls: c, star: false }]));
}

/** Items for "any subdomain of": one or more characters, then a dot. */
const SUBDOMAIN: Item[] = [{ cls: 'ANY', star: false }, { cls: 'ANY', star: true }, { cls: '.', star: false }];

function classesMeet(a: Item['cls'], b: Item['cls']): boolean {
  if (a === 'ANY' || b === 'ANY') return true;
  if (a === 'LABEL') return b !== '.';
  if (b === 'LABEL') return a !== '.';
  return a === b;
}

/** Whether some name matches both item lists (reachability in the product of the two automata). */
export function patternsMeet(a: Item[], b: Item[]): boolean {
  const seen = new Set<number>();
  const stack: Array<[number, number]> = [[0, 0]];
  const width = b.length + 1;
  while (stack.length > 0) {
    const [i, j] = stack.pop() as [number, number];
    if (seen.has(i * width + j)) continue;
    seen.add(i * width + j);
    if (i === a.length && j === b.length) return true;
    if (i < a.length && a[i].star) stack.push([i + 1, j]);
    if (j < b.length && b[j].star) stack.push([i, j + 1]);
    if (i < a.length && j < b.length && classesMeet(a[i].cls, b[j].cls)) stack.push([a[i].star ? i : i + 1, b[j].star ? j : j + 1]);
  }
  return false;
}

/** Whether `name` (a concrete host name) matches a catalogue pattern. */
export function nameMatches(name: string, pattern: string): boolean {
  return patternsMeet(catalogueItems(name.replace(/\*/g, '')), catalogueItems(pattern));
}

// ---- the rules ----

/** Why a name must not be blocked. */
export interface Protected { pattern: string; vendor: string | null; reason: string; source: string }

/** The names no rule may cover: voice, connectivity checks, and anything reported to break. */
export function protectedEntries(entries: readonly CatalogEntry[]): Protected[] {
  return entries.filter((e) => e.service === 'voice' || e.service === 'connectivity-check' || e.block === 'breaks').map((e) => ({
    pattern: e.pattern,
    vendor: e.vendor,
    reason: e.service === 'voice' ? 'voice' : e.service === 'connectivity-check' ? 'connectivity check' : `blocking breaks it (${e.service})`,
    source: e.blockSource ?? e.source,
  }));
}

interface Rule { line: string; covers: Item[][] }

/**
 * The rules a format can write for a pattern, preferred first, each with the names it covers; empty
 * when the format cannot say it. The first that covers no protected name is used.
 */
function rulesFor(pattern: string, format: BlocklistFormat): Rule[] {
  const wildcard = pattern.includes('*');
  const exact = ruleItems(pattern, 'ANY');
  const withSubdomains = [exact, [...SUBDOMAIN, ...exact]];
  switch (format) {
    case 'hosts':
      return wildcard ? [] : [{ line: `0.0.0.0 ${pattern}`, covers: [exact] }];
    case 'dnsmasq':
      // address=/name/ answers NXDOMAIN for the name and every name under it; host-record answers
      // 0.0.0.0 and :: for that one name only (used when a protected name could sit under it)
      return wildcard ? [] : [{ line: `address=/${pattern}/`, covers: withSubdomains }, { line: `host-record=${pattern},0.0.0.0,::`, covers: [exact] }];
    case 'pihole':
      // an exact entry blocks that name only; a wildcard becomes a regex over one label (narrower than the catalogue's)
      if (!wildcard) return [{ line: pattern, covers: [exact] }];
      return [{ line: `# regex: ^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^.]+')}$`, covers: [ruleItems(pattern, 'LABEL')] }];
    case 'adguard':
      // ||name^ blocks the name and its subdomains, |name^ the name only (AdGuardHome#3998); AdGuard's * spans dots too
      return [{ line: `||${pattern}^`, covers: withSubdomains }, { line: `|${pattern}^`, covers: [exact] }];
    case 'list':
      return [{ line: pattern, covers: [catalogueItems(pattern)] }];
  }
}

/** One line of the output with what it stands for. */
export interface BlocklistResult {
  /** The rules, in the format's own syntax. */
  rules: string[];
  /** Safe entries left out, with why (the format cannot say a wildcard, or the rule would cover a protected name). */
  skipped: Array<{ pattern: string; why: string }>;
  /** The names that must not be blocked (for --explain). */
  protectedNames: Protected[];
  /** The safe entries used, with their sources. */
  safe: Array<{ pattern: string; vendor: string | null; service: string; source: string }>;
}

/** Builds the blocklist for `vendor` ('all' or one) in `format` from catalogue entries. */
export function buildBlocklist(entries: readonly CatalogEntry[], vendor: string, format: BlocklistFormat): BlocklistResult {
  const ofVendor = (e: { vendor: string | null }) => vendor === 'all' || e.vendor === vendor;
  // every vendor's protected names guard every rule: one home often has several assistants
  const protectedNames = protectedEntries(entries);
  const guards = protectedNames.map((p) => catalogueItems(p.pattern));
  const result: BlocklistResult = { rules: [], skipped: [], protectedNames: protectedNames.filter(ofVendor), safe: [] };
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.block !== 'safe' || !e.blockSource || e.service === 'voice' || e.service === 'connectivity-check' || !ofVendor(e) || seen.has(e.pattern)) continue;
    seen.add(e.pattern);
    // a rule must stay under one registrable domain: '*', '*.com' or 'avs-*' would reach names nobody listed
    const tail = e.pattern.slice(e.pattern.lastIndexOf('*') + 1).replace(/^[.-]+/, '');
    if (registrableDomain(tail) === null) {
      result.skipped.push({ pattern: e.pattern, why: 'not under one registrable domain' });
      continue;
    }
    const candidates = rulesFor(e.pattern, format);
    if (candidates.length === 0) {
      result.skipped.push({ pattern: e.pattern, why: `${format} cannot express a wildcard` });
      continue;
    }
    const meets = (rule: Rule) => protectedNames.find((_, i) => rule.covers.some((cover) => patternsMeet(cover, guards[i])));
    const rule = candidates.find((r) => meets(r) === undefined);
    if (rule === undefined) {
      const hit = meets(candidates[candidates.length - 1]) as Protected;
      result.skipped.push({ pattern: e.pattern, why: `the ${format} rule would also cover ${hit.pattern} (${hit.reason})` });
      continue;
    }
    result.rules.push(rule.line);
    result.safe.push({ pattern: e.pattern, vendor: e.vendor, service: e.service, source: e.blockSource });
  }
  return result;
}

/** The text of the output: a header, the rules, and comments. */
export function renderBlocklist(result: BlocklistResult, vendor: string, format: BlocklistFormat, explain: boolean): string {
  const c = format === 'adguard' ? '!' : '#';
  const lines = [
    `${c} earshot blocklist: names safe to block for ${vendor === 'all' ? 'every assistant vendor' : vendor} (${format} format)`,
    `${c} Only catalogue entries marked safe with a source; a name reported to break an assistant is never listed.`,
  ];
  if (result.safe.length === 0) lines.push(`${c} No entry for ${vendor} is marked safe to block with a cited source.`);
  for (const s of result.safe) lines.push(`${c}   ${s.pattern} (${s.vendor ?? 'any'}, ${s.service}): ${s.source}`);
  for (const s of result.skipped) lines.push(`${c} left out: ${s.pattern}: ${s.why}`);
  if (format === 'pihole' && result.rules.some((r) => r.startsWith('# regex:'))) lines.push(`${c} Wildcards are regex comments: add each with pihole --regex '...' (a domain list cannot hold them).`);
  if (!explain) lines.push(`${c} earshot blocklist --explain lists the names that must not be blocked, and why.`);
  lines.push(...result.rules);
  if (explain) {
    lines.push(`${c}`, `${c} Must NOT be blocked (${result.protectedNames.length}):`);
    for (const p of result.protectedNames) lines.push(`${c}   ${p.pattern} (${p.vendor ?? 'any'}): ${p.reason}. ${p.source}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Runs `earshot blocklist`. */
export async function runBlocklist(parsed: ParsedCommand, io: CliIo): Promise<number> {
  const vendor = String(parsed.flags.vendor ?? 'all');
  const format = String(parsed.flags.format ?? 'hosts');
  if (!(BLOCKLIST_VENDORS as readonly string[]).includes(vendor)) throw earshotError('EARSHOT_ERR_USAGE', `--vendor: must be one of ${BLOCKLIST_VENDORS.join(', ')}, got "${vendor}"`);
  if (!(BLOCKLIST_FORMATS as readonly string[]).includes(format)) throw earshotError('EARSHOT_ERR_USAGE', `--format: must be one of ${BLOCKLIST_FORMATS.join(', ')}, got "${format}"`);
  // the config's own entries join the protected names (a user's voice entry is protected too); only shipped entries can be safe
  const entries = buildCatalog(parsed.config.catalog).entries;
  const result = buildBlocklist(entries, vendor, format as BlocklistFormat);
  io.stdout.write(renderBlocklist(result, vendor, format as BlocklistFormat, parsed.flags.explain === true));
  return 0;
}
