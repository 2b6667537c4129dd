/**
 * The configured webhooks, checked and named once at start, with what the scheduler knows of each
 * (its failures in a row, whether its receiver is down, what its oldest alert is suspected of).
 */
import { createHash } from 'node:crypto';
import type { Config } from '../../config.js';
import { earshotError } from '../../errors.js';
import type { AlertEventName } from './payload.js';
import type { Preset } from './presets.js';

type On = Config['alerts']['webhooks'][number]['on'];

/** The alert events each `on` subscribes to. */
export const SUBSCRIPTIONS: Readonly<Record<On, readonly AlertEventName[]>> = {
  suspected: ['activation.suspected'],
  finished: ['activation.finished', 'activation.verdict-changed'],
  started: ['activation.started'],
  all: ['activation.started', 'activation.finished', 'activation.verdict-changed', 'activation.suspected'],
};

/** A webhook and its delivery state. */
export interface Hook {
  id: string;
  /** How logs name it (never the URL: it often holds a token). */
  label: string;
  url: string;
  preset: Preset;
  events: ReadonlySet<AlertEventName>;
  secret: string | null;
  headers: Record<string, string>;
  /** Failed attempts in a row (to log an outage once, and its end). */
  failing: number;
  /** The oldest alert and one behind it failed: the receiver is down (logged once, counted). */
  down: boolean;
  /** The oldest alert failed SUSPECT_AFTER times or more and has not been compared with a probe since. */
  probeOwed: boolean;
  /** When that probe may go. */
  probeNotBeforeMs: number;
  /** The last alert used as a probe: the next probe is the one after it. */
  lastProbeSeq: number;
  /** A probe went through: the oldest alert (this seq) gets one more try, and is set aside if it fails. */
  confirmSeq: number;
  /** The alert these fields are about (they reset when the oldest alert changes). */
  headSeq: number;
}

/** Checks and names the configured webhooks; throws a config error naming the bad key. */
export function buildHooks(config: Readonly<Config>): Map<string, Hook> {
  const hooks = new Map<string, Hook>();
  config.alerts.webhooks.forEach((w, i) => {
    const where = `alerts.webhooks[${i}]`;
    let url: URL;
    try {
      url = new URL(w.url);
    } catch {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${where}.url`, `not a URL: "${w.url}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${where}.url`, `must be http:// or https://, got "${url.protocol}"`);
    }
    const headers = { ...(w.headers ?? {}) };
    try {
      new Headers(headers);
    } catch (err) {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${where}.headers`, (err as Error).message);
    }
    const own = Object.keys(headers).find((name) => /^x-earshot-/i.test(name) || /^user-agent$/i.test(name));
    if (own !== undefined) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${where}.headers`, `"${own}" is earshot's own header: it cannot be set`);
    let id = w.name ?? `${w.preset}-${createHash('sha256').update(`${w.preset} ${w.on} ${w.url}`).digest('hex').slice(0, 10)}`;
    if (hooks.has(id)) {
      if (w.name !== undefined) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${where}.name`, `"${w.name}" names another webhook too`);
      let n = 2;
      while (hooks.has(`${id}-${n}`)) n++;
      id = `${id}-${n}`;
    }
    const label = w.name ?? `${w.preset} ${url.host}`;
    const events = new Set<AlertEventName>(SUBSCRIPTIONS[w.on]);
    for (const kind of w.notices ?? []) events.add(`notice.${kind}`);
    hooks.set(id, { id, label, url: url.href, preset: w.preset as Preset, events, secret: w.secret ?? null, headers, failing: 0, down: false, probeOwed: false, probeNotBeforeMs: 0, lastProbeSeq: 0, confirmSeq: -1, headSeq: -1 });
  });
  return hooks;
}
