/**
 * Detector parameters per vendor family, each with where it comes from. The detector (detector.ts)
 * looks for an audio stream: upload in nearly every 100-ms slot for more than a second. The numbers
 * below were measured on the labelled captures in ../shared (tshark sums of frame lengths; the tables
 * and plots are in docs/detection.md, `npm run plots` redraws them) and checked leave-one-data-set-out
 * (`npm run eval`, docs/evaluation.md):
 *
 * - voice uploads: Echo Dot (CIC IoT 2022) 18–22 busy slots, 28–31 kB over 1.9–2.4 s; Echo Spot 21–26
 *   slots, 77–97 kB; Nest Mini over QUIC 20–23 slots, 204–232 kB (up to 197 kB in its first second);
 *   Echo (Kennedy et al. vcfp) 19–35 slots, 34–55 kB; Echo (X-ray captures) 18–41 slots, 31–55 kB;
 *   Echo Dot 3 (Dubois et al.) 47 slots, 223 kB. Longest pause inside one: 0.82 s.
 * - not voice: Echo Spot volume change 2 slots (24 kB of full-size frames in 0.5 s), Nest Mini volume
 *   change 5–7 slots (8–12 kB), the Echo's event post after an answer 1–3 slots (10–28 kB), telemetry
 *   posts 1–3 slots.
 */

export interface DetectorParams {
  /** A 100-ms slot with at least this much upload (frame bytes, pure ACKs left out) is busy. */
  slotMinBytes: number;
  /** The window (100-ms slots, at most 32) in which busy slots are counted. */
  windowSlots: number;
  /** An upload qualifies when this many slots of the window are busy... */
  minStreamSlots: number;
  /** ...and, in an upload that began after a silence, at least this share of its slots... */
  minFill: number;
  /** ...carrying at least this many bytes... */
  minBytes: number;
  /** ...at no more than this rate (a faster upload is a bulk transfer, not a microphone). */
  maxBytesPerS: number;
  /** Silent slots tolerated inside one upload (a pause in speech). */
  maxGapSlots: number;
  /** An upload longer than this is not someone talking to an assistant (reason long-stream). */
  maxActivationMs: number;
  /** An activation starting this soon after the device's previous one ended is a follow-up. */
  followUpMs: number;
  /**
   * A stream on a known voice channel that ends before it qualifies is an aborted wake (the cloud
   * stopped the capture) when it has the cadence of audio: this many busy slots, bytes and packets/s.
   */
  abortMinSlots: number;
  abortMinBytes: number;
  audioMinPacketsPerS: number;
  /**
   * Such a short stream followed within `answerWindowMs` of its last packet by `answerMinBytes` coming
   * down (ACKs left out) was answered: a request whose stream a stall cut short, an activation.
   */
  answerWindowMs: number;
  answerMinBytes: number;
  /**
   * A TCP stream the network stalled: once the device retransmits, the burst is in loss recovery and its
   * silent slots (from its last new data on) count as busy, up to this share of its own busy slots: the
   * sender was streaming, the network held it back.
   */
  maxStallShare: number;
  /** ...once the burst has sent new data in at least this many slots. */
  stallMinSlots: number;
  /** Where the numbers come from. */
  source: string;
}

/**
 * The stream rule, measured across the Echo Dot, Echo Spot, Echo, Echo Dot 3 and Nest Mini captures:
 * voice fills 18 or more slots in its first two seconds, non-voice at most 7; 12 of 20 sits in the
 * gap, so a short command is found about 1.2 s after it starts and a volume change is 5 slots short.
 */
const STREAM: DetectorParams = {
  // the smallest audio record seen: 172-byte frames (Echo Dot); a pure ACK is at most 106 bytes
  slotMinBytes: 110,
  windowSlots: 20,
  minStreamSlots: 12,
  // voice fills 46–100% of its slots (46%: a pre-roll, a 1-s stall, then the stream); a background of a
  // packet every half second fills 20%
  minFill: 0.4,
  // the smallest voice upload is 28 kB (Echo Dot "volume off"); 8 kB leaves room for a shorter command
  minBytes: 8_000,
  // the Nest Mini's first second reaches 197 kB; a LAN-speed bulk upload is megabytes per second
  maxBytesPerS: 400_000,
  // the wake word's pre-roll can come 1.0–1.2 s before the stream (Kennedy et al. captures); the longest
  // pause inside a stream is 0.82 s (X-ray Echo)
  maxGapSlots: 15,
  // the longest upload in the captures lasts 8.8 s (Echo Dot 2, jhautry); Alexa stops listening after ~8 s of silence
  maxActivationMs: 60_000,
  // Follow-Up Mode listens for ~5 s after the answer (Amazon); Continued Conversation ~8 s (Google)
  followUpMs: 8_000,
  // audio streams at 25–50 packets/s in every capture; no non-voice burst has 6 busy slots at 20 packets/s
  abortMinSlots: 6,
  abortMinBytes: 4_000,
  audioMinPacketsPerS: 20,
  // the lossy Echo Dot 2 (jhautry) answered a request 2.3 s after a stall cut its stream; the shortest
  // spoken answer in the captures is 6 kB; volume changes and event posts get at most 3.1 kB back
  answerWindowMs: 3_000,
  answerMinBytes: 5_000,
  // five uploads stalled in TCP loss recovery right after the pre-roll (three Kennedy et al. files,
  // jhautry A and F): new data in 5-8 slots of their first 2 s, the rest silent or a packet at a time while
  // the device waits for ACKs; with the wait counted they qualify 1.3-1.7 s after their first packet
  // instead of 2.6-4.9 s. The TCP non-voice bursts (event posts, telemetry, the Echo Spot's volume
  // change) send new data in 1-3 slots: 4 sits between; and the credit never exceeds the busy slots.
  // The Nest Mini's 5-7-slot volume changes go over QUIC, where no retransmission is visible.
  maxStallShare: 1,
  stallMinSlots: 4,
  source: 'CIC IoT 2022 Echo Dot/Echo Spot/Nest Mini, Kennedy et al. CNS 2019, X-ray and Dubois et al. captures (docs/detection.md)',
};

export const VENDOR_PARAMS: Readonly<Record<string, DetectorParams>> = {
  amazon: STREAM,
  google: { ...STREAM, source: 'CIC IoT 2022 Nest Mini (QUIC, 20–23 busy slots, 204–232 kB); the stream rule as for the Echos' },
  // a Siri upload of 46–47 kB over 5.5–9 s (FACTS.md) streams at 5–8 kB/s: far above 8 kB and 12 slots
  apple: { ...STREAM, source: 'HomePod misactivation uploads of 46–47 kB over 5.5–9 s (FACTS.md); the stream rule' },
  // a Sonos One with Alexa or Google Assistant streams to that vendor's cloud like its speakers
  sonos: { ...STREAM, source: 'no published Sonos captures; the built-in Alexa/Google Assistant streams like theirs' },
};

/** The parameters for a vendor (the stream rule for unknown vendors). */
export function paramsFor(vendor: string | null): DetectorParams {
  return (vendor && VENDOR_PARAMS[vendor]) || STREAM;
}
