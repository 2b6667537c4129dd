import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyStun, STUN_CLASSIC, STUN_MESSAGE, STUN_NONE, TURN_CHANNEL_DATA } from './stun.js';

/** A STUN binding request (RFC 8489: type 0x0001, length 0, the cookie, a transaction id). */
function bindingRequest(): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt32BE(0x2112a442, 4);
  return b;
}

/** An RTP packet (version 2, Opus dynamic payload type) of `size` bytes. */
function rtp(size: number): Buffer {
  const b = Buffer.alloc(size);
  b[0] = 0x80;
  b[1] = 111;
  return b;
}

describe('classifyStun', () => {
  it('recognises STUN messages by their cookie and length on any port, and nothing else', () => {
    expect(classifyStun(bindingRequest(), 0, 20, 3478)).toBe(STUN_MESSAGE);
    expect(classifyStun(bindingRequest(), 0, 20, 50005)).toBe(STUN_MESSAGE);
    const withAttr = Buffer.concat([bindingRequest(), Buffer.alloc(8)]);
    withAttr.writeUInt16BE(8, 2);
    expect(classifyStun(withAttr, 0, 28, 19302)).toBe(STUN_MESSAGE);
    // a length that is not the rest of the datagram
    expect(classifyStun(withAttr, 0, 27, 3478)).toBe(STUN_NONE);
    // with the cookie, MS-TURN's lengths that are not multiples of 4 (tshark reads them as STUN)
    withAttr.writeUInt16BE(6, 2);
    expect(classifyStun(withAttr, 0, 26, 3478)).toBe(STUN_MESSAGE);
    withAttr.writeUInt32BE(0x12345678, 4);
    expect(classifyStun(withAttr, 0, 26, 3478)).toBe(STUN_NONE);
    // RTP, DTLS, QUIC short header, short datagrams
    expect(classifyStun(rtp(120), 0, 120, 3478)).toBe(STUN_NONE);
    expect(classifyStun(Buffer.from('16fefd00000000000000000040', 'hex'), 0, 13, 3478)).toBe(STUN_NONE);
    expect(classifyStun(Buffer.from([0x41, 0, 0, 0]), 0, 3, 3478)).toBe(STUN_NONE);
  });

  it('takes ChannelData and classic STUN only on a STUN/TURN port (QUIC short headers also start with 01)', () => {
    const channelData = Buffer.alloc(104);
    channelData.writeUInt16BE(0x4001, 0);
    channelData.writeUInt16BE(100, 2);
    expect(classifyStun(channelData, 0, 104, 3478)).toBe(TURN_CHANNEL_DATA);
    expect(classifyStun(channelData, 0, 104, 8801)).toBe(STUN_NONE);
    // padded to 4 bytes (RFC 8656 §12.5), never more
    channelData.writeUInt16BE(98, 2);
    expect(classifyStun(channelData, 0, 104, 3478)).toBe(TURN_CHANNEL_DATA);
    channelData.writeUInt16BE(97, 2);
    expect(classifyStun(channelData, 0, 104, 3478)).toBe(TURN_CHANNEL_DATA);
    channelData.writeUInt16BE(90, 2);
    expect(classifyStun(channelData, 0, 104, 3478)).toBe(STUN_NONE);
    const classic = Buffer.alloc(28);
    classic.writeUInt16BE(0x0115, 0);
    classic.writeUInt16BE(8, 2);
    expect(classifyStun(classic, 0, 28, 3478)).toBe(STUN_CLASSIC);
    expect(classifyStun(classic, 0, 28, 40000)).toBe(STUN_NONE);
  });
});

describe('classifyStun on any bytes', () => {
  it('never throws and reads only buf[off, off + len): the bytes around the payload do not change the answer', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(8), fc.constantFrom(3478, 5349, 19302, 443, 50000), (payload, off, port) => {
      const answers = [0x00, 0xff, 0x40].map((fill) => {
        const buf = Buffer.alloc(off + payload.length + 8, fill);
        buf.set(payload, off);
        return classifyStun(buf, off, payload.length, port);
      });
      expect(new Set(answers).size).toBe(1);
    }), { numRuns: 5000 });
  });
});
