/**
 * Decides what a device is from its observations: vendor, name, model, and whether it is a voice
 * assistant, with the evidence in words. A vendor that makes assistants is never enough on its own:
 * it takes behaviour (voice endpoints, a persistent voice connection, speaker protocols) or the user's
 * word. Phones, computers, Kindles and Fire TVs are kept out.
 *
 * What a device announces about itself (DHCP host name, mDNS model and services, SSDP device type) is
 * one packet anyone on the LAN can forge from any MAC: it counts only beside traffic to the vendor's
 * cloud (voice endpoints, a voice or vendor connection, vendor device endpoints), so a flood of forged
 * announcements makes no assistant (issue 14).
 */
import type { Device } from './device.js';

/** Vendors that make voice-assistant speakers and displays. */
export const ASSISTANT_MAKERS: ReadonlySet<string> = new Set(['amazon', 'apple', 'google', 'sonos']);

/** Echo's DHCP host name: "amazon-" and 9 hex digits (FACTS.md). */
const ECHO_HOSTNAME = /^amazon-[0-9a-f]{9}$/i;
/** Host names and DHCP vendor classes of things that are not speakers. */
const NOT_A_SPEAKER = /android|iphone|ipad|ipod|galaxy|pixel|kindle|fire-?tv|firestick|\baft[a-z]{1,3}\b|macbook|imac|mac-?mini|windows|desktop|laptop|\bpc\b|msft|chromebook|playstation|xbox|roku|smart-?tv|webos|tizen/i;
/** Google Cast models that are speakers or displays with the Assistant (not video dongles). */
const GOOGLE_SPEAKER_MODEL = /google home|nest (mini|audio|hub)|home mini|home max|home hub|nest wifi point/i;
/** AirPlay model identifiers of the HomePod. */
const HOMEPOD_MODEL = /^AudioAccessory/i;
/** A general-purpose device asks for many unrelated domains; speakers stay with their vendor. */
const BROWSING_DOMAINS = 12;

interface Verdict {
  vendor: string | null;
  name: string | null;
  model: string | null;
  assistant: boolean;
  evidence: string[];
}

function modelName(d: Device): string | null {
  if (d.configModel) return d.configModel;
  const m = d.mdnsModel;
  if (m && HOMEPOD_MODEL.test(m)) return `HomePod (${m})`;
  if (m) return m;
  for (const t of d.ssdpTypes) if (/ZonePlayer/i.test(t)) return 'Sonos ZonePlayer';
  return null;
}

/** Vendor hints when the OUI says nothing (randomised MACs): announcements and host names. */
function hintedVendor(d: Device): string | null {
  if (d.dhcpHostName && ECHO_HOSTNAME.test(d.dhcpHostName)) return 'amazon';
  for (const s of d.mdnsServices) {
    if (s.startsWith('_googlecast.')) return 'google';
    if (s.startsWith('_sonos.')) return 'sonos';
    if (s.startsWith('_amzn-')) return 'amazon';
  }
  if (d.ssdpServer && /sonos/i.test(d.ssdpServer)) return 'sonos';
  if (d.mdnsModel && HOMEPOD_MODEL.test(d.mdnsModel)) return 'apple';
  return null;
}

/**
 * Roles in a local assistant (collector/local/stage.ts) from what a device did on the LAN: the
 * assistant system, what the device is, whether it is a voice assistant (a satellite, with a
 * microphone) and the evidence in words. A server is not called an assistant: its internet traffic is
 * a computer's, not a voice channel (it would make every connection of it a voice candidate).
 */
