/**
 * TCP and UDP headers: ports, TCP flags and sequence number, and the payload view. Other protocols
 * (ICMP, ESP, GRE, ...) keep ports -1 and no payload.
 */
import { u16, u32 } from '../bytes.js';
import { IPPROTO_TCP, IPPROTO_UDP, type DecodedPacket } from './packet.js';

/**
 * Decodes the transport header of protocol `proto` at buf[offset, end), where end is the end of the IP
 * payload within the captured bytes. False when a TCP/UDP header is cut short or damaged; a payload
 * cut by the snap length is fine (payloadLength counts the captured bytes).
 */
export function decodeTransport(buf: Buffer, offset: number, end: number, proto: number, pkt: DecodedPacket): boolean {
  if (proto === IPPROTO_TCP) {
    if (end - offset < 20) return false;
    const headerLength = (buf[offset + 12] >> 4) * 4;
    if (headerLength < 20 || end - offset < headerLength) return false;
    pkt.srcPort = u16(buf, offset);
    pkt.dstPort = u16(buf, offset + 2);
    pkt.tcpSeq = u32(buf, offset + 4);
    pkt.tcpFlags = buf[offset + 13];
    pkt.payloadBuf = buf;
    pkt.payloadOffset = offset + headerLength;
    pkt.payloadLength = end - offset - headerLength;
    return true;
  }
  if (proto === IPPROTO_UDP) {
    if (end - offset < 8) return false;
    pkt.srcPort = u16(buf, offset);
    pkt.dstPort = u16(buf, offset + 2);
    // the UDP length bounds the payload when it is sane (Ethernet padding, trailers); 0 means jumbogram
    const udpLength = u16(buf, offset + 4);
    const payloadEnd = udpLength >= 8 && offset + udpLength < end ? offset + udpLength : end;
    pkt.payloadBuf = buf;
    pkt.payloadOffset = offset + 8;
    pkt.payloadLength = payloadEnd - offset - 8;
    return true;
  }
  return true;
}

