/**
 * Calls: Alexa calling, Drop In, video calls, Home Monitoring. An assistant in a call sends and receives
 * media over UDP for minutes (WebRTC: ICE with STUN/TURN, then SRTP), which is not a wake word and must
 * never be reported as an activation. This stage watches the assistants' UDP traffic (every port but
 * QUIC's 443 and a few local services), bins it into seconds per device (packet time, the one clock),
 * and reports a `call` with its duration, bytes and peers.
 *
 * The rule, with its numbers (docs/calls.md):
 * - a media second has at least MEDIA_MIN_EACH_WAY packets each way and MEDIA_MIN_PACKETS in all.
 *   Opus over RTP is packetised every 20 ms by default (RFC 7587 §7, `ptime`; RFC 7874 §4 for WebRTC):
 *   50 packets/s each way while both talk; at the longest usual ptime (60 ms) one talker still sends
 *   16.7/s; a silent side with DTX sends one packet per 400 ms (RFC 7587 §3.1.3), 2.5/s. Measured on
 *   the Teams capture in ../shared/captures/real: 25 RTP packets down in 0.48 s (52/s), frames of
 *   108-126 bytes for the audio.
 * - a call has at least MIN_MEDIA_SECONDS media seconds: a WebRTC connectivity check is a few STUN
 *   transactions (Teams capture: 3-9 packets per candidate pair; Zoom capture: 6 per server in 0.2 s),
 *   and a one-way burst is not two-way media (Zoom capture: 175 packets up, 10 down, in 1.4 s).
 * - it starts at its first media packet, or at the STUN/TURN exchange (ICE) that came up to
 *   PRELUDE_MS before it; it ends at the last packet of its last two-way second, once no second has
 *   carried packets both ways for END_GAP_MS (a held or muted call keeps DTX and consent checks
 *   flowing: RFC 7675 §5.1 checks every ~5 s).
 * ICE may move a call to another candidate pair (another port or address): all of a device's media
 * flows make one session, so a switch does not end the call.
 * On the LAN (both ends local) only flows that carried a STUN message count: WebRTC sends media only
 * on a pair ICE checked (RFC 8445 §12), while multi-room music, AirPlay or a speaker group also trade
 * UDP both ways between local devices without being calls. A LAN Drop In between two assistants of one
 * home is still found; a call to the Internet is also found without its STUN (a capture started late).
 *
 * Per packet: one Map lookup, a few counters, a look at the first 8 payload bytes; no allocation.
 */
import { formatAddr, formatMac, type DecodedPacket } from '../decode/packet.js';
import { classifyStun, STUN_MESSAGE } from '../decode/stun.js';
import type { Flow } from '../flow/flow.js';

/** Packets each way, and in all, that make a second of two-way media (see the header). */
export const MEDIA_MIN_EACH_WAY = 2;
export const MEDIA_MIN_PACKETS = 16;
/** Media seconds a call has at least. */
export const MIN_MEDIA_SECONDS = 5;
/** A STUN exchange this long before the first media second starts the call. */
export const PRELUDE_MS = 60_000;
/** A session ends after this long without a second that carried packets both ways. */
export const END_GAP_MS = 10_000;
/** Devices tracked at once (assistants: a home has a few); more are counted in stats.tracksDropped. */
export const MAX_TRACKS = 64;
/** Peers (remote addresses) listed per call; more are not listed (peersTruncated). */
export const MAX_PEERS = 16;
/** LAN flows per device that carried STUN (the ICE pairs a call may use on the LAN). */
export const MAX_LAN_ICE_FLOWS = 16;
/** Finished calls kept for inCall() (the detector asks about the recent past). */
const RECENT = 64;
const BIN_MS = 1000;
/**
 * Flows whose track (or null: not an assistant) is remembered, direct-mapped by flow id. A MAC is a
 * 48-bit number: looking one up in a Map boxes it, 16 bytes per packet; a flow id is a small integer.
 */
const FLOW_CACHE = 1024;

