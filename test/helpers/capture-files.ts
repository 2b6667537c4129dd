/**
 * Builds capture files for tests (formats the real captures lack: big-endian, nanosecond, pcapng with
 * several interfaces, Simple Packet Blocks, ...) and reads the tshark oracle for any capture file.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { CaptureSource, CaptureStats } from '../../collector/capture/types.js';

/** One packet to write. */
export interface SyntheticPacket {
  /** Timestamp in seconds and a fraction in the file's units (µs, ns or the interface's if_tsresol). */
  seconds: number;
  fraction: number;
  data: Buffer;
  /** Original length; defaults to data.length. */
  wireLen?: number;
}

/** Options of a classic pcap file. */
export interface ClassicOptions {
  littleEndian?: boolean;
  nanosecond?: boolean;
  linkType?: number;
  snaplen?: number;
}

function u16(value: number, le: boolean): Buffer {
  const b = Buffer.alloc(2);
  if (le) b.writeUInt16LE(value); else b.writeUInt16BE(value);
  return b;
}

function u32(value: number, le: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(value >>> 0); else b.writeUInt32BE(value >>> 0);
  return b;
}

function pad4(data: Buffer): Buffer {
  const padding = (4 - (data.length % 4)) % 4;
  return padding === 0 ? data : Buffer.concat([data, Buffer.alloc(padding)]);
}

/** A classic pcap global header. */
export function classicHeader(opts: ClassicOptions = {}): Buffer {
  const le = opts.littleEndian ?? true;
  const magic = opts.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4;
  return Buffer.concat([u32(magic, le), u16(2, le), u16(4, le), u32(0, le), u32(0, le),
    u32(opts.snaplen ?? 262144, le), u32(opts.linkType ?? 1, le)]);
}

/** A classic pcap record. */
export function classicRecord(packet: SyntheticPacket, littleEndian = true): Buffer {
  const le = littleEndian;
  return Buffer.concat([u32(packet.seconds, le), u32(packet.fraction, le), u32(packet.data.length, le),
    u32(packet.wireLen ?? packet.data.length, le), packet.data]);
}

/** A whole classic pcap file. */
export function classicPcap(packets: SyntheticPacket[], opts: ClassicOptions = {}): Buffer {
  return Buffer.concat([classicHeader(opts), ...packets.map((p) => classicRecord(p, opts.littleEndian ?? true))]);
}

/** A pcapng option (code, value), padded. */
export function pcapngOption(code: number, value: Buffer, le = true): Buffer {
  return Buffer.concat([u16(code, le), u16(value.length, le), pad4(value)]);
}

/** A pcapng block of `type` around `body` (body is padded to 4 bytes). */
export function pcapngBlock(type: number, body: Buffer, le = true): Buffer {
  const padded = pad4(body);
  const length = padded.length + 12;
  return Buffer.concat([u32(type, le), u32(length, le), padded, u32(length, le)]);
}

/** A Section Header Block. */
export function pcapngSection(le = true): Buffer {
  const body = Buffer.concat([u32(0x1a2b3c4d, le), u16(1, le), u16(0, le), Buffer.alloc(8, 0xff)]);
  return pcapngBlock(0x0a0d0d0a, body, le);
}

/** An Interface Description Block; tsresol is the raw if_tsresol byte (6 = µs, 9 = ns, 0x94 = 2^-20). */
export function pcapngInterface(linkType: number, opts: { le?: boolean; snaplen?: number; tsresol?: number; tsoffset?: number } = {}): Buffer {
  const le = opts.le ?? true;
  const options: Buffer[] = [];
  if (opts.tsresol !== undefined) options.push(pcapngOption(9, Buffer.from([opts.tsresol]), le));
  if (opts.tsoffset !== undefined) {
    const v = Buffer.alloc(8);
    if (le) v.writeBigInt64LE(BigInt(opts.tsoffset)); else v.writeBigInt64BE(BigInt(opts.tsoffset));
    options.push(pcapngOption(14, v, le));
  }
  if (options.length > 0) options.push(Buffer.alloc(4));
  return pcapngBlock(1, Buffer.concat([u16(linkType, le), u16(0, le), u32(opts.snaplen ?? 0, le), ...options]), le);
}

/** An Enhanced Packet Block; `units` is the 64-bit timestamp in the interface's units. */
export function pcapngEnhancedPacket(iface: number, units: bigint, data: Buffer, opts: { le?: boolean; wireLen?: number } = {}): Buffer {
  const le = opts.le ?? true;
  return pcapngBlock(6, Buffer.concat([u32(iface, le), u32(Number(units >> 32n), le), u32(Number(units & 0xffffffffn), le),
    u32(data.length, le), u32(opts.wireLen ?? data.length, le), data]), le);
}

/** A Simple Packet Block; `data` must already be cut to the interface's snaplen (tshark insists). */
export function pcapngSimplePacket(data: Buffer, opts: { le?: boolean; wireLen?: number } = {}): Buffer {
  const le = opts.le ?? true;
  return pcapngBlock(3, Buffer.concat([u32(opts.wireLen ?? data.length, le), data]), le);
}

/** An Obsolete Packet Block (type 2). */
export function pcapngObsoletePacket(iface: number, units: bigint, data: Buffer, opts: { le?: boolean; wireLen?: number } = {}): Buffer {
  const le = opts.le ?? true;
  return pcapngBlock(2, Buffer.concat([u16(iface, le), u16(0, le), u32(Number(units >> 32n), le), u32(Number(units & 0xffffffffn), le),
    u32(data.length, le), u32(opts.wireLen ?? data.length, le), data]), le);
}

