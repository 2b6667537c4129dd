/**
 * buildOuiTable: the OUIs FACTS.md names, MA-M / MA-S sub-blocks, randomised and group addresses, and
 * every source MAC of the real captures against tshark's own resolution (eth.src_resolved and
 * eth.src.oui_resolved, read from the same manuf file). A last test fails when data/oui.tsv is stale
 * relative to its generator: it regenerates the table from the installed manuf into a temporary
 * directory and compares, when that manuf is the one the committed table was made from.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tshark } from '../../test/helpers/decode-test-support.js';
import { describeShared, REAL_CAPTURES } from '../../test/helpers/shared.js';
import { isEarshotError } from '../errors.js';
import { parseMac } from '../mac.js';
import { buildOuiTable, vendorOfOrganization } from './oui.js';

/** One tshark run per real capture, all at once: minutes when the whole suite shares two cores. */
const GOLDEN_TIMEOUT_MS = 300_000;

const DATA_FILE = fileURLToPath(new URL('./data/oui.tsv', import.meta.url));
const GENERATOR = fileURLToPath(new URL('./data/generate-oui.mjs', import.meta.url));
const MANUF = '/usr/share/wireshark/manuf';

const table = buildOuiTable();
const lookup = (mac: string) => table.lookup(parseMac(mac));

