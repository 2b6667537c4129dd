/**
 * TLS 1.3 messages for the scenario generator: a browser-like ClientHello (over TCP in records, or bare
 * for QUIC's CRYPTO frames, with transport parameters), a ServerHello flight, and application-data
 * records whose bodies are random bytes standing in for ciphertext. Well-formed enough for tshark to
 * dissect field by field and for earshot's SNI reader to find the server name.
 */
import type { Rng } from './rng.js';

const RECORD_HANDSHAKE = 0x16;
const RECORD_CHANGE_CIPHER_SPEC = 0x14;
const RECORD_APPLICATION_DATA = 0x17;
/** Largest TLS 1.3 ciphertext body: 2^14 of plaintext, the content-type byte, a 16-byte tag. */
const MAX_RECORD_BODY = 16384 + 17;
/** Smallest application-data record: the content-type byte and the AEAD tag. */
export const MIN_RECORD = 5 + 17;

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value, 0);
  return b;
}

/** A vector with a 1- or 2-byte length prefix. */
function vec(prefix: 1 | 2, body: Buffer): Buffer {
  return Buffer.concat([prefix === 1 ? Buffer.from([body.length]) : u16(body.length), body]);
}

function extension(type: number, body: Buffer): Buffer {
  return Buffer.concat([u16(type), vec(2, body)]);
}

function handshake(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = type;
  h.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([h, body]);
}

function record(type: number, version: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), u16(version), vec(2, body)]);
}

/** A QUIC variable-length integer (RFC 9000 §16). */
export function quicVarint(value: number): Buffer {
  if (value < 0x40) return Buffer.from([value]);
  if (value < 0x4000) return u16(0x4000 | value);
  const b = Buffer.alloc(4);
  b.writeUInt32BE((0x80000000 | value) >>> 0, 0);
  return b;
}

/** QUIC transport parameters (RFC 9000 §18) a client offers, with its source connection ID. */
function quicTransportParameters(sourceCid: Buffer): Buffer {
  const param = (id: number, value: Buffer) => Buffer.concat([quicVarint(id), quicVarint(value.length), value]);
  return Buffer.concat([
    param(0x01, quicVarint(30000)), // max_idle_timeout, ms
    param(0x04, quicVarint(15728640)), // initial_max_data
    param(0x05, quicVarint(6291456)), // initial_max_stream_data_bidi_local
    param(0x06, quicVarint(6291456)), // initial_max_stream_data_bidi_remote
    param(0x07, quicVarint(6291456)), // initial_max_stream_data_uni
    param(0x08, quicVarint(100)), // initial_max_streams_bidi
    param(0x09, quicVarint(103)), // initial_max_streams_uni
    param(0x0f, sourceCid), // initial_source_connection_id
  ]);
}

/** The ClientHello handshake message (no record header). `quicSourceCid` makes it QUIC's. */
export function clientHelloMessage(rng: Rng, serverName: string, quicSourceCid?: Buffer): Buffer {
  const quic = quicSourceCid !== undefined;
  const name = Buffer.from(serverName, 'ascii');
  const suites = quic ? [0x1301, 0x1302, 0x1303] : [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8];
  const alpn = (quic ? ['h3'] : ['h2', 'http/1.1']).map((p) => vec(1, Buffer.from(p, 'ascii')));
  const extensions = [
    extension(0x0000, vec(2, Buffer.concat([Buffer.from([0]), vec(2, name)]))), // server_name
    ...(quic ? [] : [extension(0x0017, Buffer.alloc(0)), extension(0x000b, vec(1, Buffer.from([0])))]), // EMS, point formats
    extension(0x000a, vec(2, Buffer.concat([0x001d, 0x0017, 0x0018].map(u16)))), // supported_groups
    extension(0x000d, vec(2, Buffer.concat([0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601].map(u16)))),
    extension(0x0010, vec(2, Buffer.concat(alpn))),
    extension(0x002b, vec(1, Buffer.concat((quic ? [0x0304] : [0x0304, 0x0303]).map(u16)))), // supported_versions
    extension(0x002d, vec(1, Buffer.from([1]))), // psk_key_exchange_modes: psk_dhe_ke
    extension(0x0033, vec(2, Buffer.concat([u16(0x001d), vec(2, rng.bytes(32))]))), // key_share x25519
    ...(quic ? [extension(0x0039, quicTransportParameters(quicSourceCid))] : []),
  ];
  const body = Buffer.concat([
    u16(0x0303),
    rng.bytes(32),
    vec(1, quic ? Buffer.alloc(0) : rng.bytes(32)), // QUIC forbids the legacy session id (RFC 9001 §8.4)
    vec(2, Buffer.concat(suites.map(u16))),
    vec(1, Buffer.from([0])),
    vec(2, Buffer.concat(extensions)),
  ]);
  return handshake(1, body);
}

/** The ClientHello in one TLS record, as the first bytes a client sends over TCP. */
export function clientHelloRecord(rng: Rng, serverName: string): Buffer {
  return record(RECORD_HANDSHAKE, 0x0301, clientHelloMessage(rng, serverName));
}

/** The ServerHello handshake message choosing TLS 1.3, AES-128-GCM and x25519. */
export function serverHelloMessage(rng: Rng, sessionId: Buffer): Buffer {
  const extensions = Buffer.concat([
    extension(0x002b, u16(0x0304)),
    extension(0x0033, Buffer.concat([u16(0x001d), vec(2, rng.bytes(32))])),
  ]);
  return handshake(2, Buffer.concat([u16(0x0303), rng.bytes(32), vec(1, sessionId), u16(0x1301), Buffer.from([0]), vec(2, extensions)]));
}

/** The server's first flight over TCP: ServerHello, ChangeCipherSpec, then encrypted handshake records. */
export function serverFlight(rng: Rng, clientHello: Buffer, encryptedBytes: number): Buffer {
  // the session id sits after record header (5), handshake header (4), version (2) and random (32)
  const sessionId = clientHello.subarray(44, 44 + clientHello[43]);
  return Buffer.concat([
    record(RECORD_HANDSHAKE, 0x0303, serverHelloMessage(rng, sessionId)),
    record(RECORD_CHANGE_CIPHER_SPEC, 0x0303, Buffer.from([1])),
    applicationData(rng, encryptedBytes),
  ]);
}

/** The client's second flight: ChangeCipherSpec and its encrypted Finished. */
export function clientFinished(rng: Rng): Buffer {
  return Buffer.concat([record(RECORD_CHANGE_CIPHER_SPEC, 0x0303, Buffer.from([1])), applicationData(rng, 5 + 53)]);
}

/**
 * Application-data records totalling exactly `length` bytes (at least MIN_RECORD): what one write of
 * an encrypted stream looks like on the wire.
 */
export function applicationData(rng: Rng, length: number): Buffer {
  if (length < MIN_RECORD) throw new Error(`scenario: a TLS write of ${length} bytes is below one record`);
  const records: Buffer[] = [];
  let left = length;
  while (left > 0) {
    let body = Math.min(MAX_RECORD_BODY, left - 5);
    // never leave a tail too small for a record of its own
    if (left - 5 - body > 0 && left - 5 - body < MIN_RECORD) body -= MIN_RECORD;
    records.push(record(RECORD_APPLICATION_DATA, 0x0303, rng.bytes(body)));
    left -= 5 + body;
  }
  return Buffer.concat(records);
}
