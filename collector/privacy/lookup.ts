/**
 * The organisation lookup a run uses: the home network first (built-in private ranges and localNets:
 * the router, the resolver, other devices), then the organisation data (collector/privacy/orgs.ts:
 * curated domains, the catalogue, the vendors' published ranges, the ASN table).
 */
import type { Config } from '../config.js';
import { buildLocalNets, parseAddr } from '../flow/local-nets.js';
import type { EndpointOrg, OrgLookup } from './ledger.js';
import { buildOrgLookup } from './orgs.js';

/** The home network itself: traffic that stays at home. */
export const LAN_ORG: EndpointOrg = { name: 'Local network', key: 'lan', category: 'local', source: 'lan' };

export function buildEndpointOrgLookup(config: Pick<Readonly<Config>, 'localNets'>): OrgLookup {
  const nets = buildLocalNets(config.localNets);
  const orgs = buildOrgLookup();
  return (name, ip) => {
    const addr = ip === null ? null : parseAddr(ip);
    if (addr !== null && nets.isLocal(addr.version, addr.words)) return LAN_ORG;
    return orgs.lookup(name, ip);
  };
}
