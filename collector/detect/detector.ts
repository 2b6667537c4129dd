/**
 * The activation detector. It rests on what a voice upload is: an audio stream. After the wake word an
 * assistant streams the microphone to its cloud as a steady cadence of upload packets (a packet every
 * 10–40 ms), so nearly every 100-ms slot carries upload for as long as the person speaks; telemetry
 * posts, volume changes and the event post after an answer send a few full-size frames at once and
 * fill one to seven slots (docs/detection.md has the measurements).
 *
 * Per flow (a voice channel, or an assistant's unnamed connection that may be one) it cuts the upload
 * into 100-ms slots and keeps the last 32 of them. An upload qualifies when `minStreamSlots` of the
 * last `windowSlots` slots carried upload, with at least `minBytes` in them and no more than a voice
 * stream's rate: "started" is announced then (about 1.2 s after the first packet), "finished" once the
 * stream has been silent for `maxGapSlots`. A stream that never qualifies and ends is dropped, unless it
 * had the cadence of audio on a known voice channel: then it is an aborted wake (the cloud stopped the
 * capture) or, when another assistant heard the same wake word, an arbitration loser.
 *
 * Replay and live run the same code on packet times (the one clock closes slots when no packet comes),
 * so they find the same activations.
 */
import { formatAddr, formatMac } from '../decode/packet.js';
import type { Flow } from '../flow/flow.js';
import { paramsFor, type DetectorParams } from './params.js';
import type { LocalVoice } from '../local/record.js';

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
  /**
   * The verdict the evidence gives without a person's label, when a label decided otherwise (the detect
   * stage sets it; null otherwise). A label known before the activation finished (a replay or restart on a
   * data directory whose journal has it) may follow an earlier run that wrote this verdict: the InfluxDB
   * sink marks that point not current.
   */
  unlabelledVerdict: 'confirmed' | 'suspected' | 'unverified' | null = null;
  reasons: string[] = [];
  wakeEventMs: number | null = null;
  /** 100-ms slots that carried upload, and the largest one second of upload. */
  audioBins = 0;
  peakBinBytes = 0;
  finished = false;
  /** A local assistant's activation (a satellite streaming to a local server, collector/local/): its facts; null for cloud ones. */
  local: LocalVoice | null = null;

  constructor(deviceMac: number, startMs: number) {
    this.deviceMac = deviceMac;
    this.device = formatMac(deviceMac);
    this.startMs = startMs;
    this.endMs = startMs;
    this.id = `${this.device.replace(/:/g, '')}-${Math.floor(startMs)}`;
  }
}

export interface DetectorHandlers {
  /** An upload qualified as an activation (end, bytes still growing). */
  onStarted?(activation: Activation): void;
  /** An activation ended (its verdict is decided by the caller). */
  onFinished?(activation: Activation): void;
  /** An unnamed connection carried a voice stream: it is the device's voice channel (tagging learns it). */
  onVoiceFlow?(flow: Flow): void;
}

export interface DetectorStats {
  activations: number;
  /** Uploads that streamed for a while but never qualified (and were not an aborted wake). */
  rejectedBursts: number;
  devices: number;
  /** Flows found to be voice channels by the stream they carried. */
  voiceFlowsLearned: number;
}

const SLOT_MS = 100;
/** Slots remembered per stream: a 32-bit mask, one bit per slot. */
const RING = 32;
/** Ethernet + IPv6 + TCP with timestamps and SACK blocks, no payload: an ACK is not upload. */
const MAX_ACK_FRAME = 106;
/**
 * A burst busy this long (slots) before it qualifies grew out of a background: from then on only its last
 * window counts, and the window starts the upload (the wake word's pre-roll can come 2.8 s before a stalled stream).
 */
const LEAD_SLOTS = 60;
/** Devices remembered (follow-up times, the activation in progress); the inventory keeps 4,096 too. */
const MAX_DEVICES = 4096;
/** Announced activations kept to find arbitration peers. */
const RECENT = 64;

/** Per device: the activation in progress and when the last one ended. */
class Device {
  current: Activation | null = null;
  /** The stream the current activation rides on. */
  owner: Stream | null = null;
  lastEndMs = Number.NEGATIVE_INFINITY;
  constructor(readonly mac: number, readonly params: DetectorParams) {}
}

