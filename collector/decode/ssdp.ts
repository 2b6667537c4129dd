/**
 * SSDP (UPnP discovery, UDP 1900): NOTIFY announcements, M-SEARCH queries and their HTTP/1.1 200
 * answers. Speakers say what they are here: a Sonos announces "SERVER: Linux UPnP/1.0 Sonos/..." and
 * "urn:schemas-upnp-org:device:ZonePlayer:1"; Echos and Fire TVs answer DIAL searches.
 *
 * The message is HTTP-like text: a start line, then "Name: value" headers up to an empty line. Header
 * names are matched case-insensitively and the first of repeated headers wins. Only the first
 * MAX_SSDP_BYTES are read; text is decoded as latin1 (SSDP is ASCII; anything else cannot be trusted
 * anyway), control characters are dropped and each value is cut to MAX_SSDP_VALUE characters. Rare
 * packets, so a fresh record of copied strings.
 */

/** What one SSDP message says. */
export interface SsdpInfo {
  /** NOTIFY (announcement), M-SEARCH (query) or an HTTP response to a search. */
  kind: 'notify' | 'search' | 'response';
  /** SERVER: "OS/version UPnP/1.0 product/version". */
  server: string | null;
  /** NT (notification type) of a NOTIFY. */
  nt: string | null;
  /** NTS: ssdp:alive, ssdp:byebye or ssdp:update. */
  nts: string | null;
  /** ST (search target) of a search or of its answer. */
  st: string | null;
  /** USN: unique service name ("uuid:...::urn:..."). */
  usn: string | null;
  /** LOCATION: the URL of the device description. */
  location: string | null;
  /** USER-AGENT of a search. */
  userAgent: string | null;
}

/** Bytes of a message read at most (SSDP messages fit in one datagram of a few hundred bytes). */
export const MAX_SSDP_BYTES = 4096;
/** Longest header value reported. */
export const MAX_SSDP_VALUE = 256;

type HeaderKey = 'server' | 'nt' | 'nts' | 'st' | 'usn' | 'location' | 'userAgent';

const HEADERS: Readonly<Record<string, HeaderKey>> = {
  server: 'server', nt: 'nt', nts: 'nts', st: 'st', usn: 'usn', location: 'location', 'user-agent': 'userAgent',
};

/**
 * Parses the SSDP message in buf[offset, offset + length). Returns null when the start line is not
 * NOTIFY, M-SEARCH or an HTTP status line; never throws.
 */
export function parseSsdp(buf: Buffer, offset: number, length: number): SsdpInfo | null {
  if (!(offset >= 0 && length >= 0 && offset + length <= buf.length)) return null;
  const text = buf.toString('latin1', offset, offset + Math.min(length, MAX_SSDP_BYTES));
  const lines = text.split('\n');
  const startLine = lines[0].replace(/\r$/, '');
  const kind = kindOf(startLine);
  if (kind === null) return null;
  const info: SsdpInfo = { kind, server: null, nt: null, nts: null, st: null, usn: null, location: null, userAgent: null };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (line === '') break; // end of headers
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = HEADERS[line.slice(0, colon).trim().toLowerCase()];
    if (key === undefined || info[key] !== null) continue;
    info[key] = clean(line.slice(colon + 1));
  }
  return info;
}

function kindOf(startLine: string): SsdpInfo['kind'] | null {
  const upper = startLine.toUpperCase();
  if (/^NOTIFY\s+\S+\s+HTTP\/\d\.\d$/.test(upper)) return 'notify';
  if (/^M-SEARCH\s+\S+\s+HTTP\/\d\.\d$/.test(upper)) return 'search';
  if (/^HTTP\/\d\.\d\s+\d{3}(\s.*)?$/.test(upper)) return 'response';
  return null;
}

/** A header value: control characters dropped, trimmed, bounded; null when nothing is left. */
function clean(raw: string): string | null {
  // eslint-disable-next-line no-control-regex
  const value = raw.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '').trim();
  if (value === '') return null;
  return value.length > MAX_SSDP_VALUE ? value.slice(0, MAX_SSDP_VALUE) : value;
}
