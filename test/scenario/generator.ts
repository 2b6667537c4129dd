/**
 * Scenario generator: a household of devices, a list of activations (the ground truth), and a pcap
 * that shows them the way a router would, all determined by one seed. Real captures stay the judge of
 * earshot; scenarios cover what no capture at hand has: two Echos at once, a HomePod, a Google device
 * on QUIC, an upload across midnight, follow-ups and timers, with phones, TVs and laptops around.
 *
 * generateScenario decides what happens (explicit activations, random ones, follow-ups, arbitration,
 * decoy uploads, wake events); writeScenarioPcap renders it. Both are pure functions of their input.
 */
import { renderEcho, renderHomePod, renderNest } from './assistants.js';
import { renderCall } from './calls.js';
import { Net } from './network.js';
import { renderLaptop, renderPhone, renderSonos, renderTv } from './others.js';
import { pcapBytes, writePcapFile } from './pcap-writer.js';
import { answerPlan, defaultUpload } from './plan.js';
import { hashLabel, Rng } from './rng.js';
import type { ActivationKind, Scenario, ScenarioActivation, ScenarioCall, ScenarioDecoy, ScenarioDevice } from './types.js';
import { VOICE_KINDS } from './types.js';

export type { ActivationKind, DecoyKind, DeviceKind, Scenario, ScenarioActivation, ScenarioCall, ScenarioDecoy, ScenarioDevice, ScenarioEvent } from './types.js';

export interface GenerateOptions {
  seed: number;
  /** Capture start, epoch ms. */
  startMs: number;
  durationMs: number;
  devices: ScenarioDevice[];
  /** Activations the test wants; missing fields are drawn (device: the first voice device; kind: command). */
  activations?: Partial<ScenarioActivation>[];
  /** Extra activations at random times on random voice devices (Echo, HomePod, Nest). */
  randomActivations?: number;
  /** Share of random commands followed by a follow-up upload a few seconds after the answer (default 0.2). */
  followUpRate?: number;
  /** Add an activation on the first voice device that starts before a UTC midnight and ends after it. */
  acrossMidnight?: boolean;
  /** Share of Echo answers followed by a one-second event post (default 0.7). */
  eventPostRate?: number;
  /** Calls (device: the first voice device; durationMs: 2 minutes), clear of that device's activations. */
  calls?: Array<Partial<ScenarioCall> & { start: number }>;
}

/** Activations this close together on different Echos race for one wake word. */
const ARBITRATION_WINDOW_MS = 500;
/** Activations start no earlier than this after the capture starts (devices join the LAN first). */
const LEAD_IN_MS = 5000;
const DAY_MS = 86_400_000;

/** A household to start from: two Echos, a HomePod, a Nest, a Sonos, a phone, a TV and a laptop (real OUIs). */
export function exampleDevices(): ScenarioDevice[] {
  return [
    { kind: 'echo', mac: '44:65:0d:a1:b2:c3', ip: '192.168.1.21', name: 'Kitchen Echo' },
    { kind: 'echo', mac: 'fc:65:de:12:34:56', ip: '192.168.1.22', name: 'Bedroom Echo' },
    { kind: 'homepod', mac: 'd0:d2:b0:44:55:66', ip: '192.168.1.23', name: 'Living Room' },
    { kind: 'nest', mac: '18:b4:30:77:88:99', ip: '192.168.1.24', name: 'Kitchen' },
    { kind: 'sonos', mac: '5c:aa:fd:01:02:03', ip: '192.168.1.25', name: 'Office' },
    { kind: 'phone', mac: '84:25:db:3e:4f:50', ip: '192.168.1.26', name: 'Phone' },
    { kind: 'tv', mac: '14:c9:13:aa:bb:cc', ip: '192.168.1.27', name: 'TV' },
    { kind: 'laptop', mac: 'f0:d5:bf:10:20:30', ip: '192.168.1.28', name: 'Laptop' },
  ];
}

/** When an activation's channel is busy: from its start to the end of its answer. */
function busyUntil(seed: number, a: ScenarioActivation, byMac: Map<string, ScenarioDevice>): number {
  const answer = answerPlan(seed, a, byMac.get(a.device)!.kind);
  return answer ? answer.start + answer.durationMs : a.start + a.durationMs;
}