const LOCAL_ROLES: Record<string, { vendor: string; model: string; satellite: boolean; text: string; rank: number }> = {
  'wyoming-satellite': { vendor: 'home-assistant', model: 'voice satellite (Wyoming)', satellite: true, rank: 0, text: 'a Wyoming voice satellite (its info event names a satellite, or it streamed audio as one)' },
  'esphome-satellite': { vendor: 'home-assistant', model: 'voice satellite (ESPHome)', satellite: true, rank: 0, text: 'an ESPHome voice device (streamed audio to the Home Assistant holding its API connection)' },
  'hermes-satellite': { vendor: 'rhasspy', model: 'Rhasspy satellite (Hermes MQTT)', satellite: true, rank: 0, text: 'a Rhasspy satellite (published hermes/audioServer/.../audioFrame audio)' },
  'wyoming-server': { vendor: 'home-assistant', model: 'Home Assistant (Assist server)', satellite: false, rank: 1, text: 'a Home Assistant server (ran a Wyoming satellite, or took its audio)' },
  'esphome-server': { vendor: 'home-assistant', model: 'Home Assistant (Assist server)', satellite: false, rank: 1, text: 'a Home Assistant server (took an ESPHome device\'s audio)' },
  'esphome-client': { vendor: 'home-assistant', model: 'Home Assistant (Assist server)', satellite: false, rank: 2, text: 'a client of the ESPHome native API (TCP 6053): Home Assistant' },
  'wyoming-client': { vendor: 'home-assistant', model: 'Home Assistant (Assist server)', satellite: false, rank: 2, text: 'asks Wyoming services what they offer (describe): Home Assistant' },
  'hermes-server': { vendor: 'rhasspy', model: 'Rhasspy MQTT broker', satellite: false, rank: 1, text: 'the MQTT broker a Rhasspy satellite streamed its audio to' },
  'hermes-broker': { vendor: 'rhasspy', model: 'Rhasspy MQTT broker', satellite: false, rank: 3, text: 'an MQTT broker carrying Rhasspy\'s Hermes messages' },
  'hermes-client': { vendor: 'rhasspy', model: 'Rhasspy service (Hermes MQTT)', satellite: false, rank: 3, text: 'publishes Rhasspy Hermes messages' },
  'wyoming-stt': { vendor: 'home-assistant', model: 'Wyoming speech-to-text service', satellite: false, rank: 4, text: 'a Wyoming speech-to-text service (its info event)' },
  'wyoming-tts': { vendor: 'home-assistant', model: 'Wyoming text-to-speech service', satellite: false, rank: 4, text: 'a Wyoming text-to-speech service (its info event)' },
  'wyoming-wake': { vendor: 'home-assistant', model: 'Wyoming wake word service', satellite: false, rank: 4, text: 'a Wyoming wake word service (its info event)' },
  'esphome-device': { vendor: 'esphome', model: 'ESPHome device', satellite: false, rank: 5, text: 'serves the ESPHome native API (TCP 6053)' },
};
/** mDNS service types of local assistants (what they announce; counted only beside their traffic). */
const LOCAL_SERVICES: Record<string, string> = {
  '_home-assistant._tcp.local': 'Home Assistant',
  '_esphomelib._tcp.local': 'an ESPHome device',
  '_wyoming._tcp.local': 'a Wyoming service',
};

/** A device that spoke a local assistant's protocols: its verdict (null when it spoke none). */
function classifyLocal(d: Device, evidence: string[], name: string | null): Verdict | null {
  if (d.localRoles.size === 0) return null;
  const roles = [...d.localRoles].map((r) => LOCAL_ROLES[r]).filter((r) => r !== undefined).sort((a, b) => a.rank - b.rank);
  if (roles.length === 0) return null;
  for (const r of roles) evidence.push(`local assistant: ${r.text}`);
  for (const s of d.mdnsServices) if (LOCAL_SERVICES[s]) evidence.push(`announces ${s} (${LOCAL_SERVICES[s]})`);
  const satellite = roles.some((r) => r.satellite);
  let assistant = satellite;
  if (d.configAssistant !== null) {
    assistant = d.configAssistant;
    evidence.push(`configured assistant: ${d.configAssistant}`);
  }
  return { vendor: d.configVendor ?? roles[0].vendor, name, model: d.configModel ?? roles[0].model, assistant, evidence };
}

