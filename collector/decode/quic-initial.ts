/**
 * TLS server name (SNI) of QUIC connections, read from the client's Initial packets (RFC 9000, 9001;
 * QUIC v2, RFC 9369). Initial packets are encrypted with keys anyone can derive from the Destination
 * Connection ID, so a router can read the ClientHello the way tshark does: derive the client Initial
 * keys, remove header protection, decrypt the payload, collect the CRYPTO frames.
 *
 * This runs only on the first client-to-server datagrams of UDP/443 flows, so it allocates freely; the
 * first check (long header, known version, Initial type) is cheap and comes before any crypto.
 * A ClientHello may span several Initial packets (Chrome's post-quantum key share makes it ~1.8 kB) and
 * its CRYPTO frames may come out of order: QuicSniAssembler joins them per flow, within bounds.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { parseHandshakeClientHelloSni } from './tls-sni.js';

/** QUIC version numbers whose Initial packets we can decrypt. */
export const QUIC_V1 = 0x00000001;
export const QUIC_V2 = 0x6b3343cf;
/** CRYPTO stream bytes one flow may collect before giving up on its ClientHello. */
export const MAX_QUIC_CRYPTO_BYTES = 64 * 1024;
/** Initial packets one flow may push before giving up on its ClientHello. */
export const MAX_QUIC_INITIAL_PACKETS = 8;

/** Per-version constants: the Initial salt, the HKDF labels, the long-header type codes. */
interface VersionParams {
  salt: Buffer;
  keyLabel: string;
  ivLabel: string;
  hpLabel: string;
  initialType: number;
  retryType: number;
}

const V1: VersionParams = {
  salt: Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex'),
  keyLabel: 'quic key', ivLabel: 'quic iv', hpLabel: 'quic hp', initialType: 0, retryType: 3,
};
// RFC 9369 renumbers the long-header types so that middleboxes hard-wired to v1 do not ossify them
const V2: VersionParams = {
  salt: Buffer.from('0dede3def700a6db819381be6e269dcbf9bd2ed9', 'hex'),
  keyLabel: 'quicv2 key', ivLabel: 'quicv2 iv', hpLabel: 'quicv2 hp', initialType: 1, retryType: 0,
};

const LONG_HEADER = 0x80;
/** Connection IDs of v1/v2 are at most 20 bytes (RFC 9000 §17.2). */
const MAX_CID = 20;
const SAMPLE_LENGTH = 16;
const TAG_LENGTH = 16;
/** Packets of one datagram we look at: coalescing more than a few is not something clients do. */
const MAX_COALESCED = 4;
const FRAME_PADDING = 0x00;
const FRAME_PING = 0x01;
const FRAME_ACK = 0x02;
const FRAME_ACK_ECN = 0x03;
const FRAME_CRYPTO = 0x06;
const HANDSHAKE_CLIENT_HELLO = 1;
const HANDSHAKE_HEADER = 4;

/** One CRYPTO frame: `data` belongs at `offset` of the Initial-level crypto stream. */
export interface QuicCryptoFrame {
  offset: number;
  data: Buffer;
}

/** What a client Initial datagram carries for us: its DCID and the CRYPTO frames of its Initials. */
export interface QuicInitialCrypto {
  dcid: Buffer;
  frames: QuicCryptoFrame[];
}

/** Client Initial packet protection keys (RFC 9001 §5). */
export interface QuicInitialKeys {
  key: Buffer;
  iv: Buffer;
  hp: Buffer;
}

function versionParams(version: number): VersionParams | null {
  if (version === QUIC_V1) return V1;
  if (version === QUIC_V2) return V2;
  return null;
}

/** HKDF-Expand-Label (RFC 8446 §7.1) with an empty context; one HMAC block suffices for <= 32 bytes. */
function expandLabel(secret: Buffer, label: string, length: number): Buffer {
  const fullLabel = `tls13 ${label}`;
  const info = Buffer.alloc(2 + 1 + fullLabel.length + 1 + 1);
  info.writeUInt16BE(length, 0);
  info[2] = fullLabel.length;
  info.write(fullLabel, 3, 'latin1');
  info[info.length - 1] = 1; // HKDF-Expand block counter (the context length byte before it stays 0)
  return createHmac('sha256', secret).update(info).digest().subarray(0, length);
}

