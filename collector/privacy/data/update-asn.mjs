#!/usr/bin/env node
/**
 * Refreshes asn-ranges.json beside this script: the address ranges of the autonomous systems that
 * organisations.json names (its `asns` list), cut from the IP-to-ASN tables of the npm package
 * @ip-location-db/asn (sapics/ip-location-db: RouteViews, the five RIRs via the NRO, and DB-IP's
 * "IP to ASN Lite"; all CC BY 4.0, attribution in NOTICE).
 *
 * Only the listed ASNs are kept (a home's assistants talk to a few dozen networks; the whole table is
 * 64 MB): every other address stays unnamed rather than shipping the world.
 *
 *   node collector/privacy/data/update-asn.mjs                 npm pack @ip-location-db/asn (registry), then cut
 *   node collector/privacy/data/update-asn.mjs --from DIR      cut from DIR/asn-ipv4.csv and DIR/asn-ipv6.csv
 *   node collector/privacy/data/update-asn.mjs --binary-only   rewrite asn-ranges.bin from asn-ranges.json
 *
 * Every ASN's organisation name in the upstream table must match the `expect` pattern that
 * organisations.json gives it (the AS name as published in the registries): a renumbered or
 * re-assigned ASN stops the refresh instead of silently relabelling addresses.
 * Plain Node 20, no dependencies. Output: asn-ranges.json, per ASN its registry name and merged, sorted
 * ranges as flat [first, last, ...] lists: IPv4 addresses as numbers, IPv6 as 32 hex digits
 * (addressText() turns either back into text when you want to read one); it is the reviewable form a
 * diff reads. And asn-ranges.bin, the same ranges as the loader wants them (binaryTable() below): orgs.ts
 * maps it into typed arrays, where parsing the JSON raised the process's RSS by ~15 MB at the first lookup.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const PACKAGE = '@ip-location-db/asn';

/** An IPv4 or IPv6 address as a BigInt, or throws. */
export function addressValue(text) {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(text)) {
    const octets = text.split('.').map(Number);
    if (octets.some((o) => o > 255)) throw new Error(`bad IPv4 address ${text}`);
    return octets.reduce((acc, o) => (acc << 8n) | BigInt(o), 0n);
  }
  const halves = text.split('::');
  if (halves.length > 2) throw new Error(`bad IPv6 address ${text}`);
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) throw new Error(`bad IPv6 address ${text}`);
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (!groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) throw new Error(`bad IPv6 address ${text}`);
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** A BigInt back to text: dotted IPv4, or IPv6 with the longest zero run as "::". */
export function addressText(value, version) {
  if (version === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const groups = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** A 128-bit value as 32 hex digits. */
export function hex128(value) {
  return value.toString(16).padStart(32, '0');
}

/** Rows of one upstream CSV (first,last,asn,"name"), only those whose ASN is in `wanted`. */
export function readRows(text, wanted) {
  const rows = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const a = line.indexOf(',');
    const b = line.indexOf(',', a + 1);
    const c = line.indexOf(',', b + 1);
    if (a < 0 || b < 0 || c < 0) throw new Error(`malformed row: ${line.slice(0, 80)}`);
    const asn = line.slice(b + 1, c);
    if (!wanted.has(asn)) continue;
    let name = line.slice(c + 1);
    if (name.startsWith('"') && name.endsWith('"')) name = name.slice(1, -1).replace(/""/g, '"');
    rows.push({ first: addressValue(line.slice(0, a)), last: addressValue(line.slice(a + 1, b)), asn, name });
  }
  return rows;
}

/** Sorted ranges with touching or overlapping ones merged. */
export function mergeRanges(ranges) {
  const sorted = [...ranges].sort((x, y) => (x.first < y.first ? -1 : x.first > y.first ? 1 : 0));
  const out = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.first <= last.last + 1n) { if (r.last > last.last) last.last = r.last; } else out.push({ first: r.first, last: r.last });
  }
  return out;
}

/** Builds the snapshot from the two upstream tables and organisations.json's asns. */
export function buildSnapshot(ipv4Csv, ipv6Csv, asns, source) {
  const wanted = new Map(asns.map((a) => [String(a.asn), a]));
  const byAsn = new Map([...wanted.keys()].map((k) => [k, { names: new Map(), 4: [], 6: [] }]));
  for (const [text, version] of [[ipv4Csv, 4], [ipv6Csv, 6]]) {
    for (const row of readRows(text, wanted)) {
      const slot = byAsn.get(row.asn);
      slot[version].push(row);
      slot.names.set(row.name, (slot.names.get(row.name) ?? 0) + 1);
    }
  }
  const out = {};
  const problems = [];
  for (const [asn, entry] of wanted) {
    const slot = byAsn.get(asn);
    const name = [...slot.names].sort((x, y) => y[1] - x[1])[0]?.[0] ?? null;
    if (name === null) { problems.push(`AS${asn}: not in the upstream table`); continue; }
    if (!new RegExp(entry.expect, 'i').test(name)) problems.push(`AS${asn}: upstream names it "${name}", organisations.json expects /${entry.expect}/`);
    out[asn] = {
      name,
      // flat [first, last, first, last, ...]: IPv4 as numbers, IPv6 as 32 hex digits (quick to load)
      ipv4: mergeRanges(slot[4]).flatMap((r) => [Number(r.first), Number(r.last)]),
      ipv6: mergeRanges(slot[6]).flatMap((r) => [hex128(r.first), hex128(r.last)]),
    };
  }
  if (problems.length > 0) throw new Error(`the upstream table disagrees with organisations.json:\n  ${problems.join('\n  ')}`);
  return {
    label: `${PACKAGE} ${source.version}`,
    source: {
      package: PACKAGE,
      version: source.version,
      licence: 'CC-BY-4.0 (RouteViews, NRO, DB-IP); see NOTICE',
      attribution: 'IP to ASN data by RouteViews (routeviews.org), the NRO (nro.net) and DB-IP (db-ip.com), via sapics/ip-location-db',
      retrievedFrom: source.retrievedFrom,
    },
    asns: out,
  };
}

