/**
 * JSON schemas of the API's requests and answers. Fastify validates requests with them (400 naming the
 * field) and serializes answers through them (nothing outside a schema leaves), and @fastify/swagger
 * builds the OpenAPI document from them.
 */
import { MAX_WAKE_DEVICE_LENGTH, MAX_WAKE_SOURCE_LENGTH } from '../collector/detect/wake-events.js';
import { MAC_PATTERN } from '../collector/mac.js';
import { orNull, ReportActivationSchema, ReportCallSchema, ReportDeviceSchema } from '../collector/sink/report-schema.js';
import { Type } from '@sinclair/typebox';

const nullable = (type: string, extra: Record<string, unknown> = {}) => ({ type: [type, 'null'], ...extra });

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' } },
  required: ['statusCode', 'error', 'message'],
} as const;

/** An activation as the API shows it: the report's activation (collector/sink/report-schema.ts) and `open`. */
export const activationSchema = Type.Object({
  ...ReportActivationSchema.properties,
  open: Type.Optional(Type.Boolean({ description: 'Still uploading (started, not finished)' })),
}, { $id: 'Activation', description: ReportActivationSchema.description });

/** A call as the API shows it: the report's call and `open` (its `end` is the last packet so far while open). */
export const callSchema = Type.Object({
  ...ReportCallSchema.properties,
  open: Type.Boolean({ description: 'In progress' }),
}, { $id: 'Call', additionalProperties: false, description: ReportCallSchema.description });

/** A device as the API shows it: the report's device (collector/sink/report-schema.ts) and what the API adds. */
export const deviceSchema = Type.Object({
  ...ReportDeviceSchema.properties,
  firstSeen: orNull(Type.String({ format: 'date-time' })),
  lastSeen: orNull(Type.String({ format: 'date-time' })),
  packetsUp: Type.Integer({ minimum: 0 }),
  packetsDown: Type.Integer({ minimum: 0 }),
  flows: Type.Integer({ minimum: 0 }),
}, { $id: 'Device' });

export const flowSchema = {
  $id: 'Flow',
  type: 'object',
  properties: {
    proto: { type: 'string', enum: ['tcp', 'udp'] },
    client: { type: 'string' },
    clientPort: { type: 'integer' },
    server: { type: 'string' },
    serverPort: { type: 'integer' },
    packetsUp: { type: 'integer' },
    packetsDown: { type: 'integer' },
    bytesUp: { type: 'integer' },
    bytesDown: { type: 'integer' },
    first: { type: 'string', format: 'date-time' },
    last: { type: 'string', format: 'date-time' },
    device: nullable('string'),
    sni: nullable('string'),
    serverName: nullable('string'),
    service: nullable('string'),
    vendor: nullable('string'),
    open: { type: 'boolean' },
  },
  required: ['proto', 'client', 'clientPort', 'server', 'serverPort', 'bytesUp', 'bytesDown', 'open'],
} as const;

// every MAC in a path or a filter is read by the one rule (collector/mac.ts)
const MAC = MAC_PATTERN;

/**
 * A wake event as POSTed: the wake-event file's record format. It documents the body (OpenAPI); the
 * records themselves are read by collector/detect/wake-events.ts's parseWakeRecord, as files and MQTT are.
 */
export const wakeEventSchema = {
  $id: 'WakeEvent',
  type: 'object',
  description: 'Other keys are ignored, except a misspelling of a field the record lacks ("devic"): that is refused.',
  properties: {
    time: { type: ['string', 'number'], description: 'ISO 8601 with a zone, or epoch seconds or milliseconds' },
    device: nullable('string', { maxLength: MAX_WAKE_DEVICE_LENGTH, description: 'MAC or device name; absent: no device in particular' }),
    source: { type: 'string', maxLength: MAX_WAKE_SOURCE_LENGTH, description: 'Where the event came from (default api)' },
    intended: { type: ['boolean', 'string'], description: 'false (or "false", "no", "0"): the audio was not meant for the assistant' },
  },
  required: ['time'],
} as const;

export const macParams = {
  type: 'object',
  properties: { mac: { type: 'string', pattern: MAC } },
  required: ['mac'],
} as const;

export const idParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{12}-\\d+$', maxLength: 40 } },
  required: ['id'],
} as const;

export const activationsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: 'string', format: 'date-time', description: 'Activations that started at or after' },
    until: { type: 'string', format: 'date-time', description: 'Activations that started before' },
    device: { type: 'string', pattern: MAC },
    verdict: { type: 'string', enum: ['confirmed', 'suspected', 'unverified'] },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
} as const;

export const callsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: 'string', format: 'date-time', description: 'Calls that started at or after' },
    until: { type: 'string', format: 'date-time', description: 'Calls that started before' },
    device: { type: 'string', pattern: MAC },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
} as const;

export const flowsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    device: { type: 'string', pattern: MAC },
    limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
  },
} as const;

export const labelBody = {
  type: 'object',
  additionalProperties: false,
  properties: { label: { type: 'string', enum: ['intended', 'not-intended'] } },
  required: ['label'],
} as const;

/** The owner's presence (PUT /api/v1/presence). */
export const presenceBody = {
  type: 'object',
  additionalProperties: false,
  properties: { away: { type: 'boolean', description: 'true: nobody is home (uploads without a wake word get the reason owner-away)' } },
  required: ['away'],
} as const;

/** The owner's presence as the API shows it. */
export const presenceSchema = {
  type: 'object',
  properties: {
    away: { type: ['boolean', 'null'], description: 'The live state (MQTT or this API); null: never set' },
    since: { type: ['string', 'null'], description: 'When the live state was set (ISO 8601)' },
    source: { type: ['string', 'null'], description: 'Who set it: api, mqtt' },
    schedule: { type: 'array', items: { type: 'string' }, description: 'detect.away, the usual away times' },
    awayNow: { type: 'boolean', description: 'The schedule or the live state says the owner is away now' },
  },
} as const;

/** One wake event or a batch (a lone record is taken as a batch of one). */
export const wakeEventsBody = {
  anyOf: [{ $ref: 'WakeEvent#' }, { type: 'array', items: { $ref: 'WakeEvent#' }, minItems: 1, maxItems: 10000 }],
} as const;
