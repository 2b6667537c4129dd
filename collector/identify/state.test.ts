/**
 * The state file: names and labels kept across a restart; after a torn write (truncated, zero-filled,
 * NUL-padded, emptied, a directory in its place) or with rows earshot never writes, a start moves it
 * aside with a warning naming it and keeps what checks out; random truncations and byte flips never
 * make a start throw.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/temp.js';
import { isEarshotError } from '../errors.js';
import { DnsAnswer } from '../flow/payload.js';
import { DnsCache } from '../tag/dns-cache.js';
import { Inventory } from './inventory.js';
import { loadState, saveState, type LabelMap } from './state.js';
import { FindingStore, type SavedFinding } from '../findings/store.js';
import { parseMac } from '../mac.js';
import { TORN } from '../../test/helpers/torn.js';

const dir = tempDir('earshot-state-');
const oui = { lookup: () => ({ organization: 'Amazon Technologies Inc.', vendor: 'amazon' }) };

/** A state with one named device, one DNS answer and one label, saved in a new directory. */
function savedState(): string {
  const where = tempDir('earshot-state-');
  const inventory = new Inventory(oui, { maxDevices: 10, devices: {} });
  inventory.observeDhcp({ op: 1, messageType: 3, clientMac: '50:f5:da:23:43:df', hostName: 'amazon-0d0fb5957', vendorClass: null, parameterList: [1, 3], requestedIp: null, clientIp: null, domainName: null }, -1, 1000);
  const dns = new DnsCache(100, 60_000);
  dns.onAnswer(new DnsAnswer(0, 'avs-alexa-4-na.amazon.com', 'A', '52.94.1.2', 60, 0x50f5da2343df, 4, [0, 0, 0, 1]), 'm88402432426975');
  // a finding too, so the torn writes and the fuzz below cut and flip its row as well
  const findings = new FindingStore();
  findings.add({ kind: 'plain-http', severity: 'info', deviceMac: 0x50f5da2343df, subject: '', timeMs: 1000, title: 'Unencrypted HTTP to the internet', advice: 'Use HTTPS.', evidence: 'GET to fireoscaptiveportal.com' });
  saveState(where, inventory, dns, new Map([['50f5da2343df-1000', 'not-intended']]), findingsStage(findings));
  return where;
}

function findingsStage(store: FindingStore) {
  return { saved: () => store.saved(), restore: (rows: readonly SavedFinding[]) => store.restore(rows, parseMac) };
}

function load(where: string) {
  const inventory = new Inventory(oui, { maxDevices: 10, devices: {} });
  const dns = new DnsCache(100, 60_000);
  const labels: LabelMap = new Map();
  const findings = new FindingStore();
  const warning = loadState(where, inventory, dns, labels, findingsStage(findings));
  return { warning, inventory, dns, labels, findings };
}

const aside = (where: string) => readdirSync(where).filter((n) => /^state\.json\.damaged-\d+$/.test(n));

describe('state file', () => {
  it('keeps DHCP names, DNS names and labels across a restart', () => {
    const inventory = new Inventory(oui, { maxDevices: 10, devices: {} });
    inventory.observeDhcp({ op: 1, messageType: 3, clientMac: '50:f5:da:23:43:df', hostName: 'amazon-0d0fb5957', vendorClass: null, parameterList: [1, 3], requestedIp: null, clientIp: null, domainName: null }, -1, 1000);
    const dns = new DnsCache(100, 60_000);
    dns.onAnswer(new DnsAnswer(0, 'avs-alexa-4-na.amazon.com', 'A', '52.94.1.2', 60, 0x50f5da2343df, 4, [0, 0, 0, 1]), 'm88402432426975');
    const labels: LabelMap = new Map([['50f5da2343df-1000', 'not-intended']]);
    saveState(dir, inventory, dns, labels);
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')).schema).toBe('earshot.state/1');

    const inventory2 = new Inventory(oui, { maxDevices: 10, devices: {} });
    const dns2 = new DnsCache(100, 60_000);
    const labels2: LabelMap = new Map();
    expect(loadState(dir, inventory2, dns2, labels2)).toBeNull();
    expect(inventory2.all().find((d) => d.macText === '50:f5:da:23:43:df')?.name).toBe('amazon-0d0fb5957');
    expect(dns2.lookup('m88402432426975', '52.94.1.2', 1000)?.name).toBe('avs-alexa-4-na.amazon.com');
    expect(labels2.get('50f5da2343df-1000')).toBe('not-intended');
  });
});