/** Magic and version at the head of asn-ranges.bin (orgs.ts checks both). */
export const BINARY_MAGIC = 0x4e534145; // 'EASN' read as a little-endian u32
export const BINARY_VERSION = 1;

/**
 * asn-ranges.json's content as asn-ranges.bin: a header of u32 [magic, version, asns, v4 ranges, v6
 * ranges], then u32 arrays asns[], v4 starts[], v4 ends[], v6 starts[4n], v6 ends[4n] (each IPv6 bound as
 * four big-endian-ordered words), then u16 arrays v4 entry[], v6 entry[] (index into asns[]). Ranges
 * sorted by start; little-endian (every host earshot runs on; the loader refuses another).
 */
export function binaryTable(snapshot) {
  const asns = Object.keys(snapshot.asns).map(Number);
  const v4 = [];
  const v6 = [];
  asns.forEach((asn, entry) => {
    const { ipv4, ipv6 } = snapshot.asns[String(asn)];
    for (let i = 0; i + 1 < ipv4.length; i += 2) v4.push({ first: BigInt(ipv4[i]), last: BigInt(ipv4[i + 1]), entry });
    for (let i = 0; i + 1 < ipv6.length; i += 2) v6.push({ first: BigInt(`0x${ipv6[i]}`), last: BigInt(`0x${ipv6[i + 1]}`), entry });
  });
  if (asns.length > 0xffff) throw new Error('more ASNs than a u16 entry can index');
  const byStart = (x, y) => (x.first < y.first ? -1 : x.first > y.first ? 1 : 0);
  v4.sort(byStart);
  v6.sort(byStart);
  const words = 5 + asns.length + 2 * v4.length + 8 * v6.length;
  const buffer = Buffer.alloc(words * 4 + 2 * (v4.length + v6.length));
  let at = 0;
  const u32 = (value) => { buffer.writeUInt32LE(Number(value), at); at += 4; };
  [BINARY_MAGIC, BINARY_VERSION, asns.length, v4.length, v6.length].forEach(u32);
  asns.forEach(u32);
  for (const r of v4) u32(r.first);
  for (const r of v4) u32(r.last);
  const quad = (value) => { for (let w = 3; w >= 0; w--) u32((value >> BigInt(w * 32)) & 0xffffffffn); };
  for (const r of v6) quad(r.first);
  for (const r of v6) quad(r.last);
  for (const r of [...v4, ...v6]) { buffer.writeUInt16LE(r.entry, at); at += 2; }
  return buffer;
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--from') opts.from = argv[++i];
    else if (argv[i] === '--out') opts.out = argv[++i];
    else if (argv[i] === '--binary-only') opts.binaryOnly = true;
    else throw new Error(`unknown option ${argv[i]} (use --from DIR, --out FILE, --binary-only)`);
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const jsonOut = opts.out ?? join(HERE, 'asn-ranges.json');
  const binOut = jsonOut.replace(/\.json$/, '') + '.bin';
  if (opts.binaryOnly) {
    writeFileSync(binOut, binaryTable(JSON.parse(readFileSync(jsonOut, 'utf8'))));
    console.log(`${binOut}: written from ${jsonOut}`);
    return;
  }
  let dir = opts.from;
  let scratch = null;
  if (!dir) {
    scratch = mkdtempSync(join(tmpdir(), 'earshot-asn-'));
    execFileSync('npm', ['pack', PACKAGE, '--pack-destination', scratch], { stdio: ['ignore', 'ignore', 'inherit'] });
    const tgz = readdirSync(scratch).find((f) => f.endsWith('.tgz'));
    execFileSync('tar', ['xzf', join(scratch, tgz), '-C', scratch]);
    dir = join(scratch, 'package');
  }
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const organisations = JSON.parse(readFileSync(join(HERE, 'organisations.json'), 'utf8'));
    const snapshot = buildSnapshot(readFileSync(join(dir, 'asn-ipv4.csv'), 'utf8'), readFileSync(join(dir, 'asn-ipv6.csv'), 'utf8'), organisations.asns,
      { version: manifest.version, retrievedFrom: `the npm registry's tarball of ${PACKAGE}@${manifest.version}${opts.from ? ' (unpacked beforehand, --from)' : ''}` });
    const out = jsonOut;
    // one ASN per line: a diff shows which networks changed
    const lines = Object.entries(snapshot.asns).map(([asn, v]) => `  ${JSON.stringify(asn)}: ${JSON.stringify(v)}`);
    writeFileSync(out, `{\n "label": ${JSON.stringify(snapshot.label)},\n "source": ${JSON.stringify(snapshot.source)},\n "asns": {\n${lines.join(',\n')}\n }\n}\n`);
    writeFileSync(binOut, binaryTable(snapshot));
    const counts = Object.values(snapshot.asns).reduce((n, a) => n + (a.ipv4.length + a.ipv6.length) / 2, 0);
    console.log(`${out}: ${Object.keys(snapshot.asns).length} ASNs, ${counts} ranges from ${snapshot.label}`);
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url) {
  main().catch((err) => { console.error(`update-asn: ${err.message}`); process.exit(1); });
}
