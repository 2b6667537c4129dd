/**
 * `earshot blocklist`: no voice or connectivity-check endpoint, and no entry reported to break an
 * assistant, ever reaches any format's output, not even through a wildcard or a rule that also covers
 * subdomains. The outputs are read back here with each format's own documented meaning (a hosts line
 * blocks one name; dnsmasq address=/x/ blocks x and everything under it, host-record= one name;
 * AdGuard ||x^ x and its subdomains, |x^ x only, * any characters; a Pi-hole line one name, its regex
 * what the regex matches), independently of how cli/blocklist.ts reasons about patterns.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BLOCKLIST_FORMATS, buildBlocklist, renderBlocklist, type BlocklistFormat } from '../cli/blocklist.js';
import { checkBlockFields, loadCatalogFiles, type CatalogEntry } from '../collector/tag/catalog.js';
import { isEarshotError } from '../collector/errors.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

const VENDORS = ['amazon', 'google', 'apple', 'sonos', 'all'];
const shipped = loadCatalogFiles().entries;

/** Names that must keep resolving: from FACTS.md and the issue, plus names built to sit under a safe one. */
const MUST_RESOLVE = [
  'avs-alexa-4-na.amazon.com', 'avs-alexa-14-eu.amazon.com', 'avs-alexa-19-eu.amazon.com', 'x.avs-alexa-4-na.amazon.com',
  'bob-dispatch-prod-na.amazon.com', 'bob-dispatch-prod-eu.amazon.com', 'bob-dispatch-prod-fe.amazon.com',
  'alexa.na.gateway.devices.a2z.com', 'alexa.eu.gateway.devices.a2z.com', 'alexa.amazon.com', 'unagi-na.amazon.com', 'tinytts.amazon.com',
  'device-metrics-us.amazon.com', 'api.amazonalexa.com', 'api.eu.amazonalexa.com', 'softwareupdates.amazon.com',
  'fireoscaptiveportal.com', 'acsechocaptiveportal.com', 'web.diagnostic.networking.aws.dev',
  'www.google.com', 'assistant-s3-pa.googleapis.com', 'clients3.google.com', 'clients4.google.com', 'connectivitycheck.gstatic.com',
  'guzzoni.apple.com', 'origin.guzzoni-apple.com.akadns.net', 'captive.apple.com', 'mesu.apple.com', 'xp.apple.com',
  'example.com', 'www.example.net', 'example.org',
  // a voice name that the catalogue's avs-alexa-* pattern would match, under a name marked safe
  'avs-alexa-1.dcape-na.amazon.com', 'avs-alexa-1.mads.amazon.com', 'a.avs-alexa-1.mads-eu.amazon.com',
];

/** Every protected catalogue pattern instantiated: each * replaced by fillers, one and several labels. */
function protectedSamples(entries: readonly CatalogEntry[]): string[] {
  const fillers = ['1', '14-eu', 'na', 'x.y'];
  const out: string[] = [];
  for (const e of entries) {
    if (!(e.service === 'voice' || e.service === 'connectivity-check' || e.block === 'breaks')) continue;
    for (const f of fillers) out.push(e.pattern.replace(/\*/g, f));
  }
  return out;
}

/** What one output line blocks, as this test reads each format's documentation. */
function matcherOf(line: string, format: BlocklistFormat): ((name: string) => boolean) | null {
  const glob = (text: string, star: string) => new RegExp(`^${text.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join(star)}$`);
  const exactOrUnder = (x: string) => (n: string) => n === x || n.endsWith(`.${x}`);
  switch (format) {
    case 'hosts': {
      const m = /^0\.0\.0\.0 (\S+)$/.exec(line);
      return m ? (n) => n === m[1] : null;
    }
    case 'dnsmasq': {
      const a = /^address=\/([^/]+)\/$/.exec(line);
      if (a) return exactOrUnder(a[1]);
      const h = /^host-record=([^,]+),/.exec(line);
      return h ? (n) => n === h[1] : null;
    }
    case 'pihole': {
      const r = /^# regex: (.+)$/.exec(line);
      if (r) return (n) => new RegExp(r[1]).test(n);
      return line.startsWith('#') || line === '' ? null : (n) => n === line;
    }
    case 'adguard': {
      const sub = /^\|\|(.+)\^$/.exec(line);
      if (sub) { const re = glob(sub[1], '.*'); return (n) => n.split('.').some((_, i, labels) => re.test(labels.slice(i).join('.'))); }
      const exact = /^\|(.+)\^$/.exec(line);
      if (exact) { const re = glob(exact[1], '.*'); return (n) => re.test(n); }
      return null;
    }
    case 'list':
      return line.startsWith('#') || line === '' ? null : ((re) => (n: string) => re.test(n))(glob(line, '.+'));
  }
}

