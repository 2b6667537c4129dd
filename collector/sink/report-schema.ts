/**
 * The shape of the `earshot.report/1` document, written once, in TypeBox. The TypeScript types of
 * sink/report.ts are derived from it (Static<>), the API's answers reuse its parts (api/schemas.ts),
 * and docs/report.schema.json and docs/openapi.json are generated from it (npm run schemas; a test fails
 * when the committed files differ). Change a field here and every one of them follows.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { FINDING_KINDS, MAX_EVIDENCE, SEVERITIES } from '../findings/store.js';
import { LocalVoiceSchema } from '../local/record.js';
import { SITE_PATTERN } from '../site.js';

export const REPORT_SCHEMA = 'earshot.report/1';

/**
 * Marks a field that later versions of schema 1 added: earshot always writes it (so its TypeScript
 * type has it), but a reader of an older report may not find it, so the published schema does not
 * require it. A symbol: it never reaches the JSON.
 */
export const ADDED_LATER = Symbol.for('earshot.report.addedLater');

function addedLater<T extends TSchema>(schema: T): T {
  return Object.assign(schema, { [ADDED_LATER]: true });
}

/** A string enum as JSON Schema's `enum` (fast to serialize, plain for other tools), typed as its union. */
function oneOf<const V extends readonly string[]>(values: V, options: { description?: string } = {}) {
  return Type.Unsafe<V[number]>({ type: 'string', enum: [...values], ...options });
}

/** `schema` or null, as `type: [T, "null"]`: the form fastify serializes without trying each branch. */
export function orNull<T extends TSchema>(schema: T, options: { description?: string } = {}) {
  const { type, ...rest } = schema as unknown as { type: string };
  return Type.Unsafe<Static<T> | null>({ ...rest, type: [type, 'null'], ...options });
}

const TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$';
/** ISO 8601 UTC with milliseconds, as isoTime() writes it. */
const time = (description?: string) => Type.String({ format: 'date-time', pattern: TIME_PATTERN, ...(description ? { description } : {}) });
/** A count: a non-negative integer. */
const count = (description?: string) => Type.Integer({ minimum: 0, ...(description ? { description } : {}) });
/** A MAC as the report writes it (collector/mac.ts formatMac). */
const mac = (description?: string) => Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$', ...(description ? { description } : {}) });
const port = () => Type.Integer({ minimum: 0, maximum: 65535 });

export const VERDICTS = ['confirmed', 'suspected', 'unverified'] as const;

export const ReportCaptureSchema = Type.Object({
  packets: count('Packets read.'),
  bytes: count('Sum of frame lengths on the wire.'),
  first: orNull(time(), { description: 'Time of the first packet.' }),
  last: orNull(time(), { description: 'Time of the latest packet.' }),
  decodeErrors: count('Damaged or truncated packets, skipped.'),
  truncated: Type.Boolean({ description: 'The capture ended inside a record, or a record header was corrupt; everything before it was read.' }),
  interrupted: Type.Optional(Type.Literal(true, { description: 'A replay stopped (SIGINT, SIGTERM, SIGHUP) before the end of its input: the report covers what was read until then. Absent otherwise.' })),
});

export const ReportDeviceSchema = Type.Object({
  mac: mac(),
  ips: Type.Array(Type.String(), { description: 'Local addresses seen with this MAC.' }),
  vendor: orNull(Type.String(), { description: 'amazon, apple, google, sonos, or another vendor name; null when unknown.' }),
  assistant: Type.Boolean({ description: 'True when the device is a voice assistant.' }),
  name: orNull(Type.String()),
  model: addedLater(orNull(Type.String(), { description: 'Model when known (mDNS/SSDP announcements, config).' })),
  evidence: addedLater(Type.Array(Type.String(), { description: 'Why earshot thinks what it thinks about the device.' })),
  bytesUp: count('Bytes the device sent (in its flows, and in LAN flows it answered from its MAC).'),
  bytesDown: count('Bytes the device received (as bytesUp).'),
});

