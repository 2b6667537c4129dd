/**
 * The one configuration schema: every key with its type, default and description. The YAML file,
 * EARSHOT_* environment variables and command-line flags are all mapped onto it, validated (unknown
 * keys rejected) and frozen. docs/configuration.md and deploy/earshot.example.yaml are generated from
 * it (npm run docs:config) and a test fails when they are stale.
 */
import { statSync } from 'node:fs';
import { readFileBounded } from './durable.js';
import { createRequire } from 'node:module';
import { Type, type Static, type TSchema, type TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type * as Yaml from 'yaml';
import { earshotError } from './errors.js';
import { MAC_PATTERN, normalizeMac } from './mac.js';
import { defaultSite, SITE_PATTERN } from './site.js';
import { SERVICES } from './tag/catalog.js';

/** The MQTT topic prefix: {site} stands for the site (collector/sink/mqtt/topics.ts). */
export const DEFAULT_MQTT_PREFIX = 'earshot/{site}';

/** Kinds of notice (collector/sink/events.ts) a webhook or MQTT may be asked to send besides activations. */
export const NOTICE_KINDS = ['new-endpoint', 'finding'] as const;

// YAML is loaded only when there is a config file to read
const require = createRequire(import.meta.url);

/** Extra schema keywords we use: `flag` names the CLI flag (without --) when it is not derived from the path. */
interface Extra {
  flag?: string;
  /** What a value matching the key's pattern looks like, said instead of the pattern when one does not. */
  hint?: string;
}

const str = (d: string | null, description: string, extra: Extra = {}) =>
  d === null
    ? Type.Union([Type.String(), Type.Null()], { default: null, description, ...extra })
    : Type.String({ default: d, description, ...extra });


/**
 * Deepest nesting a config file may have: the schema's deepest key is 4 levels down, and a deeper
 * document (or an alias that refers to itself, which YAML turns into a cycle) would overflow the stack
 * of the recursive validators.
 */
const MAX_CONFIG_DEPTH = 32;

/** An InfluxQL duration: 30d, 104w, 12h, 1h30m, or INF. */
const DURATION = '^(INF|(\\d+(w|d|h|m|s))+)$';

export const ConfigSchema = Type.Object(
  {
    site: Type.String({
      default: '',
      pattern: `^$|${SITE_PATTERN}`,
      description: 'Name of the site (the home) this collector watches: a tag on every InfluxDB point, part of the MQTT topics and Home Assistant ids, in webhook payloads, the API and the report, so many sites can share one InfluxDB and broker (docs/fleet.md). Lower-case letters, digits, - and _, at most 63. Empty: the host name (with the machine id added to generic ones such as raspberrypi).',
      flag: 'site',
      hint: 'lower-case letters, digits, - and _ (starting with a letter or digit, at most 63)',
    }),
    dataDir: str(null, 'Directory for what must survive restarts (inventory, DNS cache, spool, alert outbox); one earshot at a time uses it (its lock: earshot.pid). Unset: nothing is kept.', { flag: 'data-dir' }),
    localNets: Type.Array(Type.String(), {
      default: [],
      description: 'Extra local networks (CIDR) besides RFC 1918, ULA, link-local and CGNAT; decides the client side of flows already open when capture began.',
      flag: 'local-nets',
    }),
    capture: Type.Object(
      {
        source: Type.Union([Type.Literal('libpcap'), Type.Literal('tcpdump'), Type.Literal('stdin')], {
          default: 'libpcap',
          description: 'Live packet source: libpcap (the optional pcap package), tcpdump (spawns tcpdump -U -w -) or stdin (a pcap stream, e.g. from ssh router tcpdump).',
          flag: 'source',
        }),
        interface: str(null, 'Network interface to capture on (collect).', { flag: 'interface' }),
        filter: str(null, 'BPF filter for live capture, e.g. "not port 22".', { flag: 'filter' }),
        snaplen: Type.Integer({ default: 262144, minimum: 64, maximum: 262144, description: 'Bytes captured per packet (live).', flag: 'snaplen' }),
      },
      { additionalProperties: false, default: {} },
    ),
    flows: Type.Object(
      {
        maxFlows: Type.Integer({ default: 65536, minimum: 1, description: 'Most flows kept at once; the least recently active is evicted (counted) beyond it. A home has a few thousand open (the bench capture, many homes end to end, fewer than 8,192); this bounds what a flood of new flows (a scan, a hostile host) makes earshot hold.', flag: 'max-flows' }),
        tcpIdleTimeoutS: Type.Number({ default: 600, minimum: 1, description: 'A TCP flow with no packet for this long (packet time) is finished.', flag: 'tcp-idle-timeout' }),
        udpIdleTimeoutS: Type.Number({ default: 120, minimum: 1, description: 'A UDP flow with no packet for this long (packet time) is finished.', flag: 'udp-idle-timeout' }),
      },
      { additionalProperties: false, default: {} },
    ),
    devices: Type.Record(
      Type.String({ pattern: MAC_PATTERN }),
      Type.Object(
        {
          name: Type.Optional(Type.String({ maxLength: 64 })),
          assistant: Type.Optional(Type.Boolean()),
          vendor: Type.Optional(Type.String({ maxLength: 32 })),
          model: Type.Optional(Type.String({ maxLength: 64 })),
        },
        { additionalProperties: false },
      ),
      {
        default: {},
        // without it a key that is not a MAC ("kitchen echo": {...}) would be ignored without a word
        additionalProperties: false,
        description: 'Per-device overrides by MAC: { "aa:bb:cc:dd:ee:ff": { name, assistant, vendor, model } }; they win over what earshot infers.',
        flag: 'devices',
      },
    ),
    catalog: Type.Array(
      Type.Object(
        {
          pattern: Type.String({ description: 'Host name, * matches any characters' }),
          service: Type.Union(SERVICES.map((l) => Type.Literal(l))),
          vendor: Type.Optional(Type.Union([Type.String(), Type.Null()])),
          source: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
      { default: [], description: 'Extra endpoint catalogue entries [{ pattern, service, vendor, source }]; they win over the shipped catalogue (earshot catalog).', flag: 'catalog' },
    ),
    tagging: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Identify devices and tag flows with server names, vendors and services. Off: flows stay unnamed (for benchmarks).', flag: 'tagging' }),
        dnsGraceS: Type.Number({ default: 900, minimum: 0, description: 'How long past its TTL a DNS answer still names the flows to that address.', flag: 'dns-grace' }),
        maxDnsEntries: Type.Integer({ default: 50000, minimum: 1, description: 'Most DNS entries remembered, two per server address (the names its clients got for it, up to 8 clients, and the latest answer), and as many CNAMEs; the least recently answered addresses are dropped (counted). About 100 bytes per address.', flag: 'max-dns-entries' }),
        voiceMinDurationS: Type.Number({ default: 60, minimum: 1, description: "An assistant's TLS connection to its vendor's voice ranges on 443 that lasts this long (or was open before capture began) is its voice channel.", flag: 'voice-min-duration' }),
        maxDevices: Type.Integer({ default: 4096, minimum: 1, description: 'Most devices kept in the inventory; the least recently seen are dropped.', flag: 'max-devices' }),
      },
      { additionalProperties: false, default: {} },
    ),
    detect: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: "Find activations (audio uploads) on assistants' voice flows. Needs tagging.", flag: 'detect' }),
        wakeEvents: str(null, 'Wake-word events for replay: a JSON Lines or CSV file ({ time, device?, source?, intended? }). With a source configured, activations without a wake event are suspected.', { flag: 'wake-events' }),
        wakeWindowBeforeS: Type.Number({ default: 5, minimum: 0, description: 'A wake event this long before an activation starts still confirms it.', flag: 'wake-window-before' }),
        wakeWindowAfterS: Type.Number({ default: 2, minimum: 0, description: 'A wake event this long after an activation starts still confirms it (clocks differ).', flag: 'wake-window-after' }),
        quietHours: Type.Array(Type.String({ pattern: '^\\d{1,2}:\\d{2}-\\d{1,2}:\\d{2}$', hint: 'a time range HH:MM-HH:MM such as 23:00-07:00' }), {
          default: [],
          description: 'Times nobody is home or awake, e.g. 23:00-07:00: without a wake-event source, activations then are suspected (reason quiet-hours).',
          flag: 'quiet-hours',
        }),
        away: Type.Array(Type.String(), {
          default: [],
          description: 'When the owner is usually away, local time: "08:00-17:30", "mon-fri 08:00-17:30", "sat-sun 22:00-02:00". An activation with no wake event then gets the reason owner-away (sound detection such as Alexa Guard uploads without a wake word); the live state from MQTT (PREFIX/presence) and PUT /api/v1/presence adds to it.',
          flag: 'away',
        }),
        timeZone: Type.String({ default: 'UTC', description: 'IANA time zone of the quiet hours and detect.away, e.g. Europe/Berlin.', flag: 'time-zone' }),
        arbitrationWindowS: Type.Number({ default: 2, minimum: 0, description: 'Assistants starting to upload within this many seconds of each other heard the same wake word (arbitration).', flag: 'arbitration-window' }),
      },
      { additionalProperties: false, default: {} },
    ),
    influx: Type.Object(
      {
        url: str(null, 'InfluxDB base URL, e.g. http://127.0.0.1:8086 (1.x, or 2.x/3.x through their v1 /write API). Unset: nothing is written.', { flag: 'influx-url' }),
        database: Type.String({ default: 'earshot', minLength: 1, description: 'Database (1.x), or the database name mapped to a bucket (2.x DBRP mapping, 3.x database).', flag: 'influx-db' }),
        token: str(null, 'API token, sent as "Authorization: Token ..." (InfluxDB 2.x and 3.x; 1.x with auth uses username and password).', { flag: 'influx-token' }),
        username: str(null, 'User name for InfluxDB 1.x authentication (HTTP basic auth; 2.x v1-compatible users too).', { flag: 'influx-username' }),
        password: str(null, 'Password for username; better set as EARSHOT_INFLUX_PASSWORD than on the command line.', { flag: 'influx-password' }),
        retentionPolicy: str(null, "Retention policy written to. Unset: rawPolicy when setup is on, else the database's default.", { flag: 'influx-rp' }),
        setup: Type.Union([Type.Literal('auto'), Type.Literal(true), Type.Literal(false)], { default: 'auto', description: 'On start, create the database, the raw and long retention policies and the downsampling continuous queries (InfluxDB 1.x; needs an admin user). auto: on without a token, off with one (2.x/3.x, or a shared server: earshot then never changes its schema and names the command to run when the database, policy or mapping is missing).', flag: 'influx-setup' }),
        rawPolicy: Type.String({ default: 'earshot_raw', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', hint: 'a name of letters, digits and _ (not starting with a digit)', description: 'Name of the retention policy for raw points (setup).', flag: 'influx-raw-policy' }),
        rawRetention: Type.String({ default: '30d', pattern: DURATION, hint: 'an InfluxQL duration such as 30d, 12h or 104w, or INF for ever', description: 'How long raw points are kept (InfluxQL duration, INF for ever).', flag: 'influx-raw-retention' }),
        longPolicy: Type.String({ default: 'earshot_long', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', hint: 'a name of letters, digits and _ (not starting with a digit)', description: 'Name of the retention policy for downsampled points (setup).', flag: 'influx-long-policy' }),
        longRetention: Type.String({ default: '104w', pattern: DURATION, hint: 'an InfluxQL duration such as 30d, 12h or 104w, or INF for ever', description: 'How long downsampled points are kept (InfluxQL duration, INF for ever).', flag: 'influx-long-retention' }),
        downsample: Type.String({ default: '5m', pattern: '^\\d+(s|m|h|d)$', hint: 'a number and s, m, h or d, such as 5m', description: 'Interval of the continuous queries that downsample traffic into the long retention policy.', flag: 'influx-downsample' }),
        intervalS: Type.Integer({ default: 10, minimum: 1, maximum: 3600, description: 'Traffic and self-metric points are written per device for each interval of this many seconds.', flag: 'influx-interval' }),
        batchSize: Type.Integer({ default: 5000, minimum: 1, maximum: 100000, description: 'Points per write request at most.', flag: 'influx-batch-size' }),
        flushIntervalS: Type.Number({ default: 1, minimum: 0.05, description: 'A batch that is not full is written after this many seconds (wall time).', flag: 'influx-flush-interval' }),
        gzip: Type.Boolean({ default: true, description: 'Compress write requests (Content-Encoding: gzip).', flag: 'influx-gzip' }),
        timeoutS: Type.Number({ default: 10, minimum: 0.1, description: 'A write request that takes longer has failed; its batch goes to the spool.', flag: 'influx-timeout' }),
        spoolMaxMB: Type.Number({ default: 100, minimum: 0.001, description: 'Most megabytes of unsent batches kept in the spool (dataDir/spool/influx, or memory without dataDir); the oldest are dropped (counted) beyond it.', flag: 'influx-spool-max-mb' }),
        waitS: Type.Number({ default: 60, minimum: 0, description: 'At the end of a replay or on shutdown, how long to wait for InfluxDB to take every queued and spooled point. A replay that cannot deliver them in time exits with code 3.', flag: 'influx-wait' }),
        topServerNames: Type.Integer({ default: 20, minimum: 0, maximum: 1000, description: 'Server names outside the endpoint catalogue that get their own server_name tag (the busiest first); the rest are "other".', flag: 'influx-top-servers' }),
        deviceIntervalS: Type.Integer({ default: 60, minimum: 1, description: 'How often (collector time) the device inventory is written as `device` points.', flag: 'influx-device-interval' }),
      },
      { additionalProperties: false, default: {} },
    ),
    api: Type.Object(
      {
        listen: Type.String({ default: '127.0.0.1:8377', pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):\\d{1,5}$', hint: 'HOST:PORT such as 127.0.0.1:8377 ([::1]:8377 for IPv6)', description: 'Where `earshot collect` serves the API and status page (HOST:PORT; [::1]:PORT for IPv6). Beyond loopback every route needs the token.', flag: 'listen' }),
        enabled: Type.Boolean({ default: true, description: 'Serve the API while collecting (`earshot collect`).', flag: 'api' }),
        thread: Type.Boolean({ default: true, description: 'While the API serves, run the pipeline (capture, decoding, flows, tagging, detection and the sinks) on its own thread, and the API on the main thread at a lower priority: a flood of requests slows the answers, not the capture. Off: one thread (for comparison). The libpcap source\'s session stays on the main thread (node_pcap cannot end on another) and hands its packets to the pipeline\'s; that thread then keeps its priority.', flag: 'api-thread' }),
        token: str(null, 'API token (16 bytes or more, printable ASCII): required for every POST, and for every route when listening beyond loopback (Authorization: Bearer TOKEN). Better set as EARSHOT_API_TOKEN or tokenFile. Unset: generated once and kept in dataDir/api-token.', { flag: 'api-token' }),
        tokenFile: str(null, 'File holding the API token (its first line, 16 bytes or more).', { flag: 'api-token-file' }),
        postsPerMinute: Type.Integer({ default: 120, minimum: 1, description: 'POST requests allowed per client address and minute, all routes together; more get 429.', flag: 'api-posts-per-minute' }),
        failedTokensPerMinute: Type.Integer({ default: 10, minimum: 1, description: 'Wrong tokens allowed per client address and minute; then every request that needs the token gets 429 from that address until the minute ends.', flag: 'api-failed-tokens-per-minute' }),
        allowedHosts: Type.Array(Type.String(), { default: [], description: 'Names besides IP addresses, localhost, the machine\'s host name and NAME.local that the Host header may carry (e.g. a reverse proxy\'s name; ".example.net" for a domain and its subdomains). Any other Host gets 403 (DNS rebinding).', flag: 'api-allowed-hosts' }),
        bodyLimitKB: Type.Integer({ default: 1024, minimum: 1, maximum: 65536, description: 'Largest request body accepted (kilobytes); larger gets 413.', flag: 'api-body-limit' }),
        requestTimeoutS: Type.Integer({ default: 30, minimum: 2, maximum: 3600, description: 'Most seconds a client has to send a whole request, headers and body; a slower one is cut (looked for every half of this): a client trickling a body must not hold a connection for ever.', flag: 'api-request-timeout' }),
      },
      { additionalProperties: false, default: {} },
    ),
    alerts: Type.Object(
      {
        webhooks: Type.Array(
          Type.Object(
            {
              url: Type.String({ description: 'Receiver URL (http or https).' }),
              preset: Type.Union(['json', 'ntfy', 'slack', 'discord', 'homeassistant'].map((l) => Type.Literal(l)), { default: 'json' }),
              on: Type.Union(['suspected', 'finished', 'started', 'all'].map((l) => Type.Literal(l)), { default: 'suspected' }),
              notices: Type.Array(Type.Union(NOTICE_KINDS.map((l) => Type.Literal(l))), { default: [], description: 'Notices besides activations this webhook also gets: new-endpoint (an assistant contacted a new organisation or kind of service), finding (a network hygiene finding appeared or got worse).' }),
              secret: Type.Optional(Type.String({ minLength: 8, description: 'HMAC-SHA256 key for X-Earshot-Signature.' })),
              headers: Type.Optional(Type.Record(Type.String(), Type.String())),
              name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', hint: '1 to 64 letters, digits, _, . and -' })),
            },
            { additionalProperties: false },
          ),
          {
            default: [],
            description: 'Webhooks: [{ url, preset: json|ntfy|slack|discord|homeassistant, on: suspected|finished|started|all, notices: [new-endpoint, finding], secret, headers, name }]. Deliveries wait in an outbox under dataDir.',
            flag: 'webhooks',
          },
        ),
        skipReasons: Type.Array(Type.Union(['aborted-wake', 'arbitration-loser', 'follow-up', 'answered', 'long-stream', 'owner-away'].map((l) => Type.Literal(l))), {
          default: [],
          description: 'Activations carrying any of these reasons send no webhook (they are still recorded, shown and published): e.g. [aborted-wake] when a wake word the cloud rejected at once should not alert.',
          flag: 'alert-skip-reasons',
        }),
        maxAgeH: Type.Number({ default: 24, minimum: 0.001, description: 'An alert not delivered after this many hours is given up (counted).', flag: 'alert-max-age' }),
        retryMinS: Type.Number({ default: 1, minimum: 0.01, description: 'First wait before retrying a failed delivery; it doubles (with jitter) up to retryMaxS.', flag: 'alert-retry-min' }),
        retryMaxS: Type.Number({ default: 300, minimum: 0.01, description: 'Longest wait between delivery attempts.', flag: 'alert-retry-max' }),
        timeoutS: Type.Number({ default: 10, minimum: 0.1, description: 'A delivery that takes longer has failed.', flag: 'alert-timeout' }),
        waitS: Type.Number({ default: 10, minimum: 0, description: 'When earshot stops (or a replay ends), how long to keep delivering due alerts; the rest wait in the outbox for the next start.', flag: 'alert-wait' }),
      },
      { additionalProperties: false, default: {} },
    ),
    mqtt: Type.Object(
      {
        url: str(null, 'MQTT broker, e.g. mqtt://127.0.0.1:1883 (mqtts:// for TLS). Unset: no MQTT.', { flag: 'mqtt-url' }),
        username: str(null, 'MQTT user name.', { flag: 'mqtt-username' }),
        password: str(null, 'MQTT password; better set as EARSHOT_MQTT_PASSWORD.', { flag: 'mqtt-password' }),
        clientId: str(null, 'MQTT client id (default earshot-SITE: unique per site, so collectors on one broker do not push each other off).', { flag: 'mqtt-client-id' }),
        prefix: Type.String({ default: DEFAULT_MQTT_PREFIX, pattern: '^[^#+]*[^#+/][^#+]*$', hint: 'a topic without # or +, not only slashes', description: 'Topic prefix for activations, device state and the availability topic; {site} stands for the site, so many sites can share one broker (earshot/kitchen-pi/activation). Home Assistant ids are made from it too.', flag: 'mqtt-prefix' }),
        discovery: Type.Boolean({ default: true, description: 'Publish Home Assistant MQTT discovery for each assistant.', flag: 'mqtt-discovery' }),
        discoveryPrefix: Type.String({ default: 'homeassistant', pattern: '^[^#+]*[^#+/][^#+]*$', hint: 'a topic without # or +, not only slashes', description: "Home Assistant's discovery prefix.", flag: 'mqtt-discovery-prefix' }),
        notices: Type.Array(Type.Union(NOTICE_KINDS.map((l) => Type.Literal(l))), { default: [], description: 'Notices published on PREFIX/notice besides activations: new-endpoint (an assistant contacted a new organisation or kind of service), finding (a network hygiene finding appeared or got worse).', flag: 'mqtt-notices' }),
        wakeTopic: str(null, 'Topic to subscribe to for wake events (JSON, the --wake-events record format; one or an array). Default PREFIX/wake (with the default prefix also earshot/wake, the topic of earlier versions and of the Home Assistant blueprint).', { flag: 'mqtt-wake-topic' }),
      },
      { additionalProperties: false, default: {} },
    ),
    privacy: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: "Keep, per device, who it talks to (endpoints, organisations, services, bytes by day) and raise a new-endpoint notice when an assistant contacts an organisation or a kind of service it was never seen with. Needs tagging.", flag: 'privacy' }),
        learningPeriodH: Type.Number({ default: 168, minimum: 0, description: 'Hours after earshot first sees a device during which its new organisations and services are learnt quietly (no notice). Remembered in dataDir/privacy.json.', flag: 'learning-period' }),
      },
      { additionalProperties: false, default: {} },
    ),
    report: Type.Object(
      {
        maxDnsAnswers: Type.Integer({ default: 100000, minimum: 0, description: 'Most DNS answers kept for the report (the newest); older ones are dropped (counted). They wait on disk until the report is written (see report.maxFlows).', flag: 'max-dns-answers' }),
        maxFlows: Type.Integer({ default: 200000, minimum: 0, description: 'Most finished flows kept for the report (the newest); older ones are dropped (counted in stats.reportFlowsDropped). Device totals count every flow. Finished flows wait on disk until the report is written (in the data directory, else the temp directory; at most 1.125 times this many, removed at the end), not in memory: this bounds that disk and the report of a collector that runs for months.', flag: 'report-max-flows' }),
        maxActivations: Type.Integer({ default: 100000, minimum: 0, description: 'Most activations kept for the report (the newest); older ones are dropped (counted in stats.reportActivationsDropped).', flag: 'report-max-activations' }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'Log level.', flag: 'log-level' },
        ),
        format: Type.Union([Type.Literal('auto'), Type.Literal('text'), Type.Literal('json')], {
          default: 'auto',
          description: 'Log format on stderr: text, json (pino), or auto (text on a TTY, json otherwise).',
          flag: 'log-format',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/** One settable leaf of the schema, with its path, flag and environment variable. */
export interface ConfigKey {
  path: string[];
  flag: string;
  env: string;
  /** The variable's name before 2026-12 (EARSHOT_INFLUX_SPOOL_MAX_M_B), still read; equal to env for most keys. */
  legacyEnv: string;
  schema: TSchema;
  description: string;
  default: unknown;
  kind: 'string' | 'number' | 'integer' | 'boolean' | 'string[]' | 'enum' | 'json';
  choices?: string[];
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
// spoolMaxMB -> SPOOL_MAX_MB (a capital after a capital starts no word)
const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
// the spelling before: SPOOL_MAX_M_B; still read, so an environment file written then keeps working
const legacySnake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();

function kindOf(schema: TSchema): Pick<ConfigKey, 'kind' | 'choices'> {
  const s = schema as TSchema & { type?: string; anyOf?: TSchema[]; items?: TSchema; const?: unknown };
  if (s.anyOf) {
    const consts = s.anyOf.filter((a) => 'const' in a).map((a) => String((a as unknown as { const: unknown }).const));
    if (consts.length === s.anyOf.length) return { kind: 'enum', choices: consts };
    const nonNull = s.anyOf.find((a) => (a as { type?: string }).type !== 'null');
    return nonNull ? kindOf(nonNull) : { kind: 'string' };
  }
  if (s.type === 'array') return { kind: (s.items as { type?: string } | undefined)?.type === 'object' ? 'json' : 'string[]' };
  if (s.type === 'object') return { kind: 'json' };
  if (s.type === 'integer' || s.type === 'number' || s.type === 'boolean') return { kind: s.type };
  return { kind: 'string' };
}

/** Every leaf key of the schema, in schema order. */
export function configKeys(schema: TObject = ConfigSchema, prefix: string[] = []): ConfigKey[] {
  const keys: ConfigKey[] = [];
  for (const [name, child] of Object.entries(schema.properties)) {
    const path = [...prefix, name];
    const c = child as TSchema & { type?: string; properties?: unknown; flag?: string; description?: string; default?: unknown };
    if (c.type === 'object' && c.properties && !c.flag) {
      keys.push(...configKeys(c as TObject, path));
      continue;
    }
    keys.push({
      path,
      flag: c.flag ?? path.map(kebab).join('-'),
      env: `EARSHOT_${path.map(snake).join('_')}`,
      legacyEnv: `EARSHOT_${path.map(legacySnake).join('_')}`,
      schema: c,
      description: c.description ?? '',
      default: c.default,
      ...kindOf(c),
    });
  }
  return keys;
}

/** Converts a flag or environment string to the key's type; throws a usage error naming `where`. */
function coerce(key: ConfigKey, raw: string, where: string): unknown {
  switch (key.kind) {
    case 'integer':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || (key.kind === 'integer' && !Number.isInteger(n))) {
        throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `expected ${key.kind === 'integer' ? 'an integer' : 'a number'}, got "${raw}"`);
      }
      return n;
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `expected true or false, got "${raw}"`);
    case 'string[]':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    case 'enum': {
      // a choice may be a boolean besides words (influx.setup: auto, true or false), spelt as booleans are
      const word = /^(1|true|yes|on)$/i.test(raw) ? 'true' : /^(0|false|no|off)$/i.test(raw) ? 'false' : raw;
      const choice = ((key.schema as { anyOf?: Array<{ const?: unknown }> }).anyOf ?? []).find((a) => String(a.const) === word);
      return choice === undefined ? raw : choice.const;
    }
    case 'json':
      try {
        return JSON.parse(raw) as unknown;
      } catch (err) {
        throw earshotError('EARSHOT_ERR_CONFIG_INVALID', where, `expected JSON, got "${raw.slice(0, 40)}" (${(err as Error).message})`);
      }
    default:
      return raw;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (next === undefined || next === null || typeof next !== 'object') node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * A key of the file as an error message shows it: quoted, escaped and cut short. A YAML key can be a
 * whole mapping ("? {...}: x"), many lines long, and the message must stay one line.
 */
/** Largest config file read (a config is a few kB; /dev/zero given as one took 6 GB in 40 s). */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The path of the first list key whose value is a mapping, or null. */
function firstNonList(schema: TSchema, value: unknown, path: string[]): string[] | null {
  if (value === null || typeof value !== 'object') return null;
  if ((schema as { type?: unknown }).type === 'array') return Array.isArray(value) ? null : path;
  const properties = (schema as TObject).properties;
  if (properties === undefined || Array.isArray(value)) return null;
  for (const [key, sub] of Object.entries(properties)) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    const found = firstNonList(sub, (value as Record<string, unknown>)[key], [...path, key]);
    if (found !== null) return found;
  }
  return null;
}

function keyText(key: string): string {
  return JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}...` : key);
}

/**
 * Why a parsed YAML document cannot be validated, or null: an alias that refers to its own anchor
 * (`a: &a [*a]` parses to a cycle) or nesting deeper than MAX_CONFIG_DEPTH. Names the path where it is.
 */
function nestingProblem(doc: unknown): string | null {
  const open = new Set<object>();
  const visit = (value: unknown, path: string[]): string | null => {
    if (value === null || typeof value !== 'object') return null;
    const where = path.map((part) => (/^[\w-]+$/.test(part) ? part : keyText(part))).join('.') || '(top level)';
    if (open.has(value)) return `${where}: an alias refers to the anchor it is inside (a recursive alias)`;
    if (path.length >= MAX_CONFIG_DEPTH) return `${path.slice(0, 4).join('.')}...: nested more than ${MAX_CONFIG_DEPTH} levels deep`;
    open.add(value);
    for (const [key, child] of Object.entries(value)) {
      const problem = visit(child, [...path, key]);
      if (problem) return problem;
    }
    // the same anchor used twice side by side is fine: only a value inside itself is a cycle
    open.delete(value);
    return null;
  };
  return visit(doc, []);
}

/** The schema at `path` of the config: through objects' properties, a record's values (devices), a list's items. */
function schemaAt(path: string[]): TSchema {
  let schema: TSchema = ConfigSchema;
  for (const part of path) {
    const s = schema as TSchema & { properties?: Record<string, TSchema>; patternProperties?: Record<string, TSchema>; items?: TSchema };
    const next = s.properties?.[part] ?? (s.patternProperties ? Object.values(s.patternProperties)[0] : undefined) ?? (/^\d+$/.test(part) ? s.items : undefined);
    if (next === undefined) break;
    schema = next;
  }
  return schema;
}

/** The path of the first mapping that has an own key "__proto__", or null. */
function protoKeyPath(value: unknown, path: string[]): string[] | null {
  if (typeof value !== 'object' || value === null) return null;
  if (!Array.isArray(value) && Object.hasOwn(value, '__proto__')) return path;
  for (const [key, child] of Object.entries(value)) {
    const found = protoKeyPath(child, [...path, key]);
    if (found !== null) return found;
  }
  return null;
}

/**
 * EARSHOT_ variables that are no setting: the config file, the export's salt, the bundle's code cache,
 * the router feed's (deploy/earshot-ssh-feed.sh, which may share earshot's environment file), the Docker
 * compose file's, and those of the tests and benches.
 */
const OTHER_ENV = new Set([
  'EARSHOT_CONFIG', 'EARSHOT_EXPORT_SALT', 'EARSHOT_DEBUG_CODE_CACHE', 'EARSHOT_WRITE_CODE_CACHE', 'EARSHOT_INTERFACE',
  'EARSHOT_FEED_FILTER', 'EARSHOT_FEED_INTERFACE', 'EARSHOT_FEED_KEY', 'EARSHOT_FEED_KNOWN_HOSTS', 'EARSHOT_FEED_PAUSE', 'EARSHOT_FEED_ROUTER',
  'EARSHOT_SHARED', 'EARSHOT_BIN', 'EARSHOT_CHAOS_SEED', 'EARSHOT_CHAOS_SEEDS', 'EARSHOT_BENCH_CAP_DIR', 'EARSHOT_OS_RELEASE',
  'EARSHOT_UPDATE_DOCS', 'EARSHOT_WRITE_DEMO',
]);

/**
 * Variables named EARSHOT_* that earshot does not read, each as a warning naming the closest setting:
 * a misspelt one (EARSHOT_MAX_FLOWS for EARSHOT_FLOWS_MAX_FLOWS) did nothing, in silence. At most 20.
 */
export function unknownEnvironment(env: Record<string, string | undefined>): string[] {
  const keys = configKeys();
  const known = new Set([...keys.map((k) => k.env), ...keys.map((k) => k.legacyEnv), ...OTHER_ENV]);
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('EARSHOT_') || known.has(name) || name.startsWith('EARSHOT_ERR_')) continue;
    if (warnings.length === 20) break;
    // the setting whose name shares the most words with it
    const words = new Set(name.slice(8).split('_'));
    let best: ConfigKey | null = null;
    let bestScore = 0;
    for (const k of keys) {
      const score = k.env.slice(8).split('_').filter((w) => words.has(w)).length;
      if (score > bestScore) {
        best = k;
        bestScore = score;
      }
    }
    const shown = name.length > 64 ? `${name.slice(0, 64)}...` : name;
    warnings.push(`${shown} is set but is no setting of earshot: ignored${best === null ? '' : ` (did you mean ${best.env}?)`}; the settings: docs/configuration.md`);
  }
  return warnings;
}

/** Where each key of a loaded config came from (flags and variables by name; keys the file set). */
const ORIGINS = new WeakMap<object, { byKey: Map<string, string>; file: string | null; fileKeys: Set<string> }>();

/** The dotted paths of the keys the file set (those no flag or variable overrode). */
function fileKeyPaths(raw: Record<string, unknown>, overridden: Map<string, string>): Set<string> {
  const paths = new Set<string>();
  const walk = (value: unknown, path: string[]) => {
    if (path.length > 0 && !overridden.has(path.join('.'))) paths.add(path.join('.'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && path.length < 2) {
      for (const [key, child] of Object.entries(value)) walk(child, [...path, key]);
    }
  };
  walk(raw, []);
  return paths;
}

/**
 * Where the value of `key` (dotted, "detect.timeZone") of `config` came from: "--time-zone",
 * "EARSHOT_DETECT_TIME_ZONE", the config file's path, or null for the default. For the errors found
 * after loading (a time zone ICU does not know, a URL), which name the key only.
 */
export function originOf(config: object, key: string): string | null {
  const origins = ORIGINS.get(config);
  if (origins === undefined) return null;
  const flag = origins.byKey.get(key);
  if (flag !== undefined) return flag;
  return origins.file !== null && origins.fileKeys.has(key) ? origins.file : null;
}

/** Where settings come from; later ones win: file < env < flags. */
export interface ConfigSources {
  /** Path of the YAML file (--config or EARSHOT_CONFIG). */
  file?: string | null;
  /** Environment (process.env). */
  env?: Record<string, string | undefined>;
  /** Flag values by flag name (without --), as strings. */
  flags?: Record<string, string | undefined>;
}

/** Reads, merges, validates and freezes the configuration. Throws an EarshotError naming the bad key. */
export function loadConfig(sources: ConfigSources = {}): Readonly<Config> {
  const raw: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  if (sources.file) {
    let text: string;
    try {
      if (statSync(sources.file).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      text = readFileBounded(sources.file, MAX_CONFIG_BYTES).toString('utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw earshotError('EARSHOT_ERR_CONFIG_FILE', sources.file, e.code === 'ENOENT' ? 'no such file' : e.message);
    }
    let doc: unknown;
    try {
      // yaml is loaded only to read a file: importing it costs ~40 ms at every start
      // logLevel 'error': yaml's warnings (an ambiguous alias, ...) would go to process.emitWarning, a
      // multi-line "(node:PID) YAMLWarning" on stderr beside earshot's one line
      doc = (require('yaml') as typeof Yaml).parse(text, { logLevel: 'error' });
    } catch (err) {
      // yaml's parser recurses per level: a document nested thousands deep overflows it
      const first = (err as Error).message.split('\n')[0];
      // the library's advice (use YAML.parseAllDocuments()) is for programmers, and its snippet was cut off after a ':'
      const why = err instanceof RangeError || /maximum call stack/i.test((err as Error).message) ? `nested too deep (more than ${MAX_CONFIG_DEPTH} levels)`
        : /multiple documents/i.test(first) ? `it holds several YAML documents (a second "---"${/ at (line \d+)/.exec(first)?.[0] ?? ''}); earshot reads one`
          : first.replace(/:\s*$/, '');
      throw earshotError('EARSHOT_ERR_CONFIG_YAML', sources.file, why);
    }
    const shapeProblem = nestingProblem(doc);
    if (shapeProblem) throw earshotError('EARSHOT_ERR_CONFIG_YAML', sources.file, shapeProblem);
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', sources.file, 'the top level must be a mapping of keys');
      // a key "__proto__" became the object's prototype when copied: neither applied nor refused as unknown
      const proto = protoKeyPath(doc, []);
      if (proto !== null) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${sources.file}: ${proto.join('.') || '(top level)'}`, 'unknown key "__proto__"');
      Object.assign(raw, doc);
    }
  }
  const keys = configKeys();
  for (const key of keys) {
    const name = sources.env?.[key.env] === undefined && key.legacyEnv !== key.env ? key.legacyEnv : key.env;
    const v = sources.env?.[name];
    if (v !== undefined && v !== '') {
      setPath(raw, key.path, coerce(key, v, name));
      origin.set(key.path.join('.'), name);
    }
  }
  for (const key of keys) {
    const v = sources.flags?.[key.flag];
    if (v !== undefined) {
      setPath(raw, key.path, coerce(key, v, `--${key.flag}`));
      origin.set(key.path.join('.'), `--${key.flag}`);
    }
  }
  /** Where a key came from, for its error: the flag or variable that set it (or a key above it), else the file's path. */
  const whereOf = (path: string[]): string => {
    // alerts.webhooks[0].url, devices."aa:bb:cc:dd:ee:ff".name
    const dotted = (parts: string[]) => parts.map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : `${i > 0 ? '.' : ''}${/^[\w-]+$/.test(part) ? part : keyText(part)}`)).join('');
    // a flag or variable with a JSON value (--devices, --webhooks): the place inside it too
    for (let n = path.length; n > 0; n--) {
      const from = origin.get(path.slice(0, n).join('.'));
      if (from !== undefined) return n === path.length ? from : `${from}: ${dotted(path.slice(n))}`;
    }
    return sources.file ? `${sources.file}: ${dotted(path) || '(top level)'}` : dotted(path) || 'config';
  };
  // before the defaults: TypeBox's Default turns a mapping given for a list into an empty list, which then
  // passes (a single webhook written without its list turned the alerts off in silence)
  const notList = firstNonList(ConfigSchema, raw, []);
  if (notList !== null) {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', whereOf(notList), 'must be a list, got a mapping (a list of one: "- ..." in YAML, [{...}] in JSON)');
  }
  const withDefaults = Value.Default(ConfigSchema, Value.Clone(raw)) as Record<string, unknown>;
  const first = Value.Errors(ConfigSchema, withDefaults).First();
  if (first) {
    // a JSON pointer: "~1" is "/" and "~0" is "~" inside a key
    // "" is the document itself, "/" its key "" (YAML's ": x")
    let path = (first.path === '' ? [] : first.path.slice(1).split('/')).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
    let message = first.message.toLowerCase();
    const bounds = first.schema as TSchema & { minimum?: number; maximum?: number };
    if (/unexpected property|additional/i.test(first.message)) {
      const unknown = path[path.length - 1];
      path = path.slice(0, -1);
      const parent = schemaAt(path);
      const known = Object.keys((parent as TObject).properties ?? {});
      message = known.length > 0 || !(parent as { patternProperties?: unknown }).patternProperties
        ? `unknown key ${keyText(unknown)} (known: ${known.join(', ')})`
        : `${keyText(unknown)} is not a MAC address (aa:bb:cc:dd:ee:ff)`;
    } else if (first.value === undefined) {
      // a required field left out (a catalogue entry without its service): not "must be one of ..., got undefined"
      const choices = kindOf(first.schema).choices;
      message = `missing${choices ? ` (one of ${choices.join(', ')})` : ''}`;
    } else if (typeof first.value === 'number' && bounds.minimum !== undefined && first.value < bounds.minimum) {
      message = `must be at least ${bounds.minimum}, got ${first.value}`;
    } else if (typeof first.value === 'number' && bounds.maximum !== undefined && first.value > bounds.maximum) {
      message = `must be at most ${bounds.maximum}, got ${first.value}`;
    } else if ((first.schema as Extra).hint) {
      message = `must be ${(first.schema as Extra).hint}, got ${JSON.stringify(first.value)}`;
    } else if ((first.schema as { anyOf?: unknown[] }).anyOf) {
      const choices = kindOf(first.schema).choices;
      if (choices) message = `must be one of ${choices.join(', ')}, got ${JSON.stringify(first.value)}`;
    }
    // a flag or variable names a whole key; an error may be deeper (a list item): whereOf finds the key's origin
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', whereOf(path), message);
  }
  // empty: the host name; resolved here, so everything downstream reads one name
  // one device written twice (68-DB-F5-90-19-64 and 68:db:f5:90:19:64): the last won in silence
  const seenMacs = new Map<string, string>();
  for (const key of Object.keys((withDefaults.devices ?? {}) as Record<string, unknown>)) {
    const mac = normalizeMac(key);
    if (mac === null) continue;
    const before = seenMacs.get(mac);
    if (before !== undefined) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', whereOf(['devices']), `${keyText(before)} and ${keyText(key)} are the same device (${mac}): write it once`);
    seenMacs.set(mac, key);
  }
  if (withDefaults.site === '') withDefaults.site = defaultSite();
  const frozen = deepFreeze(withDefaults as Config);
  ORIGINS.set(frozen, { byKey: origin, file: sources.file ?? null, fileKeys: fileKeyPaths(raw, origin) });
  return frozen;
}
