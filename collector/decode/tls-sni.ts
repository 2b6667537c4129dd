/**
 * TLS ClientHello server name (SNI). Pure function over the first bytes of a client-to-server TCP
 * stream; the flow stage buffers the stream in order and calls again while the answer is "need N bytes".
 * parseHandshakeClientHelloSni reads a bare handshake message, as QUIC carries it in CRYPTO frames.
 *
 * The ClientHello may span several TLS records (each of type handshake) and several TCP segments; the
 * whole handshake message must be present before the SNI is reported. With Encrypted Client Hello
 * (extension 0xfe0d) the cleartext outer ClientHello carries the public name in server_name: that is
 * what is reported (as tshark's tls.handshake.extensions_server_name).
 */

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const EXTENSION_SUPPORTED_VERSIONS = 43;
const NAME_TYPE_HOST_NAME = 0;
const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
/** Largest TLS record body allowed (2^14 plus the expansion allowed to ciphertext). */
const MAX_RECORD_BODY = 16384 + 2048;
/** Stream bytes we are willing to buffer for one ClientHello. */
export const MAX_CLIENT_HELLO_STREAM_BYTES = 64 * 1024;

/** Joins a ClientHello that spans records; allocated on first need, reused. */
let scratch: Buffer | null = null;

/**
 * The highest TLS version the last whole ClientHello offered (0x0301 TLS 1.0 ... 0x0304 TLS 1.3): its
 * supported_versions extension when present (RFC 8446 4.2.1), else its legacy client_version; 0 when
 * the last parse did not reach a whole ClientHello. Set by the parsers above, read right after a call
 * (one number, no record per hello: findings/ looks for versions older than TLS 1.2).
 */
let lastClientHelloVersion = 0;

/** See lastClientHelloVersion: the version offered by the ClientHello the last parse read whole, or 0. */
export function clientHelloVersion(): number {
  return lastClientHelloVersion;
}

/**
 * Reads the SNI host name from the ClientHello at the start of buf[offset, offset + length): returns
 * the name; null when it is not a TLS ClientHello, has no host_name, is malformed, or would need more
 * than 64 KiB; or a number N > length: the stream bytes needed before calling again.
 */
export function parseClientHelloSni(buf: Buffer, offset: number, length: number): string | null | number {
  lastClientHelloVersion = 0;
  if (offset < 0 || length < 0 || offset + length > buf.length) return null;
  // check what we have of the first record header and handshake type, ask for the rest
  if (length >= 1 && buf[offset] !== RECORD_HANDSHAKE) return null;
  if (length >= 2 && buf[offset + 1] !== 3) return null;
  if (length >= 5 && (buf.readUInt16BE(offset + 3) === 0 || buf.readUInt16BE(offset + 3) > MAX_RECORD_BODY)) return null;
  if (length >= 6 && buf[offset + 5] !== HANDSHAKE_CLIENT_HELLO) return null;
  if (length < RECORD_HEADER + HANDSHAKE_HEADER) return RECORD_HEADER + HANDSHAKE_HEADER;
  const recordLength = buf.readUInt16BE(offset + 3);
  if (recordLength >= HANDSHAKE_HEADER) {
    const handshakeLength = HANDSHAKE_HEADER + buf.readUIntBE(offset + 6, 3);
    if (handshakeLength + RECORD_HEADER > MAX_CLIENT_HELLO_STREAM_BYTES) return null;
    // the usual case: the whole message in the first record, read in place
    if (handshakeLength <= recordLength) {
      if (RECORD_HEADER + handshakeLength > length) return RECORD_HEADER + handshakeLength;
      return serverName(buf, offset + RECORD_HEADER, offset + RECORD_HEADER + handshakeLength);
    }
  }
  return joinRecords(buf, offset, offset + length);
}

/**
 * Reads the SNI host name from a bare ClientHello handshake message (no TLS record header) at
 * buf[offset, offset + length), as QUIC carries it in CRYPTO frames: the name, or null when it is not a
 * whole ClientHello, has no host_name, or is malformed.
 */
export function parseHandshakeClientHelloSni(buf: Buffer, offset: number, length: number): string | null {
  lastClientHelloVersion = 0;
  if (offset < 0 || length < HANDSHAKE_HEADER || offset + length > buf.length) return null;
  if (buf[offset] !== HANDSHAKE_CLIENT_HELLO) return null;
  const handshakeLength = HANDSHAKE_HEADER + buf.readUIntBE(offset + 1, 3);
  if (handshakeLength > length) return null;
  return serverName(buf, offset, offset + handshakeLength);
}

