/**
 * QUIC v1 packets for the scenario generator. The client's first Initial is real: a ClientHello in a
 * CRYPTO frame, padded, encrypted and header-protected with the keys RFC 9001 §5 derives from the
 * Destination Connection ID (earshot's deriveClientInitialKeys for the client; the same HKDF with the
 * "server in" label for the server's Initial), so tshark and earshot both decrypt it and read the SNI.
 * Later packets are short-header packets whose protected payload is random bytes, as a router sees them.
 */
import { createCipheriv, createHmac } from 'node:crypto';
import { deriveClientInitialKeys, type QuicInitialKeys } from '../../collector/decode/quic-initial.js';
import type { Rng } from './rng.js';
import { clientHelloMessage, quicVarint, serverHelloMessage } from './tls.js';

const INITIAL_SALT_V1 = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');
/** Chrome pads its Initial datagrams to 1250 bytes; RFC 9000 §14.1 asks for at least 1200. */
export const QUIC_INITIAL_DATAGRAM = 1250;
/** Largest short-header datagram the generator sends (Chrome's default maximum packet size). */
export const QUIC_MAX_DATAGRAM = 1250;
const PN_LENGTH = 4;
const TAG_LENGTH = 16;

/** HKDF-Expand-Label (RFC 8446 §7.1), empty context, output of at most 32 bytes. */
function expandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 255, full.length]), full, Buffer.from([0, 1])]);
  return createHmac('sha256', secret).update(info).digest().subarray(0, length);
}

/** The server's Initial keys (RFC 9001 §5.2), which earshot does not need and so does not export. */
function deriveServerInitialKeys(dcid: Buffer): QuicInitialKeys {
  const initialSecret = createHmac('sha256', INITIAL_SALT_V1).update(dcid).digest();
  const serverSecret = expandLabel(initialSecret, 'server in', 32);
  return { key: expandLabel(serverSecret, 'quic key', 16), iv: expandLabel(serverSecret, 'quic iv', 12), hp: expandLabel(serverSecret, 'quic hp', 16) };
}