/** Decides what happens in the capture. Throws on options that cannot be rendered faithfully. */
export function generateScenario(options: GenerateOptions): Scenario {
  const { seed, startMs } = options;
  const endMs = startMs + options.durationMs;
  const devices = options.devices.map((d) => ({ ...d, mac: d.mac.toLowerCase() }));
  const byMac = new Map(devices.map((d) => [d.mac, d]));
  if (byMac.size !== devices.length) throw new Error('scenario: two devices share a MAC address');
  const voice = devices.filter((d) => VOICE_KINDS.has(d.kind));
  const rng = new Rng(seed);
  const notes: string[] = [];
  const activations: ScenarioActivation[] = [];

  /** Completes an activation from its given fields, drawing the rest. */
  const complete = (given: Partial<ScenarioActivation>, label: string): ScenarioActivation => {
    const draw = rng.fork(`activation:${label}`);
    const device = given.device?.toLowerCase() ?? voice[0]?.mac;
    const owner = device === undefined ? undefined : byMac.get(device);
    if (owner === undefined) throw new Error(`scenario: activation ${label} names no known device (${given.device ?? 'none'})`);
    const kind: ActivationKind = given.kind ?? 'command';
    const start = given.start ?? draw.int(startMs + 30_000, Math.max(startMs + 30_000, endMs - 60_000));
    const drawn = defaultUpload(draw, owner.kind, kind, given.arbitration === 'lost', given.durationMs);
    const a: ScenarioActivation = {
      device: owner.mac, start: Math.round(start), durationMs: drawn.durationMs, bytesUp: given.bytesUp ?? drawn.bytesUp,
      intended: given.intended ?? kind !== 'false', kind,
    };
    if (given.arbitration) a.arbitration = given.arbitration;
    return a;
  };

  const explicit = (options.activations ?? []).map((a) => ({ ...a, device: a.device?.toLowerCase() }));
  markArbitration(explicit, byMac, notes);
  explicit.forEach((a, i) => activations.push(complete(a, `explicit-${i}`)));

  if (options.acrossMidnight) {
    const midnight = (Math.floor((startMs + LEAD_IN_MS + 10_000) / DAY_MS) + 1) * DAY_MS;
    if (midnight > endMs - 30_000 || voice.length === 0) throw new Error('scenario: acrossMidnight needs a voice device and a UTC midnight inside the capture');
    const draw = rng.fork('across-midnight');
    const durationMs = draw.int(6000, 10000);
    activations.push(complete({ device: voice[0].mac, start: midnight - draw.int(2000, Math.floor(durationMs / 2)), durationMs, kind: 'command' }, 'across-midnight'));
    notes.push(`activation on ${voice[0].mac} spans ${new Date(midnight).toISOString()}`);
  }

  // random activations keep 20 s clear of any other on the same device, answers included
  const clashes = (a: ScenarioActivation, except?: ScenarioActivation): boolean => activations.some((b) => b !== except && b.device === a.device
    && a.start < busyUntil(seed, b, byMac) + 20_000 && b.start < busyUntil(seed, a, byMac) + 20_000);
  const random = rng.fork('random');
  const randomCount = voice.length > 0 ? options.randomActivations ?? 0 : 0;
  if (randomCount > 0 && options.durationMs < 120_000) throw new Error('scenario: random activations need a capture of at least 2 minutes');
  for (let i = 0; i < randomCount; i++) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const roll = random.next();
      const kind: ActivationKind = roll < 0.6 ? 'command' : roll < 0.9 ? 'false' : 'timer';
      const a = complete({ device: random.pick(voice).mac, kind, start: random.int(startMs + 30_000, endMs - 60_000) }, `random-${i}-${attempt}`);
      if (clashes(a)) continue;
      activations.push(a);
      if (kind === 'command' && random.chance(options.followUpRate ?? 0.2)) {
        const followUp = complete({ device: a.device, kind: 'follow-up', start: busyUntil(seed, a, byMac) + random.int(1500, 4000) }, `follow-up-${i}`);
        if (busyUntil(seed, followUp, byMac) < endMs - 2000 && !clashes(followUp, a)) activations.push(followUp);
      }
      break;
    }
  }

  activations.sort((a, b) => a.start - b.start || a.device.localeCompare(b.device));
  for (const a of activations) {
    if (a.start < startMs + LEAD_IN_MS || a.start + a.durationMs > endMs - 2000) {
      throw new Error(`scenario: activation on ${a.device} at ${new Date(a.start).toISOString()} must lie between ${LEAD_IN_MS} ms after the start and 2 s before the end`);
    }
    const overlap = activations.find((b) => b !== a && b.device === a.device && b.start >= a.start && b.start < busyUntil(seed, a, byMac));
    if (overlap) throw new Error(`scenario: activations on ${a.device} at ${new Date(a.start).toISOString()} and ${new Date(overlap.start).toISOString()} overlap (upload or answer)`);
  }

  const calls = placeCalls(options, byMac, voice, activations, seed);
  const decoys = [...placeDecoys(options, devices, activations, byMac), ...callAudio(calls)];
  decoys.sort((a, b) => a.start - b.start || a.device.localeCompare(b.device));
  const wake = rng.fork('wake-events');
  const wakeEvents = activations.filter((a) => a.intended).map((a) => ({
    time: new Date(a.start - wake.int(200, 700)).toISOString(), device: a.device, source: 'scenario',
  }));
  return { seed, startMs, endMs, devices, activations, wakeEvents, decoys, ...(calls.length > 0 ? { calls } : {}), notes };
}