/** A ClientHello spread over several records: their bodies are joined in `scratch`, then parsed. */
function joinRecords(buf: Buffer, offset: number, end: number): string | null | number {
  if (scratch === null) scratch = Buffer.allocUnsafe(MAX_CLIENT_HELLO_STREAM_BYTES);
  let at = offset;
  let collected = 0;
  let handshakeLength = -1; // known once the 4-byte handshake header is in
  while (handshakeLength < 0 || collected < handshakeLength) {
    const missing = handshakeLength < 0 ? HANDSHAKE_HEADER - collected : handshakeLength - collected;
    if (end - at < RECORD_HEADER) return needed(at + RECORD_HEADER + missing - offset);
    const recordLength = buf.readUInt16BE(at + 3);
    if (buf[at] !== RECORD_HANDSHAKE || buf[at + 1] !== 3 || recordLength === 0 || recordLength > MAX_RECORD_BODY) return null;
    const present = Math.min(recordLength, end - at - RECORD_HEADER);
    if (collected + present > MAX_CLIENT_HELLO_STREAM_BYTES) return null;
    buf.copy(scratch, collected, at + RECORD_HEADER, at + RECORD_HEADER + present);
    collected += present;
    if (handshakeLength < 0 && collected >= HANDSHAKE_HEADER) {
      if (scratch[0] !== HANDSHAKE_CLIENT_HELLO) return null;
      handshakeLength = HANDSHAKE_HEADER + scratch.readUIntBE(1, 3);
      if (handshakeLength + RECORD_HEADER > MAX_CLIENT_HELLO_STREAM_BYTES) return null;
    }
    if (present < recordLength) {
      if (handshakeLength >= 0 && collected >= handshakeLength) break;
      // this record is cut: ask for its end, plus one more record if the message goes on after it
      const afterRecord = collected - present + recordLength;
      const rest = handshakeLength < 0 ? 0 : handshakeLength - afterRecord;
      return needed(at + RECORD_HEADER + recordLength + (rest > 0 ? RECORD_HEADER + rest : 0) - offset);
    }
    at += RECORD_HEADER + recordLength;
  }
  return serverName(scratch, 0, handshakeLength);
}

function needed(bytes: number): number | null {
  return bytes > MAX_CLIENT_HELLO_STREAM_BYTES ? null : bytes;
}

/** The host_name of the server_name extension of the ClientHello message in buf[from, end), or null. */
function serverName(buf: Buffer, from: number, end: number): string | null {
  let at = from + HANDSHAKE_HEADER + 2 + 32; // client_version, random
  if (at + 1 > end) return null;
  let version = buf.readUInt16BE(from + HANDSHAKE_HEADER);
  at += 1 + buf[at]; // session id
  if (at + 2 > end) return null;
  at += 2 + buf.readUInt16BE(at); // cipher suites
  if (at + 1 > end) return null;
  at += 1 + buf[at]; // compression methods
  if (at + 2 > end) return null; // no extensions (or damaged)
  const extensionsEnd = at + 2 + buf.readUInt16BE(at);
  if (extensionsEnd > end) return null;
  at += 2;
  let name: string | null = null;
  while (at + 4 <= extensionsEnd) {
    const type = buf.readUInt16BE(at);
    const extensionLength = buf.readUInt16BE(at + 2);
    at += 4;
    if (at + extensionLength > extensionsEnd) break; // damaged: what came before it stands
    if (type === EXTENSION_SERVER_NAME && name === null) name = hostName(buf, at, at + extensionLength);
    else if (type === EXTENSION_SUPPORTED_VERSIONS) version = highestVersion(buf, at, at + extensionLength, version);
    at += extensionLength;
  }
  lastClientHelloVersion = version;
  return name;
}

/** The highest TLS version (3,x) listed in a supported_versions body, GREASE values skipped. */
function highestVersion(buf: Buffer, from: number, end: number, fallback: number): number {
  if (from + 1 > end) return fallback;
  const listEnd = Math.min(end, from + 1 + buf[from]);
  let best = 0;
  for (let at = from + 1; at + 2 <= listEnd; at += 2) {
    const v = buf.readUInt16BE(at);
    if (buf[at] === 3 && v > best) best = v;
  }
  return best === 0 ? fallback : best;
}

/** Longest host name taken (RFC 1035's 253 characters of text); a longer one is no host name. */
export const MAX_SNI_LENGTH = 253;

/**
 * Whether buf[from, end) can be a host name in an SNI (RFC 6066: a DNS host name, ASCII, A-labels for
 * IDNs): letters, digits, '-', '.', and '_' (seen in real names), 1 to 253 of them. Anything else is
 * not kept: a ClientHello may carry 64 kB of anything there, and the name goes to flows, the device's
 * evidence, the state file, the API and every sink (20-kB names with control characters were kept).
 */
function isHostName(buf: Buffer, from: number, end: number): boolean {
  if (end <= from || end - from > MAX_SNI_LENGTH) return false;
  for (let i = from; i < end; i++) {
    const c = buf[i];
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
    if (!ok) return false;
  }
  return true;
}

/** The first host_name entry of a server_name extension body in buf[from, end), when it is a host name. */
function hostName(buf: Buffer, from: number, end: number): string | null {
  if (from + 2 > end) return null;
  const listEnd = from + 2 + buf.readUInt16BE(from);
  if (listEnd > end) return null;
  let at = from + 2;
  while (at + 3 <= listEnd) {
    const nameType = buf[at];
    const nameLength = buf.readUInt16BE(at + 1);
    at += 3;
    if (at + nameLength > listEnd) return null;
    if (nameType === NAME_TYPE_HOST_NAME) return isHostName(buf, at, at + nameLength) ? buf.toString('latin1', at, at + nameLength) : null;
    at += nameLength;
  }
  return null;
}
