/**
 * Classic libpcap file writer (magic a1b2c3d4, microsecond timestamps, LINKTYPE_ETHERNET), the
 * format every tool reads: tcpdump, tshark, earshot's pcap-file source.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

const PCAP_MAGIC_US = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;

function fileHeader(): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(PCAP_MAGIC_US, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(SNAPLEN, 16);
  header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return header;
}

function recordHeader(timeUs: number, length: number): Buffer {
  const record = Buffer.alloc(16);
  record.writeUInt32LE(Math.floor(timeUs / 1e6), 0);
  record.writeUInt32LE(timeUs % 1e6, 4);
  record.writeUInt32LE(length, 8);
  record.writeUInt32LE(length, 12);
  return record;
}

/** Serialises frames, already in capture order, into one pcap file image. */
export function pcapBytes(frames: ReadonlyArray<{ timeUs: number; frame: Buffer }>): Buffer {
  const parts: Buffer[] = [fileHeader()];
  for (const { timeUs, frame } of frames) parts.push(recordHeader(timeUs, frame.length), frame);
  return Buffer.concat(parts);
}

/** Writes frames, already in capture order, as a pcap file, in batches (a day's scenario is ~200 MB). */
export function writePcapFile(path: string, frames: ReadonlyArray<{ timeUs: number; frame: Buffer }>): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, fileHeader());
    let batch: Buffer[] = [];
    let size = 0;
    for (const { timeUs, frame } of frames) {
      batch.push(recordHeader(timeUs, frame.length), frame);
      size += 16 + frame.length;
      if (size >= 1 << 22) {
        writeSync(fd, Buffer.concat(batch));
        batch = [];
        size = 0;
      }
    }
    if (batch.length > 0) writeSync(fd, Buffer.concat(batch));
  } finally {
    closeSync(fd);
  }
}