describe('buildOuiTable', () => {
  it('loads the whole registry and says where it came from', () => {
    expect(table.size).toBeGreaterThan(50_000);
    expect(table.provenance.some((line) => /^source: .*manuf$/.test(line))).toBe(true);
    expect(table.provenance.some((line) => /^package: libwireshark-data \S+/.test(line))).toBe(true);
    expect(table.provenance.some((line) => /^ieee: .*oui\.csv Last-Modified: /.test(line))).toBe(true);
  });

  it('maps the Amazon MA-L blocks in FACTS.md to amazon', () => {
    for (const oui of ['44650D', '4CEFC0', '50F5DA', '6837E9', '689A87', '68DBF5', '8871E5', 'C49500', 'CCF735', 'FC492D', 'FC65DE']) {
      const entry = table.lookup(parseInt(`${oui}123456`, 16));
      expect(entry, oui).toMatchObject({ organization: 'Amazon Technologies Inc.', vendor: 'amazon', block: `${oui}/24` });
    }
    expect(lookup('5c:41:5a:00:00:01')).toMatchObject({ organization: 'Amazon.com, LLC', vendor: 'amazon' });
  });

  it('maps Nest Labs to google and keeps other companies that look alike apart', () => {
    expect(lookup('18:b4:30:26:34:40')).toMatchObject({ organization: 'Nest Labs Inc.', vendor: 'google' });
    expect(lookup('64:16:66:00:00:01')).toMatchObject({ vendor: 'google' });
    expect(vendorOfOrganization('Digiboard Eletronica da Amazonia Ltda')).toBeNull();
    expect(vendorOfOrganization('SonoSite, Inc.')).toBeNull();
    expect(vendorOfOrganization('Google, Inc.')).toBe('google');
  });

  it('finds MA-M and MA-S blocks inside IEEE Registration Authority prefixes, most specific first', () => {
    expect(lookup('20:0a:0d:b1:23:45')).toMatchObject({ block: '200A0DB/28', vendor: 'amazon' });
    expect(lookup('20:0a:0d:a1:23:45')?.vendor).toBeNull(); // a neighbouring /28 of another company
    expect(lookup('70:b3:d5:27:0a:bc')).toMatchObject({ block: '70B3D5270/36', vendor: 'amazon' });
    expect(lookup('70:b3:d5:e6:fa:bc')).toMatchObject({ block: '70B3D5E6F/36', vendor: 'amazon' });
    expect(lookup('70:b3:d5:27:1a:bc')).toMatchObject({ block: '70B3D5271/36', vendor: null });
  });

  it('returns null for randomised (locally administered) and group addresses, and non-MACs', () => {
    expect(lookup('52:f5:da:23:43:df')).toBeNull(); // 50:f5:da with the local bit set
    expect(lookup('51:f5:da:23:43:df')).toBeNull(); // ... with the group bit set
    expect(lookup('ff:ff:ff:ff:ff:ff')).toBeNull();
    expect(lookup('01:00:5e:00:00:fb')).toBeNull();
    for (const mac of [-1, NaN, 2 ** 48, 1.5e20]) expect(table.lookup(mac)).toBeNull();
  });

  it('returns the same frozen entry for every address of a block', () => {
    const a = lookup('68:db:f5:90:19:64');
    expect(a).toBe(lookup('68:db:f5:b9:5d:01'));
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('reads plain tables and rejects malformed ones with a coded error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-oui-'));
    try {
      const good = join(dir, 'good.tsv');
      writeFileSync(good, '# source: test\nA8BBCC/24\tTest\tTest Org\nA8BBCC1/28\tSub\tSonos, Inc.\nAABBCC/24\tLocal\tApple, Inc.\n');
      const small = buildOuiTable({ dataPath: good });
      expect(small.size).toBe(3);
      expect(small.lookup(parseMac('a8:bb:cc:11:22:33'))).toMatchObject({ vendor: 'sonos', shortName: 'Sub' });
      expect(small.lookup(parseMac('a8:bb:cc:21:22:33'))).toMatchObject({ organization: 'Test Org', vendor: null });
      // aa has the locally administered bit set: no table entry can give such an address a vendor
      expect(small.lookup(parseMac('aa:bb:cc:21:22:33'))).toBeNull();
      const bad = join(dir, 'bad.tsv');
      writeFileSync(bad, 'AABBC/24\tx\ty\n');
      for (const path of [bad, join(dir, 'missing.tsv')]) {
        let caught: unknown;
        try { buildOuiTable({ dataPath: path }); } catch (err) { caught = err; }
        expect(isEarshotError(caught) && caught.code === 'EARSHOT_ERR_FILE_UNREADABLE', path).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('buildOuiTable lookups (binary search over the sorted table)', () => {
  it('finds the first and last blocks, and nothing between blocks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-oui-'));
    try {
      const path = join(dir, 'edges.tsv');
      writeFileSync(path, '# source: test\n000000/24\tXerox\tXerox Corporation\n001122/24\tMid\tMiddle Org\nFCFFFF/24\tLast\tLast Org');
      const edges = buildOuiTable({ dataPath: path });
      expect(edges.size).toBe(3);
      expect(edges.provenance).toEqual(['source: test']);
      expect(edges.lookup(parseMac('00:00:00:00:00:01'))).toMatchObject({ organization: 'Xerox Corporation', block: '000000/24' });
      expect(edges.lookup(parseMac('00:11:22:33:44:55'))).toMatchObject({ organization: 'Middle Org' });
      // the last line has no newline
      expect(edges.lookup(parseMac('fc:ff:ff:00:00:00'))).toMatchObject({ organization: 'Last Org', shortName: 'Last' });
      expect(edges.lookup(parseMac('00:11:21:00:00:00'))).toBeNull();
      expect(edges.lookup(parseMac('00:11:23:00:00:00'))).toBeNull();
      expect(edges.lookup(parseMac('fc:00:00:00:00:00'))).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a table that is not sorted, or not upper-case, as the generator writes it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-oui-'));
    try {
      for (const [name, text] of [['unsorted.tsv', 'AABBCC/24\tx\ty\nA8BBCC/24\tx\ty\n'], ['lower.tsv', 'a8bbcc/24\tx\ty\n']]) {
        const path = join(dir, name);
        writeFileSync(path, text);
        let caught: unknown;
        try { buildOuiTable({ dataPath: path }); } catch (err) { caught = err; }
        expect(isEarshotError(caught) && caught.code === 'EARSHOT_ERR_FILE_UNREADABLE', name).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds every block of the bundled table, and its header counts them', () => {
    const lines = readFileSync(DATA_FILE, 'utf8').split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    expect(table.size).toBe(lines.length);
    expect(table.provenance).toContain(`entries: ${lines.length}`);
    // every 50th block: the entry the table gives for the block's first address is that block or a finer one
    for (let i = 0; i < lines.length; i += 50) {
      const [block] = lines[i].split('\t');
      const [hex] = block.split('/');
      const entry = table.lookup(parseInt(hex.padEnd(12, '0'), 16));
      if (entry === null) {
        // group or locally administered prefixes (first octet's low bits) name no vendor by definition
        expect(parseInt(hex.slice(0, 2), 16) & 3, block).not.toBe(0);
      } else {
        expect(entry.block.startsWith(hex) || hex.startsWith(entry.block.split('/')[0]), block).toBe(true);
      }
    }
  });
});

describeShared('buildOuiTable against tshark on the real captures', () => {
  it('resolves every source MAC as tshark does', async () => {
    const checked = new Map<string, string | null>();
    const files = readdirSync(REAL_CAPTURES).filter((name) => /\.pcap(ng)?$/.test(name));
    const outputs = await Promise.all(files.map((file) => tshark(['-r', join(REAL_CAPTURES, file), '-T', 'fields',
      '-E', 'separator=\t', '-e', 'eth.src', '-e', 'eth.src_resolved', '-e', 'eth.src.oui_resolved'])));
    for (const [i, file] of files.entries()) {
      for (const line of new Set(outputs[i].split('\n'))) {
        const [mac, resolved, organization] = line.split('\t');
        if (!mac || checked.has(mac)) continue;
        const entry = lookup(mac);
        checked.set(mac, entry?.vendor ?? null);
        const first = parseInt(mac.slice(0, 2), 16);
        if ((first & 0x03) !== 0 || resolved === mac) {
          // tshark could not name it (or must not: randomised): neither may we
          expect(entry, `${file} ${mac}`).toBeNull();
          continue;
        }
        expect(entry, `${file} ${mac}`).not.toBeNull();
        expect(resolved.startsWith(`${entry?.shortName}_`), `${file} ${mac} ${resolved}`).toBe(true);
        if (entry?.block.endsWith('/24')) expect(entry.organization, `${file} ${mac}`).toBe(organization);
      }
    }
    // the devices the captures' INDEX.tsv names
    expect(Object.fromEntries(['68:db:f5:90:19:64', '88:71:e5:e9:9e:6c', '50:f5:da:23:43:df', '18:b4:30:26:34:40',
      '34:7e:5c:ff:a2:6e', '78:f8:82:d3:fb:c2', 'b8:27:eb:e5:20:99', '9c:58:3c:a7:ee:cc', 'fc:65:de:5f:15:0a']
      .map((mac) => [mac, checked.get(mac)]))).toEqual({
      '68:db:f5:90:19:64': 'amazon', '88:71:e5:e9:9e:6c': 'amazon', '50:f5:da:23:43:df': 'amazon',
      '18:b4:30:26:34:40': 'google', '34:7e:5c:ff:a2:6e': 'sonos', '78:f8:82:d3:fb:c2': 'lg',
      'b8:27:eb:e5:20:99': 'raspberrypi', '9c:58:3c:a7:ee:cc': 'apple', 'fc:65:de:5f:15:0a': 'amazon',
    });
  }, GOLDEN_TIMEOUT_MS);
});

describe('data/oui.tsv is up to date with its generator', () => {
  const committed = readFileSync(DATA_FILE, 'utf8');
  const recorded = (key: string) => new RegExp(`^# ${key}: (.*)$`, 'm').exec(committed)?.[1] ?? '';
  const installedPackage = existsSync(MANUF) ? packageVersion() : null;
  const sameSource = existsSync(MANUF)
    && createHash('sha256').update(readFileSync(MANUF)).digest('hex') === recorded('source-sha256')
    && installedPackage === recorded('package');
  if (!sameSource) {
    console.warn(`skipping the OUI staleness check: ${MANUF} is missing or is not "${recorded('package')}" `
      + `(sha256 ${recorded('source-sha256').slice(0, 12)}...) that the committed table was generated from`);
  }
  it.runIf(sameSource)('regenerating from the same manuf gives the committed table', () => {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-oui-'));
    try {
      const out = join(dir, 'oui.tsv');
      execFileSync(process.execPath, [GENERATOR, MANUF, '--out', out], { stdio: 'pipe' });
      const fresh = readFileSync(out, 'utf8');
      expect(fresh === committed, 'run: node collector/identify/data/generate-oui.mjs').toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** "libwireshark-data VERSION" as the generator records it, or null. */
function packageVersion(): string | null {
  try {
    const version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'libwireshark-data'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return `libwireshark-data ${version.trim()}`;
  } catch {
    return null;
  }
}