export const ReportFlowSchema = Type.Object({
  proto: oneOf(['tcp', 'udp']),
  client: Type.String({ description: 'The side that sent the SYN, or for a flow open before capture began, the local side.' }),
  clientPort: port(),
  server: Type.String(),
  serverPort: port(),
  packetsUp: count(),
  packetsDown: count(),
  bytesUp: count(),
  bytesDown: count(),
  first: time(),
  last: time(),
  device: orNull(mac(), { description: 'MAC of the local endpoint; null when neither endpoint is local or its MAC was not seen.' }),
  peer: addedLater(orNull(mac(), { description: "A LAN flow's other local device, when it answered from its own MAC: the flow counts for it too (its device totals, privacy tables, InfluxDB traffic). null otherwise." })),
  sni: orNull(Type.String(), { description: "Server name from the client's TLS ClientHello." }),
  serverName: orNull(Type.String()),
  nameSource: Type.Unsafe<'sni' | 'dns' | 'ip-range' | null>({ type: ['string', 'null'], enum: ['sni', 'dns', 'ip-range', null] }),
  service: orNull(Type.String()),
  vendor: addedLater(orNull(Type.String())),
});

export const ReportDnsSchema = Type.Object({
  time: time(),
  name: Type.String(),
  type: oneOf(['A', 'AAAA', 'CNAME']),
  data: Type.String({ description: 'The address, or the CNAME target.' }),
  ttl: count(),
});

/** An activation: an audio upload by an assistant. The API's Activation is this plus `open`. */
export const ReportActivationSchema = Type.Object({
  id: Type.String({ description: 'Stable id: device MAC without colons and start time in ms.' }),
  device: mac('MAC of the assistant.'),
  start: time(),
  end: time(),
  bytesUp: count(),
  bytesDown: count(),
  server: orNull(Type.String()),
  serverName: orNull(Type.String()),
  score: Type.Number({ minimum: 0, maximum: 1 }),
  verdict: oneOf(VERDICTS),
  reasons: Type.Array(Type.String()),
  wakeEvent: orNull(time()),
  local: Type.Optional(LocalVoiceSchema),
}, { description: 'An audio upload by an assistant (docs/report.md, activations[]); for a local assistant\'s satellite streaming to its local server, `local` says where the voice went (docs/privacy.md).' });

/** A call: two-way media of an assistant; never an activation. The API's Call is this plus `open`. */
export const ReportCallSchema = Type.Object({
  id: Type.String({ description: 'Stable id: call-, the device MAC without colons and the start in ms.' }),
  kind: Type.Literal('call'),
  device: mac('MAC of the assistant.'),
  start: time('First packet of the call: its STUN/TURN exchange (ICE), or its first media packet.'),
  end: time('Last packet of its last second with packets both ways.'),
  durationS: Type.Number({ minimum: 0, description: 'end - start in seconds (ms precision).' }),
  packetsUp: count(),
  packetsDown: count(),
  bytesUp: count("Frame bytes the device sent on the call's UDP flows."),
  bytesDown: count(),
  stunPackets: count('STUN messages among the packets (ICE checks, TURN, consent).'),
  mediaSeconds: count('Seconds with two-way media.'),
  peers: Type.Array(Type.String(), { maxItems: 16, description: 'Remote addresses, the first 16.' }),
  peersTruncated: Type.Boolean({ description: 'More peers than listed.' }),
}, { additionalProperties: false, description: 'Two-way media of an assistant: a call, Drop In, video (docs/report.md, calls[]). Never an activation.' });