describe('state file: findings', () => {
  const sighting = (n: number) => ({
    kind: 'plain-http' as const, severity: 'low' as const, deviceMac: 0x50f5da2343df, subject: `host${n}`, timeMs: 1000 + n,
    title: 'Unencrypted HTTP to the internet', advice: 'Use HTTPS.', evidence: `GET to host${n}`,
  });
  const stage = findingsStage;

  it('keeps the findings across a restart, without announcing them again', () => {
    const where = tempDir('earshot-state-');
    const store = new FindingStore();
    for (const n of [1, 2, 2, 3]) store.add(sighting(n));
    saveState(where, new Inventory(oui, { maxDevices: 10, devices: {} }), new DnsCache(10, 1000), null, stage(store));
    const announced: string[] = [];
    const again = new FindingStore((f) => announced.push(f.id));
    expect(loadState(where, new Inventory(oui, { maxDevices: 10, devices: {} }), new DnsCache(10, 1000), null, stage(again))).toBeNull();
    expect(again.saved()).toEqual(store.saved());
    expect(again.all().map((f) => f.id)).toEqual(store.all().map((f) => f.id));
    expect(announced).toEqual([]);
    // seen again: counted, still not new; a finding never seen before is
    again.add(sighting(2));
    again.add(sighting(4));
    expect(again.all().find((f) => f.subject === 'host2')?.count).toBe(3);
    expect(announced).toEqual([again.all().find((f) => f.subject === 'host4')?.id]);
  });

  it('refuses rows earshot never writes (an unknown kind, a bad MAC, too much evidence, a negative count) and keeps the others', () => {
    const where = tempDir('earshot-state-');
    const store = new FindingStore();
    store.add(sighting(1));
    saveState(where, new Inventory(oui, { maxDevices: 10, devices: {} }), new DnsCache(10, 1000), null, stage(store));
    const file = join(where, 'state.json');
    const state = JSON.parse(readFileSync(file, 'utf8')) as { findings: Array<Record<string, unknown>> };
    const good = state.findings[0];
    state.findings.push(
      { ...good, kind: 'remote-shell' },
      { ...good, subject: 'x', device: 'not-a-mac' },
      { ...good, subject: 'y', evidence: Array.from({ length: 1000 }, (_, i) => `line ${i}`) },
      { ...good, subject: 'z', count: -1 },
    );
    writeFileSync(file, JSON.stringify(state));
    const again = new FindingStore();
    const warning = loadState(where, new Inventory(oui, { maxDevices: 10, devices: {} }), new DnsCache(10, 1000), null, stage(again));
    expect(warning).toMatch(/4 of 5 finding rows unreadable/);
    expect(again.saved()).toEqual(store.saved());
  });
});

describe('state file after a torn write', () => {
  for (const [kind, tear] of Object.entries(TORN)) {
    it(`${kind}: moved aside with a warning naming it; the start goes on with an empty inventory`, () => {
      const where = savedState();
      tear(join(where, 'state.json'));
      const { warning, inventory, labels, findings } = load(where);
      expect(warning).toMatch(new RegExp(`^${join(where, 'state.json').replace(/[.]/g, '\\.')} is damaged \\(.+\\); kept as .*state\\.json\\.damaged-\\d+, starting with an empty inventory$`));
      expect(inventory.all()).toHaveLength(0);
      expect(labels.size).toBe(0);
      expect(findings.all()).toHaveLength(0);
      expect(existsSync(join(where, 'state.json'))).toBe(false);
      expect(aside(where)).toHaveLength(1);
      // the next save writes a whole new file, and the start after it reads it
      saveState(where, new Inventory(oui, { maxDevices: 10, devices: {} }), new DnsCache(10, 1000));
      expect(load(where).warning).toBeNull();
    });
  }

  it('a file that parses but holds garbage rows: damaged (moved aside, named); the rows that check out are kept', () => {
    const where = savedState();
    const path = join(where, 'state.json');
    const state = JSON.parse(readFileSync(path, 'utf8'));
    state.devices.push(null, 7, { mac: 'not a mac' }, { ...state.devices[0], mac: '50:f5:da:00:00:01', ips: 'x' });
    state.dns.push(null, 'x', [1, 2, 3, 4], ['k', 'n', 'not a list', 5]);
    state.labels.push(['50f5da2343df-2000', 'maybe'], [5, 'intended'], null);
    delete state.sum; // the rows' own checks, also in a file without a checksum
    writeFileSync(path, JSON.stringify(state));
    const { warning, inventory, dns, labels } = load(where);
    expect(warning).toContain(`${path} is damaged (4 of 5 device rows unreadable; 4 of ${state.dns.length} DNS rows unreadable; 3 of 4 label rows unreadable)`);
    expect(warning).toMatch(/the readable rows were kept$/);
    expect(inventory.all().map((d) => d.name)).toEqual(['amazon-0d0fb5957']);
    expect(dns.lookup('m88402432426975', '52.94.1.2', 1000)?.name).toBe('avs-alexa-4-na.amazon.com');
    expect([...labels]).toEqual([['50f5da2343df-1000', 'not-intended']]);
    expect(aside(where)).toHaveLength(1);
  });

  it('a byte changed inside a name (still valid JSON): caught by the checksum, a copy kept, the rows kept', () => {
    const where = savedState();
    const path = join(where, 'state.json');
    const damaged = readFileSync(path, 'utf8').replace('amazon-0d0fb5957', 'amazon-0d0fb5958');
    writeFileSync(path, damaged);
    const { warning, inventory } = load(where);
    expect(warning).toBe(`${path} is damaged (checksum mismatch (bytes changed on disk)); a copy kept as ${join(where, aside(where)[0])}, the readable rows were kept`);
    expect(inventory.all().map((d) => d.name)).toEqual(['amazon-0d0fb5958']);
    // the file stays until a save replaces it with the rows: a power cut before that finds them again
    expect(readFileSync(path, 'utf8')).toBe(damaged);
    expect(readFileSync(join(where, aside(where)[0]), 'utf8')).toBe(damaged);
  });

  it('a state.json of an earshot before checksums is read as it is', () => {
    const where = savedState();
    const path = join(where, 'state.json');
    writeFileSync(path, readFileSync(path, 'utf8').replace(/,"sum":"[0-9a-f]{64}"\}$/, '}'));
    expect(load(where).warning).toBeNull();
  });

  it('another schema, or not an object: moved aside, named', () => {
    for (const text of ['{"schema":"earshot.state/9"}', '[1,2]', 'null', '"x"']) {
      const where = savedState();
      writeFileSync(join(where, 'state.json'), text);
      expect(load(where).warning).toContain(`${join(where, 'state.json')} is damaged`);
      expect(aside(where)).toHaveLength(1);
    }
  });

  it('leaves no temporary file behind', () => {
    const where = savedState();
    expect(readdirSync(where)).toEqual(['state.json']);
  });
});

