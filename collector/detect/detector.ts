/**
 * The activation detector. Per assistant, it bins the upload on the voice flows into seconds (packet
 * time; the one clock closes bins when no packet comes) and finds sustained audio uploads: at least
 * `minAudioBins` seconds of audio rate and `minBytes` in all, allowing a quiet second inside. A single
 * strong second (the event post after an answer) is not an activation; a strong second after a quiet
 * one starts a new activation (a new wake word). "Started" is announced as soon as an upload qualifies
 * (about 2 s after it began), "finished" two seconds after its last active second. Replay and live run
 * the same code on the same packet times, so they find the same activations.
 */
import { formatAddr, formatMac } from '../decode/packet.js';
import type { Flow } from '../flow/flow.js';
import { paramsFor, type DetectorParams } from './params.js';

/** One activation: an audio upload to the cloud. Times in epoch ms. */
export class Activation {
  id: string;
  device: string;
  deviceMac: number;
  startMs: number;
  endMs: number;
  bytesUp = 0;
  bytesDown = 0;
  server: string | null = null;
  serverName: string | null = null;
  score = 0;
  verdict: 'confirmed' | 'suspected' | 'unverified' = 'unverified';
  reasons: string[] = [];
  wakeEventMs: number | null = null;
  /** Seconds of audio-rate upload, and the largest second. */
  audioBins = 0;
  peakBinBytes = 0;
  finished = false;

  constructor(deviceMac: number, startMs: number) {
    this.deviceMac = deviceMac;
    this.device = formatMac(deviceMac);
    this.startMs = startMs;
    this.endMs = startMs;
    this.id = `${this.device.replace(/:/g, '')}-${Math.floor(startMs)}`;
  }
}

/** Per-device state: the open second and the upload in progress. */
class Track {
  binStart = -1;
  binUp = 0;
  binDown = 0;
  binFirstMs = 0;
  binLastMs = 0;
  /** Server of the busiest voice flow in the open second. */
  binFlow: Flow | null = null;
  binFlowBytes = 0;
  current: Activation | null = null;
  currentAnnounced = false;
  gapBins = 0;
  lastEndMs = Number.NEGATIVE_INFINITY;
  /**
   * The device's baseline upload rate (a slow EWMA over every second outside activations, the empty
   * ones included): a
   * device with a noisy baseline gets a higher threshold for an active second (IDLE_FACTOR times it).
   */
  idleRate = 0;
  lastBinEnd = 0;
  constructor(readonly mac: number, readonly params: DetectorParams) {}
}

export interface DetectorHandlers {
  /** An upload qualified as an activation (end, bytes still growing). */
  onStarted?(activation: Activation): void;
  /** An activation ended (its verdict is decided by the caller). */
  onFinished?(activation: Activation): void;
}

export interface DetectorStats {
  activations: number;
  /** Uploads that looked like a start but never qualified (event posts, short spikes). */
  rejectedBursts: number;
  devices: number;
}

const BIN_MS = 1000;
const IDLE_DECAY = 0.98;
/** An upload that has not qualified after this long is background, not speech: it is dropped. */
const MAX_UNQUALIFIED_MS = 30_000;
const IDLE_FACTOR = 3;
/** Ethernet + IPv6 + TCP with timestamps and SACK blocks, no payload. */
const MAX_ACK_FRAME = 106;

/** Announced activations kept to find arbitration peers. */
const RECENT = 64;

