/**
 * A local activation's own facts: the satellite that streamed, the local server that took the audio, and
 * where the voice went next (home, or a named cloud speech service). It rides on the detector's
 * Activation (Activation.local), so local activations reach the report, the API, InfluxDB and the
 * webhook/MQTT events through the same path as cloud ones; this is the part only they have.
 */
import { Type, type Static } from '@sinclair/typebox';
import { formatMac } from '../decode/packet.js';

export type LocalAssistantKind = 'home-assistant' | 'rhasspy' | 'ovos';
export type LocalProtocol = 'wyoming' | 'esphome' | 'hermes';
/** home: no cloud speech service contacted around the stream; cloud: one was; pending: still watching. */
export type VoiceDestination = 'home' | 'cloud' | 'pending';

/** The first reason of every local activation starts so (readers of a report without `local` tell them by it). */
export const LOCAL_REASON_PREFIX = 'local assistant: ';
/** Most cloud contacts kept per activation (each names a different service). */
export const MAX_CLOUD_CONTACTS = 4;

/** A cloud speech service a local device contacted around a satellite's stream. */
export class CloudContact {
  constructor(
    readonly name: string,
    readonly service: string,
    readonly organisation: string,
    /** The local device that contacted it (the server, or the satellite itself), and the remote address. */
    readonly deviceMac: number,
    readonly address: string,
    readonly firstMs: number,
    /** Frame bytes it sent to the service inside the window (a connection's growth, or all of a new one). */
    public bytesUp: number,
  ) {}
}

/** The local part of an activation. */
export class LocalVoice {
  /** Payload bytes of audio the protocol carried, and in how many chunks (datagrams, events). */
  audioBytes = 0;
  chunks = 0;
  wakeWord: string | null = null;
  voiceDestination: VoiceDestination = 'pending';
  readonly cloud: CloudContact[] = [];
  /** The end of the window in which a cloud contact counts (the stream's end plus the grace time). */
  checkedUntilMs = 0;

  constructor(
    readonly assistant: LocalAssistantKind,
    readonly protocol: LocalProtocol,
    readonly satelliteMac: number,
    readonly satelliteAddress: string,
    readonly serverMac: number,
    readonly serverAddress: string,
  ) {}
}

const time = () => Type.String({ format: 'date-time' });
const mac = () => Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' });

/** The report form of LocalVoice (activations[].local). */
export const LocalVoiceSchema = Type.Object({
  assistant: Type.Unsafe<LocalAssistantKind>({ type: 'string', enum: ['home-assistant', 'rhasspy', 'ovos'], description: 'The local assistant system.' }),
  protocol: Type.Unsafe<LocalProtocol>({ type: 'string', enum: ['wyoming', 'esphome', 'hermes'], description: 'How the satellite streamed: Wyoming events, an ESPHome device\'s audio to Home Assistant, Rhasspy\'s Hermes MQTT audio frames.' }),
  satellite: mac(),
  satelliteAddress: Type.String(),
  server: mac(),
  serverAddress: Type.String({ description: 'Address and port that received the audio.' }),
  audioBytes: Type.Integer({ minimum: 0, description: 'Audio payload bytes the protocol carried (without headers).' }),
  chunks: Type.Integer({ minimum: 0 }),
  wakeWord: Type.Optional(Type.String({ description: 'The wake word, when the LAN named it (a Wyoming detection event, a Hermes hotword topic); absent otherwise.' })),
  voiceDestination: Type.Unsafe<VoiceDestination>({ type: 'string', enum: ['home', 'cloud', 'pending'], description: 'home: no device of the assistant contacted a cloud speech service from 1 s before the stream to its end plus the grace time; cloud: one did (named in cloud); pending: still watching (started events).' }),
  cloud: Type.Array(Type.Object({
    name: Type.String(),
    service: Type.String(),
    organisation: Type.String(),
    device: mac(),
    address: Type.String(),
    first: time(),
    bytesUp: Type.Integer({ minimum: 0 }),
  }), { maxItems: MAX_CLOUD_CONTACTS }),
  checkedUntil: time(),
}, { description: 'A local assistant\'s activation: the satellite, the local server, and where the voice went (docs/privacy.md, Local assistants).' });

export type ReportLocalVoice = Static<typeof LocalVoiceSchema>;

const iso = (ms: number) => new Date(ms).toISOString();

/** The report form of a local activation's facts. */
export function localToReport(l: LocalVoice): ReportLocalVoice {
  return {
    assistant: l.assistant, protocol: l.protocol,
    satellite: formatMac(l.satelliteMac), satelliteAddress: l.satelliteAddress,
    server: formatMac(l.serverMac), serverAddress: l.serverAddress,
    audioBytes: l.audioBytes, chunks: l.chunks, ...(l.wakeWord !== null ? { wakeWord: l.wakeWord } : {}), voiceDestination: l.voiceDestination,
    cloud: l.cloud.map((c) => ({ name: c.name, service: c.service, organisation: c.organisation, device: formatMac(c.deviceMac), address: c.address, first: iso(c.firstMs), bytesUp: c.bytesUp })),
    checkedUntil: iso(l.checkedUntilMs),
  };
}

/** Where the voice of a report-form local activation went, in words (from `local`, else from its reasons). */
export function voiceWentText(a: { reasons: readonly string[]; local?: ReportLocalVoice }): string {
  if (a.local !== undefined) {
    if (a.local.voiceDestination === 'home') return 'stayed at home';
    if (a.local.voiceDestination === 'pending') return 'not decided yet';
    return `went to ${a.local.cloud.map((c) => c.name).join(', ')}`;
  }
  const went = a.reasons.filter((r) => r.startsWith('voice went to ')).map((r) => r.slice('voice went to '.length).split(' ')[0]);
  if (went.length > 0) return `went to ${went.join(', ')}`;
  return a.reasons.some((r) => r.startsWith('voice stayed at home')) ? 'stayed at home' : 'not decided yet';
}

/** True for a report-form activation of a local assistant. */
export function isLocalActivation(a: { reasons: readonly string[]; local?: ReportLocalVoice }): boolean {
  return a.local !== undefined || (a.reasons.length > 0 && a.reasons[0].startsWith(LOCAL_REASON_PREFIX));
}

/** A report-form activation with its local part added (the activation's own `local`, when it has one). */
export function withLocal<T extends object>(report: T, local: LocalVoice | null): T & { local?: ReportLocalVoice } {
  return local === null ? report : { ...report, local: localToReport(local) };
}
