/**
 * The public DNS resolvers (data/resolvers.json, each provider with the page that lists it): their
 * addresses, for plain DNS (53), DNS over TLS (853) and DNS over HTTPS by address (443), and their
 * DNS-over-HTTPS/TLS names, for the ClientHello's server name. Compiled once at setup into a set of
 * IPv4 words and a set of IPv6 texts; names match exactly or as a parent domain (NextDNS gives each
 * configuration its own subdomain of dns.nextdns.io).
 */
import { readFileSync } from 'node:fs';
import { parseAddr } from '../flow/local-nets.js';
import { packagePath } from '../paths.js';

interface ResolverFile {
  providers: Array<{ name: string; source: string; addresses: string[]; names: string[] }>;
}

export interface PublicResolvers {
  /** The provider whose address this is (IPv4 in words[3], as DecodedPacket has it), or null. */
  providerOf(ipVersion: number, words: ArrayLike<number>): string | null;
  /** The provider whose DoH/DoT name this is (or a subdomain of), or null. */
  providerOfName(name: string): string | null;
}

/** Canonical text of an IPv6 address's words (lookups only; not a display form). */
function v6Key(words: ArrayLike<number>): string {
  return `${words[0] >>> 0}:${words[1] >>> 0}:${words[2] >>> 0}:${words[3] >>> 0}`;
}

/** Compiles a resolver file (by default the shipped one). */
export function buildPublicResolvers(file: ResolverFile = JSON.parse(readFileSync(packagePath('collector', 'findings', 'data', 'resolvers.json'), 'utf8')) as ResolverFile): PublicResolvers {
  const v4 = new Map<number, string>();
  const v6 = new Map<string, string>();
  const names = new Map<string, string>();
  for (const p of file.providers) {
    for (const text of p.addresses) {
      const a = parseAddr(text);
      if (a === null) throw new Error(`resolvers.json: "${text}" (${p.name}) is not an address`);
      if (a.version === 4) v4.set(a.words[3], p.name);
      else v6.set(v6Key(a.words), p.name);
    }
    for (const n of p.names) names.set(n.toLowerCase(), p.name);
  }
  return {
    providerOf(ipVersion, words) {
      if (ipVersion === 4) return v4.get(words[3] >>> 0) ?? null;
      return ipVersion === 6 ? v6.get(v6Key(words)) ?? null : null;
    },
    providerOfName(name) {
      let n = name.toLowerCase();
      if (n.endsWith('.')) n = n.slice(0, -1);
      for (;;) {
        const hit = names.get(n);
        if (hit !== undefined) return hit;
        const dot = n.indexOf('.');
        if (dot < 0) return null;
        n = n.slice(dot + 1);
      }
    },
  };
}