function blocked(output: string, format: BlocklistFormat, names: readonly string[]): string[] {
  const matchers = output.split('\n').map((l) => matcherOf(l, format)).filter((m) => m !== null);
  return names.filter((n) => matchers.some((m) => m(n)));
}

describe('earshot blocklist: what it may never print', () => {
  it('the shipped catalogue: in every format and for every vendor, no protected name is blocked, and the safe ones are', () => {
    const protectedNames = [...MUST_RESOLVE, ...protectedSamples(shipped)];
    for (const format of BLOCKLIST_FORMATS) {
      for (const vendor of VENDORS) {
        const output = renderBlocklist(buildBlocklist(shipped, vendor, format), vendor, format, true);
        expect(blocked(output, format, protectedNames), `${format} ${vendor}`).toEqual([]);
      }
      // dcape-na.amazon.com is marked safe with a source: every format blocks it for amazon
      const amazon = renderBlocklist(buildBlocklist(shipped, 'amazon', format), 'amazon', format, false);
      expect(blocked(amazon, format, ['dcape-na.amazon.com', 'mads.amazon.com']), format).toEqual(['dcape-na.amazon.com', 'mads.amazon.com']);
    }
  });

  it('safe entries that would cover a protected name are left out in every format (a wildcard over amazon.com, the domain itself, ...)', () => {
    const hostile = ['*.amazon.com', 'amazon.com', '*.a2z.com', 'devices.a2z.com', 'a2z.com', '*', 'com', '*.com', 'avs-*', '*-na.amazon.com', 'gstatic.com', '*.google.com', 'google.com', 'apple.com', '*.apple.com', 'akadns.net', 'example.com', 'avs-alexa-1-na.amazon.com', 'aws.dev']
      .map((pattern): CatalogEntry => ({ pattern, vendor: 'amazon', service: 'telemetry', source: 'test', block: 'safe', blockSource: 'a hostile test entry', origin: 'test' }));
    const entries = [...shipped, ...hostile];
    const protectedNames = [...MUST_RESOLVE, ...protectedSamples(shipped)];
    for (const format of BLOCKLIST_FORMATS) {
      for (const vendor of ['amazon', 'all']) {
        const result = buildBlocklist(entries, vendor, format);
        expect(blocked(renderBlocklist(result, vendor, format, true), format, protectedNames), `${format} ${vendor}`).toEqual([]);
        // these cover a protected name whatever the format; the bare domains (amazon.com) may appear only as exact rules
        for (const never of ['*.amazon.com', '*', '*.com', '*.a2z.com', 'avs-*', '*-na.amazon.com', '*.google.com', '*.apple.com', 'avs-alexa-1-na.amazon.com', 'example.com']) {
          expect(result.safe.map((s) => s.pattern), `${format}: ${never}`).not.toContain(never);
        }
      }
    }
  });

  it('random safe patterns never block a protected name (fast-check)', () => {
    const label = fc.stringMatching(/^(avs|alexa|avs-alexa-1|na|eu|[a-z0-9-]{1,6}|\*)$/);
    const pattern = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => [...labels, fc.sample(fc.constantFrom('amazon.com', 'a2z.com', 'google.com', 'gstatic.com', 'apple.com', 'com'), 1)[0]].join('.'));
    const protectedNames = [...MUST_RESOLVE, ...protectedSamples(shipped)];
    fc.assert(fc.property(fc.array(pattern, { minLength: 1, maxLength: 5 }), fc.constantFrom(...BLOCKLIST_FORMATS), (patterns, format) => {
      const entries = [...shipped, ...patterns.map((p): CatalogEntry => ({ pattern: p, vendor: 'amazon', service: 'telemetry', source: 't', block: 'safe', blockSource: 'random test entry', origin: 'test' }))];
      const output = renderBlocklist(buildBlocklist(entries, 'all', format), 'all', format, false);
      expect(blocked(output, format, protectedNames)).toEqual([]);
    }), { numRuns: 300 });
  });

  it('an entry reported to break (device-metrics-us.amazon.com) is never listed, and --explain says why with the source', () => {
    for (const format of BLOCKLIST_FORMATS) {
      const result = buildBlocklist(shipped, 'amazon', format);
      expect(result.safe.map((s) => s.pattern)).not.toContain('device-metrics-us.amazon.com');
      const explained = renderBlocklist(result, 'amazon', format, true);
      expect(explained).toMatch(/device-metrics-us\.amazon\.com \(amazon\): blocking breaks it \(telemetry\)\. Contested\..*StevenBlack\/hosts#596/);
      expect(explained).toMatch(/avs-alexa-\*\.amazon\.com \(amazon\): voice\. .*nextdns\/metadata#516/);
    }
  });

  it('the catalogue refuses a safe voice entry, a verdict without a source, an unknown verdict', () => {
    const cases: Array<[object, RegExp]> = [
      [{ service: 'voice', block: 'safe', blockSource: 'someone said so' }, /a voice endpoint cannot be safe to block/],
      [{ service: 'connectivity-check', block: 'safe', blockSource: 'someone said so' }, /a connectivity-check endpoint cannot be safe/],
      [{ service: 'telemetry', block: 'safe' }, /block needs a blockSource/],
      [{ service: 'telemetry', block: 'maybe', blockSource: 'someone said so' }, /block must be one of safe, breaks, unknown/],
    ];
    for (const [entry, message] of cases) {
      try {
        checkBlockFields(entry as { service: string }, 'catalog/x.json: entries[0]');
        throw new Error('expected an error');
      } catch (err) {
        expect(isEarshotError(err)).toBe(true);
        expect((err as Error).message).toMatch(message);
      }
    }
  });
});

describe('earshot blocklist (the executable)', () => {
  it('prints each format; a protected name from the config stays off the list', async () => {
    const hosts = await runCli(['blocklist', '--vendor', 'amazon', '--format', 'hosts']);
    expect(hosts.code).toBe(0);
    expect(hosts.stdout).toMatch(/^0\.0\.0\.0 dcape-na\.amazon\.com$/m);
    for (const format of BLOCKLIST_FORMATS) {
      const r = await runCli(['blocklist', '--format', format, '--explain']);
      expect(r.code, format).toBe(0);
      expect(blocked(r.stdout, format, MUST_RESOLVE), format).toEqual([]);
    }
    const dir = tempDir('earshot-blocklist-');
    const config = join(dir, 'earshot.yaml');
    writeFileSync(config, 'catalog:\n  - pattern: dcape-na.amazon.com\n    service: voice\n    vendor: amazon\n');
    const mine = await runCli(['blocklist', '--config', config, '--format', 'hosts']);
    expect(mine.code).toBe(0);
    expect(mine.stdout).not.toMatch(/^0\.0\.0\.0 dcape-na/m);
  });

  it('bad flags: one line, exit 2; listed in earshot --help', async () => {
    for (const [args, message] of [
      [['--format', 'bind'], /^earshot: --format: must be one of hosts, dnsmasq, pihole, adguard, list, got "bind"\n$/],
      [['--vendor', 'samsung'], /^earshot: --vendor: must be one of amazon, google, apple, sonos, all, got "samsung"\n$/],
      [['--nope'], /^earshot: blocklist: Unknown option '--nope'.*\n$/],
      [['extra'], /^earshot: .*\n$/],
    ] as const) {
      const r = await runCli(['blocklist', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    }
    const help = await runCli(['--help']);
    expect(help.stdout).toMatch(/^ {2}blocklist +[A-Z]/m);
    const own = await runCli(['blocklist', '--help']);
    for (const flag of ['--vendor', '--format', '--explain']) expect(own.stdout).toContain(flag);
  });
});
