/**
 * The organisation lookup a run uses: the home network first (built-in private ranges and localNets),
 * then the organisation data (collector/privacy/orgs.ts: curated domains, the catalogue, the vendors'
 * published ranges, the ASN table), then the catalogue vendor earshot already gave the flow.
 */
import type { Config } from '../config.js';
import type { OrgLookup } from './ledger.js';
import { buildOrgLookup } from './orgs.js';
import { vendorOrgLookup, withLan } from './vendor-orgs.js';

export function buildEndpointOrgLookup(config: Pick<Readonly<Config>, 'localNets'>): OrgLookup {
  const orgs = buildOrgLookup();
  return withLan(config.localNets, (name, ip, vendor) => orgs.lookup(name, ip) ?? vendorOrgLookup(name, ip, vendor));
}