/** A frame of `length` bytes that reads as an Ethernet frame (broadcast to a fixed source, IPv4 type). */
export function fakeFrame(length: number, seed = 0): Buffer {
  const frame = Buffer.alloc(length);
  for (let i = 0; i < length; i++) frame[i] = (i * 31 + seed) & 0xff;
  if (length >= 14) {
    frame.fill(0xff, 0, 6);
    frame.writeUInt16BE(0x0800, 12);
  }
  return frame;
}

/** One frame as tshark sees it. */
export interface OracleFrame {
  wireLen: number;
  capLen: number;
  /** frame.time_epoch in ms (fractional); NaN when the frame has no time (Simple Packet Block). */
  timeMs: number;
  /** MD5 of the captured bytes (frame.md5_hash). */
  md5: string;
}

const TSHARK_ARGS = ['-n', '-o', 'frame.generate_md5_hash:TRUE', '-T', 'fields',
  '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'frame.time_epoch', '-e', 'frame.md5_hash'];

function parseTsharkFields(stdout: string): OracleFrame[] {
  return stdout.split('\n').filter((line) => line.length > 0).map((line) => {
    const [wireLen, capLen, epoch, md5] = line.split('\t');
    let timeMs = NaN;
    if (epoch !== '') {
      const [seconds, fraction = '0'] = epoch.split('.');
      timeMs = Number(seconds) * 1000 + Number(fraction.padEnd(9, '0')) / 1e6;
    }
    return { wireLen: Number(wireLen), capLen: Number(capLen), timeMs, md5 };
  });
}

/** Every frame of `path` according to tshark (it exits non-zero on a truncated file; its output still counts). */
export function tsharkFrames(path: string): OracleFrame[] {
  const result = spawnSync('tshark', ['-r', path, ...TSHARK_ARGS], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (result.error) throw result.error;
  return parseTsharkFields(result.stdout);
}

/** tsharkFrames() for many files, `parallel` tshark processes at a time (tshark's start-up dominates). */
export async function tsharkFramesOfAll(paths: string[], parallel = 4): Promise<Map<string, OracleFrame[]>> {
  const frames = new Map<string, OracleFrame[]>();
  let next = 0;
  async function worker(): Promise<void> {
    while (next < paths.length) {
      const path = paths[next++];
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile('tshark', ['-r', path, ...TSHARK_ARGS], { encoding: 'utf8', maxBuffer: 1 << 30 }, (err, out) => {
          // a truncated file makes tshark exit 2 after printing every frame it could read
          if (err && typeof err.code !== 'number') reject(err);
          else resolve(out);
        });
      });
      frames.set(path, parseTsharkFields(stdout));
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker));
  return frames;
}

/** A packet as a source delivered it (bytes hashed, since the source reuses its buffers). */
export interface ReadPacket {
  wireLen: number;
  capLen: number;
  timeMs: number;
  linkType: number;
  md5: string;
}

/** Runs `source` to the end, checking every sink call stays inside its buffer; resolves with packets and stats. */
export async function readSource(source: CaptureSource): Promise<{ packets: ReadPacket[]; stats: CaptureStats }> {
  const packets: ReadPacket[] = [];
  const stats = await source.run((buf, offset, capLen, wireLen, timeMs, linkType) => {
    if (!Number.isInteger(offset) || !Number.isInteger(capLen) || offset < 0 || capLen < 0 || offset + capLen > buf.length) {
      throw new Error(`sink called outside its buffer: offset ${offset} capLen ${capLen} buffer ${buf.length}`);
    }
    const md5 = createHash('md5').update(buf.subarray(offset, offset + capLen)).digest('hex');
    packets.push({ wireLen, capLen, timeMs, linkType, md5 });
  });
  return { packets, stats };
}

/**
 * Differences between what a source read and tshark's frames (empty when equal): lengths, bytes, and
 * times to the microsecond (frames without a time in tshark are not compared on time).
 */
export function differencesFromTshark(packets: ReadPacket[], frames: OracleFrame[], max = 5): string[] {
  const problems: string[] = [];
  if (packets.length !== frames.length) problems.push(`${packets.length} packets, tshark has ${frames.length}`);
  const count = Math.min(packets.length, frames.length);
  for (let i = 0; i < count && problems.length < max; i++) {
    const ours = packets[i];
    const theirs = frames[i];
    if (ours.wireLen !== theirs.wireLen || ours.capLen !== theirs.capLen || ours.md5 !== theirs.md5
      || (!Number.isNaN(theirs.timeMs) && Math.abs(ours.timeMs - theirs.timeMs) >= 0.001)) {
      problems.push(`frame ${i + 1}: ours len ${ours.wireLen} caplen ${ours.capLen} time ${ours.timeMs} md5 ${ours.md5}; ` +
        `tshark len ${theirs.wireLen} caplen ${theirs.capLen} time ${theirs.timeMs} md5 ${theirs.md5}`);
    }
  }
  return problems;
}

/** True when tshark runs here. */
export function haveTshark(): boolean {
  return !spawnSync('tshark', ['--version'], { stdio: 'ignore' }).error;
}

/** The records (everything after the 24-byte header) of a little-endian µs classic pcap file. */
export function classicRecords(path: string): Buffer {
  const file = readFileSync(path);
  if (file.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${path}: not a little-endian µs pcap`);
  return file.subarray(24);
}

/** A stream yielding `bytes` in chunks of the sizes `nextSize` returns (like a pipe would: stdin, tcpdump). */
export function chunkedStream(bytes: Buffer, nextSize: (index: number) => number): NodeJS.ReadableStream {
  return Readable.from((function* () {
    let at = 0;
    for (let i = 0; at < bytes.length; i++) {
      const size = Math.max(1, nextSize(i));
      yield bytes.subarray(at, at + size);
      at += size;
    }
  })(), { objectMode: false });
}
