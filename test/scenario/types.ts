/**
 * The scenario's shapes: the household (devices), the ground truth (activations and the wake events a
 * test can feed), and uploads on voice channels that are not activations (decoys). A scenario is plain
 * data (JSON-able), and writeScenarioPcap renders the same bytes from it every time.
 */

export type DeviceKind = 'echo' | 'homepod' | 'nest' | 'sonos' | 'phone' | 'tv' | 'laptop';

/** One device on the LAN. `name` is what the user calls it (mDNS friendly name); host names derive from the MAC. */
export interface ScenarioDevice {
  kind: DeviceKind;
  mac: string;
  ip: string;
  name?: string;
}

export type ActivationKind = 'command' | 'false' | 'follow-up' | 'timer';

/** One audio upload: the ground truth a detector is judged against. */
export interface ScenarioActivation {
  /** The device's MAC, as in ScenarioDevice.mac. */
  device: string;
  /** When the upload starts, epoch ms. */
  start: number;
  durationMs: number;
  /** Bytes of the upload's frames (Ethernet and up) on the voice channel, exactly as written. */
  bytesUp: number;
  /** False for a misactivation (the device heard something it took for the wake word). */
  intended: boolean;
  kind: ActivationKind;
  /** Echos racing for one wake word: the winner answers, the losers stop after 1–3 s (not misactivations). */
  arbitration?: 'won' | 'lost';
}

/** A wake-word event as a test feeds it: ISO time, device MAC, where it came from. */
export interface ScenarioEvent {
  time: string;
  device: string;
  source: string;
}

export type DecoyKind = 'event-post' | 'periodic' | 'spike' | 'call-audio';

/**
 * An upload on a voice channel that is not an activation: an Echo's event post after an answer, a
 * HomePod's periodic exchange or one-second spike. A detector should let these pass.
 */
export interface ScenarioDecoy {
  device: string;
  start: number;
  durationMs: number;
  /** Frame bytes up, exactly as written. */
  bytesUp: number;
  /** Payload bytes the server sends back (not exact in frame terms). */
  bytesDown: number;
  kind: DecoyKind;
}

/**
 * A call (Alexa calling, Drop In) on a device: ICE, then two-way SRTP until `start + durationMs`
 * (test/scenario/calls.ts plans its packets). Not an activation: the voice channel uploads nothing.
 */
export interface ScenarioCall {
  device: string;
  /** The first packet (the STUN binding request), epoch ms. */
  start: number;
  durationMs: number;
  /**
   * An upload on the voice channel during the call (issue 15: the call's audio, not a wake word),
   * placed as a `call-audio` decoy: from `offsetMs` after the call's start, for `durationMs`.
   */
  voiceUpload?: { offsetMs: number; durationMs: number; bytesUp: number };
}

export interface Scenario {
  seed: number;
  startMs: number;
  endMs: number;
  devices: ScenarioDevice[];
  /** Ground truth, sorted by start. */
  activations: ScenarioActivation[];
  /** One per activation with intended = true, a little before its start. */
  wakeEvents: ScenarioEvent[];
  decoys: ScenarioDecoy[];
  /** Calls (absent: none). */
  calls?: ScenarioCall[];
  notes?: string[];
}

/** The kinds that upload audio. Sonos speakers can host an assistant but are silent here by default. */
export const VOICE_KINDS: ReadonlySet<DeviceKind> = new Set(['echo', 'homepod', 'nest']);
