/**
 * TEST-ONLY capture reader: reads a whole pcap or pcapng file into memory and yields its packet records.
 * It exists so decoder tests do not depend on collector/capture/ (written separately). No streaming, no
 * gzip, little validation: a truncated tail simply ends the iteration. Do not use it outside tests.
 */
import { readFileSync } from 'node:fs';

/** One packet record: the captured bytes are buf[offset, offset + capLen). */
export interface SimpleRecord {
  buf: Buffer;
  offset: number;
  capLen: number;
  wireLen: number;
  timeMs: number;
  linkType: number;
}

/** Yields every packet of a classic pcap or pcapng file (pcapng: EPB and SPB blocks). */
export function* readCaptureSimple(path: string): Generator<SimpleRecord> {
  const buf = readFileSync(path);
  if (buf.length < 4) return;
  if (buf.readUInt32LE(0) === 0x0a0d0d0a) yield* readPcapng(buf);
  else yield* readPcap(buf);
}

/** All records of a file as an array (with their own copy of the file bytes). */
export function readAllRecords(path: string): SimpleRecord[] {
  return [...readCaptureSimple(path)];
}

function* readPcap(buf: Buffer): Generator<SimpleRecord> {
  const magicLe = buf.readUInt32LE(0);
  let le: boolean;
  let nanos: boolean;
  if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) { le = true; nanos = magicLe === 0xa1b23c4d; }
  else if (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d) {
    le = false; nanos = buf.readUInt32BE(0) === 0xa1b23c4d;
  } else throw new Error('not a pcap file');
  const u32 = (at: number) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const linkType = u32(20) & 0x0fffffff;
  let at = 24;
  while (at + 16 <= buf.length) {
    const sec = u32(at);
    const frac = u32(at + 4);
    const capLen = u32(at + 8);
    const wireLen = u32(at + 12);
    if (at + 16 + capLen > buf.length) return; // truncated tail
    const timeMs = sec * 1000 + (nanos ? frac / 1e6 : frac / 1e3);
    yield { buf, offset: at + 16, capLen, wireLen, timeMs, linkType };
    at += 16 + capLen;
  }
}

interface Interface { linkType: number; unitsPerSec: number; snapLen: number }

function* readPcapng(buf: Buffer): Generator<SimpleRecord> {
  let le = true;
  let interfaces: Interface[] = [];
  let at = 0;
  while (at + 12 <= buf.length) {
    const type = buf.readUInt32LE(at); // the SHB type reads the same in both orders
    if (type === 0x0a0d0d0a) {
      le = buf.readUInt32LE(at + 8) === 0x1a2b3c4d;
      interfaces = [];
    }
    const u32 = (p: number) => (le ? buf.readUInt32LE(p) : buf.readUInt32BE(p));
    const u16 = (p: number) => (le ? buf.readUInt16LE(p) : buf.readUInt16BE(p));
    const blockType = u32(at);
    const blockLen = u32(at + 4);
    if (blockLen < 12 || at + blockLen > buf.length) return;
    const body = at + 8;
    const bodyEnd = at + blockLen - 4;
    if (blockType === 1) {
      const iface: Interface = { linkType: u16(body), unitsPerSec: 1e6, snapLen: u32(body + 4) };
      for (let p = body + 8; p + 4 <= bodyEnd; ) {
        const code = u16(p);
        const len = u16(p + 2);
        if (code === 0) break;
        if (code === 9 && len >= 1) {
          const r = buf[p + 4];
          iface.unitsPerSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
        }
        p += 4 + ((len + 3) & ~3);
      }
      interfaces.push(iface);
    } else if (blockType === 6) {
      const iface = interfaces[u32(body)];
      const ts = u32(body + 4) * 2 ** 32 + u32(body + 8);
      const capLen = u32(body + 12);
      const wireLen = u32(body + 16);
      if (iface && body + 20 + capLen <= bodyEnd) {
        const timeMs = (ts / iface.unitsPerSec) * 1000;
        yield { buf, offset: body + 20, capLen, wireLen, timeMs, linkType: iface.linkType };
      }
    } else if (blockType === 3) {
      const iface = interfaces[0];
      const wireLen = u32(body);
      const capLen = Math.min(wireLen, bodyEnd - body - 4, iface?.snapLen || Infinity);
      if (iface) yield { buf, offset: body + 4, capLen, wireLen, timeMs: 0, linkType: iface.linkType };
    }
    at += blockLen;
  }
}

/** Builds a classic little-endian µs pcap file holding `frames` (to feed tshark synthetic captures). */
export function writePcapSimple(linkType: number, frames: Array<{ timeMs: number; bytes: Buffer }>): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(linkType, 20);
  const parts: Buffer[] = [header];
  for (const frame of frames) {
    const recordHeader = Buffer.alloc(16);
    const micros = Math.round(frame.timeMs * 1000);
    recordHeader.writeUInt32LE(Math.floor(micros / 1e6), 0);
    recordHeader.writeUInt32LE(micros % 1e6, 4);
    recordHeader.writeUInt32LE(frame.bytes.length, 8);
    recordHeader.writeUInt32LE(frame.bytes.length, 12);
    parts.push(recordHeader, frame.bytes);
  }
  return Buffer.concat(parts);
}