/** Derives the client Initial key, IV and header-protection key from the DCID (RFC 9001 §5.2). */
export function deriveClientInitialKeys(dcid: Buffer, version: number = QUIC_V1): QuicInitialKeys | null {
  const params = versionParams(version);
  if (params === null) return null;
  const initialSecret = createHmac('sha256', params.salt).update(dcid).digest(); // HKDF-Extract
  const clientSecret = expandLabel(initialSecret, 'client in', 32);
  return {
    key: expandLabel(clientSecret, params.keyLabel, 16),
    iv: expandLabel(clientSecret, params.ivLabel, 12),
    hp: expandLabel(clientSecret, params.hpLabel, 16),
  };
}

// The packets of one ClientHello share their DCID: remember the last keys to derive them once per flow.
let cachedVersion = -1;
let cachedDcid: Buffer | null = null;
let cachedKeys: QuicInitialKeys | null = null;

function clientKeys(dcid: Buffer, version: number): QuicInitialKeys | null {
  if (cachedDcid !== null && version === cachedVersion && cachedDcid.equals(dcid)) return cachedKeys;
  const keys = deriveClientInitialKeys(dcid, version);
  cachedVersion = version;
  cachedDcid = Buffer.from(dcid);
  cachedKeys = keys;
  return keys;
}

/**
 * Cheap test, before any crypto, that buf[offset, offset + length) starts with a long-header QUIC v1/v2
 * Initial packet.
 */
export function isQuicInitialCandidate(buf: Buffer, offset: number, length: number): boolean {
  if (!(offset >= 0 && length >= 7 && offset + length <= buf.length)) return false;
  const first = buf[offset];
  if ((first & LONG_HEADER) === 0) return false;
  const params = versionParams(buf.readUInt32BE(offset + 1));
  return params !== null && ((first >> 4) & 3) === params.initialType;
}

/** Reads a QUIC variable-length integer at cursor.at (< end), advancing it; -1 when it does not fit. */
function readVarint(buf: Buffer, cursor: { at: number }, end: number): number {
  const at = cursor.at;
  if (at >= end) return -1;
  const size = 1 << (buf[at] >> 6);
  if (at + size > end) return -1;
  let value = buf[at] & 0x3f;
  for (let i = 1; i < size; i++) value = value * 256 + buf[at + i];
  cursor.at = at + size;
  return value;
}

/**
 * Decrypts the client Initial packets of one UDP datagram in buf[offset, offset + length) and returns
 * their DCID and CRYPTO frames; null when the datagram holds no client Initial we can decrypt.
 * Never throws; reads nothing outside the given range.
 */
export function extractQuicInitialCrypto(buf: Buffer, offset: number, length: number): QuicInitialCrypto | null {
  if (!isQuicInitialCandidate(buf, offset, length)) return null;
  try {
    return extractPackets(buf, offset, offset + length);
  } catch {
    return null; // a crypto failure we did not foresee: not a packet we can read
  }
}

function extractPackets(buf: Buffer, start: number, end: number): QuicInitialCrypto | null {
  const cursor = { at: start };
  let result: QuicInitialCrypto | null = null;
  for (let n = 0; n < MAX_COALESCED && cursor.at + 7 <= end; n++) {
    const packetStart = cursor.at;
    const first = buf[packetStart];
    // a short header or the zeros some clients pad datagrams with: nothing after it has a length
    if ((first & LONG_HEADER) === 0) break;
    const version = buf.readUInt32BE(packetStart + 1);
    const params = versionParams(version);
    const type = (first >> 4) & 3;
    if (params === null || type === params.retryType) break;
    cursor.at = packetStart + 5;
    const dcidLength = buf[cursor.at];
    const dcidStart = cursor.at + 1;
    if (dcidLength > MAX_CID || dcidStart + dcidLength >= end) break;
    const scidLength = buf[dcidStart + dcidLength];
    cursor.at = dcidStart + dcidLength + 1 + scidLength;
    if (scidLength > MAX_CID || cursor.at > end) break;
    if (type === params.initialType) {
      const tokenLength = readVarint(buf, cursor, end);
      if (tokenLength < 0 || cursor.at + tokenLength > end) break;
      cursor.at += tokenLength;
    }
    const payloadLength = readVarint(buf, cursor, end);
    const pnOffset = cursor.at;
    if (payloadLength < 0 || pnOffset + payloadLength > end) break;
    cursor.at = pnOffset + payloadLength;
    if (type !== params.initialType) continue; // 0-RTT or Handshake coalesced with the Initial: skip it
    const dcid = buf.subarray(dcidStart, dcidStart + dcidLength);
    // a later Initial with another DCID cannot belong to this connection (RFC 9000 §12.2)
    if (result !== null && !result.dcid.equals(dcid)) break;
    const plaintext = decryptInitial(buf, packetStart, pnOffset, cursor.at, dcid, version);
    if (plaintext === null) {
      if (result === null) return null;
      break;
    }
    if (result === null) result = { dcid: Buffer.from(dcid), frames: [] };
    cryptoFrames(plaintext, result.frames);
  }
  return result;
}

