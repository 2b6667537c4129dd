/**
 * The API (fastify). buildApp() wires routes to a running earshot and never listens (tests use
 * inject() or listen themselves; api/server.ts listens). Every route has a JSON schema: requests are
 * validated (400 naming the field), answers serialized through their schema. api/guards.ts checks the
 * Host, the token (every POST, and every route when the server listens beyond loopback) and the rate
 * limits before any route, and sets the browser protections on every answer. No route returns packet
 * payloads: earshot never has them.
 */
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../collector/config.js';
import type { Logger } from '../collector/log.js';
import { parseWakeRecord, type WakeEvent } from '../collector/detect/wake-events.js';
import { SEVERITIES } from '../collector/findings/store.js';
import { canonicalMac, MAC_PATTERN } from '../collector/mac.js';
import { preview } from '../collector/text.js';
import type { Runtime } from '../collector/runtime.js';
import { activationQuery, buildViewSource, type ViewExtras, type ViewSource } from '../collector/view.js';
import { lazySerializers, lazyValidators } from './compilers.js';
import { DOCS_CSP, frameworkErrorReply, registerGuards, type GuardOptions } from './guards.js';
import { health, renderMetrics, type HealthSource } from './metrics.js';
import { localProvider, RunView } from './view.js';
import { registerPage } from './page.js';
import {
  activationSchema, activationsQuery, callSchema, callsQuery, deviceSchema, errorSchema, findingSchema, findingsQuery, flowSchema, flowsQuery, idParams, labelBody,
  macParams, noticeSchema, presenceBody, presenceSchema, privacyDeviceSchema, privacyEndpointSchema, privacyQuery, wakeEventSchema, wakeEventsBody,
} from './schemas.js';

export { tokenMatches } from './guards.js';

export interface AppOptions extends GuardOptions {
  bodyLimitBytes: number;
  /** Most time a client has to send a whole request (config api.requestTimeoutS); default REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
  version: string;
  /** Where an internal error (a 500: a bug) is logged with its route; the client gets "internal error" only. */
  log?: Pick<Logger, 'error'>;
  /**
   * Compile every route's schemas when the app is built, as fastify does by default, so that ready()
   * fails on one that does not compile (the tests); otherwise each at its route's first use (api/compilers.ts).
   */
  eagerSchemas?: boolean;
}

/**
 * Most time a client has to send a whole request, body included, by default (api.requestTimeoutS): a
 * client that trickled a declared 1-GB body one byte every 10 s kept its connection for as long as it
 * liked (no token needed: the 401 comes at the end). Node looks for such clients every half of it (its
 * own default, every 30 s, let one stay up to twice the timeout), so one is gone within 1.5 times it.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/** What the API reads: the run's view, and what this process says about itself. */
export interface AppContext extends HealthSource {
  config: Readonly<Config>;
}

/**
 * A context over a run's view on this thread. `maxAgeMs` 0 reads it fresh at every request (tests, the
 * demo); more keeps each part that long, as the API over the pipeline's thread does.
 */
export function contextOver(source: ViewSource, fields: Omit<AppContext, 'view'>, maxAgeMs = 0): AppContext {
  return { ...fields, view: new RunView(localProvider(source), maxAgeMs) };
}

/** A context over a runtime on this thread (tests, the demo). */
export function localContext(fields: ViewExtras & Omit<AppContext, 'view'> & { runtime: Runtime }): AppContext {
  const { runtime, captureRunning, influxReachable, alerts, ...rest } = fields;
  return contextOver(buildViewSource(runtime, { captureRunning, influxReachable, alerts }), rest);
}

/** Most wake events one POST may carry. */
const MAX_WAKE_EVENTS_PER_POST = 10_000;

/**
 * The body of POST /wake-events (one record or an array) as events, or the 400 naming the first bad
 * record as "body/1/time: missing" (the API's way of saying where; the words after it are the reader's).
 */
