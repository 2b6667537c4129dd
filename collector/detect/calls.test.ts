import { describe, expect, it } from 'vitest';
import { DecodedPacket, IPPROTO_UDP } from '../decode/packet.js';
import { createFlow, type Flow } from '../flow/flow.js';
import { buildCallTracker, END_GAP_MS, MAX_PEERS, MAX_TRACKS, MIN_MEDIA_SECONDS, type Call } from './calls.js';

const ECHO = 0x44650da1b2c3;
const PHONE = 0x8425db3e4f50;
const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);
const ip = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

let flowIds = 0;
/** A UDP flow of `mac` (the client) to `server`:`port`. */
function udpFlow(mac: number, server: number, port: number, localPort = 50000): Flow {
  const f = createFlow(++flowIds, IPPROTO_UDP, 4, flowIds, T0, [0, 0, 0, ip(192, 168, 1, 21)], localPort, [0, 0, 0, server], port);
  f.deviceMac = mac;
  f.deviceIsClient = true;
  return f;
}

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

function harness(isAssistant: (mac: number) => boolean = (mac) => mac === ECHO) {
  const started: Call[] = [];
  const finished: Call[] = [];
  const tracker = buildCallTracker(isAssistant, { onStarted: (c) => started.push(c), onFinished: (c) => finished.push(c) });
  const p = new DecodedPacket();
  let clock = -Infinity;
  const send = (flow: Flow, up: boolean, timeMs: number, payload: Buffer) => {
    // the collector's clock ticks once a second of packet time
    if (timeMs >= clock + 1000) {
      clock = Math.floor(timeMs / 1000) * 1000;
      tracker.tick(clock);
    }
    p.timeMs = timeMs;
    p.wireLen = payload.length + 42;
    p.payloadBuf = payload;
    p.payloadOffset = 0;
    p.payloadLength = payload.length;
    tracker.onPacket(flow, up, p);
  };
  /** `pps` packets a second each way on `flow` from `from` for `ms`. */
  const media = (flow: Flow, from: number, ms: number, pps = 50, size = 120) => {
    const step = 1000 / pps;
    let last = from;
    for (let t = from; t < from + ms; t += step) {
      send(flow, true, t, rtp(size));
      send(flow, false, t + 7, rtp(size));
      last = t + 7;
    }
    return last;
  };
  return { tracker, started, finished, send, media };
}

