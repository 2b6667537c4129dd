/**
 * The organisation lookup a run uses: the home network first (built-in private ranges and localNets),
 * then the catalogue vendor earshot already attributes the flow to (server name patterns, published
 * address ranges).
 */
import type { Config } from '../config.js';
import type { OrgLookup } from './ledger.js';
import { vendorOrgLookup, withLan } from './vendor-orgs.js';

export function buildEndpointOrgLookup(config: Pick<Readonly<Config>, 'localNets'>): OrgLookup {
  return withLan(config.localNets, vendorOrgLookup);
}
