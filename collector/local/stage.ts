/**
 * Local assistants: Home Assistant Assist with its voice satellites (Wyoming, ESPHome), Rhasspy
 * (Hermes over MQTT). This stage watches the LAN connections these speak, tells the inventory what each
 * device is (satellite, server, speech service: device.localRoles, classify.ts names them), and turns a
 * satellite's audio stream to the local server into an activation (the detector's Activation with
 * `local` set). Then it says where the voice went: home, or on to a cloud speech service that the
 * server (or the satellite) contacted from 1 s before the stream to GRACE_MS after it
 * (data/cloud-speech.json). Activations are announced when the stream starts and finished once that
 * window has passed, through the same listeners as cloud activations.
 *
 * Cost: the collector calls onPacket only for LAN flows (both ends local); each is one map lookup by
 * flow id, and only the watched ones (chosen once at flow start, by port) are read. Names are looked up
 * per named flow (one set lookup for most). Every map is bounded and counts drops.
 */
import { formatAddr, ipv4Text, IPPROTO_TCP, IPPROTO_UDP, type DecodedPacket } from '../decode/packet.js';
import { Activation } from '../detect/detector.js';
import type { Flow } from '../flow/flow.js';
import type { MdnsInfo } from '../decode/mdns-sd.js';
import { addBounded } from '../identify/device.js';
import type { Inventory } from '../identify/inventory.js';
import type { CloudSpeechCatalog, CloudSpeechEntry } from './cloud-speech.js';
import { CloudContact, LOCAL_REASON_PREFIX, LocalVoice, MAX_CLOUD_CONTACTS, type LocalAssistantKind, type LocalProtocol } from './record.js';
import { WyomingReader, type WyomingEvent } from './wyoming.js';
import { readHermesPublishes } from './hermes.js';

/** Wyoming's default ports: piper TTS 10200, whisper STT 10300, openWakeWord 10400, satellite 10700. */
export const WYOMING_PORTS: readonly number[] = [10200, 10300, 10400, 10700];
/** The satellite serves Wyoming on 10700 and Home Assistant connects to it (wyoming-satellite README). */
const WYOMING_SATELLITE_PORT = 10700;
/** The ESPHome native API (esphome.io/components/api: port 6053). */
export const ESPHOME_API_PORT = 6053;
/** MQTT, where Rhasspy's Hermes messages travel (rhasspy.readthedocs.io, "MQTT"). */
export const MQTT_PORT = 1883;
/** A cloud contact counts from this long before a stream starts... */
export const BEFORE_MS = 1000;
/** ...to this long after it ended (a server that collects the audio first uploads it after the stream). */
export const GRACE_MS = 10_000;
/** A stream silent this long has ended (no closing event seen). */
const IDLE_END_MS = 1500;
/** A stream that runs this long without an opening event is continuous (wake word detected on the server). */
const MAX_STREAM_MS = 60_000;
/** A wake detection this long into a stream that nothing opened ends it: it was continuous. */
const CONTINUOUS_MS = 5000;
/** An opening event (wake, transcribe, audio-start) this long before the audio starts belongs to it. */
const OPENING_MS = 5000;
/** An ESPHome audio burst: packets closer than this, at least this long and this dense (16 kHz 16-bit = 32 B/ms). */
const BURST_GAP_MS = 300;
const BURST_MIN_MS = 500;
const BURST_MIN_RATE = 8;
/** UDP ports of announcements and infrastructure, never an ESPHome device's audio. */
const NOT_AUDIO_PORTS = new Set([53, 67, 68, 123, 1900, 5353]);
/** Bounds: watched LAN flows, streams waiting for their verdict, cloud speech connections, ports learned. */
const MAX_WATCHED = 1024;
const MAX_PENDING = 256;
const MAX_CLOUD_FLOWS = 512;
const MAX_LEARNED_PORTS = 16;
const MAX_ESPHOME_PEERS = 256;
/** A cloud connection open before the window counts when it sent at least this much in the window. */
const MIN_CLOUD_GROWTH = 2048;
/** Wyoming headers that were not Wyoming after which a connection is left alone. */
const MAX_BAD_HEADERS = 4;