describe('call tracker', () => {
  const turn = ip(52, 94, 10, 20);

  it('a lone STUN binding is not a call', () => {
    const h = harness();
    const f = udpFlow(ECHO, turn, 3478);
    h.send(f, true, T0, bindingRequest());
    h.send(f, false, T0 + 40, bindingRequest());
    h.tracker.tick(T0 + 120_000);
    h.tracker.flush();
    expect(h.finished).toEqual([]);
    expect(h.tracker.stats).toMatchObject({ calls: 0, stunOnly: 1, stunPackets: 2 });
  });

  it(`a 1-s burst of two-way UDP at 50 packets/s each way is not a call, nor ${MIN_MEDIA_SECONDS - 1} s; ${MIN_MEDIA_SECONDS} s is`, () => {
    for (const [seconds, calls] of [[1, 0], [MIN_MEDIA_SECONDS - 1, 0], [MIN_MEDIA_SECONDS, 1]] as const) {
      const h = harness();
      const f = udpFlow(ECHO, turn, 40000);
      h.media(f, T0, seconds * 1000);
      h.tracker.flush();
      expect(h.finished.length, `${seconds} s`).toBe(calls);
      expect(h.tracker.stats.callsRejected, `${seconds} s`).toBe(1 - calls);
    }
  });

  it('one-way UDP (a stream), QUIC on 443 and a device that is not an assistant make no call', () => {
    const h = harness();
    const stream = udpFlow(ECHO, turn, 40000);
    for (let t = T0; t < T0 + 30_000; t += 20) h.send(stream, false, t, rtp(200));
    const quic = udpFlow(ECHO, ip(142, 250, 1, 1), 443);
    h.media(quic, T0 + 40_000, 30_000);
    const phone = udpFlow(PHONE, turn, 40000);
    h.media(phone, T0 + 80_000, 30_000);
    h.tracker.flush();
    expect(h.finished).toEqual([]);
  });

  it('a device that becomes an assistant during a flow has its call tracked from the next tick (the flow cache is cleared)', () => {
    let assistants = new Set<number>();
    const h = harness((mac) => assistants.has(mac));
    const f = udpFlow(ECHO, turn, 40000);
    // packets within one second, while the device is not known as an assistant: the flow is cached as none
    h.send(f, true, T0, rtp(120));
    h.send(f, false, T0 + 7, rtp(120));
    assistants = new Set([ECHO]);
    h.send(f, true, T0 + 20, rtp(120));
    expect(h.tracker.openCalls()).toEqual([]);
    // the next second's tick starts over: the same flow's media is now the assistant's
    h.media(f, T0 + 1000, (MIN_MEDIA_SECONDS + 1) * 1000);
    h.tracker.flush();
    expect(h.finished.length).toBe(1);
    expect(h.finished[0].startMs).toBeGreaterThanOrEqual(T0 + 1000);
  });

  it('STUN, then two minutes of media: one call from the STUN request to the last media packet, every packet counted', () => {
    const h = harness();
    const stun = udpFlow(ECHO, turn, 3478, 50100);
    h.send(stun, true, T0 + 100, bindingRequest());
    h.send(stun, false, T0 + 140, bindingRequest());
    const rtpFlow = udpFlow(ECHO, ip(54, 1, 2, 3), 61000, 50100);
    const last = h.media(rtpFlow, T0 + 2500, 120_000);
    h.tracker.tick(last + END_GAP_MS + 1000);
    expect(h.started).toHaveLength(1);
    expect(h.finished).toHaveLength(1);
    const call = h.finished[0];
    expect(call.startMs).toBe(T0 + 100);
    expect(call.endMs).toBe(last);
    expect(call.packetsUp).toBe(1 + 6000);
    expect(call.packetsDown).toBe(1 + 6000);
    expect(call.bytesUp).toBe(62 + 6000 * 162);
    expect(call.stunPackets).toBe(2);
    expect(call.peers).toEqual(['52.94.10.20', '54.1.2.3']);
    expect(call.durationS).toBe((last - T0 - 100) / 1000);
  });

  it('ICE moving to another pair, a silence of less than the end gap and a held call (DTX) keep one call; a longer silence ends it', () => {
    const h = harness();
    const a = udpFlow(ECHO, ip(54, 1, 2, 3), 61000, 50100);
    const b = udpFlow(ECHO, ip(54, 9, 9, 9), 62000, 50102);
    let t = h.media(a, T0, 30_000);
    t = h.media(b, t + 50, 30_000);
    t = h.media(b, t + END_GAP_MS - 2000, 10_000);
    t = h.media(b, t + 20, 30_000, 2.5);
    const end = h.media(b, t + 20, 10_000);
    h.media(b, end + END_GAP_MS + 2000, 10_000);
    h.tracker.flush();
    expect(h.finished.map((c) => [c.startMs, c.endMs])).toEqual([[T0, end], [end + END_GAP_MS + 2000, expect.any(Number)]]);
    expect(h.finished[0].peers).toEqual(['54.1.2.3', '54.9.9.9']);
  });

  it('on the LAN only an ICE-checked flow counts: a speaker group trading UDP both ways is no call, a LAN Drop In is one', () => {
    const h = harness();
    const group = udpFlow(ECHO, ip(192, 168, 1, 30), 40000);
    group.bothLocal = true;
    h.media(group, T0, 60_000);
    h.tracker.flush();
    expect(h.finished).toEqual([]);
    const dropIn = udpFlow(ECHO, ip(192, 168, 1, 31), 50200);
    dropIn.bothLocal = true;
    h.send(dropIn, true, T0 + 100_000, bindingRequest());
    h.send(dropIn, false, T0 + 100_030, bindingRequest());
    const last = h.media(dropIn, T0 + 100_200, 60_000);
    h.tracker.flush();
    expect(h.finished.map((c) => [c.startMs, c.endMs])).toEqual([[T0 + 100_000, last]]);
  });

  it('inCall: true inside a call (open or finished), false before and after it and for other devices', () => {
    const h = harness();
    const f = udpFlow(ECHO, turn, 40000);
    const last = h.media(f, T0 + 10_000, 30_000);
    expect(h.tracker.inCall(ECHO, T0 + 20_000)).toBe(true);
    h.tracker.tick(last + END_GAP_MS + 1000);
    expect(h.finished).toHaveLength(1);
    expect(h.tracker.inCall(ECHO, T0 + 9_000)).toBe(false);
    expect(h.tracker.inCall(ECHO, T0 + 25_000)).toBe(true);
    expect(h.tracker.inCall(ECHO, last + 1)).toBe(false);
    expect(h.tracker.inCall(PHONE, T0 + 25_000)).toBe(false);
  });

  it(`bounded: at most ${MAX_PEERS} peers listed per call, ${MAX_TRACKS} devices tracked at once`, () => {
    const h = harness();
    const flows = Array.from({ length: MAX_PEERS + 5 }, (_, i) => udpFlow(ECHO, ip(54, 1, 2, i + 1), 61000));
    for (let t = T0; t < T0 + 10_000; t += 20) {
      const f = flows[Math.floor((t - T0) / 20) % flows.length];
      h.send(f, true, t, rtp(120));
      h.send(f, false, t + 5, rtp(120));
    }
    h.tracker.flush();
    expect(h.finished[0].peers).toHaveLength(MAX_PEERS);
    expect(h.finished[0].peersTruncated).toBe(true);

    const all = harness(() => true);
    for (let i = 0; i < MAX_TRACKS + 3; i++) all.send(udpFlow(0x10000 + i, turn, 40000), true, T0 + i, rtp(100));
    expect(all.tracker.stats.tracksDropped).toBe(3);
  });
});
