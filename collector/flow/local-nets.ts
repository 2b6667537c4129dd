/**
 * Which addresses are on the local network: RFC 1918, CGNAT (100.64/10), link-local, ULA (fc00::/7),
 * loopback, plus the user's `localNets`. Compiled once into numeric prefix tests (no strings per packet).
 */
import { earshotError } from '../errors.js';

interface Prefix {
  version: 4 | 6;
  /** Address words as in DecodedPacket (IPv4 in word 3). */
  words: Uint32Array;
  bits: number;
}

// private, CGNAT, link-local, loopback, "this network" (DHCP's 0.0.0.0), broadcast and multicast
// (which never leaves a home network), and their IPv6 counterparts
const BUILTIN = [
  '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '127.0.0.0/8',
  '0.0.0.0/8', '224.0.0.0/4', '255.255.255.255/32',
  'fc00::/7', 'fe80::/10', '::1/128', '::/128', 'ff00::/8',
];

/** Parses "a.b.c.d" or an IPv6 literal into address words; null when it is not an address. */
export function parseAddr(text: string): { version: 4 | 6; words: Uint32Array } | null {
  const words = new Uint32Array(4);
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split('.').map(Number);
    if (parts.some((p) => p > 255)) return null;
    words[3] = ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
    return { version: 4, words };
  }
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(':')) return null;
  let head = text;
  let tail = '';
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
    if (tail.includes('::')) return null;
  }
  const toGroups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        const v4 = parseAddr(g);
        if (!v4 || v4.version !== 4) return null;
        out.push(v4.words[3] >>> 16, v4.words[3] & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const h = toGroups(head);
  const t = toGroups(tail);
  if (!h || !t) return null;
  const missing = 8 - h.length - t.length;
  if (dbl < 0 ? missing !== 0 : missing < 1) return null;
  const groups = [...h, ...new Array<number>(dbl < 0 ? 0 : missing).fill(0), ...t];
  for (let i = 0; i < 4; i++) words[i] = ((groups[2 * i] << 16) | groups[2 * i + 1]) >>> 0;
  return { version: 6, words };
}

/** Parses a CIDR ("192.168.1.0/24", "fd00::/8"); throws a config error naming `where`. */
export function parseCidr(text: string, where: string): Prefix {
  const [addr, bitsText] = text.split('/');
  const parsed = parseAddr(addr ?? '');
  const max = parsed?.version === 4 ? 32 : 128;
  const bits = bitsText === undefined ? max : Number(bitsText);
  if (!parsed || !Number.isInteger(bits) || bits < 0 || bits > max) {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `"${text}" is not a CIDR prefix like 192.168.1.0/24 or fd00::/8`);
  }
  return { version: parsed.version, words: parsed.words, bits: parsed.version === 4 ? bits + 96 : bits };
}

function matches(p: Prefix, words: ArrayLike<number>): boolean {
  // p.bits counts over all 128 bits (IPv4 prefixes include the 96 zero bits of words 0-2)
  for (let i = 0; i < 4; i++) {
    const take = Math.max(0, Math.min(32, p.bits - 32 * i));
    if (take === 0) return true;
    const mask = take === 32 ? 0xffffffff : ~(0xffffffff >>> take) >>> 0;
    if (((words[i] ^ p.words[i]) & mask) >>> 0 !== 0) return false;
  }
  return true;
}

/** Tests addresses against the compiled local prefixes. */
export interface LocalNets {
  isLocal(ipVersion: number, words: ArrayLike<number>): boolean;
}

/** Compiles the built-in local ranges plus `extra` (from config key localNets). */
export function buildLocalNets(extra: readonly string[]): LocalNets {
  // IPv4 prefixes as (network, mask) pairs in typed arrays: one AND and compare each
  const v4Net: number[] = [];
  const v4Mask: number[] = [];
  const v6: Prefix[] = [];
  for (const [i, text] of [...BUILTIN, ...extra].entries()) {
    const p = parseCidr(text, i < BUILTIN.length ? 'built-in' : `localNets[${i - BUILTIN.length}]`);
    if (p.version === 4) {
      const bits = p.bits - 96;
      const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
      v4Net.push((p.words[3] & mask) >>> 0);
      v4Mask.push(mask);
    } else {
      v6.push(p);
    }
  }
  const nets = Uint32Array.from(v4Net);
  const masks = Uint32Array.from(v4Mask);
  const count = nets.length;
  return {
    isLocal(ipVersion, words) {
      if (ipVersion === 4) {
        const a = words[3];
        for (let i = 0; i < count; i++) if (((a & masks[i]) >>> 0) === nets[i]) return true;
        return false;
      }
      if (ipVersion !== 6) return false;
      for (let i = 0; i < v6.length; i++) if (matches(v6[i], words)) return true;
      return false;
    },
  };
}
