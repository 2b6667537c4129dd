/**
 * The few payloads the findings read, each a pure function over one packet's bytes: the start of a
 * plaintext HTTP request (method, path, Host, SOAPAction and the port mapping a UPnP AddPortMapping
 * asks for), NAT-PMP and PCP requests (RFC 6886, RFC 6887), and the STARTTLS-style commands that turn a
 * plaintext mail or file-transfer session into TLS. Only the first MAX_READ bytes are read; text is
 * latin1 (these protocols are ASCII), and callers cut what they keep (store.ts cleanText).
 */

/** Bytes of a segment read at most (a request's start line and headers fit in one segment). */
export const MAX_READ = 2048;

/** What the start of an HTTP request says. */
export interface HttpRequest {
  method: string;
  path: string;
  host: string | null;
  contentType: string | null;
  soapAction: string | null;
  /** A UPnP AddPortMapping/AddAnyPortMapping in the headers or the body seen. */
  portMapping: { externalPort: string | null; protocol: string | null; internalPort: string | null; internalClient: string | null; description: string | null } | null;
}

const METHOD = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT|SUBSCRIBE|NOTIFY|M-SEARCH) (\S{1,2048}) HTTP\/1\.[01]\r?\n/;

/** Cheap first test on the segment's first bytes: an upper-case letter, then the method's text. */
function startsLikeRequest(buf: Buffer, off: number, len: number): boolean {
  if (len < 14) return false;
  const c = buf[off];
  return c >= 0x41 && c <= 0x5a && (c === 0x47 || c === 0x50 || c === 0x48 || c === 0x44 || c === 0x4f || c === 0x43 || c === 0x53 || c === 0x4e || c === 0x4d);
}

function xmlValue(text: string, tag: string): string | null {
  const m = new RegExp(`<${tag}>([^<]{0,200})</${tag}>`).exec(text);
  return m ? m[1].trim() : null;
}

/** Parses the start of an HTTP/1.x request in buf[off, off + len); null when it is not one. */
export function parseHttpRequest(buf: Buffer, off: number, len: number): HttpRequest | null {
  if (!startsLikeRequest(buf, off, len)) return null;
  const text = buf.toString('latin1', off, off + Math.min(len, MAX_READ));
  const start = METHOD.exec(text);
  if (start === null) return null;
  const req: HttpRequest = { method: start[1], path: start[2], host: null, contentType: null, soapAction: null, portMapping: null };
  const headerEnd = text.indexOf('\r\n\r\n');
  const headers = (headerEnd < 0 ? text : text.slice(0, headerEnd)).split(/\r?\n/);
  for (let i = 1; i < headers.length; i++) {
    const colon = headers[i].indexOf(':');
    if (colon <= 0) continue;
    const name = headers[i].slice(0, colon).trim().toLowerCase();
    const value = headers[i].slice(colon + 1).trim();
    if (name === 'host' && req.host === null) req.host = value;
    else if (name === 'content-type' && req.contentType === null) req.contentType = value;
    else if (name === 'soapaction' && req.soapAction === null) req.soapAction = value.replace(/^"|"$/g, '');
  }
  const body = headerEnd < 0 ? '' : text.slice(headerEnd + 4);
  if (/#Add(?:Any)?PortMapping$/i.test(req.soapAction ?? '') || /<(?:\w+:)?Add(?:Any)?PortMapping[\s>]/.test(body)) {
    req.portMapping = {
      externalPort: xmlValue(body, 'NewExternalPort'),
      protocol: xmlValue(body, 'NewProtocol'),
      internalPort: xmlValue(body, 'NewInternalPort'),
      internalClient: xmlValue(body, 'NewInternalClient'),
      description: xmlValue(body, 'NewPortMappingDescription'),
    };
  }
  return req;
}

/** A NAT-PMP or PCP request. */
export interface PortMapRequest {
  protocol: 'nat-pmp' | 'pcp';
  /** map/peer ask for a mapping; external-address (NAT-PMP op 0) and announce (PCP op 0) only ask. */
  op: 'map' | 'peer' | 'external-address' | 'announce';
  /** tcp, udp, or the IP protocol number as text ('all' for PCP's 0). */
  transport: string | null;
  internalPort: number;
  externalPort: number;
  /** Seconds asked for; 0 deletes the mapping. */
  lifetime: number;
}

const PCP_PROTOCOLS: Record<number, string> = { 0: 'all', 6: 'tcp', 17: 'udp' };

/** Parses a NAT-PMP (version 0) or PCP (version 2) request sent to UDP 5351; null when it is neither. */
export function parsePortMapRequest(buf: Buffer, off: number, len: number): PortMapRequest | null {
  if (len < 2) return null;
  const version = buf[off];
  const opcode = buf[off + 1];
  if (version === 0) {
    // RFC 6886 3.2 and 3.3: op 0 asks for the external address, 1 maps UDP, 2 maps TCP (12 bytes)
    if (opcode === 0) return { protocol: 'nat-pmp', op: 'external-address', transport: null, internalPort: 0, externalPort: 0, lifetime: 0 };
    if ((opcode === 1 || opcode === 2) && len >= 12) {
      return { protocol: 'nat-pmp', op: 'map', transport: opcode === 1 ? 'udp' : 'tcp', internalPort: buf.readUInt16BE(off + 4), externalPort: buf.readUInt16BE(off + 6), lifetime: buf.readUInt32BE(off + 8) };
    }
    return null;
  }
  // RFC 6887 7.1: a request has the R bit clear; 24-byte header, then MAP (36 bytes) or PEER (56)
  if (version !== 2 || (opcode & 0x80) !== 0 || len < 24) return null;
  const lifetime = buf.readUInt32BE(off + 4);
  const op = opcode & 0x7f;
  if (op === 0) return { protocol: 'pcp', op: 'announce', transport: null, internalPort: 0, externalPort: 0, lifetime };
  if ((op === 1 || op === 2) && len >= 24 + 36) {
    const at = off + 24 + 12; // after the nonce
    const proto = buf[at];
    return { protocol: 'pcp', op: op === 1 ? 'map' : 'peer', transport: PCP_PROTOCOLS[proto] ?? String(proto), internalPort: buf.readUInt16BE(at + 4), externalPort: buf.readUInt16BE(at + 6), lifetime };
  }
  return null;
}

/** A client's command that starts TLS in a plaintext protocol (SMTP/IMAP STARTTLS, POP3 STLS, FTP AUTH TLS). */
export function startsTls(buf: Buffer, off: number, len: number): boolean {
  const text = buf.toString('latin1', off, off + Math.min(len, 256)).toUpperCase();
  return /(^|\s)(STARTTLS|STLS|AUTH TLS|AUTH SSL)\s*(\r?\n|$)/.test(text);
}
