import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { main } from '../cli/index.js';
import type { CliIo } from '../cli/run-capture.js';
import { configReference, exampleConfig } from './config-docs.js';
import { configKeys, loadConfig, unknownEnvironment } from './config.js';
import { isEarshotError } from './errors.js';
import { PROJECT_ROOT } from '../test/helpers/shared.js';
import { tempDir } from '../test/helpers/temp.js';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isEarshotError(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('config', () => {
  const dir = tempDir('earshot-config-');

  it('has defaults for every key', () => {
    const c = loadConfig({});
    expect(c.flows.maxFlows).toBe(65536);
    expect(c.dataDir).toBeNull();
    expect(Object.isFrozen(c.flows)).toBe(true);
  });

  it('layers file < env < flags', () => {
    const file = join(dir, 'a.yaml');
    writeFileSync(file, 'flows:\n  maxFlows: 10\n  udpIdleTimeoutS: 5\nlocalNets: [203.0.113.0/24]\n');
    const c = loadConfig({ file, env: { EARSHOT_FLOWS_MAX_FLOWS: '20', EARSHOT_FLOWS_UDP_IDLE_TIMEOUT_S: '7' }, flags: { 'max-flows': '30' } });
    expect(c.flows.maxFlows).toBe(30);
    expect(c.flows.udpIdleTimeoutS).toBe(7);
    expect(c.localNets).toEqual(['203.0.113.0/24']);
    expect(loadConfig({ flags: { 'local-nets': '10.9.0.0/16, fd00::/8' } }).localNets).toEqual(['10.9.0.0/16', 'fd00::/8']);
  });

  it('rejects unknown keys, wrong types and bad values with one line naming them', () => {
    const file = join(dir, 'b.yaml');
    writeFileSync(file, 'flows:\n  maxFlow: 10\n');
    expect(errorOf(() => loadConfig({ file }))).toMatch(/b\.yaml: flows: unknown key "maxFlow"/);
    writeFileSync(file, 'flows:\n  maxFlows: lots\n');
    expect(errorOf(() => loadConfig({ file }))).toMatch(/b\.yaml: flows\.maxFlows: /);
    expect(errorOf(() => loadConfig({ flags: { 'max-flows': 'x' } }))).toBe('--max-flows: expected an integer, got "x"');
    expect(errorOf(() => loadConfig({ env: { EARSHOT_LOG_LEVEL: 'loud' } }))).toMatch(/^EARSHOT_LOG_LEVEL: must be one of fatal, error/);
    writeFileSync(file, 'flows: [1\n');
    expect(errorOf(() => loadConfig({ file }))).toMatch(/b\.yaml: invalid YAML/);
    expect(errorOf(() => loadConfig({ file: join(dir, 'missing.yaml') }))).toMatch(/missing\.yaml: cannot read config: no such file/);
    expect(errorOf(() => loadConfig({ file: dir }))).toMatch(/cannot read config: is a directory/);
    writeFileSync(file, '- a\n- b\n');
    expect(errorOf(() => loadConfig({ file }))).toMatch(/top level must be a mapping/);
  });

  it('a list given as a mapping is refused, naming where (it became an empty list: one webhook turned the alerts off)', () => {
    const file = join(dir, 'list.yaml');
    const words = 'must be a list, got a mapping (a list of one: "- ..." in YAML, [{...}] in JSON)';
    writeFileSync(file, 'alerts:\n  webhooks:\n    url: http://127.0.0.1:9/hook\n');
    expect(errorOf(() => loadConfig({ file }))).toBe(`${file}: alerts.webhooks: ${words}`);
    writeFileSync(file, 'localNets: {a: 1}\n');
    expect(errorOf(() => loadConfig({ file }))).toBe(`${file}: localNets: ${words}`);
    expect(errorOf(() => loadConfig({ flags: { webhooks: '{"url":"http://127.0.0.1:9/x"}' } }))).toBe(`--webhooks: ${words}`);
    expect(errorOf(() => loadConfig({ env: { EARSHOT_ALERTS_WEBHOOKS: '{"url":"http://x/"}' } }))).toBe(`EARSHOT_ALERTS_WEBHOOKS: ${words}`);
    // every list key of the schema
    const lists = configKeys().filter((k) => (k.schema as { type?: string }).type === 'array');
    expect(lists.length).toBeGreaterThanOrEqual(8);
    for (const key of lists) {
      const raw: Record<string, unknown> = {};
      let at = raw;
      for (const part of key.path.slice(0, -1)) at = (at[part] = {}) as Record<string, unknown>;
      at[key.path[key.path.length - 1]] = { a: 1 };
      writeFileSync(file, JSON.stringify(raw));
      expect(errorOf(() => loadConfig({ file })), key.path.join('.')).toBe(`${file}: ${key.path.join('.')}: ${words}`);
    }
    // a list of one is fine
    writeFileSync(file, 'alerts:\n  webhooks:\n    - url: http://127.0.0.1:9/hook\n');
    expect(loadConfig({ file }).alerts.webhooks).toHaveLength(1);
  });

  it('derives a flag and an environment variable for every key', () => {
    const flags = configKeys().map((k) => k.flag);
    expect(new Set(flags).size).toBe(flags.length);
    expect(configKeys().find((k) => k.flag === 'data-dir')?.env).toBe('EARSHOT_DATA_DIR');
    // a capital after a capital starts no word: the name a person writes (it was EARSHOT_INFLUX_SPOOL_MAX_M_B)
    expect(configKeys().find((k) => k.flag === 'influx-spool-max-mb')?.env).toBe('EARSHOT_INFLUX_SPOOL_MAX_MB');
    expect(configKeys().find((k) => k.flag === 'api-body-limit')?.env).toBe('EARSHOT_API_BODY_LIMIT_KB');
    expect(configKeys().every((k) => /^EARSHOT_[A-Z0-9]+(_[A-Z0-9]+)*$/.test(k.env) && !/_[A-Z0-9]_[A-Z0-9]$/.test(k.env))).toBe(true);
    // the old spelling is still read
    expect(loadConfig({ env: { EARSHOT_INFLUX_SPOOL_MAX_M_B: '7' } }).influx.spoolMaxMB).toBe(7);
    expect(loadConfig({ env: { EARSHOT_INFLUX_SPOOL_MAX_MB: '9', EARSHOT_INFLUX_SPOOL_MAX_M_B: '7' } }).influx.spoolMaxMB).toBe(9);
  });

  it('an EARSHOT_ variable that is no setting is named in a warning with the closest setting (it did nothing, in silence)', () => {
    expect(unknownEnvironment({ EARSHOT_MAX_FLOWS: '5', EARSHOT_FLOWS_MAX_FLOWS: '5', EARSHOT_CONFIG: 'x.yaml', EARSHOT_FEED_ROUTER: 'r', PATH: '/bin' }))
      .toEqual(['EARSHOT_MAX_FLOWS is set but is no setting of earshot: ignored (did you mean EARSHOT_FLOWS_MAX_FLOWS?); the settings: docs/configuration.md']);
    expect(unknownEnvironment({ EARSHOT_INFLUX_SPOOL_MAX_M_B: '1', EARSHOT_API_TOKEN: 't' })).toEqual([]);
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`EARSHOT_X${i}`, '1']));
    expect(unknownEnvironment(many)).toHaveLength(20);
  });

  it('a key "__proto__" is refused as unknown, at any depth (it became the prototype: neither applied nor refused)', () => {
    const file = join(dir, 'proto.yaml');
    writeFileSync(file, '__proto__:\n  site: "BAD SITE!"\n');
    expect(errorOf(() => loadConfig({ file }))).toBe(`${file}: (top level): unknown key "__proto__"`);
    writeFileSync(file, 'flows:\n  __proto__:\n    maxFlows: 1\n');
    expect(errorOf(() => loadConfig({ file }))).toBe(`${file}: flows: unknown key "__proto__"`);
  });

  it('generated docs are up to date (npm run docs:config)', () => {
    expect(readFileSync(join(PROJECT_ROOT, 'docs/configuration.md'), 'utf8')).toBe(configReference());
    expect(readFileSync(join(PROJECT_ROOT, 'deploy/earshot.example.yaml'), 'utf8')).toBe(exampleConfig());
  });

  it('the example config loads and equals the defaults', () => {
    expect(loadConfig({ file: join(PROJECT_ROOT, 'deploy/earshot.example.yaml') })).toEqual(loadConfig({}));
  });

  it('a recursive YAML alias, or nesting past 32 levels, is one line naming where (not a stack overflow)', () => {
    const file = join(dir, 'alias.yaml');
    writeFileSync(file, 'a: &a [*a]\n');
    expect(errorOf(() => loadConfig({ file }))).toBe(`${file}: invalid YAML: a.0: an alias refers to the anchor it is inside (a recursive alias)`);
    writeFileSync(file, 'detect: &d\n  quietHours: [*d]\n');
    expect(errorOf(() => loadConfig({ file }))).toMatch(/alias\.yaml: invalid YAML: detect\.quietHours\.0: an alias refers to the anchor it is inside/);
    writeFileSync(file, `flows: ${'['.repeat(40)}${']'.repeat(40)}\n`);
    expect(errorOf(() => loadConfig({ file }))).toBe(`${file}: invalid YAML: flows.0.0.0...: nested more than 32 levels deep`);
    writeFileSync(file, `flows: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`);
    expect(errorOf(() => loadConfig({ file }))).toBe(`${file}: invalid YAML: nested too deep (more than 32 levels)`);
    // an anchor used twice side by side is no cycle
    writeFileSync(file, 'detect:\n  quietHours: &q ["23:00-07:00"]\nlocalNets: []\ncatalog: []\n');
    expect(loadConfig({ file }).detect.quietHours).toEqual(['23:00-07:00']);
  });

  it('a devices key that is not a MAC address is refused, naming it', () => {
    const file = join(dir, 'devices.yaml');
    writeFileSync(file, 'devices:\n  "aa:bb:cc:dd:ee:ff": { name: Kitchen }\n  kitchen-echo: { name: Echo }\n');
    expect(errorOf(() => loadConfig({ file }))).toBe(`${file}: devices: "kitchen-echo" is not a MAC address (aa:bb:cc:dd:ee:ff)`);
    expect(errorOf(() => loadConfig({ flags: { devices: '{"aa:bb:cc:dd:ee":{}}' } }))).toBe('--devices: "aa:bb:cc:dd:ee" is not a MAC address (aa:bb:cc:dd:ee:ff)');
    writeFileSync(file, 'devices:\n  "AA-BB-CC-DD-EE-FF": { name: Kitchen }\n');
    expect(loadConfig({ file }).devices).toEqual({ 'AA-BB-CC-DD-EE-FF': { name: 'Kitchen' } });
    // the same device spelt two ways: the last won in silence
    writeFileSync(file, 'devices:\n  "68-DB-F5-90-19-64": { name: Kitchen }\n  "68:db:f5:90:19:64": { name: Hall }\n');
    expect(errorOf(() => loadConfig({ file }))).toBe(`${file}: devices: "68-DB-F5-90-19-64" and "68:db:f5:90:19:64" are the same device (68:db:f5:90:19:64): write it once`);
  });
});

