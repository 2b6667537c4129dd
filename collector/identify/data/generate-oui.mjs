#!/usr/bin/env node
/**
 * Generates oui.tsv beside this script: the IEEE MAC address registry (MA-L 24-bit, MA-M 28-bit and
 * MA-S 36-bit blocks) as Wireshark's `manuf` file carries it, in the form collector/identify/oui.ts
 * loads. Plain Node, no dependencies.
 *
 *   node collector/identify/data/generate-oui.mjs [path-to-manuf] [--out FILE]
 *
 * The default input is Debian's /usr/share/wireshark/manuf (package libwireshark-data). The header of the
 * output records the input path, its SHA-256, the Debian package and version that installed it, and the
 * IEEE files' Last-Modified dates that Wireshark's make-manuf.py wrote into it, so a reader can tell
 * which registry snapshot the table is. Nothing time-dependent is written: the same input gives the same
 * bytes, which the staleness test in oui.test.ts relies on.
 *
 * Output (plain UTF-8 text, one entry a line, sorted by prefix; plain because gunzip cost ~50 ms at every start):
 *   # key: value                      header lines
 *   PREFIX/BITS<TAB>SHORT<TAB>ORGANIZATION
 * PREFIX is the block's upper-case hex digits (6 for /24, 7 for /28, 9 for /36). manuf's other entries
 * (well-known multicast addresses, masks other than 24/28/36) are not registry blocks and are skipped.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const DEFAULT_MANUF = '/usr/share/wireshark/manuf';
const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_OUTPUT = join(HERE, 'oui.tsv');

/** The Debian package (name and version) that installed `path`, or null when dpkg does not know it. */
export function debianPackageOf(path) {
  try {
    const owner = execFileSync('dpkg-query', ['-S', realpathSync(path)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const name = owner.split(':')[0].trim();
    const version = execFileSync('dpkg-query', ['-W', '-f', '${Version}', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return `${name} ${version.trim()}`;
  } catch {
    return null;
  }
}

/** Parses one manuf address column into { hex, bits } for a registry block, or null for anything else. */
function parseBlock(column) {
  const [address, mask] = column.split('/');
  const octets = address.split(/[:.-]/);
  if (!octets.every((octet) => /^[0-9A-Fa-f]{2}$/.test(octet))) return null;
  const hex = octets.join('').toUpperCase();
  if (mask === undefined) return octets.length === 3 ? { hex, bits: 24 } : null;
  const bits = Number(mask);
  if ((bits !== 28 && bits !== 36) || octets.length !== 6) return null;
  const digits = bits / 4;
  // the bits below the mask must be zero, or the line is not a block
  if (!/^0*$/.test(hex.slice(digits))) return null;
  return { hex: hex.slice(0, digits), bits };
}

/**
 * Converts manuf text into the table's text (header included). `source` names the input and `package_`
 * the Debian package that installed it (or null).
 */
export function buildOuiText(manufText, source, package_) {
  const sha256 = createHash('sha256').update(manufText).digest('hex');
  const entries = [];
  const ieee = [];
  let pendingUrl = null;
  for (const line of manufText.split('\n')) {
    if (line.startsWith('#')) {
      // make-manuf.py writes "# https://.../oui.csv:" then "#   Last-Modified: ..."
      const url = /^# (https?:\/\/\S+):\s*$/.exec(line);
      if (url) pendingUrl = url[1];
      const modified = /^#\s+Last-Modified:\s*(.+)$/.exec(line);
      if (modified && pendingUrl) ieee.push(`${pendingUrl} Last-Modified: ${modified[1].trim()}`);
      continue;
    }
    if (line.trim() === '') continue;
    const [column, shortName = '', organization = ''] = line.split('\t');
    const block = parseBlock(column.trim());
    if (!block) continue;
    const short = shortName.trim();
    // a few entries have only the short name: use it as the organisation too
    const org = (organization.trim() || short).replace(/\s+/g, ' ');
    entries.push({ key: `${block.hex}/${block.bits}`, line: `${block.hex}/${block.bits}\t${short}\t${org}` });
  }
  entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const lines = [];
  const seen = new Set();
  for (const entry of entries) {
    if (seen.has(entry.key)) continue; // the first of duplicate lines wins, as in Wireshark
    seen.add(entry.key);
    lines.push(entry.line);
  }
  const header = [
    '# earshot OUI table: IEEE MA-L (/24), MA-M (/28) and MA-S (/36) blocks from Wireshark\'s manuf file',
    '# generated-by: collector/identify/data/generate-oui.mjs (do not edit; re-run it)',
    `# source: ${source}`,
    `# source-sha256: ${sha256}`,
    `# package: ${package_ ?? 'unknown (not installed by a Debian package)'}`,
    ...ieee.map((entry) => `# ieee: ${entry}`),
    '# format: PREFIX/BITS<TAB>SHORT<TAB>ORGANIZATION (PREFIX: upper-case hex, BITS/4 digits)',
    `# entries: ${lines.length}`,
  ];
  return `${header.join('\n')}\n${lines.join('\n')}\n`;
}

/** Reads `manufPath` and writes the table to `outPath`; returns the number of entries. */
export function generateOuiTable(manufPath = DEFAULT_MANUF, outPath = DEFAULT_OUTPUT) {
  const manufText = readFileSync(manufPath, 'utf8');
  const text = buildOuiText(manufText, manufPath, debianPackageOf(manufPath));
  writeFileSync(outPath, text);
  return Number(/^# entries: (\d+)$/m.exec(text)[1]);
}

function main(argv) {
  let input = DEFAULT_MANUF;
  let output = DEFAULT_OUTPUT;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') output = argv[++i];
    else if (argv[i] === '--help' || argv[i] === '-h') {
      console.log('usage: node collector/identify/data/generate-oui.mjs [path-to-manuf] [--out FILE]');
      return 0;
    } else input = argv[i];
  }
  try {
    const count = generateOuiTable(input, output);
    console.log(`${output}: ${count} blocks from ${input}`);
    return 0;
  } catch (err) {
    console.error(`generate-oui: ${input}: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