/** Encrypts and header-protects one long-header Initial packet (RFC 9001 §5.3, §5.4). */
function protectInitial(keys: QuicInitialKeys, dcid: Buffer, scid: Buffer, packetNumber: number, plaintext: Buffer): Buffer {
  const length = quicVarint(PN_LENGTH + plaintext.length + TAG_LENGTH);
  const lengthField = length.length === 1 ? Buffer.from([0x40, length[0]]) : length; // keep it two bytes
  const pn = Buffer.alloc(PN_LENGTH);
  pn.writeUInt32BE(packetNumber, 0);
  const header = Buffer.concat([
    Buffer.from([0xc0 | (PN_LENGTH - 1)]), // long header, fixed bit, type Initial
    Buffer.from([0, 0, 0, 1]),
    Buffer.from([dcid.length]), dcid,
    Buffer.from([scid.length]), scid,
    Buffer.from([0]), // no token
    lengthField,
    pn,
  ]);
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < 4; i++) nonce[11 - i] ^= (packetNumber >>> (8 * i)) & 0xff;
  const cipher = createCipheriv('aes-128-gcm', keys.key, nonce);
  cipher.setAAD(header);
  const packet = Buffer.concat([header, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  const pnOffset = header.length - PN_LENGTH;
  const maskCipher = createCipheriv('aes-128-ecb', keys.hp, null);
  maskCipher.setAutoPadding(false);
  const mask = maskCipher.update(packet.subarray(pnOffset + 4, pnOffset + 4 + 16));
  packet[0] ^= mask[0] & 0x0f;
  for (let i = 0; i < PN_LENGTH; i++) packet[pnOffset + i] ^= mask[1 + i];
  return packet;
}

/** Frames padded with PADDING (zero bytes) so the whole packet reaches `packetLength`. */
function padded(frames: Buffer, packetLength: number, headerLength: number): Buffer {
  const room = packetLength - headerLength - TAG_LENGTH;
  return frames.length >= room ? frames : Buffer.concat([frames, Buffer.alloc(room - frames.length)]);
}

/** The connection IDs of one QUIC connection. */
export interface QuicConnectionIds {
  /** The client's first DCID, from which the Initial keys come. */
  initialDcid: Buffer;
  clientCid: Buffer;
  serverCid: Buffer;
}

/** New random connection IDs (8 bytes each, as Chrome and Google's servers use). */
export function newConnectionIds(rng: Rng): QuicConnectionIds {
  return { initialDcid: rng.bytes(8), clientCid: rng.bytes(8), serverCid: rng.bytes(8) };
}

/** Long-header bytes before the Length field: first byte, version, both CIDs, token length. */
function initialHeaderLength(dcid: Buffer, scid: Buffer): number {
  return 1 + 4 + 1 + dcid.length + 1 + scid.length + 1 + 2 + PN_LENGTH;
}

/** The client's first datagram: an Initial carrying the ClientHello with `serverName`. */
export function clientInitialDatagram(rng: Rng, ids: QuicConnectionIds, serverName: string): Buffer {
  const keys = deriveClientInitialKeys(ids.initialDcid);
  if (keys === null) throw new Error('scenario: no QUIC v1 keys');
  const hello = clientHelloMessage(rng, serverName, ids.clientCid);
  const crypto = Buffer.concat([Buffer.from([0x06]), quicVarint(0), quicVarint(hello.length), hello]);
  const headerLength = initialHeaderLength(ids.initialDcid, ids.clientCid);
  return protectInitial(keys, ids.initialDcid, ids.clientCid, 0, padded(crypto, QUIC_INITIAL_DATAGRAM, headerLength));
}

/** The server's answer to it: an Initial with an ACK and the ServerHello, padded like a real one. */
export function serverInitialDatagram(rng: Rng, ids: QuicConnectionIds, datagramLength: number): Buffer {
  const keys = deriveServerInitialKeys(ids.initialDcid);
  const hello = serverHelloMessage(rng, Buffer.alloc(0));
  const ack = Buffer.from([0x02, 0x00, 0x00, 0x00, 0x00]); // largest 0, no delay, no extra ranges, first range 0
  const crypto = Buffer.concat([ack, Buffer.from([0x06]), quicVarint(0), quicVarint(hello.length), hello]);
  const headerLength = initialHeaderLength(ids.clientCid, ids.serverCid);
  return protectInitial(keys, ids.clientCid, ids.serverCid, 0, padded(crypto, datagramLength, headerLength));
}

/**
 * A Handshake packet (long header, type 2) of `length` bytes from the server: its payload is encrypted
 * with keys only the endpoints have, so random bytes are what an observer sees.
 */
export function serverHandshakeDatagram(rng: Rng, ids: QuicConnectionIds, length: number): Buffer {
  const headerLength = 1 + 4 + 1 + ids.clientCid.length + 1 + ids.serverCid.length + 2;
  const lengthField = quicVarint(length - headerLength);
  const header = Buffer.concat([
    Buffer.from([0xe0 | rng.int(0, 15)]), // long header, fixed bit, type Handshake; the low bits are protected
    Buffer.from([0, 0, 0, 1]),
    Buffer.from([ids.clientCid.length]), ids.clientCid,
    Buffer.from([ids.serverCid.length]), ids.serverCid,
    lengthField.length === 1 ? Buffer.from([0x40, lengthField[0]]) : lengthField,
  ]);
  return Buffer.concat([header, rng.bytes(length - headerLength)]);
}

/**
 * A 1-RTT (short header) datagram of `length` bytes to the connection ID `dcid`: fixed bit set, the
 * protected bits and payload random, as any observer without the keys sees it.
 */
export function shortHeaderDatagram(rng: Rng, dcid: Buffer, length: number): Buffer {
  const body = rng.bytes(length - 1 - dcid.length);
  return Buffer.concat([Buffer.from([0x40 | (rng.int(0, 63))]), dcid, body]);
}