/** Removes header protection and decrypts buf[packetStart, packetEnd); null when it does not verify. */
function decryptInitial(buf: Buffer, packetStart: number, pnOffset: number, packetEnd: number, dcid: Buffer, version: number): Buffer | null {
  const sampleOffset = pnOffset + 4; // sampled as if the packet number were 4 bytes (RFC 9001 §5.4.2)
  if (sampleOffset + SAMPLE_LENGTH > packetEnd) return null;
  const keys = clientKeys(dcid, version);
  if (keys === null) return null;
  const maskCipher = createCipheriv('aes-128-ecb', keys.hp, null);
  maskCipher.setAutoPadding(false);
  const mask = maskCipher.update(buf.subarray(sampleOffset, sampleOffset + SAMPLE_LENGTH));
  const first = buf[packetStart] ^ (mask[0] & 0x0f);
  const pnLength = (first & 3) + 1;
  const payloadStart = pnOffset + pnLength;
  if (payloadStart + TAG_LENGTH > packetEnd) return null;
  // the header is the AEAD's associated data, unprotected; copy it so the caller's bytes stay as captured
  const header = Buffer.from(buf.subarray(packetStart, payloadStart));
  header[0] = first;
  let packetNumber = 0;
  for (let i = 0; i < pnLength; i++) {
    const at = pnOffset - packetStart + i;
    header[at] ^= mask[1 + i];
    packetNumber = packetNumber * 256 + header[at];
  }
  // The truncated packet number is the full one for a connection's first packets, which are what we read.
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < 4; i++) nonce[11 - i] ^= (packetNumber >>> (8 * i)) & 0xff;
  const decipher = createDecipheriv('aes-128-gcm', keys.key, nonce);
  decipher.setAAD(header);
  decipher.setAuthTag(buf.subarray(packetEnd - TAG_LENGTH, packetEnd));
  const body = decipher.update(buf.subarray(payloadStart, packetEnd - TAG_LENGTH));
  try {
    const tail = decipher.final(); // throws when the tag does not verify: wrong keys, damage, not ours
    return tail.length === 0 ? body : Buffer.concat([body, tail]);
  } catch {
    return null;
  }
}

/** Appends the CRYPTO frames of a decrypted Initial payload to `frames`, skipping PADDING, PING, ACK. */
function cryptoFrames(plaintext: Buffer, frames: QuicCryptoFrame[]): void {
  const end = plaintext.length;
  const cursor = { at: 0 };
  while (cursor.at < end) {
    const type = plaintext[cursor.at];
    if (type === FRAME_PADDING || type === FRAME_PING) {
      cursor.at++;
    } else if (type === FRAME_ACK || type === FRAME_ACK_ECN) {
      cursor.at++;
      if (!skipAck(plaintext, cursor, end, type === FRAME_ACK_ECN)) return;
    } else if (type === FRAME_CRYPTO) {
      cursor.at++;
      const offset = readVarint(plaintext, cursor, end);
      const length = readVarint(plaintext, cursor, end);
      // an offset past what we would ever collect is damage (and may not even be a safe integer)
      if (offset < 0 || length < 0 || offset > MAX_QUIC_CRYPTO_BYTES || cursor.at + length > end) return;
      frames.push({ offset, data: plaintext.subarray(cursor.at, cursor.at + length) });
      cursor.at += length;
    } else {
      return; // CONNECTION_CLOSE, or a frame an Initial may not carry: nothing further we could trust
    }
  }
}

