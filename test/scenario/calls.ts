/**
 * Calls in a scenario (Alexa calling, Drop In): every packet of a call planned with its time, direction
 * and bytes (callPlan, the ground truth a test reads), and rendered into the capture (renderCall). The
 * shape is WebRTC's, as the RFCs lay it out:
 * - ICE: a STUN binding request to a STUN/TURN server on 3478 and its response (RFC 8489), then a
 *   connectivity check each way with the peer (RFC 8445);
 * - SRTP: one packet every 20 ms each way (Opus at its default ptime of 20 ms, RFC 7587), 12 bytes of
 *   RTP header, 60-140 bytes of Opus and a 10-byte SRTP tag (RFC 3711);
 * - RTCP every ~5 s each way (RFC 3550) and a consent check every 4-6 s (RFC 7675 §5.1).
 * The device's voice channel carries on as usual beside it (keepalives, no upload).
 */
import type { Net } from './network.js';
import { type Host, parseIp, parseMac, UDP_FRAME_OVERHEAD } from './packets.js';
import { hashLabel, Rng } from './rng.js';
import type { ScenarioCall, ScenarioDevice } from './types.js';

const MIN_FRAME = 60;
const STUN_PORT = 3478;
const MAGIC_COOKIE = 0x2112a442;

/** One packet of a call; `up` when the device sends it. */
export interface CallPacket {
  atMs: number;
  up: boolean;
  /** To or from the STUN/TURN server, else the peer. */
  server: boolean;
  payload: Buffer;
}

export interface CallPlan {
  packets: CallPacket[];
  server: string;
  peer: string;
  localPort: number;
  peerPort: number;
}

/** A STUN message: type, the cookie, a transaction id, and `attributes` bytes of (opaque) attributes. */
function stunMessage(rng: Rng, type: number, attributes: number): Buffer {
  const b = Buffer.alloc(20 + attributes);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(attributes, 2);
  b.writeUInt32BE(MAGIC_COOKIE, 4);
  for (let i = 8; i < b.length; i++) b[i] = rng.int(0, 255);
  return b;
}

/** An SRTP packet: RTP header (version 2, Opus's dynamic type 111), encrypted payload and tag. */
function srtp(rng: Rng, seq: number, opusBytes: number): Buffer {
  const b = Buffer.alloc(12 + opusBytes + 10);
  b[0] = 0x80;
  b[1] = 111;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 960) >>> 0, 4);
  b.writeUInt32BE(0x5eed0001, 8);
  for (let i = 12; i < b.length; i++) b[i] = rng.int(0, 255);
  return b;
}

/** An SRTCP sender report (RFC 3550 §6.4.1 with the SRTCP index and tag). */
function srtcp(rng: Rng): Buffer {
  const b = Buffer.alloc(28 + 14);
  b[0] = 0x80;
  b[1] = 200;
  b.writeUInt16BE(6, 2);
  for (let i = 4; i < b.length; i++) b[i] = rng.int(0, 255);
  return b;
}

/** The call's packets, in time order: a pure function of the seed and the call. */
export function callPlan(seed: number, call: ScenarioCall): CallPlan {
  const rng = new Rng(hashLabel(seed, `call:${call.device}:${call.start}`));
  const server = `52.46.${rng.int(0, 63)}.${rng.int(2, 250)}`;
  const peer = `73.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(2, 250)}`;
  const localPort = rng.int(49152, 65000);
  const peerPort = rng.int(49152, 65000);
  const packets: CallPacket[] = [];
  const t0 = call.start;
  // ICE: the server tells the device its public address, then the pair is checked both ways
  packets.push({ atMs: t0, up: true, server: true, payload: stunMessage(rng, 0x0001, 8) });
  packets.push({ atMs: t0 + rng.int(20, 60), up: false, server: true, payload: stunMessage(rng, 0x0101, 12) });
  const check = t0 + rng.int(300, 600);
  packets.push({ atMs: check, up: true, server: false, payload: stunMessage(rng, 0x0001, 48) });
  packets.push({ atMs: check + rng.int(30, 60), up: false, server: false, payload: stunMessage(rng, 0x0101, 44) });
  packets.push({ atMs: check + rng.int(5, 25), up: false, server: false, payload: stunMessage(rng, 0x0001, 48) });
  packets.push({ atMs: check + rng.int(70, 100), up: true, server: false, payload: stunMessage(rng, 0x0101, 44) });
  // media: 20-ms packets each way until the end of the call
  const mediaStart = check + rng.int(150, 300);
  const end = t0 + call.durationMs;
  const downSkew = rng.int(3, 17);
  let seq = rng.int(0, 30000);
  for (let t = mediaStart; t + downSkew <= end; t += 20) {
    packets.push({ atMs: t + rng.next() * 2, up: true, server: false, payload: srtp(rng, seq, rng.int(60, 140)) });
    packets.push({ atMs: t + downSkew + rng.next() * 4, up: false, server: false, payload: srtp(rng, seq + 7, rng.int(60, 140)) });
    seq++;
  }
  for (let t = mediaStart + rng.int(4000, 6000); t < end - 1000; t += rng.int(4000, 6000)) {
    packets.push({ atMs: t, up: true, server: false, payload: srtcp(rng) });
    packets.push({ atMs: t + rng.int(100, 900), up: false, server: false, payload: srtcp(rng) });
  }
  for (let t = mediaStart + rng.int(4000, 6000); t < end - 1000; t += rng.int(4000, 6000)) {
    packets.push({ atMs: t, up: true, server: false, payload: stunMessage(rng, 0x0001, 48) });
    packets.push({ atMs: t + rng.int(30, 60), up: false, server: false, payload: stunMessage(rng, 0x0101, 44) });
  }
  // times as the capture holds them (microseconds)
  for (const p of packets) p.atMs = Math.round(p.atMs * 1000) / 1000;
  packets.sort((a, b) => a.atMs - b.atMs);
  return { packets, server, peer, localPort, peerPort };
}

/** Frame bytes of a packet of the plan (Ethernet, IPv4, UDP; padded to the Ethernet minimum). */
export function callFrameBytes(p: CallPacket): number {
  return Math.max(MIN_FRAME, p.payload.length + UDP_FRAME_OVERHEAD);
}

/** Renders a call of `device` into the capture. */
export function renderCall(net: Net, seed: number, device: ScenarioDevice, call: ScenarioCall): void {
  const plan = callPlan(seed, call);
  const host: Host = { mac: parseMac(device.mac), ip: parseIp(device.ip) };
  const server = net.remote(plan.server);
  const peer = net.remote(plan.peer);
  for (const p of plan.packets) {
    const remote = p.server ? server : peer;
    const remotePort = p.server ? STUN_PORT : plan.peerPort;
    const timeUs = Math.round(p.atMs * 1000);
    if (p.up) net.udp(host, remote, plan.localPort, remotePort, timeUs, p.payload);
    else net.udpFromRemote(remote, host, remotePort, plan.localPort, timeUs, p.payload);
  }
}
