/**
 * The site: which home (or lab, or flat) a collector watches. It tags every InfluxDB point, names the MQTT
 * topics and Home Assistant ids, and travels in every webhook payload, API answer and report, so that many
 * collectors can share one InfluxDB, one broker and one webhook receiver (docs/fleet.md).
 *
 * A site name is short and plain, so that it is the same text everywhere it goes: an InfluxDB tag value,
 * one MQTT topic level (no / + #), a Home Assistant id ([a-z0-9_-]), a file name and a URL path segment.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** What a site name may be: lower-case letters, digits, - and _, starting with a letter or digit, 1-63 long. */
export const SITE_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$';
const SITE_RE = new RegExp(SITE_PATTERN);

/**
 * Host names that many machines share out of the box (Raspberry Pi OS names every Pi "raspberrypi"): a
 * site named after one would collide with the neighbour's, so the machine id is added to it.
 */
const GENERIC_HOSTS = new Set(['raspberrypi', 'localhost', 'earshot', 'debian', 'ubuntu', 'dietpi', 'pi', 'openwrt', 'router', 'host', 'none']);

export function isSiteName(text: string): boolean {
  return SITE_RE.test(text);
}

/**
 * A host name made a site name: lower case, anything else than [a-z0-9_-] becomes -, the domain part
 * dropped (home.lan), cut to 63; a generic name (raspberrypi) gets the first 6 hex digits of the machine
 * id (/etc/machine-id: stable across reboots, different on each installed system).
 */
export function siteFromHost(host: string, machineId: string | null): string {
  let site = host.split('.')[0].toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^[-_]+/, '').slice(0, 63).replace(/[-_]+$/, '');
  if (site === '') site = 'earshot';
  const id = machineId?.trim().toLowerCase().match(/^[0-9a-f]{6}/)?.[0];
  if (GENERIC_HOSTS.has(site) && id) site = `${site}-${id}`;
  return site;
}

/** The default site of this machine: its host name (see siteFromHost). */
export function defaultSite(): string {
  let machineId: string | null = null;
  for (const path of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      machineId = readFileSync(path, 'utf8');
      break;
    } catch {
      // not on this system: the host name alone
    }
  }
  return siteFromHost(hostname(), machineId);
}
