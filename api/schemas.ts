/**
 * JSON schemas of the API's requests and answers, in TypeBox. Fastify validates requests with them (400
 * naming the field) and serializes answers through them (nothing outside a schema leaves), and
 * @fastify/swagger builds the OpenAPI document from them (committed as docs/openapi.json, npm run
 * schemas). The answers reuse the report's parts (collector/sink/report-schema.ts): an activation, a
 * call, a device or a flow has one description.
 */
import { Type } from '@sinclair/typebox';
import { MAX_WAKE_DEVICE_LENGTH, MAX_WAKE_SOURCE_LENGTH } from '../collector/detect/wake-events.js';
import { MAC_PATTERN } from '../collector/mac.js';
import { FINDING_KINDS, SEVERITIES } from '../collector/findings/store.js';
import { orNull, ReportActivationSchema, ReportCallSchema, ReportDeviceSchema, ReportFindingSchema, ReportFlowSchema, VERDICTS } from '../collector/sink/report-schema.js';

export const errorSchema = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
}, { $id: 'Error' });

/** An activation as the API shows it: the report's activation and `open`. */
export const activationSchema = Type.Object({
  ...ReportActivationSchema.properties,
  open: Type.Optional(Type.Boolean({ description: 'Still uploading (started, not finished)' })),
}, { $id: 'Activation', description: ReportActivationSchema.description });

/** A call as the API shows it: the report's call and `open` (its `end` is the last packet so far while open). */
export const callSchema = Type.Object({
  ...ReportCallSchema.properties,
  open: Type.Boolean({ description: 'In progress' }),
}, { $id: 'Call', additionalProperties: false, description: ReportCallSchema.description });

/** A device as the API shows it: the report's device, when it was seen, and its totals (open flows included). */
export const deviceSchema = Type.Object({
  ...ReportDeviceSchema.properties,
  firstSeen: orNull(Type.String({ format: 'date-time' })),
  lastSeen: orNull(Type.String({ format: 'date-time', description: 'Its latest packet: of its flows (open ones too), its DNS answers and announcements' })),
  packetsUp: Type.Integer({ minimum: 0 }),
  packetsDown: Type.Integer({ minimum: 0 }),
  flows: Type.Integer({ minimum: 0 }),
}, { $id: 'Device' });

/** A flow as the API shows it: the report's flow without nameSource, and `open`. */
export const flowSchema = Type.Object({
  ...Type.Omit(ReportFlowSchema, ['nameSource']).properties,
  open: Type.Boolean(),
}, { $id: 'Flow' });

/** A network hygiene finding: the report's record (docs/privacy.md). */
export const findingSchema = Type.Object({ ...ReportFindingSchema.properties }, { $id: 'Finding', additionalProperties: false, description: ReportFindingSchema.description });

// every MAC in a path or a filter is read by the one rule (collector/mac.ts)
const mac = () => Type.String({ pattern: MAC_PATTERN });
const since = (what: string) => Type.Optional(Type.String({ format: 'date-time', description: `${what} that started at or after` }));
const until = (what: string) => Type.Optional(Type.String({ format: 'date-time', description: `${what} that started before` }));
const page = (maximum: number, byDefault: number) => Type.Optional(Type.Integer({ minimum: 1, maximum, default: byDefault }));

/**
 * A wake event as POSTed: the wake-event file's record format. It documents the body (OpenAPI); the
 * records themselves are read by collector/detect/wake-events.ts's parseWakeRecord, as files and MQTT are.
 */
export const wakeEventSchema = Type.Object({
  time: Type.Union([Type.String(), Type.Number()], { description: 'ISO 8601 with a zone, or epoch seconds or milliseconds' }),
  device: Type.Optional(orNull(Type.String({ maxLength: MAX_WAKE_DEVICE_LENGTH }), { description: 'MAC or device name; absent: no device in particular' })),
  source: Type.Optional(Type.String({ maxLength: MAX_WAKE_SOURCE_LENGTH, description: 'Where the event came from (default api)' })),
  intended: Type.Optional(Type.Union([Type.Boolean(), Type.String()], { description: 'false (or "false", "no", "0"): the audio was not meant for the assistant' })),
}, { $id: 'WakeEvent', description: 'Other keys are ignored, except a misspelling of a field the record lacks ("devic"): that is refused.' });

export const macParams = Type.Object({ mac: mac() });

export const idParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{12}-\\d+$', maxLength: 40 }) });

export const activationsQuery = Type.Object({
  since: since('Activations'),
  until: until('Activations'),
  device: Type.Optional(mac()),
  verdict: Type.Optional(Type.Unsafe<(typeof VERDICTS)[number]>({ type: 'string', enum: [...VERDICTS] })),
  limit: page(1000, 100),
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
}, { additionalProperties: false });

export const callsQuery = Type.Object({
  since: since('Calls'),
  until: until('Calls'),
  device: Type.Optional(mac()),
  limit: page(1000, 100),
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
}, { additionalProperties: false });

export const flowsQuery = Type.Object({
  device: Type.Optional(mac()),
  limit: page(10000, 1000),
}, { additionalProperties: false });

export const findingsQuery = Type.Object({
  device: Type.Optional(mac()),
  kind: Type.Optional(Type.Unsafe<(typeof FINDING_KINDS)[number]>({ type: 'string', enum: [...FINDING_KINDS] })),
  severity: Type.Optional(Type.Unsafe<(typeof SEVERITIES)[number]>({ type: 'string', enum: [...SEVERITIES], description: 'Findings of this severity or a higher one' })),
  limit: page(1000, 100),
}, { additionalProperties: false });