/** Skips the body of an ACK frame (RFC 9000 §19.3); false when it runs past the end. */
function skipAck(buf: Buffer, cursor: { at: number }, end: number, ecn: boolean): boolean {
  if (readVarint(buf, cursor, end) < 0 || readVarint(buf, cursor, end) < 0) return false; // largest, delay
  const rangeCount = readVarint(buf, cursor, end);
  if (rangeCount < 0 || readVarint(buf, cursor, end) < 0) return false; // first range
  // each range takes at least two bytes, so a bogus count ends at the buffer's end, not in a long loop
  for (let i = 0; i < rangeCount; i++) {
    if (readVarint(buf, cursor, end) < 0 || readVarint(buf, cursor, end) < 0) return false;
  }
  if (ecn) {
    for (let i = 0; i < 3; i++) if (readVarint(buf, cursor, end) < 0) return false;
  }
  return true;
}

/**
 * Joins the CRYPTO frames of one flow's client Initials into the ClientHello and reads its SNI.
 * One per UDP/443 flow, created on its first client Initial; dropped once it has answered.
 */
export class QuicSniAssembler {
  /** The crypto stream from offset 0; grows as frames arrive, released once the answer is known. */
  private stream: Buffer | null = null;
  /** Byte ranges received so far, sorted and merged: [start0, end0, start1, end1, ...]. */
  private ranges: number[] = [];
  private packets = 0;
  private result: string | null | undefined = undefined;

  /**
   * Adds the CRYPTO frames of one Initial packet: the SNI once the ClientHello is whole, null when it
   * has none or cannot be had within the bounds, undefined while more packets are needed.
   */
  push(frames: readonly QuicCryptoFrame[]): string | null | undefined {
    if (this.result !== undefined) return this.result;
    this.packets++;
    for (const frame of frames) {
      const end = frame.offset + frame.data.length;
      if (!(frame.offset >= 0 && end <= MAX_QUIC_CRYPTO_BYTES)) return this.finish(null);
      if (frame.data.length > 0) this.write(frame.offset, frame.data);
    }
    const answer = this.clientHelloSni();
    if (answer === undefined && this.packets >= MAX_QUIC_INITIAL_PACKETS) return this.finish(null);
    return answer === undefined ? undefined : this.finish(answer);
  }

  private write(offset: number, data: Buffer): void {
    const end = offset + data.length;
    if (this.stream === null || this.stream.length < end) {
      const grown = Buffer.alloc(Math.min(MAX_QUIC_CRYPTO_BYTES, Math.max(end, 2 * (this.stream?.length ?? 1024))));
      this.stream?.copy(grown);
      this.stream = grown;
    }
    // retransmitted or overlapping frames carry the same bytes, so writing over them is harmless
    data.copy(this.stream, offset);
    this.addRange(offset, end);
  }

  private addRange(start: number, end: number): void {
    const merged: number[] = [];
    const ranges = this.ranges;
    let i = 0;
    while (i < ranges.length && ranges[i + 1] < start) { merged.push(ranges[i], ranges[i + 1]); i += 2; }
    while (i < ranges.length && ranges[i] <= end) {
      start = Math.min(start, ranges[i]);
      end = Math.max(end, ranges[i + 1]);
      i += 2;
    }
    merged.push(start, end);
    while (i < ranges.length) { merged.push(ranges[i], ranges[i + 1]); i += 2; }
    this.ranges = merged;
  }

  /** The answer once the bytes from offset 0 hold a whole ClientHello (or show it is not one). */
  private clientHelloSni(): string | null | undefined {
    const stream = this.stream;
    if (stream === null || this.ranges[0] !== 0) return undefined;
    const contiguous = this.ranges[1];
    if (stream[0] !== HANDSHAKE_CLIENT_HELLO) return null;
    if (contiguous < HANDSHAKE_HEADER) return undefined;
    const messageLength = HANDSHAKE_HEADER + stream.readUIntBE(1, 3);
    if (messageLength > MAX_QUIC_CRYPTO_BYTES) return null;
    if (contiguous < messageLength) return undefined;
    return parseHandshakeClientHelloSni(stream, 0, messageLength);
  }

  private finish(answer: string | null): string | null {
    this.result = answer;
    this.stream = null;
    this.ranges = [];
    return answer;
  }
}

/** The SNI of a flow's client-to-server UDP datagrams, in order (null when none is found): for tests. */
export function quicSniFromDatagrams(datagrams: readonly Buffer[]): string | null {
  const assembler = new QuicSniAssembler();
  for (const datagram of datagrams) {
    const crypto = extractQuicInitialCrypto(datagram, 0, datagram.length);
    if (crypto === null) continue;
    const answer = assembler.push(crypto.frames);
    if (answer !== undefined) return answer;
  }
  return null;
}