/** One call: two-way media of one device. Times in epoch ms; up is what the device sent. */
export class Call {
  readonly kind = 'call' as const;
  id: string;
  device: string;
  deviceMac: number;
  startMs: number;
  endMs: number;
  packetsUp = 0;
  packetsDown = 0;
  bytesUp = 0;
  bytesDown = 0;
  /** STUN messages (ICE checks, TURN allocations, consent) among the packets. */
  stunPackets = 0;
  /** Seconds of two-way media. */
  mediaSeconds = 0;
  /** Remote addresses (at most MAX_PEERS), and whether more were left out. */
  peers: string[] = [];
  peersTruncated = false;
  /** True once it has MIN_MEDIA_SECONDS media seconds (before, it is a candidate). */
  qualified = false;
  finished = false;

  constructor(deviceMac: number, startMs: number) {
    this.deviceMac = deviceMac;
    this.device = formatMac(deviceMac);
    this.startMs = startMs;
    this.endMs = startMs;
    this.id = `call-${this.device.replace(/:/g, '')}-${Math.floor(startMs)}`;
  }

  get durationS(): number {
    return Math.round(this.endMs - this.startMs) / 1000;
  }
}

/** Packet and byte counts of a span of seconds, moved as a whole into a call (or dropped). */
class Counts {
  packetsUp = 0;
  packetsDown = 0;
  bytesUp = 0;
  bytesDown = 0;
  stun = 0;
  firstMs = -1;
  lastMs = -1;

  add(o: Counts): void {
    if (o.firstMs < 0) return;
    this.packetsUp += o.packetsUp;
    this.packetsDown += o.packetsDown;
    this.bytesUp += o.bytesUp;
    this.bytesDown += o.bytesDown;
    this.stun += o.stun;
    if (this.firstMs < 0 || o.firstMs < this.firstMs) this.firstMs = o.firstMs;
    if (o.lastMs > this.lastMs) this.lastMs = o.lastMs;
  }

  clear(): void {
    this.packetsUp = 0;
    this.packetsDown = 0;
    this.bytesUp = 0;
    this.bytesDown = 0;
    this.stun = 0;
    this.firstMs = -1;
    this.lastMs = -1;
  }
}

/** Per-device state: the open second, the STUN exchange before media, the session in progress. */
class Track {
  binStart = -1;
  readonly bin = new Counts();
  /** The second before the open one, when it had packets both ways (a call's first, partial second). */
  readonly previous = new Counts();
  previousStart = -1;
  /** STUN seen while no session was open: the ICE exchange a call starts with (or a lone check). */
  readonly prelude = new Counts();
  /** Seconds inside a session without packets both ways: part of the call if two-way media follows. */
  readonly pending = new Counts();
  current: Call | null = null;
  /** End of the last second that carried packets both ways. */
  lastAliveMs = 0;
  /** Peers of the session (or prelude): address words, 4 per peer, and the IP version of each. */
  readonly peerWords = new Uint32Array(MAX_PEERS * 4);
  readonly peerVersions = new Uint8Array(MAX_PEERS);
  peerCount = 0;
  peersTruncated = false;
  /** The flow whose peer was recorded last: most packets come on one flow, so most skip the scan. */
  lastPeerFlow = -1;
  /** LAN flows that carried STUN (ids, a ring of MAX_LAN_ICE_FLOWS). */
  readonly lanIceFlows = new Float64Array(MAX_LAN_ICE_FLOWS).fill(-1);
  lanIceNext = 0;
  /** Index in the busy list, or -1. */
  busyIndex = -1;
  constructor(readonly mac: number) {}
}

export interface CallHandlers {
  /** A session qualified as a call (MIN_MEDIA_SECONDS of media; its end and counts still grow). */
  onStarted?(call: Call): void;
  /** A call ended. */
  onFinished?(call: Call): void;
}

export interface CallStats {
  calls: number;
  /** Two-way media that stopped before it made a call (a short burst). */
  callsRejected: number;
  /** STUN exchanges that no media followed (connectivity checks). */
  stunOnly: number;
  stunPackets: number;
  /** Devices not tracked because MAX_TRACKS were busy. */
  tracksDropped: number;
}