export const labelBody = Type.Object({
  label: Type.Unsafe<'intended' | 'not-intended'>({ type: 'string', enum: ['intended', 'not-intended'] }),
}, { additionalProperties: false });

/** The owner's presence (PUT /api/v1/presence). */
export const presenceBody = Type.Object({
  away: Type.Boolean({ description: 'true: nobody is home (uploads without a wake word get the reason owner-away)' }),
}, { additionalProperties: false });

/** The owner's presence as the API shows it. */
export const presenceSchema = Type.Object({
  away: Type.Optional(orNull(Type.Boolean(), { description: 'The live state (MQTT or this API); null: never set' })),
  since: Type.Optional(orNull(Type.String(), { description: 'When the live state was set (ISO 8601)' })),
  source: Type.Optional(orNull(Type.String(), { description: 'Who set it: api, mqtt' })),
  schedule: Type.Optional(Type.Array(Type.String(), { description: 'detect.away, the usual away times' })),
  awayNow: Type.Optional(Type.Boolean({ description: 'The schedule or the live state says the owner is away now' })),
});

/** One wake event or a batch (a lone record is taken as a batch of one). */
export const wakeEventsBody = Type.Union([
  Type.Ref(wakeEventSchema),
  Type.Array(Type.Ref(wakeEventSchema), { minItems: 1, maxItems: 10000 }),
]);

const count = () => Type.Integer({ minimum: 0 });
const bytesBy = (what: string) => Type.Record(Type.String(), count(), { description: `${what} by service class` });

/** One endpoint of a device: who it is, what for, how much, how often. */
export const privacyEndpointSchema = Type.Object({
  name: Type.String({ description: 'Server name (SNI or DNS), or the address when the flows carried no name' }),
  named: Type.Boolean({ description: 'false: `name` is an address' }),
  service: Type.String({ description: 'Service class (voice, telemetry, media, update, ...; unknown when not known)' }),
  org: orNull(Type.String(), { description: 'The organisation behind the endpoint (docs/privacy.md says from where)' }),
  orgKey: orNull(Type.String()),
  category: orNull(Type.String({ description: 'What the organisation is: assistant-vendor, cloud, cdn, analytics, advertising, music, skill-backend, local, ...' })),
  orgSource: orNull(Type.String({ description: 'Where the organisation came from: catalogue, domains, ip-ranges, asn, lan' })),
  party: orNull(Type.Unsafe<'first' | 'third'>({ type: 'string', enum: ['first', 'third'] }), { description: "first: the assistant's own vendor; third: anyone else; null: unknown, or the home network" }),
  flows: count(),
  bytesUp: count(),
  bytesDown: count(),
  days: Type.Integer({ minimum: 0, description: 'Local days with at least one connection' }),
  connectionsPerDay: Type.Number({ minimum: 0 }),
  firstSeen: Type.String({ format: 'date-time' }),
  lastSeen: Type.String({ format: 'date-time' }),
}, { $id: 'PrivacyEndpoint', additionalProperties: false });

/** Who one device talks to, and what it uploaded per day. */
export const privacyDeviceSchema = Type.Object({
  mac: Type.String(),
  name: orNull(Type.String()),
  vendor: orNull(Type.String()),
  assistant: Type.Boolean(),
  firstSeen: Type.String({ format: 'date-time', description: 'When earshot first saw the device (kept in the data directory)' }),
  learningUntil: Type.String({ format: 'date-time', description: 'Until then its new organisations and services are learnt without a notice' }),
  learning: Type.Boolean(),
  organisations: count(),
  services: count(),
  namedShare: Type.Number({ minimum: 0, maximum: 1, description: 'Share of its bytes whose endpoint has a known organisation' }),
  endpoints: Type.Array(Type.Ref('PrivacyEndpoint'), { description: 'Busiest first' }),
  days: Type.Array(Type.Object({
    day: Type.String({ description: 'YYYY-MM-DD in detect.timeZone' }),
    voiceUp: Type.Integer({ minimum: 0, description: 'Bytes it sent to voice endpoints' }),
    otherUp: Type.Integer({ minimum: 0, description: 'Bytes it sent beyond the home network that were not voice (telemetry, metrics, media requests, ...)' }),
    up: bytesBy('Bytes it sent beyond the home network'),
    down: bytesBy('Bytes it received from beyond the home network'),
    localUp: Type.Integer({ minimum: 0, description: 'Bytes it sent to the home network (endpoints of the organisation "Local network": another speaker, the router, multicast): no upload, in none of the fields above' }),
    localDown: Type.Integer({ minimum: 0, description: 'Bytes it received from the home network' }),
  }, { additionalProperties: false }), { description: 'Oldest first, at most 31' }),
}, { $id: 'PrivacyDevice', additionalProperties: false });

/** A new-endpoint notice. */
export const noticeSchema = Type.Object({
  kind: Type.Literal('new-endpoint'),
  what: Type.Union([Type.Literal('new-organisation'), Type.Literal('new-service')]),
  subject: Type.String({ description: 'The organisation (or server name when none is known), or the service class' }),
  organisation: orNull(Type.String()),
  service: Type.String(),
  endpoint: Type.String({ description: 'Server name or address of the first flow that showed it' }),
  device: Type.String(),
  deviceName: orNull(Type.String()),
  seen: Type.String({ format: 'date-time' }),
}, { $id: 'Notice', additionalProperties: false });

export const privacyQuery = Type.Object({
  device: Type.Optional(mac()),
  all: Type.Optional(Type.Boolean({ default: false, description: 'Every device, not only assistants' })),
  limit: page(1000, 100),
}, { additionalProperties: false });