describe('messages a person can act on (found by an audit)', () => {
  it('names the place inside a JSON flag, the fields a list item or device has, a missing field, and bounds in words', () => {
    expect(errorOf(() => loadConfig({ flags: { devices: '{"aa:bb:cc:dd:ee:ff":{"assistant":"siri2"}}' } }))).toBe('--devices: "aa:bb:cc:dd:ee:ff".assistant: expected boolean');
    // a misspelt field of a device, not "is not a MAC address"
    expect(errorOf(() => loadConfig({ flags: { devices: '{"aa:bb:cc:dd:ee:ff":{"nmae":"x"}}' } }))).toBe('--devices: "aa:bb:cc:dd:ee:ff": unknown key "nmae" (known: name, assistant, vendor, model)');
    // the known keys of a list item (the list was empty)
    expect(errorOf(() => loadConfig({ flags: { webhooks: '[{"url":"http://x","bogus":1}]' } }))).toBe('--webhooks: [0]: unknown key "bogus" (known: url, preset, on, notices, secret, headers, name)');
    expect(errorOf(() => loadConfig({ flags: { catalog: '[{"pattern":"*"}]' } }))).toMatch(/^--catalog: \[0\]\.service: missing \(one of voice, /);
    // a pattern in words, not the regular expression (lower-cased on the way)
    expect(errorOf(() => loadConfig({ flags: { listen: 'nohost' } }))).toBe('--listen: must be HOST:PORT such as 127.0.0.1:8377 ([::1]:8377 for IPv6), got "nohost"');
    expect(errorOf(() => loadConfig({ flags: { 'influx-raw-retention': 'forever' } }))).toBe('--influx-raw-retention: must be an InfluxQL duration such as 30d, 12h or 104w, or INF for ever, got "forever"');
    expect(errorOf(() => loadConfig({ flags: { 'max-flows': '-1' } }))).toBe('--max-flows: must be at least 1, got -1');
  });

  it('a flag with a value given twice is refused (the last won in silence: collect --file a --file b read b only)', async () => {
    let stderr = '';
    const sink = (append: (text: string) => void) => ({ write: (chunk: string | Buffer) => { append(String(chunk)); return true; }, isTTY: false }) as unknown as NodeJS.WriteStream;
    const io: CliIo = { stdout: sink(() => undefined), stderr: sink((text) => { stderr += text; }), env: {} };
    expect(await main(['collect', '--file', 'a.pcap', '--file', 'b.pcapng'], io)).toBe(2);
    expect(await main(['catalog', '--local-nets', '10.0.0.0/8', '--local-nets=10.1.0.0/16'], io)).toBe(2);
    // the same value twice is no conflict (a wrapper's flag and the user's)
    expect(await main(['catalog', '--format', 'text', '--format', 'text', '--vendor', 'sonos'], io)).toBe(0);
    expect(stderr).toBe('earshot: collect: --file given twice ("a.pcap" and "b.pcapng"): give it once\n'
      + 'earshot: catalog: --local-nets given twice ("10.0.0.0/8" and "10.1.0.0/16"): give it once, its values separated by commas\n');
  });

  it('a negative number after a flag is its value, not "ambiguous"', async () => {
    let stderr = '';
    const sink = (append: (text: string) => void) => ({ write: (chunk: string | Buffer) => { append(String(chunk)); return true; }, isTTY: false }) as unknown as NodeJS.WriteStream;
    const io: CliIo = { stdout: sink(() => undefined), stderr: sink((text) => { stderr += text; }), env: {} };
    expect(await main(['catalog', '--max-flows', '-1'], io)).toBe(2);
    expect(stderr).toBe('earshot: --max-flows: must be at least 1, got -1\n');
  });
});

/** Runs `earshot catalog --config FILE` in-process, as the executable would, and returns what it said. */
async function catalogWith(file: string): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const sink = (append: (text: string) => void) => ({ write: (chunk: string | Buffer) => { append(String(chunk)); return true; }, isTTY: false }) as unknown as NodeJS.WriteStream;
  const io: CliIo = { stdout: sink(() => undefined), stderr: sink((text) => { stderr += text; }), env: {} };
  const code = await main(['catalog', '--config', file, '--format', 'text', '--vendor', 'sonos'], io);
  return { code, stderr };
}