export interface LocalStats {
  /** LAN connections read as Wyoming, ESPHome API/audio and MQTT; those not watched (bound). */
  watchedFlows: number;
  watchedDropped: number;
  wyomingEvents: number;
  wyomingDesyncs: number;
  localActivations: number;
  /** Streams that ran MAX_STREAM_MS without an opening event (continuous streaming). */
  continuousStreams: number;
  cloudSpeechConnections: number;
  cloudFlowsDropped: number;
  pendingDropped: number;
}

export interface LocalHandlers {
  onStarted?(activation: Activation): void;
  onFinished?(activation: Activation): void;
}

/** A satellite's stream to its server in progress (or ended, waiting for the cloud window to pass). */
class Session {
  lastAudioMs: number;
  ended = false;
  /** The window's end: the stream's end plus GRACE_MS (set when it ends). */
  decideAtMs = Number.POSITIVE_INFINITY;
  /** Opened by an event that starts a voice command (wake, transcribe, audio-start): not continuous. */
  opened: boolean;
  /** The cloud connections' upload when the stream started (growth counts, not what came before). */
  readonly before = new Map<Flow, number>();

  constructor(readonly activation: Activation, readonly local: LocalVoice, startMs: number, opened: boolean) {
    this.lastAudioMs = startMs;
    this.opened = opened;
  }
}

/** What is watched on one LAN flow. */
class Watch {
  /** Wyoming: one reader per direction (up: client to server). */
  up: WyomingReader | null = null;
  down: WyomingReader | null = null;
  session: Session | null = null;
  /** ESPHome/UDP audio bursts: the burst in progress, from the sending side. */
  burstStartMs = -1;
  burstLastMs = -1;
  burstBytes = 0;
  burstFrames = 0;
  burstPayload = 0;
  /** Wyoming: which side is the satellite (the server of a satellite's port 10700, or as its info says). */
  satelliteSide: 'client' | 'server' | null = null;
  /**
   * ESPHome: the device (the API's server, the audio's sender) is the flow's client side; MQTT: the
   * publisher is. Normally false for the API (Home Assistant connects) and true for UDP audio and MQTT.
   */
  deviceIsClient = true;
  constructor(readonly kind: 'wyoming' | 'esphome-api' | 'esphome-audio' | 'mqtt', readonly flow: Flow) {}
}

/** A cloud speech connection of a local device. */
class CloudFlow {
  constructor(readonly flow: Flow, readonly entry: CloudSpeechEntry, readonly name: string, readonly deviceMac: number, readonly address: string) {}
}