/** Per flow: the open slot, the last 32 slots, and the upload burst in progress (Flow.voiceTrack). */
export class Stream {
  /** Index (time / SLOT_MS) of the open slot; -1 when none is open. */
  slot = -1;
  slotUp = 0;
  slotPackets = 0;
  slotFirstMs = 0;
  slotLastMs = 0;
  /** Bit i: the slot `slot - 1 - i` was active. */
  mask = 0;
  /**
   * Per ring position (slot % RING): bytes, packets and first packet time of that slot, at [i],
   * [RING + i] and [2 * RING + i]. Only a burst that runs long needs them (to qualify by its last window):
   * allocated then, not for every connection.
   */
  ring: Float64Array | null = null;
  /** The aligned second (slot / 10) being summed for peakSecond, and its bytes so far. */
  second = -1;
  secondBytes = 0;
  /** The burst: first and last active slot (-1: none), its bytes and packets so far. */
  burstFirst = -1;
  lastActive = -1;
  burstBytes = 0;
  burstPackets = 0;
  burstStartMs = 0;
  burstEndMs = 0;
  burstDown = 0;
  burstSlots = 0;
  /** The busiest second (ten slots) of the burst. */
  peakSecond = 0;
  /** The slot the next bit pushed into `mask` stands for. */
  next = 0;
  /** The last slot whose second (ten slots) had four busy ones, while qualified on a busy background. */
  lastDense = 0;
  lastDenseMs = 0;
  onBackground = false;
  /**
   * TCP: the highest sequence number of the device's data so far (-1: none seen, or not TCP) and the slot
   * of its last new data. A data packet at or before `maxSeq` is a retransmission: the burst is in loss
   * recovery, and its silent slots from the last new data on were the network's, not the speaker's.
   */
  maxSeq = -1;
  lastNewSlot = -1;
  recovering = false;
  /** Silent slots of the burst spent in TCP loss recovery (they count as busy, up to maxStallShare). */
  burstCredit = 0;
  /** The open slot carried new data (not only retransmissions); the burst's busy slots that did. */
  slotNew = false;
  burstNewSlots = 0;
  /** Bytes the server sent (ACKs left out) since the device's last upload packet. */
  downSinceUp = 0;
  /**
   * A short burst held until its answer window closes (heldEndMs < 0: none): answered, it was a request
   * whose stream a stall cut short; unanswered with the cadence of audio, an aborted wake.
   */
  heldStartMs = 0;
  heldEndMs = -1;
  heldBytes = 0;
  heldSlots = 0;
  heldPeak = 0;
  heldDown = 0;
  heldAudio = false;
  /** The burst is an announced activation / ran past the longest activation (background until a gap). */
  qualified = false;
  saturated = false;
  constructor(readonly flow: Flow, readonly device: Device) {}
}

/** Set bits in a 32-bit word. */
function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export interface DetectorOptions {
  arbitrationMs: number;
  /** Parameters for every vendor instead of the shipped ones (evaluation, tuning). */
  params?: (vendor: string | null) => DetectorParams;
}