/** The calls asked for, checked: inside the capture, on a known device, clear of its activations. */
function placeCalls(options: GenerateOptions, byMac: Map<string, ScenarioDevice>, voice: ScenarioDevice[], activations: ScenarioActivation[], seed: number): ScenarioCall[] {
  const endMs = options.startMs + options.durationMs;
  return (options.calls ?? []).map((given) => {
    const device = given.device?.toLowerCase() ?? voice[0]?.mac;
    if (device === undefined || !byMac.has(device)) throw new Error(`scenario: call names no known device (${given.device ?? 'none'})`);
    const call: ScenarioCall = { device, start: Math.round(given.start), durationMs: given.durationMs ?? 120_000, ...(given.voiceUpload ? { voiceUpload: given.voiceUpload } : {}) };
    if (call.start < options.startMs + LEAD_IN_MS || call.start + call.durationMs > endMs - 2000) {
      throw new Error(`scenario: call on ${device} at ${new Date(call.start).toISOString()} must lie between ${LEAD_IN_MS} ms after the start and 2 s before the end`);
    }
    const clash = activations.find((a) => a.device === device && a.start < call.start + call.durationMs && call.start < busyUntil(seed, a, byMac));
    if (clash) throw new Error(`scenario: call on ${device} overlaps the activation at ${new Date(clash.start).toISOString()}`);
    return call;
  });
}

/** Uploads on the voice channel during calls (`voiceUpload`), as decoys: not activations. */
function callAudio(calls: ScenarioCall[]): ScenarioDecoy[] {
  return calls.filter((c) => c.voiceUpload !== undefined).map((c) => ({
    device: c.device, start: c.start + c.voiceUpload!.offsetMs, durationMs: c.voiceUpload!.durationMs, bytesUp: c.voiceUpload!.bytesUp, bytesDown: 800, kind: 'call-audio' as const,
  }));
}

/**
 * Explicit activations on different Echos within half a second of each other race for one wake word:
 * the one marked 'won' (else the first listed) answers, the others lose and stop after 1–3 s.
 */
function markArbitration(explicit: Partial<ScenarioActivation>[], byMac: Map<string, ScenarioDevice>, notes: string[]): void {
  const echo = explicit.filter((a) => a.start !== undefined && a.device !== undefined && byMac.get(a.device)?.kind === 'echo');
  const seen = new Set<Partial<ScenarioActivation>>();
  for (const a of echo) {
    if (seen.has(a)) continue;
    const group = echo.filter((b) => !seen.has(b) && Math.abs(b.start! - a.start!) <= ARBITRATION_WINDOW_MS);
    if (new Set(group.map((b) => b.device)).size < 2) continue;
    for (const b of group) seen.add(b);
    const winner = group.find((b) => b.arbitration === 'won') ?? group.find((b) => b.arbitration !== 'lost') ?? group[0];
    for (const b of group) b.arbitration = b === winner ? 'won' : 'lost';
    notes.push(`arbitration at ${new Date(a.start!).toISOString()}: ${winner.device} won over ${group.filter((b) => b !== winner).map((b) => b.device).join(', ')}`);
  }
}