describe('config files, fuzzed', () => {
  const dir = tempDir('earshot-config-fuzz-');
  const example = readFileSync(join(PROJECT_ROOT, 'deploy/earshot.example.yaml'));
  const withDevices = Buffer.from([
    'dataDir: null',
    'devices:',
    '  "f0:27:2d:8a:1b:2c": &echo { name: Kitchen Echo, assistant: true, vendor: amazon, model: Echo Dot }',
    '  "68-db-f5-90-19-64": { name: "Living room", assistant: true }',
    '  "aa:bb:cc:dd:ee:01": { assistant: false }',
    'catalog:',
    '  - { pattern: "*.example.com", service: voice, vendor: amazon, source: "own list" }',
    'detect:',
    '  quietHours: ["23:00-07:00", "13:00-14:00"]',
    '  timeZone: Europe/Berlin',
    'alerts:',
    '  webhooks:',
    '    - { url: "http://127.0.0.1:9/hook", preset: slack, on: all, secret: "0123456789abcdef", headers: { X-A: b } }',
    'log: { level: warn, format: text }',
    '',
  ].join('\n'));

  it('the base files load', async () => {
    for (const [name, bytes] of [['example.yaml', example], ['devices.yaml', withDevices]] as const) {
      const file = join(dir, name);
      writeFileSync(file, bytes);
      expect(await catalogWith(file)).toEqual({ code: 0, stderr: '' });
    }
  });

  it('truncated or with flipped bytes: exit 0, or exit 2 with one "earshot:" line; never an internal error', async () => {
    const file = join(dir, 'fuzzed.yaml');
    const mutation = fc.record({
      base: fc.constantFrom('example', 'withDevices'),
      cut: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
      flips: fc.array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), byte: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }),
      // YAML's own syntax, where a random byte rarely makes any: anchors, aliases, merges, tags, nesting
      inserts: fc.array(fc.record({
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        token: fc.constantFrom('&a ', '*a', ' [*a]', '<<: *a\n', '[', ']', '{', '}', ': ', '\n  ', '\n- ', '"', "'", '#', '!!binary ', '!!map ', '? ', '---\n', '%YAML 1.1\n', '\t', '__proto__: ', 'constructor: '),
      }), { maxLength: 4 }),
    });
    await fc.assert(fc.asyncProperty(mutation, async ({ base, cut, flips, inserts }) => {
      const original = base === 'example' ? example : withDevices;
      let bytes = Buffer.from(original.subarray(0, cut === null ? original.length : Math.floor(cut * original.length)));
      for (const f of flips) if (bytes.length > 0) bytes[Math.floor(f.at * bytes.length)] = f.byte;
      for (const i of inserts) {
        const at = Math.floor(i.at * bytes.length);
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(i.token), bytes.subarray(at)]);
      }
      writeFileSync(file, bytes);
      const { code, stderr } = await catalogWith(file);
      expect([0, 2]).toContain(code);
      expect(stderr).not.toMatch(/internal error|\n\s+at /);
      if (code === 2) {
        expect(stderr.endsWith('\n')).toBe(true);
        expect(stderr.slice(0, -1).split('\n')).toHaveLength(1);
        expect(stderr).toMatch(/^earshot: /);
      }
    }), { numRuns: 600, seed: 14 });
  }, 120_000);
});