function readWakeEventsBody(body: unknown): { value: WakeEvent[] } | { error: Error } {
  const single = body !== null && typeof body === 'object' && !Array.isArray(body);
  const records: unknown[] | null = single ? [body] : Array.isArray(body) ? body : null;
  if (records === null) return { error: new Error('body must be a wake event or an array of them') };
  if (records.length === 0) return { error: new Error('body must NOT have fewer than 1 items') };
  if (records.length > MAX_WAKE_EVENTS_PER_POST) return { error: new Error(`body must NOT have more than ${MAX_WAKE_EVENTS_PER_POST} items`) };
  const events: WakeEvent[] = [];
  for (const [i, record] of records.entries()) {
    const result = parseWakeRecord(record, 'api', `body/${i}`);
    if (!result.ok) return { error: new Error(`${result.error.location}/${result.error.problem}`) };
    events.push(result.event);
  }
  return { value: events };
}

/** Builds the app. Await app.ready() (or listen) before use. */
export async function buildApp(options: AppOptions, context: AppContext): Promise<FastifyInstance> {
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const app = Fastify({
    logger: false,
    requestTimeout: requestTimeoutMs,
    http: { connectionsCheckingInterval: Math.ceil(requestTimeoutMs / 2) },
    bodyLimit: options.bodyLimitBytes,
    frameworkErrors: frameworkErrorReply,
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allowUnionTypes: true } },
    // fastify's default compilers, loaded and run at a route's first use instead of here (api/compilers.ts)
    ...(options.eagerSchemas === true ? {} : { schemaController: { compilersFactory: { buildValidator: lazyValidators, buildSerializer: lazySerializers } } }),
    // one message naming each bad field: "body/0/devic is not allowed", "body/label must be one of ..."
    schemaErrorFormatter: (errors, dataVar) => new Error(errors.map((e) => {
      const params = e.params as { additionalProperty?: string; allowedValues?: unknown[]; missingProperty?: string; pattern?: string };
      const path = `${dataVar}${e.instancePath}`;
      // the MAC rule in words, not its regular expression
      if (params.pattern === MAC_PATTERN) return `${path} must be a MAC address: aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabbccddeeff or aabb.ccdd.eeff`;
      if (params.additionalProperty) return `${path}/${params.additionalProperty} is not allowed`;
      if (params.missingProperty) return `${path}/${params.missingProperty} is required`;
      if (params.allowedValues) return `${path} must be one of ${params.allowedValues.join(', ')}`;
      return `${path} ${e.message ?? 'is not valid'}`;
    }).join('; ')),
  });
  // Node checks requestTimeout only when headersTimeout (default 60 s) is no longer: a 30-s request
  // timeout alone cut a trickling body after 90 s, not 30-60 s (measured)
  app.server.headersTimeout = requestTimeoutMs;
  const { view } = context;

  for (const schema of [errorSchema, activationSchema, callSchema, deviceSchema, findingSchema, flowSchema, wakeEventSchema, privacyEndpointSchema, privacyDeviceSchema, noticeSchema]) app.addSchema(schema);

  await app.register(swagger, {
    openapi: {
      info: { title: 'earshot API', version: options.version, description: 'Voice assistants, their traffic and their activations, as earshot sees them. docs/api.md' },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer' } } },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  // the guards come before every route, swagger-ui's included
  await app.register(rateLimit, { global: false });
  registerGuards(app, options);
  // nothing from the internet (no validator badge), and a policy of its own: swagger-ui sets inline styles
  await app.register(swaggerUi, { routePrefix: '/api/v1/docs', staticCSP: DOCS_CSP, uiConfig: { validatorUrl: null } });

  // an integer in a query is digits: the validator coerces "Infinity" and "1e309" to Infinity, and its
  // minimum and maximum pass anything not finite (a 500 on /activations, every device on /devices)
  app.addHook('preValidation', async (request, reply) => {
    const properties = (request.routeOptions.schema?.querystring as { properties?: Record<string, { type?: string; format?: string }> } | undefined)?.properties;
    if (properties === undefined) return;
    for (const [key, value] of Object.entries(request.query as Record<string, unknown>)) {
      // a leap second (23:59:60Z) passes the date-time format but is no time here: every comparison was false (an empty 200)
      if (properties[key]?.format === 'date-time' && typeof value === 'string' && !Number.isFinite(Date.parse(value))) {
        return reply.status(400).send({ statusCode: 400, error: 'Bad Request', message: `querystring/${preview(key, 40).slice(1, -1)} must be a date and time such as 2026-11-01T08:00:00Z, got ${preview(value, 40)}` });
      }
      if (properties[key]?.type !== 'integer') continue;
      for (const one of Array.isArray(value) ? value : [value]) {
        if (typeof one === 'string' && !/^\s*[+-]?\d{1,16}\s*$/.test(one)) {
          return reply.status(400).send({ statusCode: 400, error: 'Bad Request', message: `querystring/${preview(key, 40).slice(1, -1)} must be an integer, got ${preview(one, 40)}` });
        }
      }
    }
  });

  // errors in one shape; validation errors name the field ("body/label must be ...")
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, request, reply) => {
    const statusCode = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    const message = statusCode === 500 ? 'internal error' : err.message;
    if (statusCode === 500) {
      // the client learns nothing of it; the log holds what a bug report needs
      const route = `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`.slice(0, 200);
      options.log?.error({ route, err: err.message, stack: err.stack?.split('\n').slice(1, 6).map((l) => l.trim()).join(' | ') }, `API: internal error answering ${route} (a bug; please report it with this line)`);
    }
    void reply.status(statusCode).send({ statusCode, error: statusName(statusCode), message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });

  const errors = { 400: { $ref: 'Error#' }, 401: { $ref: 'Error#' }, 404: { $ref: 'Error#' } };
  const security = [{ token: [] }];

  app.get('/api/v1/health', {
    schema: {
      summary: 'Capture, InfluxDB and alert state',
      response: { 200: { type: 'object', additionalProperties: true } },
    },
  }, async () => health(context, await view.get('status')));

  // bounded: forged MACs can fill the inventory (tagging.maxDevices), so one answer holds at most
  // `limit` devices, assistants first, and says how many there are
  app.get<{ Querystring: { limit: number } }>('/api/v1/devices', {
    schema: {
      summary: 'Devices seen, assistants first, then by bytes moved (at most `limit`; `total` counts them all)',
      querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } }, additionalProperties: false },
      response: { 200: { type: 'object', properties: { devices: { type: 'array', items: { $ref: 'Device#' } }, total: { type: 'integer' } } } },
    },
  }, async (request) => {
    // assistants first, then by bytes moved, and cut in that order: cut by recency first, 150 forged
    // assistants (an Amazon OUI and one ClientHello each) seen after the real Echo pushed it out of the
    // status page's 100; a forgery that outranks it must move more traffic than it
    const all = await view.get('devices');
    const devices = all.map((e) => e.device);
    devices.sort((a, b) => Number(b.assistant) - Number(a.assistant) || b.bytesUp + b.bytesDown - (a.bytesUp + a.bytesDown) || a.mac.localeCompare(b.mac));
    return { devices: devices.slice(0, request.query.limit), total: all.length };
  });

  app.get<{ Params: { mac: string } }>('/api/v1/devices/:mac', {
    schema: {
      summary: 'One device, its endpoints by service and its recent activations',
      params: macParams,
      response: {
        200: {
          type: 'object',
          properties: {
            device: { $ref: 'Device#' },
            endpoints: { type: 'object', additionalProperties: { type: 'array', items: { type: 'object', properties: { serverName: { type: 'string' }, flows: { type: 'integer' }, bytesUp: { type: 'integer' }, bytesDown: { type: 'integer' } } } } },
            activations: { type: 'array', items: { $ref: 'Activation#' } },
          },
        },
        ...errors,
      },
    },
  }, async (request, reply) => {
    const mac = canonicalMac(request.params.mac, 'mac');
    const d = await view.device(mac);
    if (!d) return reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `no device ${mac}` });
    const { activations } = await view.activations(activationQuery({ device: mac, limit: 20 }));
    return { device: d.device, endpoints: d.endpoints, activations };
  });

  /** The `since`, `until` and `device` filters the list endpoints share, as a test of one item. */
  const windowOf = (q: { since?: string; until?: string; device?: string }) => {
    const since = q.since ? Date.parse(q.since) : -Infinity;
    const until = q.until ? Date.parse(q.until) : Infinity;
    const device = q.device ? canonicalMac(q.device, 'device') : null;
    // whole milliseconds: the ISO time is the start's millisecond, as `since` and `until` are
    return (x: { start: string; device: string }) => {
      if (device !== null && x.device !== device) return false;
      const startMs = Date.parse(x.start);
      return startMs >= since && startMs < until;
    };
  };

  app.get<{ Querystring: { since?: string; until?: string; device?: string; verdict?: string; limit: number; offset: number } }>('/api/v1/activations', {
    schema: {
      summary: 'Activations, newest first',
      querystring: activationsQuery,
      response: {
        200: { type: 'object', properties: { total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' }, activations: { type: 'array', items: { $ref: 'Activation#' } } } },
        ...errors,
      },
    },
  }, async (request) => {
    const q = request.query;
    // filtered and paged on the pipeline's thread: only the page crosses (collector/view.ts, pageActivations)
    const { total, activations } = await view.activations(activationQuery({
      sinceMs: q.since ? Date.parse(q.since) : -Infinity,
      untilMs: q.until ? Date.parse(q.until) : Infinity,
      device: q.device ? canonicalMac(q.device, 'device') : null,
      verdict: q.verdict || null,
      offset: q.offset,
      limit: q.limit,
    }));
    return { total, offset: q.offset, limit: q.limit, activations };
  });

  app.get<{ Querystring: { since?: string; until?: string; device?: string; limit: number; offset: number } }>('/api/v1/calls', {
    schema: {
      summary: 'Calls (two-way media: calls, Drop In, video), newest first; never activations',
      querystring: callsQuery,
      response: {
        200: { type: 'object', properties: { total: { type: 'integer' }, offset: { type: 'integer' }, limit: { type: 'integer' }, calls: { type: 'array', items: { $ref: 'Call#' } } } },
        ...errors,
      },
    },
  }, async (request) => {
    const q = request.query;
    const all = (await view.get('calls')).filter(windowOf(q));
    const page = all.slice(q.offset, q.offset + q.limit);
    return { total: all.length, offset: q.offset, limit: q.limit, calls: page };
  });

  app.get<{ Params: { id: string } }>('/api/v1/activations/:id', {
    schema: { summary: 'One activation', params: idParams, response: { 200: { $ref: 'Activation#' }, ...errors } },
  }, async (request, reply) => {
    const [a] = (await view.activations(activationQuery({ id: request.params.id, limit: 1 }))).activations;
    if (!a) return reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `no activation ${request.params.id}` });
    return a;
  });

  app.post<{ Params: { id: string }; Body: { label: 'intended' | 'not-intended' } }>('/api/v1/activations/:id/label', {
    schema: { summary: "A person's label: intended or not-intended (wins over the detector)", security, params: idParams, body: labelBody, response: { 200: { $ref: 'Activation#' }, ...errors } },
  }, async (request, reply) => {
    const result = await view.command({ kind: 'label', id: request.params.id, label: request.body.label });
    const a = result.kind === 'label' ? result.activation : null;
    if (!a) return reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `no recent activation ${request.params.id}` });
    return a;
  });

  app.post<{ Body: WakeEvent[] }>('/api/v1/wake-events', {
    // the schema describes the body (OpenAPI); the records are read by the one reader of wake-event
    // records (files and MQTT use it too), so a record gets the same verdict and words everywhere
    validatorCompiler: () => readWakeEventsBody,
    schema: {
      summary: 'Wake events (one or a batch): recent activations they match become confirmed',
      security,
      body: wakeEventsBody,
      response: { 200: { type: 'object', properties: { accepted: { type: 'integer' }, changed: { type: 'array', items: { $ref: 'Activation#' } } } }, ...errors },
    },
  }, async (request) => {
    const events = request.body;
    const result = await view.command({ kind: 'wake-events', events });
    return { accepted: events.length, changed: result.kind === 'wake-events' ? result.changed : [] };
  });

  const detectionOff = { statusCode: 409, error: 'Conflict', message: 'detection is off (detect.enabled): the owner\'s presence has no use' };

  app.get('/api/v1/presence', {
    schema: { summary: "The owner's presence: the live state, the schedule (detect.away), away now", response: { 200: presenceSchema, 409: { $ref: 'Error#' } } },
  }, async (_request, reply) => (await view.get('status')).presence ?? reply.status(409).send(detectionOff));

  app.put<{ Body: { away: boolean } }>('/api/v1/presence', {
    // strict: the API coerces types elsewhere, but "away": null or 0 must not read as "home"
    preValidation: async (request, reply) => {
      const body = request.body as Record<string, unknown> | null;
      if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'away' in body && typeof body.away !== 'boolean') {
        return reply.status(400).send({ statusCode: 400, error: 'Bad Request', message: `body/away must be true or false, got ${preview(body.away, 40)}` });
      }
    },
    schema: {
      summary: "Sets the owner's presence: away or home (saved; uploads without a wake word while away get the reason owner-away)",
      security,
      body: presenceBody,
      response: { 200: presenceSchema, ...errors, 409: { $ref: 'Error#' } },
    },
  }, async (request, reply) => {
    const result = await view.command({ kind: 'presence', away: request.body.away, source: 'api' });
    const presence = result.kind === 'presence' ? result.presence : null;
    return presence ?? reply.status(409).send(detectionOff);
  });

  app.get<{ Querystring: { device?: string; limit: number } }>('/api/v1/flows', {
    schema: { summary: 'Open flows, the most recently active first (TCP and UDP together), then the latest finished ones', querystring: flowsQuery, response: { 200: { type: 'object', properties: { flows: { type: 'array', items: { $ref: 'Flow#' } } } }, ...errors } },
  }, async (request) => {
    const device = request.query.device ? canonicalMac(request.query.device, 'device') : null;
    return { flows: await view.flows({ device, limit: request.query.limit }) };
  });

  // who each assistant talks to: bounded like the ledger (devices, endpoints per device, notices)
  app.get<{ Querystring: { device?: string; all?: boolean; limit: number } }>('/api/v1/privacy', {
    schema: {
      summary: 'Per assistant (or every device with all=true): its endpoints, organisations and uploads by day; and the new-endpoint notices',
      querystring: privacyQuery,
      response: {
        200: { type: 'object', properties: {
          timeZone: { type: 'string', description: 'The zone the days are counted in (detect.timeZone): the day of an activation in it is the day it counts for' },
          devices: { type: 'array', items: { $ref: 'PrivacyDevice#' } }, notices: { type: 'array', items: { $ref: 'Notice#' } },
        } },
        ...errors,
        409: { $ref: 'Error#' },
      },
    },
  }, async (request, reply) => {
    const privacy = await view.get('privacy');
    if (privacy === null) return reply.status(409).send({ statusCode: 409, error: 'Conflict', message: 'privacy is off (privacy.enabled false, or tagging off)' });
    const device = request.query.device ? canonicalMac(request.query.device, 'device') : null;
    const devices = privacy.devices.filter((d) => (device !== null ? d.mac === device : request.query.all === true || d.assistant));
    const notices = privacy.notices.filter((n) => device === null || n.device === device).slice(0, request.query.limit);
    return { timeZone: context.config.detect.timeZone, devices: devices.slice(0, request.query.limit), notices };
  });

  // network hygiene findings (collector/findings/): at most `limit`, the most severe first
  app.get<{ Querystring: { device?: string; kind?: string; severity?: string; limit: number } }>('/api/v1/findings', {
    schema: {
      summary: 'Network hygiene findings (port mappings, inbound connections, DNS around the home resolver, plaintext, assistants beside computers), the most severe first',
      querystring: findingsQuery,
      response: {
        200: { type: 'object', properties: { total: { type: 'integer' }, dropped: { type: 'integer' }, findings: { type: 'array', items: { $ref: 'Finding#' } } } },
        ...errors,
      },
    },
  }, async (request) => {
    const q = request.query;
    const device = q.device ? canonicalMac(q.device, 'device') : null;
    const least = q.severity ? SEVERITIES.indexOf(q.severity as (typeof SEVERITIES)[number]) : 0;
    const part = await view.get('findings');
    const all = part.findings.filter((f) => (device === null || f.device === device) && (!q.kind || f.kind === q.kind) && SEVERITIES.indexOf(f.severity) >= least);
    return { total: all.length, dropped: part.dropped, findings: all.slice(0, q.limit) };
  });

  await registerPage(app);

  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    void reply.type('text/plain; version=0.0.4; charset=utf-8');
    return renderMetrics(context, await view.get('status'), await view.get('devices'));
  });

  return app;
}

function statusName(code: number): string {
  return ({ 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' } as Record<number, string>)[code] ?? 'Error';
}