/** A network hygiene finding (collector/findings/, docs/privacy.md). The API's Finding is the same record. */
export const ReportFindingSchema = Type.Object({
  id: Type.String({ description: 'Stable: kind, the device MAC without colons (or none) and a hash of the subject.' }),
  kind: oneOf(FINDING_KINDS, { description: 'What was found (docs/privacy.md, "Network hygiene findings").' }),
  severity: oneOf(SEVERITIES),
  device: orNull(mac(), { description: 'MAC of the local device it is about; null when none is known.' }),
  deviceName: orNull(Type.String({ maxLength: 64 }), { description: 'Its name as the inventory knows it now.' }),
  assistant: Type.Boolean({ description: 'The device is a voice assistant (as the inventory says now).' }),
  subject: Type.String({ maxLength: 200, description: "What in particular: a resolver's address, a DoH name, a protocol, a port (tcp/8080), a segment; '' when the kind says it all." }),
  firstSeen: time(),
  lastSeen: time(),
  count: count('Times seen: flows, requests or packets (each kind says which in docs/privacy.md).'),
  title: Type.String({ maxLength: 200 }),
  evidence: Type.Array(Type.String({ maxLength: 200 }), { maxItems: MAX_EVIDENCE, description: 'The first distinct lines of evidence (from packets: escaped and cut).' }),
  evidenceDropped: count('Distinct evidence lines left out.'),
  advice: Type.String({ description: 'What to do about it.' }),
}, { additionalProperties: false, description: 'A network hygiene finding: what, about which device, the evidence, and what to do.' });

export const ReportSchema = Type.Object({
  schema: Type.Literal(REPORT_SCHEMA),
  site: addedLater(Type.String({ pattern: SITE_PATTERN, description: 'The site (home) the collector watched: config `site`, default the host name (docs/fleet.md). Absent in reports of earlier versions.' })),
  capture: ReportCaptureSchema,
  devices: Type.Array(ReportDeviceSchema, { description: 'Local devices (by MAC) that own at least one flow, the busiest first.' }),
  flows: Type.Array(ReportFlowSchema, { description: 'TCP and UDP flows in order of their first packet. A flow idle past its timeout ends; later packets of the same 5-tuple start a new record.' }),
  dns: Type.Array(ReportDnsSchema, { description: 'A, AAAA and CNAME records from the answer sections of DNS and mDNS responses (for mDNS also the additional section), in capture order.' }),
  activations: Type.Array(ReportActivationSchema, {
    description: 'Audio uploads to the cloud (activations), in order of start. verdict: confirmed (a wake event matched), suspected (no wake event although a source is configured, quiet hours, or a record saying it was not intended), unverified (no wake-event source).',
  }),
  calls: addedLater(Type.Array(ReportCallSchema, {
    description: 'Calls of assistants (Alexa calling, Drop In, video calls, Home Monitoring): two-way media over UDP, in order of start. A call is never an activation. Absent in reports of earlier versions.',
  })),
  findings: addedLater(Type.Array(ReportFindingSchema, {
    description: 'Network hygiene findings (port mappings, inbound connections, DNS around the home resolver, plaintext, assistants beside computers), the most severe first. Absent in reports of earlier versions.',
  })),
  stats: addedLater(Type.Unsafe<Record<string, number>>({ type: 'object', additionalProperties: { type: 'number' }, description: 'Self-metrics of the run (drops, evictions, parse failures).' })),
}, {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://earshot.invalid/schemas/earshot.report-1.json',
  title: `earshot report (${REPORT_SCHEMA})`,
  description: "What `earshot replay FILE --format json` prints. Times are ISO 8601 UTC with milliseconds; byte counts are frame lengths on the wire; 'up' is client to server. Fields may be added in later versions of schema 1; none are removed or change meaning.",
});

export type ReportCapture = Static<typeof ReportCaptureSchema>;
export type ReportDevice = Static<typeof ReportDeviceSchema>;
export type ReportFlow = Static<typeof ReportFlowSchema>;
export type ReportDns = Static<typeof ReportDnsSchema>;
export type ReportActivation = Static<typeof ReportActivationSchema>;
export type ReportCall = Static<typeof ReportCallSchema>;
export type ReportFinding = Static<typeof ReportFindingSchema>;

/**
 * The published JSON Schema (docs/report.schema.json): the schema as plain JSON, with the fields marked
 * ADDED_LATER left out of `required` so that reports of earlier versions still validate.
 */
export function publishedReportSchema(): unknown {
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (node === null || typeof node !== 'object') return node;
    const object = node as Record<string | symbol, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(object)) out[key] = strip(value);
    const properties = object.properties as Record<string, Record<symbol, unknown>> | undefined;
    if (Array.isArray(object.required) && properties) {
      out.required = (object.required as string[]).filter((key) => !properties[key]?.[ADDED_LATER]);
    }
    return out;
  };
  return strip(ReportSchema);
}