/** Builds the detector; `vendorOf(mac)` gives the device's vendor for its parameters. */
export function buildDetector(vendorOf: (mac: number) => string | null, handlers: DetectorHandlers, options: { arbitrationMs: number } = { arbitrationMs: 2000 }) {
  const recent: Activation[] = [];
  const tracks = new Map<number, Track>();
  /** Tracks with an open second or an upload in progress: the tick visits only these. */
  const busy = new Set<Track>();
  const stats: DetectorStats = { activations: 0, rejectedBursts: 0, devices: 0 };

  function trackOf(flow: Flow): Track {
    let t = flow.voiceTrack as Track | null;
    if (t === null) {
      t = tracks.get(flow.deviceMac) ?? null;
      if (t === null) {
        t = new Track(flow.deviceMac, paramsFor(vendorOf(flow.deviceMac)));
        tracks.set(flow.deviceMac, t);
        stats.devices = tracks.size;
      }
      flow.voiceTrack = t;
    }
    return t;
  }

  function qualifies(a: Activation, p: DetectorParams): boolean {
    return a.audioBins >= p.minAudioBins && a.bytesUp >= p.minBytes && a.endMs - a.startMs >= p.minDurationMs;
  }

  /** Another assistant's announced activation starting within the arbitration window of `a`. */
  function arbitrationPeer(a: Activation): Activation | null {
    for (let i = recent.length - 1; i >= 0; i--) {
      const o = recent[i];
      if (o.deviceMac !== a.deviceMac && Math.abs(o.startMs - a.startMs) <= options.arbitrationMs) return o;
    }
    return null;
  }

  function finish(t: Track): void {
    const a = t.current as Activation;
    t.current = null;
    t.gapBins = 0;
    if (!t.currentAnnounced) {
      // Echos that lose arbitration stop after 1-3 s: too short on their own, but they did hear a wake word
      const p = t.params;
      if (a.peakBinBytes >= p.startBinBytes && a.bytesUp >= p.minBytes / 3 && arbitrationPeer(a) !== null) {
        a.reasons.push('sustained-upload', 'arbitration-loser');
        handlers.onStarted?.(a);
        t.currentAnnounced = true;
      } else {
        stats.rejectedBursts++;
        return;
      }
    }
    t.currentAnnounced = false;
    a.finished = true;
    if (a.startMs - t.lastEndMs <= t.params.followUpMs) a.reasons.push('follow-up');
    t.lastEndMs = a.endMs;
    stats.activations++;
    handlers.onFinished?.(a);
  }

  /** Closes the open second of a track and moves its upload state on. */
  function closeBin(t: Track): void {
    const p = t.params;
    const up = t.binUp;
    const active = up >= Math.max(p.activeBinBytes, IDLE_FACTOR * t.idleRate);
    // a slow average over every second outside activations: a steady background raises it
    if (!t.currentAnnounced) t.idleRate = IDLE_DECAY * t.idleRate + (1 - IDLE_DECAY) * up;
    let a = t.current;
    if (a !== null && !t.currentAnnounced && t.binStart - a.startMs > MAX_UNQUALIFIED_MS) {
      finish(t);
      a = null;
    }
    if (a !== null) {
      if (active && t.gapBins > 0 && up >= p.startBinBytes) {
        finish(t); // a strong second after a pause: a new wake word
        a = null;
      } else if (!active) {
        a.bytesDown += t.binDown;
        if (++t.gapBins > p.maxGapBins) finish(t);
      }
    }
    if (active) {
      if (a === null) {
        a = new Activation(t.mac, t.binFirstMs);
        t.current = a;
        t.currentAnnounced = false;
      }
      t.gapBins = 0;
      a.endMs = t.binLastMs;
      a.bytesUp += up;
      a.bytesDown += t.binDown;
      if (up >= p.audioBinBytes) a.audioBins++;
      if (up > a.peakBinBytes) {
        a.peakBinBytes = up;
        if (t.binFlow) {
          a.server = formatAddr(t.binFlow.ipVersion, t.binFlow.serverWords());
          a.serverName = t.binFlow.serverName;
        }
      }
      a.score = Math.min(1, Math.round((Math.min(1, a.bytesUp / (2 * p.minBytes)) * 0.6 + Math.min(1, a.audioBins / 4) * 0.4) * 100) / 100);
      if (!t.currentAnnounced && qualifies(a, p)) {
        t.currentAnnounced = true;
        a.reasons.push('sustained-upload');
        recent.push(a);
        if (recent.length > RECENT) recent.shift();
        handlers.onStarted?.(a);
      }
    }
    t.binUp = 0;
    t.binDown = 0;
    t.binFlow = null;
    t.binFlowBytes = 0;
  }

  /** Brings a track's bins up to `nowMs`: closes the open second and any silent ones after it. */
  function advance(t: Track, nowMs: number): void {
    while (t.binStart >= 0 && nowMs >= t.binStart + BIN_MS) {
      closeBin(t);
      t.binStart += BIN_MS;
      if (t.current === null) {
        t.lastBinEnd = t.binStart;
        t.binStart = -1; // nothing in progress: the next packet opens a fresh second
        busy.delete(t);
      }
    }
  }

  return {
    stats,
    /** One packet of a voice flow (after flow accounting): `up` is client to server. */
    onPacket(flow: Flow, up: boolean, wireLen: number, timeMs: number): void {
      if (flow.deviceMac < 0) return;
      const t = trackOf(flow);
      if (t.binStart >= 0 && timeMs >= t.binStart + BIN_MS) advance(t, timeMs);
      if (t.binStart < 0) {
        const start = Math.floor(timeMs / BIN_MS) * BIN_MS;
        // the seconds since the last open one carried nothing: they pull the idle rate down
        if (t.lastBinEnd > 0) t.idleRate *= IDLE_DECAY ** Math.min(600, (start - t.lastBinEnd) / BIN_MS);
        t.binStart = start;
        busy.add(t);
      }
      // the device's upload is what it sends: up when it is the client. Pure ACKs (frames of at most
      // MAX_ACK_FRAME bytes) are not upload: while an answer streams down they would keep an activation
      // "active" for its whole length
      if (up === flow.deviceIsClient) {
        if (wireLen <= MAX_ACK_FRAME) return;
        if (t.binUp === 0) t.binFirstMs = timeMs;
        t.binUp += wireLen;
        t.binLastMs = timeMs;
        if (flow.voiceBinStart === t.binStart) {
          flow.voiceBinBytes += wireLen;
        } else {
          flow.voiceBinStart = t.binStart;
          flow.voiceBinBytes = wireLen;
        }
        if (flow.voiceBinBytes > t.binFlowBytes) {
          t.binFlowBytes = flow.voiceBinBytes;
          t.binFlow = flow;
        }
      } else {
        t.binDown += wireLen;
      }
    },
    /** The one clock: closes seconds on which no packet came (live), ends finished uploads. */
    tick(nowMs: number): void {
      for (const t of busy) advance(t, nowMs);
    },
    /** End of input: closes everything still open. */
    flush(): void {
      for (const t of busy) {
        if (t.binStart >= 0) advance(t, t.binStart + BIN_MS * (t.params.maxGapBins + 2));
        if (t.current !== null) finish(t);
        t.binStart = -1;
        busy.delete(t);
      }
    },
    /** The activation in progress on a device, if any (for "listening now"). */
    current(mac: number): Activation | null {
      const t = tracks.get(mac);
      return t && t.currentAnnounced ? t.current : null;
    },
  };
}

export type Detector = ReturnType<typeof buildDetector>;