/** Builds the local-assistant stage. */
export function buildLocalStage(inventory: Inventory, catalog: CloudSpeechCatalog, handlers: LocalHandlers) {
  const stats: LocalStats = {
    watchedFlows: 0, watchedDropped: 0, wyomingEvents: 0, wyomingDesyncs: 0, localActivations: 0, continuousStreams: 0,
    cloudSpeechConnections: 0, cloudFlowsDropped: 0, pendingDropped: 0,
  };
  const wyomingPorts = new Set<number>(WYOMING_PORTS);
  const watched = new Map<number, Watch>();
  /** Streams in progress or waiting for their verdict, oldest first. */
  const sessions = new Set<Session>();
  const cloudFlows = new Map<Flow, CloudFlow>();
  /** Cloud connections that ended lately (their counters are final), newest last. */
  const endedCloud: CloudFlow[] = [];
  /** ESPHome devices and the address of the Home Assistant that holds their API connection. */
  const esphomePeers = new Map<number, number>();

  function mark(mac: number, role: string, timeMs: number): void {
    if (mac < 0) return;
    const d = inventory.get(mac, timeMs);
    if (addBounded(d.localRoles, role)) d.dirty = true;
  }

  function addressOf(flow: Flow, client: boolean): string {
    if (flow.ipVersion === 4) return ipv4Text(client ? flow.c3 : flow.s3);
    return formatAddr(flow.ipVersion, client ? flow.clientInto(new Uint32Array(4)) : flow.serverInto(new Uint32Array(4)));
  }

  function watch(flow: Flow, kind: Watch['kind']): Watch | null {
    if (watched.size >= MAX_WATCHED) {
      stats.watchedDropped++;
      return null;
    }
    const w = new Watch(kind, flow);
    watched.set(flow.id, w);
    stats.watchedFlows++;
    return w;
  }

  // ---- sessions: a satellite's stream, then the verdict on where the voice went ----

  function open(w: Watch, assistant: LocalAssistantKind, protocol: LocalProtocol, senderIsClient: boolean, startMs: number, opened: boolean): Session {
    const flow = w.flow;
    const satelliteMac = senderIsClient ? flow.deviceMac : flow.peerMac ?? -1;
    const serverMac = senderIsClient ? flow.peerMac ?? -1 : flow.deviceMac;
    const satelliteAddress = addressOf(flow, senderIsClient);
    const serverAddress = `${addressOf(flow, !senderIsClient)}:${senderIsClient ? flow.serverPort : flow.clientPort}`;
    const a = new Activation(satelliteMac, startMs);
    const local = new LocalVoice(assistant, protocol, satelliteMac, satelliteAddress, serverMac, serverAddress);
    a.local = local;
    a.server = serverAddress;
    a.serverName = serverLabel(assistant, protocol);
    a.score = 1;
    a.reasons = [`${LOCAL_REASON_PREFIX}${satelliteLabel(protocol)} ${satelliteAddress} streamed audio to ${serverLabel(assistant, protocol)} at ${serverAddress}`];
    const s = new Session(a, local, startMs, opened);
    for (const c of cloudFlows.values()) if (c.deviceMac === serverMac || c.deviceMac === satelliteMac) s.before.set(c.flow, c.flow.bytesUp);
    if (sessions.size >= MAX_PENDING) {
      // the oldest waiting stream is decided now, with what is known so far
      const oldest = sessions.values().next().value as Session;
      stats.pendingDropped++;
      decide(oldest, oldest.lastAudioMs);
    }
    sessions.add(s);
    w.session = s;
    // what came just before the audio: a wake word, or an event that starts a command
    const opening = wake.get(w);
    wake.delete(w);
    if (opening !== undefined && startMs - opening.timeMs <= OPENING_MS) {
      s.opened = true;
      if (opening.wake) {
        local.wakeWord = opening.name;
        noteWake(s, opening.timeMs);
      }
    }
    mark(satelliteMac, `${protocol}-satellite`, startMs);
    mark(serverMac, `${protocol}-server`, startMs);
    handlers.onStarted?.(a);
    return s;
  }

  /** A stream ended at `endMs`: the verdict waits until the grace time has passed. */
  function end(w: Watch, endMs: number): void {
    const s = w.session;
    if (s === null) return;
    w.session = null;
    s.ended = true;
    s.activation.endMs = Math.max(s.activation.startMs, endMs);
    s.decideAtMs = s.activation.endMs + GRACE_MS;
  }

  function decide(s: Session, nowMs: number): void {
    sessions.delete(s);
    const a = s.activation;
    const l = s.local;
    const from = a.startMs - BEFORE_MS;
    const to = a.endMs + GRACE_MS;
    l.checkedUntilMs = Math.min(to, Math.max(nowMs, a.endMs));
    const consider = (c: CloudFlow) => {
      if (l.cloud.length >= MAX_CLOUD_CONTACTS) return;
      if (c.deviceMac !== l.serverMac && c.deviceMac !== l.satelliteMac) return;
      const f = c.flow;
      if (f.firstMs > to || f.lastMs < from) return;
      const before = s.before.get(f);
      const isNew = f.firstMs >= from;
      const bytes = isNew || before === undefined ? f.bytesUp : f.bytesUp - before;
      if (!isNew && bytes < MIN_CLOUD_GROWTH) return;
      if (l.cloud.some((x) => x.name === c.name && x.deviceMac === c.deviceMac)) return;
      l.cloud.push(new CloudContact(c.name, c.entry.service, c.entry.organisation, c.deviceMac, c.address, isNew ? f.firstMs : a.startMs, bytes));
    };
    for (const c of cloudFlows.values()) consider(c);
    for (const c of endedCloud) consider(c);
    l.cloud.sort((x, y) => x.firstMs - y.firstMs);
    l.voiceDestination = l.cloud.length > 0 ? 'cloud' : 'home';
    const seconds = Math.round((to - a.endMs) / 1000);
    if (l.voiceDestination === 'home') {
      a.reasons.push(`voice stayed at home: no cloud speech service contacted from ${BEFORE_MS / 1000} s before the stream to ${seconds} s after it`);
    } else {
      for (const c of l.cloud) a.reasons.push(`voice went to ${c.name} (${c.service}, ${c.organisation}) at ${c.address}`);
    }
    a.finished = true;
    stats.localActivations++;
    handlers.onFinished?.(a);
  }

  /** Audio from the satellite side of `w`: opens a session when none is open. */
  function audio(w: Watch, assistant: LocalAssistantKind, protocol: LocalProtocol, senderIsClient: boolean, timeMs: number, payloadBytes: number, startMs = timeMs): void {
    let s = w.session;
    if (s === null) s = open(w, assistant, protocol, senderIsClient, startMs, false);
    s.local.audioBytes += payloadBytes;
    s.local.chunks++;
    s.lastAudioMs = timeMs;
    s.activation.endMs = timeMs;
    if (!s.opened && timeMs - s.activation.startMs > MAX_STREAM_MS) {
      // audio all the time with nothing that starts a command: the server listens for the wake word
      stats.continuousStreams++;
      s.activation.reasons.push('the satellite streams continuously (the wake word is detected on the server)');
      end(w, timeMs);
    }
  }

  /** Frame bytes of a packet of a session's flow: up is the satellite's, down the server's. */
  function countBytes(w: Watch, fromClient: boolean, wireLen: number): void {
    const s = w.session;
    if (s === null) return;
    const satelliteIsClient = s.local.satelliteMac === w.flow.deviceMac;
    if (fromClient === satelliteIsClient) s.activation.bytesUp += wireLen;
    else s.activation.bytesDown += wireLen;
  }

  // ---- Wyoming ----

  function wyomingEvent(w: Watch, fromClient: boolean, e: WyomingEvent, timeMs: number): void {
    stats.wyomingEvents++;
    const flow = w.flow;
    const senderMac = fromClient ? flow.deviceMac : flow.peerMac ?? -1;
    const receiverMac = fromClient ? flow.peerMac ?? -1 : flow.deviceMac;
    switch (e.type) {
      case 'describe':
        mark(senderMac, 'wyoming-client', timeMs);
        break;
      case 'info': {
        const d = e.data ?? {};
        // the services a Wyoming server says it offers (wyoming README, "Info")
        if (d.satellite) {
          mark(senderMac, 'wyoming-satellite', timeMs);
          w.satelliteSide = fromClient ? 'client' : 'server';
        }
        if (Array.isArray(d.asr) && d.asr.length > 0) mark(senderMac, 'wyoming-stt', timeMs);
        if (Array.isArray(d.tts) && d.tts.length > 0) mark(senderMac, 'wyoming-tts', timeMs);
        if (Array.isArray(d.wake) && d.wake.length > 0) mark(senderMac, 'wyoming-wake', timeMs);
        break;
      }
      case 'run-satellite':
        mark(senderMac, 'wyoming-server', timeMs);
        mark(receiverMac, 'wyoming-satellite', timeMs);
        w.satelliteSide = fromClient ? 'server' : 'client';
        break;
      case 'detection': {
        // a wake word: from the satellite (its own detection) or from the server (remote detection)
        const name = typeof e.data?.name === 'string' ? e.data.name.slice(0, 64) : null;
        const s = w.session;
        if (s !== null && !s.opened && timeMs - s.activation.startMs > CONTINUOUS_MS) {
          // the satellite was streaming for the server's wake word detection: the command starts now
          s.activation.reasons.push('the satellite streams continuously (the wake word is detected on the server)');
          stats.continuousStreams++;
          end(w, timeMs);
        }
        const current = w.session;
        if (current === null) {
          setOpening(w, { name, timeMs, wake: true });
        } else {
          current.opened = true;
          current.local.wakeWord ??= name;
          noteWake(current, timeMs);
        }
        break;
      }
      case 'transcribe':
      case 'audio-start':
        if (w.session === null) {
          if (w.satelliteSide !== null && fromClient === (w.satelliteSide === 'client') && !wake.has(w)) setOpening(w, { name: null, timeMs, wake: false });
        } else {
          w.session.opened = true;
        }
        break;
      case 'audio-chunk': {
        // only the satellite's audio is a voice command (the server's is the spoken answer)
        if (w.satelliteSide === null || fromClient !== (w.satelliteSide === 'client')) break;
        audio(w, 'home-assistant', 'wyoming', fromClient, timeMs, e.payloadLength);
        break;
      }
      case 'audio-stop':
      case 'transcript':
      case 'voice-stopped':
        if (w.session !== null) end(w, timeMs);
        break;
      default:
        break;
    }
  }

  /** The opening event seen before a flow's next audio (a wake detection, transcribe, audio-start); one per watched flow. */
  const wake = new Map<Watch, { name: string | null; timeMs: number; wake: boolean }>();

  function setOpening(w: Watch, opening: { name: string | null; timeMs: number; wake: boolean }): void {
    if (watched.get(w.flow.id) === w) wake.set(w, opening);
  }

  function noteWake(s: Session, timeMs: number): void {
    const a = s.activation;
    if (a.wakeEventMs !== null) return;
    a.wakeEventMs = timeMs;
    a.verdict = 'confirmed';
    const how = s.local.protocol === 'hermes' ? 'Hermes hotword detected message' : 'Wyoming detection event';
    a.reasons.push(`wake word${s.local.wakeWord ? ` "${s.local.wakeWord}"` : ''} detected on the LAN (${how})`);
  }

  function wyomingPacket(w: Watch, up: boolean, p: DecodedPacket): void {
    if (p.payloadLength === 0) return;
    const reader = up ? (w.up ??= new WyomingReader()) : (w.down ??= new WyomingReader());
    const before = reader.desyncs;
    reader.push(p.tcpSeq, p.payloadBuf, p.payloadOffset, p.payloadLength, (e) => wyomingEvent(w, up, e, p.timeMs));
    stats.wyomingDesyncs += reader.desyncs - before;
    if (reader.badHeaders >= MAX_BAD_HEADERS && reader.events === 0) {
      // not Wyoming after all: stop reading it
      watched.delete(w.flow.id);
      wake.delete(w);
    }
  }

  // ---- ESPHome: the API connection (TCP 6053) and the audio it announces (UDP to Home Assistant) ----

  /**
   * Bursts of upload from the device: audio when long and dense enough. The UDP stream (older Home
   * Assistant: the device sends raw audio to a UDP port Home Assistant opened; home-assistant/core
   * esphome/voice_assistant.py VoiceAssistantUDPServer) and audio inside the API connection (newer
   * versions, possibly encrypted with Noise) are both recognised by their rate alone.
   */
  function burst(w: Watch, fromClient: boolean, p: DecodedPacket): void {
    const t = p.timeMs;
    if (w.session !== null && t - w.burstLastMs > IDLE_END_MS) end(w, w.burstLastMs);
    if (w.burstLastMs < 0 || t - w.burstLastMs > BURST_GAP_MS) {
      if (w.session !== null) {
        // a pause inside a stream: the stream goes on
      } else {
        w.burstStartMs = t;
        w.burstBytes = 0;
        w.burstFrames = 0;
        w.burstPayload = 0;
      }
    }
    w.burstLastMs = t;
    if (w.session !== null) {
      w.session.local.audioBytes += p.payloadLength;
      w.session.local.chunks++;
      w.session.lastAudioMs = t;
      w.session.activation.endMs = t;
      return;
    }
    w.burstBytes += p.wireLen;
    w.burstFrames++;
    w.burstPayload += p.payloadLength;
    const length = t - w.burstStartMs;
    if (length >= BURST_MIN_MS && w.burstPayload / length >= BURST_MIN_RATE) {
      const s = open(w, 'home-assistant', 'esphome', fromClient, w.burstStartMs, true);
      // this packet is counted by onPacket, as the stream's
      s.activation.bytesUp = w.burstBytes - p.wireLen;
      s.local.audioBytes = w.burstPayload;
      s.local.chunks = w.burstFrames;
      s.activation.endMs = t;
      s.lastAudioMs = t;
    }
  }

  // ---- Rhasspy: Hermes over MQTT ----

  /** A segment of an MQTT connection; `fromPublisher`: sent by the client of the broker. */
  function mqttPacket(w: Watch, fromPublisher: boolean, p: DecodedPacket): void {
    if (!fromPublisher || p.payloadLength === 0) return;
    readHermesPublishes(p.payloadBuf, p.payloadOffset, p.payloadLength, (topic, payloadLength) => {
      if (!topic.startsWith('hermes/')) return;
      const flow = w.flow;
      const publisherMac = w.deviceIsClient ? flow.deviceMac : flow.peerMac ?? -1;
      mark(w.deviceIsClient ? flow.peerMac ?? -1 : flow.deviceMac, 'hermes-broker', p.timeMs);
      if (topic.startsWith('hermes/audioServer/') && topic.endsWith('/audioFrame')) {
        // a satellite's microphone (Hermes protocol: hermes/audioServer/<siteId>/audioFrame, WAV chunks)
        audio(w, 'rhasspy', 'hermes', w.deviceIsClient, p.timeMs, payloadLength);
      } else if (topic.startsWith('hermes/hotword/') && topic.endsWith('/detected')) {
        mark(publisherMac, 'hermes-client', p.timeMs);
        const wakeword = topic.slice('hermes/hotword/'.length, -'/detected'.length).slice(0, 64) || null;
        const s = w.session;
        if (s !== null) {
          s.opened = true;
          s.local.wakeWord ??= wakeword;
          noteWake(s, p.timeMs);
        } else {
          setOpening(w, { name: wakeword, timeMs: p.timeMs, wake: true });
        }
      } else if (topic === 'hermes/asr/stopListening' || topic === 'hermes/asr/textCaptured') {
        if (w.session !== null) end(w, p.timeMs);
      } else {
        mark(publisherMac, 'hermes-client', p.timeMs);
      }
    });
  }

  // ---- cloud speech connections ----

  function noteCloud(flow: Flow, name: string): void {
    // noted whether or not a local assistant was seen yet: a server may open its speech connection
    // before the satellite's stream shows (the suffix check makes a miss one set lookup)
    if (flow.bothLocal || !flow.deviceIsClient || flow.deviceMac < 0 || cloudFlows.has(flow)) return;
    const entry = catalog.lookup(name);
    if (entry === null) return;
    if (cloudFlows.size >= MAX_CLOUD_FLOWS) {
      stats.cloudFlowsDropped++;
      return;
    }
    stats.cloudSpeechConnections++;
    cloudFlows.set(flow, new CloudFlow(flow, entry, name.toLowerCase().slice(0, 253), flow.deviceMac, `${addressOf(flow, false)}:${flow.serverPort}`));
  }

  return {
    stats,
    /** A new flow (after the tagger named it): LAN flows of the local protocols are watched; cloud speech noted. */
    onFlowStart(flow: Flow): void {
      if (!flow.bothLocal) {
        if (flow.serverName !== null) noteCloud(flow, flow.serverName);
        return;
      }
      if (flow.proto === IPPROTO_TCP) {
        // a connection open before the capture began may have its sides the wrong way round (no SYN
        // said who opened it): the well-known port may be the "client" one
        const onServer = wyomingPorts.has(flow.serverPort) || flow.serverPort === ESPHOME_API_PORT || flow.serverPort === MQTT_PORT;
        const port = onServer ? flow.serverPort : flow.clientPort;
        const servedByClient = !onServer;
        if (wyomingPorts.has(port)) {
          const w = watch(flow, 'wyoming');
          if (w !== null && port === WYOMING_SATELLITE_PORT) w.satelliteSide = servedByClient ? 'client' : 'server';
        } else if (port === ESPHOME_API_PORT) {
          const w = watch(flow, 'esphome-api');
          if (w !== null) {
            // the device serves the API; Home Assistant is its client (esphome.io/components/api)
            const deviceMac = servedByClient ? flow.deviceMac : flow.peerMac ?? -1;
            const haMac = servedByClient ? flow.peerMac ?? -1 : flow.deviceMac;
            w.deviceIsClient = servedByClient;
            mark(deviceMac, 'esphome-device', flow.firstMs);
            mark(haMac, 'esphome-client', flow.firstMs);
            if (deviceMac >= 0 && (esphomePeers.has(deviceMac) || esphomePeers.size < MAX_ESPHOME_PEERS)) esphomePeers.set(deviceMac, servedByClient ? flow.s3 : flow.c3);
          }
        } else if (port === MQTT_PORT) {
          const w = watch(flow, 'mqtt');
          if (w !== null) w.deviceIsClient = !servedByClient;
        }
      } else if (flow.proto === IPPROTO_UDP && flow.ipVersion === 4 && esphomePeers.size > 0) {
        // an ESPHome device sending to the Home Assistant that holds its API connection (not announcements)
        if (NOT_AUDIO_PORTS.has(flow.serverPort) || NOT_AUDIO_PORTS.has(flow.clientPort)) return;
        const fromClient = esphomePeers.get(flow.deviceMac) === flow.s3;
        const fromServer = !fromClient && flow.peerMac !== null && esphomePeers.get(flow.peerMac) === flow.c3;
        if (fromClient || fromServer) {
          const w = watch(flow, 'esphome-audio');
          if (w !== null) w.deviceIsClient = fromClient;
        }
      }
    },
    /** A LAN packet (both ends local) of `flow`; up: client to server. */
    onPacket(flow: Flow, up: boolean, p: DecodedPacket): void {
      // most homes: nothing watched, and a LAN copy or backup costs one comparison per packet
      if (watched.size === 0) return;
      const w = watched.get(flow.id);
      if (w === undefined) return;
      // the packet counts for the stream it belongs to: one open before it, or one it opens
      const before = w.session;
      if (before !== null) countBytes(w, up, p.wireLen);
      switch (w.kind) {
        case 'wyoming':
          wyomingPacket(w, up, p);
          break;
        case 'esphome-api':
          // the device (normally the server side) streaming: audio inside the API connection
          if (up === w.deviceIsClient && p.payloadLength > 0) burst(w, up, p);
          break;
        case 'esphome-audio':
          if (up === w.deviceIsClient && p.payloadLength > 0) burst(w, up, p);
          break;
        case 'mqtt':
          // what the MQTT client publishes (deviceIsClient: the broker is the flow's server)
          mqttPacket(w, up === w.deviceIsClient, p);
          break;
      }
      if (before === null && w.session !== null) countBytes(w, up, p.wireLen);
    },
    /** The SNI of a flow's ClientHello (TLS or QUIC). */
    onSni(flow: Flow, sni: string): void {
      noteCloud(flow, sni);
    },
    /** mDNS: a Wyoming service announced on another port is watched there too (its SRV record). */
    onMdns(info: MdnsInfo): void {
      for (const s of info.srv) {
        if (!/\._wyoming\._tcp\.local\.?$/i.test(s.instance)) continue;
        if (s.port > 0 && !wyomingPorts.has(s.port) && wyomingPorts.size < WYOMING_PORTS.length + MAX_LEARNED_PORTS) wyomingPorts.add(s.port);
      }
    },
    onFlowEnd(flow: Flow): void {
      const w = watched.get(flow.id);
      if (w !== undefined) {
        if (w.session !== null) end(w, w.session.lastAudioMs);
        watched.delete(flow.id);
        wake.delete(w);
      }
      const c = cloudFlows.get(flow);
      if (c !== undefined) {
        cloudFlows.delete(flow);
        endedCloud.push(c);
        if (endedCloud.length > MAX_CLOUD_FLOWS) endedCloud.shift();
      }
    },
    /** Once a second: streams gone silent end; streams whose window has passed get their verdict. */
    onTick(nowMs: number): void {
      if (sessions.size === 0) return;
      for (const w of watched.values()) {
        const s = w.session;
        if (s !== null && nowMs - s.lastAudioMs > IDLE_END_MS) end(w, s.lastAudioMs);
      }
      for (const s of [...sessions]) if (s.ended && nowMs >= s.decideAtMs) decide(s, nowMs);
      // ended cloud connections older than any window still open are not needed
      const oldest = Math.min(...[...sessions].map((s) => s.activation.startMs - BEFORE_MS), nowMs - GRACE_MS - BEFORE_MS);
      while (endedCloud.length > 0 && endedCloud[0].flow.lastMs < oldest) endedCloud.shift();
    },
    /** The capture ended: every stream ends and is decided with what was seen. */
    flush(nowMs: number): void {
      if (sessions.size === 0) return;
      for (const w of watched.values()) if (w.session !== null) end(w, w.session.lastAudioMs);
      for (const s of [...sessions]) decide(s, nowMs);
    },
  };
}

function satelliteLabel(protocol: LocalProtocol): string {
  return protocol === 'wyoming' ? 'Wyoming satellite' : protocol === 'esphome' ? 'ESPHome voice device' : 'Rhasspy satellite';
}

function serverLabel(assistant: LocalAssistantKind, protocol: LocalProtocol): string {
  if (assistant === 'rhasspy') return 'Rhasspy (MQTT broker)';
  return protocol === 'wyoming' ? 'Home Assistant (Wyoming)' : 'Home Assistant (ESPHome)';
}

export type LocalStage = ReturnType<typeof buildLocalStage>;