/** Builds the detector; `vendorOf(mac)` gives the device's vendor for its parameters. */
export function buildDetector(vendorOf: (mac: number) => string | null, handlers: DetectorHandlers, options: DetectorOptions = { arbitrationMs: 2000 }) {
  const pick = options.params ?? paramsFor;
  const recent: Activation[] = [];
  const devices = new Map<number, Device>();
  /** Streams with an open slot or a burst in progress: the tick visits only these. */
  const busy = new Set<Stream>();
  const stats: DetectorStats = { activations: 0, rejectedBursts: 0, devices: 0, voiceFlowsLearned: 0 };

  function streamOf(flow: Flow): Stream {
    let s = flow.voiceTrack;
    if (s === null) {
      let d = devices.get(flow.deviceMac) ?? null;
      if (d === null) {
        // forged MACs must not grow this without end: the oldest device not uploading makes room
        if (devices.size >= MAX_DEVICES) {
          for (const [mac, old] of devices) {
            if (old.current === null) {
              devices.delete(mac);
              break;
            }
          }
        }
        d = new Device(flow.deviceMac, pick(vendorOf(flow.deviceMac)));
        devices.set(flow.deviceMac, d);
        stats.devices = devices.size;
      }
      s = new Stream(flow, d);
      flow.voiceTrack = s;
    }
    return s;
  }

  /** Another assistant's announced activation starting within the arbitration window of `a`. */
  function arbitrationPeer(a: Activation): Activation | null {
    for (let i = recent.length - 1; i >= 0; i--) {
      const o = recent[i];
      if (o.deviceMac !== a.deviceMac && Math.abs(o.startMs - a.startMs) <= options.arbitrationMs) return o;
    }
    return null;
  }

  function describeServer(a: Activation, flow: Flow): void {
    a.server = formatAddr(flow.ipVersion, flow.serverWords());
    a.serverName = flow.serverName;
  }

  function scoreOf(s: Stream, p: DetectorParams): number {
    const slots = Math.min(1, s.burstSlots / (2 * p.minStreamSlots));
    const bytes = Math.min(1, s.burstBytes / (4 * p.minBytes));
    return Math.round((slots * 0.6 + bytes * 0.4) * 100) / 100;
  }

  function announce(a: Activation): void {
    recent.push(a);
    if (recent.length > RECENT) recent.shift();
    handlers.onStarted?.(a);
  }

  function finishActivation(d: Device, a: Activation): void {
    d.current = null;
    d.owner = null;
    a.finished = true;
    if (a.startMs - d.lastEndMs <= d.params.followUpMs) a.reasons.push('follow-up');
    d.lastEndMs = Math.max(d.lastEndMs, a.endMs);
    stats.activations++;
    handlers.onFinished?.(a);
  }

  /**
   * A burst that never qualified ended. On a voice channel (or the maker's cloud connection open before
   * capture) one with a few seconds' worth of busy slots is held for `answerWindowMs`: an answer coming
   * down makes it an activation at once (a request whose stream a stall cut short); no answer leaves an
   * aborted wake when it had the cadence of audio on a known voice channel, else nothing.
   */
  function shortBurst(s: Stream): void {
    const d = s.device;
    const p = d.params;
    const slots = s.burstSlots;
    const flow = s.flow;
    const channel = flow.service === 'voice' || (!flow.sawSyn && flow.vendor !== null && flow.vendor === vendorOf(d.mac));
    if (!channel || slots < p.abortMinSlots || s.burstBytes < p.abortMinBytes || d.current !== null) {
      if (slots >= p.abortMinSlots) stats.rejectedBursts++;
      return;
    }
    const durationMs = Math.max(SLOT_MS, s.burstEndMs - s.burstStartMs);
    s.heldStartMs = s.burstStartMs;
    s.heldEndMs = s.burstEndMs;
    s.heldBytes = s.burstBytes;
    s.heldSlots = slots;
    s.heldPeak = s.peakSecond;
    s.heldDown = s.downSinceUp;
    s.heldAudio = flow.service === 'voice' && (s.burstPackets * 1000) / durationMs >= p.audioMinPacketsPerS;
    if (s.heldDown >= p.answerMinBytes) releaseHeld(s, true);
  }

  /** Decides a held burst: answered (an activation now), or at the end of its window. */
  function releaseHeld(s: Stream, answered: boolean): void {
    const d = s.device;
    const p = d.params;
    const audio = s.heldAudio;
    const endMs = s.heldEndMs;
    s.heldEndMs = -1;
    if (d.current !== null || (!answered && !audio)) {
      stats.rejectedBursts++;
      return;
    }
    const a = new Activation(d.mac, s.heldStartMs);
    a.endMs = endMs;
    a.bytesUp = s.heldBytes;
    a.bytesDown = s.heldDown;
    a.audioBins = s.heldSlots;
    a.peakBinBytes = s.heldPeak;
    a.score = Math.round(Math.min(1, s.heldSlots / (2 * p.minStreamSlots)) * 60) / 100;
    describeServer(a, s.flow);
    // Echos that lose arbitration stop after 1-3 s: they did hear a wake word, another device answered
    a.reasons.push('sustained-upload', answered ? 'answered' : arbitrationPeer(a) !== null ? 'arbitration-loser' : 'aborted-wake');
    announce(a);
    finishActivation(d, a);
  }

  /** The burst of `s` ended (a gap longer than maxGapSlots, or the end of input). */
  function endBurst(s: Stream): void {
    const d = s.device;
    if (s.qualified) {
      if (d.owner === s && d.current !== null) finishActivation(d, d.current);
    } else if (!s.saturated && s.burstFirst >= 0) {
      shortBurst(s);
    }
    s.burstFirst = -1;
    s.lastActive = -1;
    s.qualified = false;
    s.saturated = false;
  }

  /** Closes the open slot of a stream: its activity, the burst, qualification. */
  function closeSlot(s: Stream): void {
    const d = s.device;
    const p = d.params;
    const slot = s.slot;
    const up = s.slotUp;
    const active = up >= p.slotMinBytes;
    const at = slot % RING;
    s.mask = ((s.mask << 1) | (active ? 1 : 0)) >>> 0;
    s.next = slot + 1;
    // the ring fills from well before a burst can qualify by its window (LEAD_SLOTS)
    if (s.ring === null && s.burstFirst >= 0 && slot - s.burstFirst >= LEAD_SLOTS - RING) s.ring = new Float64Array(3 * RING);
    const ring = s.ring;
    if (ring !== null) {
      ring[at] = active ? up : 0;
      ring[RING + at] = active ? s.slotPackets : 0;
      ring[2 * RING + at] = s.slotFirstMs;
    }
    // more silent slots than a pause in speech since the last active one: that burst is over
    if (s.burstFirst >= 0 && slot - s.lastActive - 1 > p.maxGapSlots) endBurst(s);
    if (active) {
      if (s.burstFirst < 0) {
        s.burstFirst = slot;
        s.burstStartMs = s.slotFirstMs;
        s.burstBytes = 0;
        s.burstPackets = 0;
        s.burstDown = 0;
        s.burstSlots = 0;
        s.burstCredit = 0;
        s.burstNewSlots = 0;
        s.recovering = false;
        s.peakSecond = 0;
      }
      s.lastActive = slot;
      s.burstBytes += up;
      s.burstPackets += s.slotPackets;
      s.burstSlots++;
      if (s.slotNew) s.burstNewSlots++;
      s.burstEndMs = s.slotLastMs;
      // the busiest second (of the clock) so far
      const sec = Math.floor(slot / 10);
      if (sec !== s.second) {
        s.second = sec;
        s.secondBytes = 0;
      }
      s.secondBytes += up;
      if (s.secondBytes > s.peakSecond) s.peakSecond = s.secondBytes;
    }
    if (active && s.burstFirst >= 0) {
      if (s.qualified) grow(s, up);
      else if (!s.saturated) tryQualify(s, slot);
    }
    if (s.qualified && s.onBackground) {
      // the stream fell back to the background's scattered packets it grew out of: the upload is over
      if (popcount(s.mask & 0x3ff) >= 4) {
        s.lastDense = slot;
        if (active) s.lastDenseMs = s.slotLastMs;
      } else if (slot - s.lastDense > p.maxGapSlots) {
        if (d.owner === s && d.current !== null) d.current.endMs = s.lastDenseMs;
        endBurst(s);
      }
    }
    s.slotUp = 0;
    s.slotPackets = 0;
    s.slotNew = false;
  }

  /** Adds a slot's upload to the activation the stream carries; ends one that ran too long. */
  function grow(s: Stream, up: number): void {
    const d = s.device;
    const a = d.current;
    if (a === null || d.owner !== s) return;
    a.endMs = s.slotLastMs;
    a.bytesUp += up;
    a.audioBins++;
    if (s.peakSecond > a.peakBinBytes) a.peakBinBytes = s.peakSecond;
    a.score = scoreOf(s, d.params);
    if (a.endMs - a.startMs > d.params.maxActivationMs) {
      // longer than anyone speaks to an assistant: a call, a stream, a recording; not one more second of it
      a.reasons.push('long-stream');
      s.qualified = false;
      s.saturated = true;
      finishActivation(d, a);
    }
  }

  /**
   * Qualifies the burst when it streams: a young burst (begun after a silence, less than LEAD_SLOTS ago)
   * by its own busy slots and their share of its length, an old one (grown out of a busy background) by
   * the busy slots of the last window.
   */
  function tryQualify(s: Stream, slot: number): void {
    const d = s.device;
    const p = d.params;
    const young = slot - s.burstFirst < LEAD_SLOTS;
    let first = s.burstFirst;
    let slots = s.burstSlots;
    let bytes = s.burstBytes;
    let packets = s.burstPackets;
    if (young) {
      // a stall counts only after more new data than a post sends at once (stallMinSlots)
      const counted = s.burstNewSlots < p.stallMinSlots ? slots : slots + Math.min(s.burstCredit, Math.floor(p.maxStallShare * slots));
      if (counted < p.minStreamSlots || counted < p.minFill * (slot - s.burstFirst + 1)) return;
    } else {
      const ring = s.ring;
      if (ring === null) return;
      const windowMask = p.windowSlots >= 32 ? s.mask : s.mask & ((1 << p.windowSlots) - 1);
      slots = popcount(windowMask);
      if (slots < p.minStreamSlots) return;
      // the upload starts where its run of busy slots does (no more than two silent slots between them):
      // the background's scattered packets before it are not part of it
      let from = 0;
      for (let i = 1, silent = 0; i < Math.min(p.windowSlots, RING); i++) {
        if (((windowMask >>> i) & 1) === 0) {
          if (++silent > 2) break;
        } else {
          silent = 0;
          from = i;
        }
      }
      bytes = 0;
      packets = 0;
      slots = 0;
      for (let i = 0; i <= from; i++) {
        if (((windowMask >>> i) & 1) === 0) continue;
        const at = (slot - i + RING) % RING;
        bytes += ring[at];
        packets += ring[RING + at];
        slots++;
        first = slot - i;
      }
      if (slots < p.minStreamSlots) return;
    }
    if (bytes < p.minBytes) return;
    const startMs = first === s.burstFirst || s.ring === null ? s.burstStartMs : s.ring[2 * RING + (first % RING)];
    const spanS = Math.max(1, (s.slotLastMs - startMs) / 1000);
    if (bytes / spanS > p.maxBytesPerS) {
      // a bulk transfer at link speed, not a microphone
      s.saturated = true;
      stats.rejectedBursts++;
      return;
    }
    s.qualified = true;
    s.onBackground = !young;
    s.lastDense = slot;
    s.lastDenseMs = s.slotLastMs;
    if (s.heldEndMs >= 0 && s.burstStartMs - s.heldEndMs <= p.answerWindowMs) {
      // the stream went on after a stall: one upload from the held burst's start
      s.burstStartMs = s.heldStartMs;
      s.burstBytes += s.heldBytes;
      s.burstSlots += s.heldSlots;
      s.heldEndMs = -1;
    }
    if (first !== s.burstFirst) {
      // a stream on a busy background: the upload starts where the dense run starts
      s.burstFirst = first;
      s.burstStartMs = startMs;
      s.burstBytes = bytes;
      s.burstPackets = packets;
      s.burstSlots = slots;
    }
    if (s.flow.service !== 'voice') {
      stats.voiceFlowsLearned++;
      handlers.onVoiceFlow?.(s.flow);
    }
    const current = d.current;
    if (current !== null) {
      // the device is already uploading on another connection: one activation
      if (d.owner !== null && d.owner.burstFirst >= 0) return;
      d.owner = s;
      current.bytesUp += s.burstBytes;
      return;
    }
    const a = new Activation(d.mac, s.burstStartMs);
    a.endMs = s.burstEndMs;
    a.bytesUp = s.burstBytes;
    a.bytesDown = s.burstDown;
    a.audioBins = s.burstSlots;
    a.peakBinBytes = s.peakSecond;
    a.score = scoreOf(s, p);
    describeServer(a, s.flow);
    a.reasons.push('sustained-upload');
    d.current = a;
    d.owner = s;
    announce(a);
  }

  /** Brings a stream's slots up to `nowMs`: closes the open slot and ends a burst that went quiet. */
  function advance(s: Stream, nowMs: number): void {
    const now = Math.floor(nowMs / SLOT_MS);
    if (s.slot >= 0 && now > s.slot) {
      closeSlot(s);
      s.slot = -1;
    }
    if (s.burstFirst >= 0 && now - s.lastActive - 1 > s.device.params.maxGapSlots) endBurst(s);
    if (s.heldEndMs >= 0 && nowMs - s.heldEndMs > s.device.params.answerWindowMs) releaseHeld(s, false);
    if (s.slot < 0 && s.burstFirst < 0 && s.heldEndMs < 0) busy.delete(s);
  }

  /** Opens slot `slot` on a stream: the silent slots since the last one go into the mask. */
  function open(s: Stream, slot: number): void {
    const gap = slot - s.next;
    if (gap > 0) s.mask = gap >= RING ? 0 : (s.mask << gap) >>> 0;
    // silent slots in TCP loss recovery: the device was waiting for the network
    if (gap > 0 && s.recovering && s.burstFirst >= 0) s.burstCredit += gap;
    s.next = Math.max(s.next, slot);
    s.slot = slot;
    busy.add(s);
  }

  return {
    stats,
    /**
     * One packet of a voice flow or a candidate (after flow accounting): `up` is client to server; `seq`
     * the TCP sequence number (-1 for UDP).
     */
    onPacket(flow: Flow, up: boolean, wireLen: number, timeMs: number, seq = -1): void {
      // pure ACKs carry nothing either way: from the device they are not upload (while an answer streams
      // down they would look like a stream of their own), from the server they are not an answer
      if (flow.deviceMac < 0 || wireLen <= MAX_ACK_FRAME) return;
      if (up !== flow.deviceIsClient) {
        // what comes down opens no slot: it is counted for the upload it answers (a download-only
        // connection, a media stream, costs one field read a packet)
        const s = flow.voiceTrack;
        if (s === null) return;
        s.downSinceUp += wireLen;
        if (s.burstFirst >= 0) s.burstDown += wireLen;
        if (s.heldEndMs >= 0 && timeMs > s.heldEndMs) {
          s.heldDown += wireLen;
          if (s.heldDown >= s.device.params.answerMinBytes) releaseHeld(s, true);
        }
        return;
      }
      const s = streamOf(flow);
      const slot = Math.floor(timeMs / SLOT_MS);
      if (s.slot >= 0 ? slot > s.slot : s.burstFirst >= 0) advance(s, timeMs);
      // a packet a little out of order joins the open slot
      if (s.slot < 0) open(s, slot);
      if (seq >= 0) {
        if (s.maxSeq >= 0 && ((s.maxSeq - seq) | 0) >= 0) {
          // a retransmission: the device has waited for the network since its last new data
          if (!s.recovering && s.burstFirst >= 0 && s.lastNewSlot >= s.burstFirst) {
            s.recovering = true;
            if (slot - s.lastNewSlot > 1) s.burstCredit += slot - s.lastNewSlot - 1;
          }
        } else {
          s.maxSeq = seq;
          s.lastNewSlot = slot;
          s.slotNew = true;
        }
      } else {
        s.slotNew = true;
      }
      if (s.slotUp === 0) s.slotFirstMs = timeMs;
      s.slotUp += wireLen;
      s.slotPackets++;
      s.slotLastMs = timeMs;
      s.downSinceUp = 0;
    },
    /** The one clock: closes slots on which no packet came (live), ends finished uploads. */
    tick(nowMs: number): void {
      for (const s of busy) advance(s, nowMs);
    },
    /** End of input: closes everything still open. */
    flush(): void {
      for (const s of busy) {
        if (s.slot >= 0) advance(s, (s.slot + 1) * SLOT_MS);
        if (s.burstFirst >= 0) endBurst(s);
        if (s.heldEndMs >= 0) releaseHeld(s, false);
        s.slot = -1;
        busy.delete(s);
      }
    },
    /** A flow ended: its stream goes (an upload in progress on it ends with it). */
    forget(flow: Flow): void {
      const s = flow.voiceTrack;
      if (s === null) return;
      if (s.slot >= 0) advance(s, (s.slot + 1) * SLOT_MS);
      if (s.burstFirst >= 0) endBurst(s);
      if (s.heldEndMs >= 0) releaseHeld(s, false);
      busy.delete(s);
      flow.voiceTrack = null;
    },
    /** The activation in progress on a device, if any (for "listening now"). */
    current(mac: number): Activation | null {
      return devices.get(mac)?.current ?? null;
    },
  };
}

export type Detector = ReturnType<typeof buildDetector>;
