/**
 * STUN and TURN as tshark reads them (RFC 8489 STUN, RFC 3489 classic STUN, RFC 8656 ChannelData,
 * Microsoft's MS-TURN): which UDP payloads are ICE and relay traffic. Reads at most 8 bytes; never
 * throws. The call tracker (detect/calls.ts) counts them.
 */

export const STUN_NONE = 0;
/** A STUN message with the RFC 5389/8489 magic cookie (binding, allocate, indications...). */
export const STUN_MESSAGE = 1;
/** A classic STUN message (RFC 3489, no cookie; MS-TURN), on a STUN/TURN port only. */
export const STUN_CLASSIC = 2;
/** TURN ChannelData (RFC 8656 §12.4, or MS-TURN's 0xFF10): relayed media, on a STUN/TURN port only. */
export const TURN_CHANNEL_DATA = 3;

const MAGIC_COOKIE = 0x2112a442;
const MS_TURN_CHANNEL = 0xff10;

/**
 * STUN/TURN server ports: IANA's stun/turn 3478 and stuns/turns 5349, Microsoft Teams' 3479-3481,
 * Google's STUN servers 19302-19309.
 */
export function isTurnPort(port: number): boolean {
  return port === 3478 || port === 5349 || (port >= 3479 && port <= 3481) || (port >= 19302 && port <= 19309);
}

/**
 * What a UDP payload is as STUN/TURN: STUN_MESSAGE (RFC 8489 §5: top bits 00, a length that is the
 * rest of the datagram, the magic cookie), STUN_CLASSIC or TURN_CHANNEL_DATA (both
 * only when `remotePort` is a STUN/TURN port: without the cookie or the port they are guesses; QUIC's
 * short header also starts 01), or STUN_NONE. Reads at most 8 bytes of buf[off, off + len).
 */
export function classifyStun(buf: Buffer, off: number, len: number, remotePort: number): number {
  if (len < 4) return STUN_NONE;
  const first = buf[off];
  const length = (buf[off + 2] << 8) | buf[off + 3];
  if (first < 0x40) {
    if (len < 20 || length !== len - 20) return STUN_NONE;
    // the cookie is enough: MS-TURN (Teams) sends lengths that are not multiples of 4, as tshark reads them
    if (buf.readUInt32BE(off + 4) === MAGIC_COOKIE) return STUN_MESSAGE;
    return (length & 3) === 0 && isTurnPort(remotePort) ? STUN_CLASSIC : STUN_NONE;
  }
  if (!isTurnPort(remotePort)) return STUN_NONE;
  const channel = (first << 8) | buf[off + 1];
  // ChannelData over UDP may be padded to 4 bytes (RFC 8656 §12.5)
  if ((channel < 0x4000 || channel > 0x7fff) && channel !== MS_TURN_CHANNEL) return STUN_NONE;
  return length <= len - 4 && len - 4 - length < 4 ? TURN_CHANNEL_DATA : STUN_NONE;
}
