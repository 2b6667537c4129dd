#!/usr/bin/env node
/**
 * Refreshes the vendors' published IP range snapshots beside this script, in the form
 * collector/tag/ip-ranges.ts loads:
 *   amazon-ip-ranges.json  from https://ip-ranges.amazonaws.com/ip-ranges.json, service "AMAZON" only
 *                          (Amazon's superset: every other service's prefixes are also listed under it)
 *   google-ip-ranges.json  from https://www.gstatic.com/ipranges/goog.json (all of Google's prefixes)
 * apple-ip-ranges.json is edited by hand: Apple publishes its ranges as prose in support articles, not
 * as a machine-readable file, so there is nothing to fetch.
 *
 *   node collector/tag/data/update-ranges.mjs                 fetch both (needs Internet access)
 *   node collector/tag/data/update-ranges.mjs --amazon-file ip-ranges.json --google-file goog.json \
 *        [--retrieved-from "where the files came from"]      convert saved copies instead
 *
 * Plain Node 20 (global fetch), no dependencies. Output: sorted, de-duplicated prefixes, one per line,
 * with the upstream's own date and sync token, so a diff of the snapshot shows what the vendor changed.
 */
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const AMAZON_URL = 'https://ip-ranges.amazonaws.com/ip-ranges.json';
export const GOOGLE_URL = 'https://www.gstatic.com/ipranges/goog.json';

/** Parses an IPv4 or IPv6 prefix into { version, value (BigInt), bits }, or throws. */
export function parsePrefix(text) {
  const [address, bitsText] = String(text).split('/');
  const bits = Number(bitsText);
  let version;
  let value;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(address)) {
    const octets = address.split('.').map(Number);
    if (octets.some((o) => o > 255)) throw new Error(`bad IPv4 prefix ${text}`);
    version = 4;
    value = octets.reduce((acc, o) => (acc << 8n) | BigInt(o), 0n);
  } else {
    version = 6;
    value = parseIpv6(address, text);
  }
  const width = version === 4 ? 32 : 128;
  if (!Number.isInteger(bits) || bits < 0 || bits > width) throw new Error(`bad prefix length in ${text}`);
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  if ((value & hostMask) !== 0n) throw new Error(`${text} has host bits set`);
  return { version, value, bits };
}

function parseIpv6(address, text) {
  const halves = address.split('::');
  if (halves.length > 2) throw new Error(`bad IPv6 prefix ${text}`);
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) throw new Error(`bad IPv6 prefix ${text}`);
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (!groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) throw new Error(`bad IPv6 prefix ${text}`);
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Sorts prefixes by address then length (shorter first) and drops duplicates. */
export function sortPrefixes(prefixes) {
  const parsed = [...new Set(prefixes)].map((text) => ({ text, ...parsePrefix(text) }));
  parsed.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : a.bits - b.bits));
  return parsed.map((p) => p.text);
}

/** The snapshot of Amazon's ip-ranges.json: prefixes of service AMAZON, IPv4 and IPv6. */
export function amazonSnapshot(upstream, retrievedFrom) {
  const ipv4 = (upstream.prefixes ?? []).filter((p) => p.service === 'AMAZON').map((p) => p.ip_prefix);
  const ipv6 = (upstream.ipv6_prefixes ?? []).filter((p) => p.service === 'AMAZON').map((p) => p.ipv6_prefix);
  if (ipv4.length === 0) throw new Error('no AMAZON prefixes: is this ip-ranges.json?');
  const createDate = String(upstream.createDate ?? '');
  return {
    vendor: 'amazon',
    label: `amazon ip-ranges.json ${createDate.slice(0, 10)}`,
    source: {
      url: AMAZON_URL,
      filter: 'service == "AMAZON" (IPv4 prefixes and ipv6_prefixes)',
      createDate,
      syncToken: String(upstream.syncToken ?? ''),
      retrievedFrom,
    },
    ipv4: sortPrefixes(ipv4),
    ipv6: sortPrefixes(ipv6),
  };
}

/** The snapshot of Google's goog.json: every ipv4Prefix and ipv6Prefix. */
export function googleSnapshot(upstream, retrievedFrom) {
  const ipv4 = (upstream.prefixes ?? []).filter((p) => p.ipv4Prefix).map((p) => p.ipv4Prefix);
  const ipv6 = (upstream.prefixes ?? []).filter((p) => p.ipv6Prefix).map((p) => p.ipv6Prefix);
  if (ipv4.length === 0) throw new Error('no ipv4Prefix entries: is this goog.json?');
  const creationTime = String(upstream.creationTime ?? '');
  return {
    vendor: 'google',
    label: `google goog.json ${creationTime.slice(0, 10)}`,
    source: {
      url: GOOGLE_URL,
      filter: 'all prefixes (goog.json includes Google Cloud customer space; cloud.json lists that part)',
      createDate: creationTime,
      syncToken: String(upstream.syncToken ?? ''),
      retrievedFrom,
    },
    ipv4: sortPrefixes(ipv4),
    ipv6: sortPrefixes(ipv6),
  };
}

/** Writes a snapshot as JSON with one prefix per line. */
export function writeSnapshot(path, snapshot) {
  writeFileSync(path, `${JSON.stringify(snapshot, null, 2)}\n`);
}

async function load(file, url, retrievedFrom) {
  if (file) return { upstream: JSON.parse(readFileSync(file, 'utf8')), from: retrievedFrom ?? `saved copy ${file}` };
  const response = await globalThis.fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return { upstream: await response.json(), from: `${url} fetched ${new Date().toISOString().slice(0, 10)}` };
}

async function main(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    if (key === '--amazon-file' || key === '--google-file' || key === '--retrieved-from' || key === '--out-dir') {
      options[key.slice(2)] = argv[++i];
    } else if (key === '--only') {
      options.only = argv[++i];
    } else {
      console.log('usage: node collector/tag/data/update-ranges.mjs [--only amazon|google] [--amazon-file F] [--google-file F] [--retrieved-from TEXT] [--out-dir DIR]');
      return key === '--help' || key === '-h' ? 0 : 2;
    }
  }
  const outDir = options['out-dir'] ?? HERE;
  const jobs = [
    ['amazon', options['amazon-file'], AMAZON_URL, amazonSnapshot],
    ['google', options['google-file'], GOOGLE_URL, googleSnapshot],
  ];
  for (const [vendor, file, url, convert] of jobs) {
    if (options.only && options.only !== vendor) continue;
    try {
      const { upstream, from } = await load(file, url, options['retrieved-from']);
      const snapshot = convert(upstream, from);
      const path = join(outDir, `${vendor}-ip-ranges.json`);
      writeSnapshot(path, snapshot);
      console.log(`${path}: ${snapshot.ipv4.length} IPv4 + ${snapshot.ipv6.length} IPv6 prefixes (${snapshot.source.createDate})`);
    } catch (err) {
      // fetch() reports network failures as "fetch failed" with the reason in `cause`
      const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
      console.error(`update-ranges: ${vendor}: ${err instanceof Error ? err.message : String(err)}${cause}`);
      return 2;
    }
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