/** Ports that are never media: DNS, DHCP, NTP, NetBIOS, QUIC (443: an assistant's voice and cloud), SSDP, mDNS, LLMNR. */
const NOT_MEDIA_PORTS = [53, 67, 68, 123, 137, 138, 443, 1900, 5353, 5355];

/**
 * Builds the call tracker. `isAssistant(mac)` says whether a device is watched (the inventory's
 * verdict); feed it every UDP packet with onPacket, the one clock with tick, and flush at the end.
 */
export function buildCallTracker(isAssistant: (mac: number) => boolean, handlers: CallHandlers = {}) {
  const notMedia = new Uint8Array(65536);
  for (const port of NOT_MEDIA_PORTS) notMedia[port] = 1;
  const tracks = new Map<number, Track>();
  /**
   * Tracks with an open second, prelude or session: the tick visits only these. An array with each
   * track's index in it (a Set's iterator would be an allocation a tick).
   */
  const busy: Track[] = [];
  const markBusy = (t: Track) => {
    if (t.busyIndex >= 0) return;
    t.busyIndex = busy.length;
    busy.push(t);
  };
  const markIdle = (t: Track) => {
    const i = t.busyIndex;
    if (i < 0) return;
    const last = busy.pop()!;
    if (last !== t) {
      busy[i] = last;
      last.busyIndex = i;
    }
    t.busyIndex = -1;
  };
  const recent: Call[] = [];
  const stats: CallStats = { calls: 0, callsRejected: 0, stunOnly: 0, stunPackets: 0, tracksDropped: 0 };
  const scratch = new Uint32Array(4);
  const cachedFlowIds = new Float64Array(FLOW_CACHE).fill(-1);
  const cachedTracks: Array<Track | null> = new Array<Track | null>(FLOW_CACHE).fill(null);
  // an entry holds while its epoch is the current one: a tick starts a new epoch instead of clearing
  // 1,024 entries (a tick each second of capture time: ~30 ms of the bench replay when it cleared them)
  const cachedEpochs = new Uint32Array(FLOW_CACHE);
  let epoch = 1;

  function trackOf(mac: number): Track | null {
    const t = tracks.get(mac);
    if (t !== undefined) return t;
    if (!isAssistant(mac)) return null;
    if (tracks.size >= MAX_TRACKS) {
      // an idle track makes room; a device in a call is never dropped for a newcomer
      let idle: Track | null = null;
      for (const o of tracks.values()) if (o.busyIndex < 0) { idle = o; break; }
      if (idle === null) {
        stats.tracksDropped++;
        return null;
      }
      tracks.delete(idle.mac);
      epoch++;
    }
    const created = new Track(mac);
    tracks.set(mac, created);
    return created;
  }

  function addPeer(t: Track, flow: Flow): void {
    t.lastPeerFlow = flow.id;
    const words = flow.deviceIsClient ? flow.serverInto(scratch) : flow.clientInto(scratch);
    for (let i = 0; i < t.peerCount; i++) {
      const k = i * 4;
      if (t.peerWords[k + 3] === words[3] && t.peerWords[k + 2] === words[2] && t.peerWords[k + 1] === words[1] && t.peerWords[k] === words[0] && t.peerVersions[i] === flow.ipVersion) return;
    }
    if (t.peerCount >= MAX_PEERS) {
      t.peersTruncated = true;
      return;
    }
    t.peerWords.set(words, t.peerCount * 4);
    t.peerVersions[t.peerCount++] = flow.ipVersion;
  }

  /** Whether a LAN flow is an ICE pair (it carried STUN: now, when `stun`, or before). */
  function lanIceFlow(t: Track, id: number, stun: boolean): boolean {
    const ids = t.lanIceFlows;
    for (let i = 0; i < MAX_LAN_ICE_FLOWS; i++) if (ids[i] === id) return true;
    if (!stun) return false;
    ids[t.lanIceNext] = id;
    t.lanIceNext = (t.lanIceNext + 1) % MAX_LAN_ICE_FLOWS;
    return true;
  }

  function clearPeers(t: Track): void {
    t.peerCount = 0;
    t.peersTruncated = false;
    t.lastPeerFlow = -1;
  }

  function peerTexts(t: Track): string[] {
    const out: string[] = [];
    for (let i = 0; i < t.peerCount; i++) out.push(formatAddr(t.peerVersions[i], t.peerWords.subarray(i * 4, i * 4 + 4)));
    return out;
  }

  function addCounts(call: Call, c: Counts): void {
    if (c.firstMs < 0) return;
    call.packetsUp += c.packetsUp;
    call.packetsDown += c.packetsDown;
    call.bytesUp += c.bytesUp;
    call.bytesDown += c.bytesDown;
    call.stunPackets += c.stun;
    if (c.lastMs > call.endMs) call.endMs = c.lastMs;
  }

  /** Ends the session: a call when it qualified, else a rejected burst. */
  function finish(t: Track): void {
    const call = t.current;
    if (call === null) return;
    t.current = null;
    t.pending.clear();
    if (call.qualified) {
      call.peers = peerTexts(t);
      call.peersTruncated = t.peersTruncated;
      call.finished = true;
      recent.push(call);
      if (recent.length > RECENT) recent.shift();
      stats.calls++;
      handlers.onFinished?.(call);
    } else {
      stats.callsRejected++;
    }
    clearPeers(t);
  }

  /** Closes the open second (the clock reached `nowMs`), and ends a session or prelude that went quiet. */
  function advance(t: Track, nowMs: number): void {
    if (t.binStart >= 0 && nowMs >= t.binStart + BIN_MS) closeBin(t);
    if (t.current !== null && nowMs >= t.lastAliveMs + END_GAP_MS) finish(t);
    if (t.current === null && t.prelude.firstMs >= 0 && nowMs >= t.prelude.lastMs + PRELUDE_MS) {
      t.prelude.clear();
      clearPeers(t);
      stats.stunOnly++;
    }
    if (t.binStart < 0 && t.current === null && t.prelude.firstMs < 0) markIdle(t);
  }

  function closeBin(t: Track): void {
    const b = t.bin;
    const binEnd = t.binStart + BIN_MS;
    const twoWay = b.packetsUp > 0 && b.packetsDown > 0;
    const media = b.packetsUp >= MEDIA_MIN_EACH_WAY && b.packetsDown >= MEDIA_MIN_EACH_WAY && b.packetsUp + b.packetsDown >= MEDIA_MIN_PACKETS;
    let call = t.current;
    if (media && call === null) {
      // the call starts with the ICE exchange before it, or with a two-way second just before this one
      const withPrelude = t.prelude.firstMs >= 0 && b.firstMs - t.prelude.lastMs <= PRELUDE_MS;
      const withPrevious = t.previousStart === t.binStart - BIN_MS;
      const start = withPrelude ? t.prelude.firstMs : withPrevious ? t.previous.firstMs : b.firstMs;
      call = new Call(t.mac, start);
      if (withPrelude) addCounts(call, t.prelude);
      if (withPrevious) addCounts(call, t.previous);
      if (!withPrelude && t.prelude.firstMs >= 0) stats.stunOnly++;
      t.prelude.clear();
      t.current = call;
    }
    let kept = call !== null;
    if (call !== null && twoWay) {
      addCounts(call, t.pending);
      t.pending.clear();
      addCounts(call, b);
      t.lastAliveMs = binEnd;
      if (media) call.mediaSeconds++;
      if (!call.qualified && call.mediaSeconds >= MIN_MEDIA_SECONDS) {
        call.qualified = true;
        handlers.onStarted?.(call);
      }
    } else if (call !== null) {
      t.pending.add(b);
    } else if (b.stun > 0) {
      if (t.prelude.firstMs >= 0 && b.firstMs - t.prelude.lastMs > PRELUDE_MS) {
        t.prelude.clear();
        stats.stunOnly++;
      }
      t.prelude.add(b);
      kept = true;
    } else if (t.prelude.firstMs < 0) {
      // neither media nor STUN: its peers are no call's
      clearPeers(t);
    }
    t.previous.clear();
    t.previousStart = -1;
    if (!kept && twoWay) {
      t.previous.add(b);
      t.previousStart = t.binStart;
    }
    b.clear();
    t.binStart = -1;
  }

  return {
    stats,
    /** One UDP packet of any device (`up`: client to server, as FlowTable.up). */
    onPacket(flow: Flow, up: boolean, p: DecodedPacket): void {
      if (flow.deviceMac < 0 || notMedia[flow.serverPort] === 1 || notMedia[flow.clientPort] === 1) return;
      const slot = flow.id & (FLOW_CACHE - 1);
      let t: Track | null;
      if (cachedFlowIds[slot] === flow.id && cachedEpochs[slot] === epoch) {
        t = cachedTracks[slot];
      } else {
        t = trackOf(flow.deviceMac);
        cachedFlowIds[slot] = flow.id;
        cachedEpochs[slot] = epoch;
        cachedTracks[slot] = t;
      }
      if (t === null) return;
      const stun = classifyStun(p.payloadBuf, p.payloadOffset, p.payloadLength, flow.deviceIsClient ? flow.serverPort : flow.clientPort) === STUN_MESSAGE;
      if (flow.bothLocal && !lanIceFlow(t, flow.id, stun)) return;
      const timeMs = p.timeMs;
      if (t.binStart >= 0 && timeMs >= t.binStart + BIN_MS) advance(t, timeMs);
      if (t.binStart < 0) {
        t.binStart = Math.floor(timeMs / BIN_MS) * BIN_MS;
        markBusy(t);
      }
      const b = t.bin;
      const sent = up === flow.deviceIsClient;
      if (sent) {
        b.packetsUp++;
        b.bytesUp += p.wireLen;
      } else {
        b.packetsDown++;
        b.bytesDown += p.wireLen;
      }
      if (b.firstMs < 0) b.firstMs = timeMs;
      b.lastMs = timeMs;
      if (stun) {
        b.stun++;
        stats.stunPackets++;
      }
      if (flow.id !== t.lastPeerFlow) addPeer(t, flow);
    },
    /** The one clock: closes seconds no packet closed, ends calls that went quiet. */
    tick(nowMs: number): void {
      // a device may have become an assistant since its flows were looked at
      epoch++;
      // backwards: a track that goes idle takes the last one's place, which was visited already
      for (let i = busy.length - 1; i >= 0; i--) advance(busy[i], nowMs);
    },
    /** End of input: every session ends at its last packet. */
    flush(): void {
      for (let i = busy.length - 1; i >= 0; i--) {
        const t = busy[i];
        if (t.binStart >= 0) closeBin(t);
        finish(t);
        advance(t, Number.POSITIVE_INFINITY);
      }
    },
    /**
     * Whether `mac` was in two-way media at `timeMs`: a finished call covers it, or a session with at
     * least one media second is open and began at or before it. Decided per closed second: media in
     * the second now open is not seen yet. For the activation detector: an upload during a call is the
     * call's audio, not a wake word.
     */
    inCall(mac: number, timeMs: number): boolean {
      return callAt(mac, timeMs) !== null;
    },
    /** The call (open or recent) of `mac` covering `timeMs`, or null (see inCall). */
    callAt,
    /** Calls in progress (qualified), for the API. */
    openCalls(): Call[] {
      const out: Call[] = [];
      for (const t of busy) {
        if (t.current?.qualified) {
          t.current.peers = peerTexts(t);
          t.current.peersTruncated = t.peersTruncated;
          out.push(t.current);
        }
      }
      return out;
    },
  };

  function callAt(mac: number, timeMs: number): Call | null {
    const t = tracks.get(mac);
    const open = t?.current ?? null;
    if (open !== null && open.mediaSeconds > 0 && timeMs >= open.startMs) return open;
    for (let i = recent.length - 1; i >= 0; i--) {
      const c = recent[i];
      if (c.deviceMac === mac && timeMs >= c.startMs && timeMs <= c.endMs) return c;
    }
    return null;
  }
}

export type CallTracker = ReturnType<typeof buildCallTracker>;
