/**
 * The organisation of an endpoint that earshot's own catalogue already attributes to an assistant
 * vendor (by server name pattern or the vendor's published address ranges): the fallback of the
 * organisation lookup, and the whole of it where no other data names the server.
 */
import { buildLocalNets, parseAddr, type LocalNets } from '../flow/local-nets.js';
import type { EndpointOrg } from './ledger.js';

/** The home network itself (the router, the DNS resolver, other devices): traffic that stays at home. */
export const LAN_ORG: EndpointOrg = { name: 'Local network', key: 'lan', category: 'local', source: 'lan' };

const VENDORS: Record<string, EndpointOrg> = {
  amazon: { name: 'Amazon', key: 'amazon', category: 'assistant-vendor', source: 'catalogue' },
  google: { name: 'Google', key: 'google', category: 'assistant-vendor', source: 'catalogue' },
  apple: { name: 'Apple', key: 'apple', category: 'assistant-vendor', source: 'catalogue' },
  sonos: { name: 'Sonos', key: 'sonos', category: 'assistant-vendor', source: 'catalogue' },
};

/** The catalogue vendor's organisation, or null. */
export function vendorOrgLookup(_serverName: string | null, _ip: string | null, vendor: string | null): EndpointOrg | null {
  return vendor === null ? null : VENDORS[vendor] ?? null;
}

/** Local-network endpoints (config localNets included) first, then `next`. */
export function withLan(localNets: readonly string[], next: (serverName: string | null, ip: string | null, vendor: string | null) => EndpointOrg | null) {
  const nets: LocalNets = buildLocalNets(localNets);
  return (serverName: string | null, ip: string | null, vendor: string | null): EndpointOrg | null => {
    const addr = ip === null ? null : parseAddr(ip);
    if (addr !== null && nets.isLocal(addr.version, addr.words)) return LAN_ORG;
    return next(serverName, ip, vendor);
  };
}