/** Classifies one device. Pure: the same observations give the same verdict. */
export function classify(d: Device): Verdict {
  const evidence: string[] = [];
  const vendor = d.configVendor ?? d.ouiVendor ?? hintedVendor(d);
  if (d.ouiVendor) evidence.push(`MAC vendor ${d.ouiVendor} (${d.organization})`);
  else if (d.randomized) evidence.push('randomised MAC (no vendor)');
  const name = d.configName ?? d.dhcpHostName ?? d.mdnsFriendlyName ?? [...d.mdnsNames][0] ?? null;
  const local = classifyLocal(d, evidence, name);
  if (local !== null) return local;
  const model = modelName(d);

  let score = 0;
  const strong = (text: string) => {
    evidence.push(text);
    score += 2;
  };
  const medium = (text: string) => {
    evidence.push(text);
    score += 1;
  };
  for (const n of [...d.voiceNames].slice(0, 3)) strong(`talks to voice endpoint ${n}`);
  for (const s of [...d.voiceServers].slice(0, 2)) strong(`persistent voice connection to ${s}`);
  if (d.voiceServers.size === 0 && d.persistentVendorConnection) medium(`persistent TLS connection to ${vendor ?? 'its vendor'} at ${d.persistentVendorConnection}`);
  for (const p of d.speakerPorts) strong(`speaks ${p}`);
  const endpoints = [...d.vendorEndpoints].slice(0, 3);
  if (endpoints.length > 0) medium(`uses ${vendor ?? 'vendor'} device endpoints ${endpoints.join(', ')}`);
  // announcements: counted beside cloud traffic, named (and not counted) without it
  const cloud = d.voiceNames.size > 0 || d.voiceServers.size > 0 || d.persistentVendorConnection !== null || d.vendorEndpoints.size > 0;
  const announced = (text: string, weight: number) => {
    if (cloud) {
      evidence.push(text);
      score += weight;
    } else {
      evidence.push(`${text} (not counted: no traffic to the vendor's cloud seen)`);
    }
  };
  if (d.mdnsModel && HOMEPOD_MODEL.test(d.mdnsModel)) announced(`announces AirPlay model ${d.mdnsModel} (HomePod)`, 2);
  if (d.mdnsModel && GOOGLE_SPEAKER_MODEL.test(d.mdnsModel)) announced(`announces Google Cast model ${d.mdnsModel}`, 2);
  for (const s of d.mdnsServices) if (s.startsWith('_sonos.')) announced(`announces ${s}`, 2);
  for (const t of d.ssdpTypes) if (/ZonePlayer/i.test(t)) announced(`announces UPnP ${t}`, 2);
  if (d.dhcpHostName && ECHO_HOSTNAME.test(d.dhcpHostName)) announced(`Echo-style DHCP host name ${d.dhcpHostName}`, 1);
  for (const s of d.mdnsServices) if (LOCAL_SERVICES[s]) evidence.push(`announces ${s} (${LOCAL_SERVICES[s]}; not counted: no local assistant traffic seen)`);

  const negatives: string[] = [];
  for (const text of [d.dhcpHostName, d.dhcpVendorClass, d.mdnsModel, ...d.mdnsNames]) {
    if (text && NOT_A_SPEAKER.test(text)) negatives.push(`names itself ${text}`);
  }
  if (d.otherDomains.size >= BROWSING_DOMAINS) negatives.push(`asks for ${d.otherDomains.size}+ unrelated domains (a phone or computer)`);

  let assistant: boolean;
  if (d.configAssistant !== null) {
    assistant = d.configAssistant;
    evidence.push(`configured assistant: ${d.configAssistant}`);
  } else if (vendor === null || !ASSISTANT_MAKERS.has(vendor)) {
    assistant = false;
    if (score > 0) evidence.push(`not an assistant: ${vendor ?? 'unknown vendor'} makes no voice assistants`);
  } else if (negatives.length > 0) {
    assistant = false;
    evidence.push(...negatives.map((n) => `not an assistant: ${n}`));
  } else {
    assistant = score >= 2;
    if (!assistant) evidence.push(score === 0 ? 'not an assistant: no voice or speaker behaviour seen' : 'not an assistant: too little evidence');
  }
  return { vendor, name, model, assistant, evidence };
}

/**
 * False when classify() cannot call the device an assistant whatever it announced: neither the owner's
 * word nor any traffic. Cheap: lets the inventory drop a forged device without classifying it.
 */
export function mayBeAssistant(d: Device): boolean {
  return d.configAssistant === true || d.voiceNames.size > 0 || d.voiceServers.size > 0 || d.persistentVendorConnection !== null ||
    d.vendorEndpoints.size > 0 || d.speakerPorts.size > 0 || d.localRoles.size > 0;
}

/** Recomputes a device's verdict when its observations changed. */
export function refresh(d: Device): void {
  if (!d.dirty) return;
  const v = classify(d);
  d.vendor = v.vendor;
  d.name = v.name;
  d.model = v.model;
  d.assistant = v.assistant;
  d.evidence = v.evidence;
  d.dirty = false;
}