describe('state file fuzz: random truncation and byte flips', () => {
  it('never make a start throw; every changed file is moved aside', () => {
    const pristine = readFileSync(join(savedState(), 'state.json'));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ cut: fc.nat() }),
          fc.record({ flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }) }),
        ),
        (damage) => {
          const where = tempDir('earshot-state-fuzz-');
          let bytes = Buffer.from(pristine);
          if ('cut' in damage) bytes = bytes.subarray(0, damage.cut % bytes.length);
          else for (const [at, xor] of damage.flips) bytes[at % bytes.length] ^= xor;
          writeFileSync(join(where, 'state.json'), bytes);
          const { warning } = load(where);
          if (bytes.equals(pristine)) {
            // flips that cancel out
            expect(warning).toBeNull();
          } else {
            // every change is caught (a flip inside a name that still reads as JSON, by the checksum)
            expect(warning).toContain(join(where, 'state.json'));
            expect(aside(where)).toHaveLength(1);
          }
          rmSync(where, { recursive: true, force: true });
        },
      ),
      { numRuns: 300, seed: 1414 },
    );
  });
});

describe.skipIf(process.getuid?.() !== 0)('state file on a full disk', () => {
  it('a save that does not fit is a coded error; the last whole file stays, no temporary file is left', () => {
    const where = tempDir('earshot-state-full-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', where]);
    try {
      const small = new Inventory(oui, { maxDevices: 10, devices: {} });
      saveState(where, small, new DnsCache(10, 1000), new Map([['a-1', 'intended']]));
      const before = readFileSync(join(where, 'state.json'), 'utf8');
      // a state far larger than the file system
      const dns = new DnsCache(10_000, 60_000);
      for (let i = 0; i < 2000; i++) dns.onAnswer(new DnsAnswer(0, `host-${i}.${'x'.repeat(40)}.example`, 'A', `10.0.${i >> 8}.${i & 255}`, 60, -1, 4, [0, 0, 0, 1]), `a10.1.1.${i}`);
      let error: unknown = null;
      try {
        saveState(where, small, dns, new Map([['a-1', 'intended'], ['a-2', 'not-intended']]));
      } catch (err) {
        error = err;
      }
      expect(isEarshotError(error) && error.code).toBe('EARSHOT_ERR_DATA_DIR');
      expect((error as Error).message).toContain('ENOSPC');
      expect(readFileSync(join(where, 'state.json'), 'utf8')).toBe(before);
      expect(readdirSync(where)).toEqual(['state.json']);
      expect(load(where)).toMatchObject({ warning: null, labels: new Map([['a-1', 'intended']]) });
    } finally {
      execFileSync('umount', [where]);
    }
  });
});