/** Echo event posts after answers; HomePod periodic exchanges and one-second spikes, clear of activations. */
function placeDecoys(options: GenerateOptions, devices: ScenarioDevice[], activations: ScenarioActivation[], byMac: Map<string, ScenarioDevice>): ScenarioDecoy[] {
  const { seed, startMs } = options;
  const endMs = startMs + options.durationMs;
  const decoys: ScenarioDecoy[] = [];
  for (const a of activations) {
    if (byMac.get(a.device)?.kind !== 'echo' || a.arbitration === 'lost') continue;
    const draw = new Rng(hashLabel(seed, `event-post:${a.device}:${a.start}`));
    if (!draw.chance(options.eventPostRate ?? 0.7)) continue;
    const start = busyUntil(seed, a, byMac) + draw.int(1000, 3000);
    // a follow-up or the next command soon after the answer takes the event post's place
    if (start + 6000 > endMs || activations.some((b) => b.device === a.device && b.start > a.start && b.start < start + 6000)) continue;
    decoys.push({ device: a.device, start, durationMs: 1000, bytesUp: draw.int(10_000, 35_000), bytesDown: draw.int(500, 2000), kind: 'event-post' });
  }
  for (const d of devices) {
    if (d.kind !== 'homepod') continue;
    const draw = new Rng(hashLabel(seed, `homepod-decoys:${d.mac}`));
    const busy = activations.filter((a) => a.device === d.mac).map((a) => [a.start - 10_000, busyUntil(seed, a, byMac) + 10_000]);
    const free = (from: number, to: number) => from > startMs + 20_000 && to < endMs - 5000 && !busy.some(([s, e]) => from < e && s < to);
    for (let t = startMs + draw.int(60_000, 240_000); t < endMs; t += draw.int(240_000, 720_000)) {
      const durationMs = draw.int(800, 1500);
      const bytesUp = draw.int(3600, 4000);
      if (free(t, t + durationMs)) decoys.push({ device: d.mac, start: t, durationMs, bytesUp, bytesDown: draw.int(8500, 9500), kind: 'periodic' });
    }
    for (let t = startMs + draw.int(120_000, 600_000); t < endMs; t += draw.int(900_000, 2_400_000)) {
      const bytesUp = draw.int(10_000, 12_000);
      if (free(t, t + 1000) && !decoys.some((x) => x.device === d.mac && Math.abs(x.start - t) < 5000)) {
        decoys.push({ device: d.mac, start: t, durationMs: 1000, bytesUp, bytesDown: draw.int(2000, 6000), kind: 'spike' });
      }
    }
  }
  return decoys;
}

/** Renders a scenario into frames in capture order. */
function scenarioFrames(scenario: Scenario): Array<{ timeUs: number; frame: Buffer }> {
  const net = new Net(scenario.seed, scenario.startMs * 1000, scenario.endMs * 1000);
  let echoIndex = 0;
  for (const device of scenario.devices) {
    switch (device.kind) {
      case 'echo': renderEcho(net, scenario, device, echoIndex++); break;
      case 'homepod': renderHomePod(net, scenario, device); break;
      case 'nest': renderNest(net, scenario, device); break;
      case 'sonos': renderSonos(net, scenario, device); break;
      case 'phone': renderPhone(net, scenario, device); break;
      case 'tv': renderTv(net, scenario, device); break;
      case 'laptop': renderLaptop(net, scenario, device); break;
    }
  }
  for (const call of scenario.calls ?? []) renderCall(net, scenario.seed, scenario.devices.find((d) => d.mac === call.device)!, call);
  return net.frames();
}

/** The scenario's pcap file image (classic pcap, Ethernet, microsecond timestamps). */
export function scenarioPcapBytes(scenario: Scenario): Buffer {
  return pcapBytes(scenarioFrames(scenario));
}

/** Writes the scenario's capture as a classic pcap file (Ethernet, microsecond timestamps). */
export function writeScenarioPcap(scenario: Scenario, path: string): void {
  writePcapFile(path, scenarioFrames(scenario));
}
