/**
 * The webhook sink: turns activation events into alerts for each configured webhook (docs/alerts.md),
 * keeps them in the outbox until the receiver takes them (at least once: a receiver dedupes by the
 * idempotency key), and delivers them from one scheduler: one request at a time per webhook, oldest
 * first, with exponential back-off and full jitter between attempts, giving up after alerts.maxAgeH.
 *
 * An alert the receiver can never take (it answers 5xx, or times out, on that alert's content only)
 * must not hold the ones behind it until it ages out. After SUSPECT_AFTER failed attempts of a
 * webhook's oldest alert, the next attempt goes to an alert behind it (a probe). Taken: the receiver
 * works, so the oldest is tried once more at once, and if that fails too it is set aside (quarantined,
 * counted, logged once) and the queue moves on. Not taken: the receiver is down for everyone; the
 * order is kept, the webhook is counted as down, and each retry of the oldest alert is followed by one
 * probe, at the back-off pace.
 */
import { join } from 'node:path';
import type { Config } from '../../config.js';
import { earshotError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ActivationEvent, ActivationListener, NoticeEvent } from '../events.js';
import { attempt, backoffMs, timerDelay, type AttemptOutcome } from './deliver.js';
import { buildHooks, type Hook } from './hooks.js';
import { Outbox, type Delivery, type SetAside } from './outbox.js';
import { makeAlert, type AlertEventName } from './payload.js';
import { noticeKey, renderAlert, renderNotice, signature, type RenderedRequest } from './presets.js';

export { ALERT_SCHEMA } from './payload.js';
export { SUBSCRIPTIONS } from './hooks.js';



/** Most deliveries kept in the outbox; beyond it the oldest is dropped (counted). */
export const MAX_DELIVERIES = 10_000;
/** Failed attempts of a webhook's oldest alert before an alert behind it is tried (see the top). */
export const SUSPECT_AFTER = 3;
/** Damaged outbox files named one by one in the log at start; beyond this, one line says how many more. */
const NAMED_DAMAGED = 20;
/** Activations remembered as alerted "suspected" (so a later verdict change does not alert again). */
const MAX_SUSPECTED_IDS = 10_000;

export interface WebhookSinkDeps {
  log: Logger;
  /** Wall clock (ms since the epoch): delivery times, ages, signatures. */
  now?: () => number;
  /** Outbox bound (tests); default MAX_DELIVERIES. */
  maxDeliveries?: number;
  /** Failed attempts of the oldest alert before one behind it is tried (tests); default SUSPECT_AFTER. */
  suspectAfter?: number;
}

export interface WebhookStats {
  /** Alerts a receiver took (2xx). */
  delivered: number;
  /** Attempts that did not deliver (errors, timeouts, non-2xx answers). */
  failedAttempts: number;
  /** Alerts given up: refused (4xx), older than maxAgeH, or for a webhook no longer configured. */
  givenUp: number;
  /**
   * Alerts set aside into outbox/webhooks/quarantine: one the receiver would not take while it took
   * others (5xx or no answer for that alert only), and outbox files found damaged.
   */
  quarantined: number;
  /** Alerts dropped because the outbox was full (or could not be written). */
  dropped: number;
  /** Alerts waiting in the outbox. */
  pending: number;
  /** Webhooks whose receiver fails every alert now (its oldest alert and one behind it both failed). */
  receiversDown: number;
}

export interface WebhookSink extends ActivationListener {
  readonly stats: Readonly<WebhookStats>;
  /** Begins delivering, also what an earlier run left in the outbox. */
  start(): void;
  /** Delivers what is due within `waitMs`, then stops; the rest stays in the outbox. */
  close(waitMs: number): Promise<{ pending: number }>;
}

/** Builds the webhook sink, or returns null when no webhooks are configured. */
export function buildWebhookSink(config: Readonly<Config>, deps: WebhookSinkDeps): WebhookSink | null {
  if (config.alerts.webhooks.length === 0) return null;
  const { log } = deps;
  const clock = deps.now ?? Date.now;
  const hooks = buildHooks(config);
  const { maxAgeH, retryMinS, retryMaxS, timeoutS } = config.alerts;
  const maxAgeMs = maxAgeH * 3_600_000;
  const retryMinMs = retryMinS * 1000;
  const retryMaxMs = Math.max(retryMinMs, retryMaxS * 1000);
  const timeoutMs = timeoutS * 1000;
  const timeZone = config.detect.timeZone;
  const skipReasons = new Set<string>(config.alerts.skipReasons);
  const suspectAfter = Math.max(1, deps.suspectAfter ?? SUSPECT_AFTER);

  const dir = config.dataDir === null ? null : join(config.dataDir, 'outbox', 'webhooks');
  let outbox: Outbox;
  try {
    outbox = new Outbox(dir, deps.maxDeliveries ?? MAX_DELIVERIES, clock());
  } catch (err) {
    throw earshotError('EARSHOT_ERR_DATA_DIR', dir as string, (err as Error).message);
  }
  const logDamaged = (what: SetAside) => log.warn({ file: what.file, why: what.why, keptAs: what.aside }, 'webhook outbox: a damaged delivery file was set aside');
  let writeFailures = 0;
  let givenUp = 0;
  const stats: WebhookStats = {
    delivered: 0,
    failedAttempts: 0,
    get givenUp() {
      return givenUp;
    },
    get quarantined() {
      return outbox.unreadable + outbox.refused;
    },
    get dropped() {
      return outbox.dropped + writeFailures;
    },
    get pending() {
      return outbox.size;
    },
    get receiversDown() {
      let down = 0;
      for (const hook of hooks.values()) if (hook.down) down++;
      return down;
    },
  };
  outbox.foundDamaged.slice(0, NAMED_DAMAGED).forEach(logDamaged);
  if (outbox.foundDamaged.length > NAMED_DAMAGED) {
    log.warn({ more: outbox.foundDamaged.length - NAMED_DAMAGED, dir }, 'webhook outbox: more damaged delivery files were set aside');
  }
  if (outbox.dropped > 0) log.warn({ dropped: outbox.dropped, dir }, 'webhook outbox full: the oldest alerts were dropped');

  // deliveries for webhooks no longer configured cannot be sent anywhere
  const now0 = clock();
  for (const hookId of [...outbox.hooks()]) {
    const left = [...outbox.forHook(hookId)];
    if (!hooks.has(hookId)) {
      for (const d of left) outbox.remove(d);
      givenUp += left.length;
      log.warn({ webhook: hookId, alerts: left.length }, 'webhook outbox: alerts for a webhook no longer configured were dropped');
      continue;
    }
    // a restart is a fresh start: what an earlier run left is due at once
    for (const d of left) d.nextAttemptMs = Math.min(d.nextAttemptMs, now0);
  }
  if (outbox.size > 0) log.info({ alerts: outbox.size }, 'webhook outbox: alerts left by an earlier run will be delivered');

  const suspectedIds = new Set<string>();
  let started = false;
  let closed = false;
  /** Set by close(): attempts due after it wait for the next run. */
  let closeDeadline = Number.POSITIVE_INFINITY;
  let onSettled: (() => void) | null = null;
  let timer: NodeJS.Timeout | null = null;
  const stopper = new AbortController();
  const busyHooks = new Set<string>();
  const running = new Set<Promise<void>>();
  let lastDropped = outbox.dropped;

  function giveUp(hook: Hook, d: Delivery, why: string): void {
    givenUp++;
    outbox.remove(d);
    log.warn({ webhook: hook.label, event: d.event, key: d.key, attempts: d.attempts, why }, 'webhook alert given up');
  }

  /** The oldest alert of `hook` changed: what was suspected of it no longer holds. */
  function follow(hook: Hook, head: Delivery): void {
    if (hook.headSeq === head.seq) return;
    hook.headSeq = head.seq;
    hook.probeOwed = false;
    hook.confirmSeq = -1;
  }

  function receiverUp(hook: Hook): void {
    if (hook.failing > 0 || hook.down) log.info({ webhook: hook.label, failedAttempts: hook.failing }, 'webhook delivering again');
    hook.failing = 0;
    hook.down = false;
  }

  /** The wait before the next attempt: Retry-After capped at retryMaxS (a receiver cannot park alerts for years), else back-off. */
  function waitAfter(attempts: number, retryAfter: number | null): number {
    if (retryAfter === null) return backoffMs(attempts, retryMinMs, retryMaxMs);
    return Math.min(retryMaxMs, Math.max(retryMinMs, retryAfter));
  }

  /** An attempt of an alert behind the oldest one (a probe) came back. */
  function probed(hook: Hook, d: Delivery, request: RenderedRequest, outcome: Exclude<AttemptOutcome, { kind: 'aborted' }>): void {
    const head = outbox.head(hook.id);
    switch (outcome.kind) {
      case 'delivered':
        stats.delivered++;
        outbox.remove(d);
        receiverUp(hook);
        log.debug({ webhook: hook.label, event: d.event, key: d.key, status: outcome.status }, 'webhook alert delivered (behind a failing one)');
        // the receiver takes alerts: the oldest one gets one more try now, and is set aside if it fails
        if (head !== undefined) {
          hook.confirmSeq = head.seq;
          head.nextAttemptMs = clock();
        }
        return;
      case 'rejected':
        rejected(hook, d, outcome);
        return;
      case 'retry': {
        stats.failedAttempts++;
        d.attempts++;
        save(d, request);
        if (!hook.down) {
          hook.down = true;
          log.warn({ webhook: hook.label, waiting: [...outbox.forHook(hook.id)].length, reason: outcome.reason },
            'webhook receiver is down: its oldest alert and the next one both failed; alerts wait in order');
        }
        // a Retry-After on the probe asks for a pause for everyone: the oldest alert waits for it too
        if (head !== undefined && outcome.retryAfterMs !== null) {
          head.nextAttemptMs = Math.max(head.nextAttemptMs, Math.min(clock() + waitAfter(head.attempts, outcome.retryAfterMs), head.createdMs + maxAgeMs));
        }
        return;
      }
    }
  }

  function rejected(hook: Hook, d: Delivery, outcome: { status: number; reason: string }): void {
    stats.failedAttempts++;
    givenUp++;
    outbox.remove(d);
    log.warn({ webhook: hook.label, event: d.event, key: d.key, status: outcome.status, reason: outcome.reason }, 'webhook refused an alert; it is not retried');
  }

  function save(d: Delivery, request: RenderedRequest): void {
    try {
      outbox.update(d, request);
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'webhook outbox: cannot save the attempt count');
    }
  }

  async function send(hook: Hook, d: Delivery, request: RenderedRequest, probe: boolean): Promise<void> {
    const nowMs = clock();
    // set one after another, names compared without case: a configured header replaces the preset's
    // (`content-type` the preset's Content-Type), and earshot's own come last (a plain object joined
    // `x-earshot-site: forged` and earshot's into "forged, vm")
    const headers = new Headers(request.headers);
    for (const [name, value] of Object.entries(hook.headers)) headers.set(name, value);
    headers.set('User-Agent', 'earshot');
    headers.set('X-Earshot-Event', d.event);
    headers.set('X-Earshot-Idempotency-Key', d.key);
    headers.set('X-Earshot-Site', config.site);
    if (hook.secret !== null) headers.set('X-Earshot-Signature', signature(hook.secret, Math.floor(nowMs / 1000), request.body));
    const outcome = await attempt({ url: hook.url, headers: Object.fromEntries(headers), body: request.body, timeoutMs, signal: stopper.signal, nowMs });
    if (outcome.kind === 'aborted') return;
    if (probe) return probed(hook, d, request, outcome);
    switch (outcome.kind) {
      case 'delivered':
        stats.delivered++;
        outbox.remove(d);
        receiverUp(hook);
        log.debug({ webhook: hook.label, event: d.event, key: d.key, status: outcome.status }, 'webhook alert delivered');
        return;
      case 'rejected':
        rejected(hook, d, outcome);
        return;
      case 'retry': {
        if (hook.confirmSeq === d.seq) {
          // the receiver took an alert behind this one, and this one failed again: its content is at fault
          stats.failedAttempts++;
          d.attempts++;
          const aside = outbox.setAside(d, outcome.reason);
          log.warn({ webhook: hook.label, event: d.event, key: d.key, attempts: d.attempts, reason: outcome.reason, keptAs: aside.aside },
            'webhook receiver takes other alerts but not this one: it is set aside, the next ones go on');
          return;
        }
        stats.failedAttempts++;
        d.attempts++;
        const after = clock();
        const deadline = d.createdMs + maxAgeMs;
        if (after >= deadline) {
          giveUp(hook, d, `not delivered within alerts.maxAgeH (${maxAgeH} h); last: ${outcome.reason}`);
          return;
        }
        const wait = waitAfter(d.attempts, outcome.retryAfterMs);
        d.nextAttemptMs = Math.min(after + wait, deadline);
        save(d, request);
        // a receiver that asks for a pause (Retry-After) is alive and busy for everyone: no probe then.
        // The probe goes right after the oldest alert failed, so a receiver that comes back finds the
        // oldest alert first again (order is kept but for that instant).
        if (d.attempts >= suspectAfter && outcome.retryAfterMs === null) {
          hook.probeOwed = true;
          hook.probeNotBeforeMs = after;
        }
        const fields = { webhook: hook.label, event: d.event, key: d.key, attempts: d.attempts, reason: outcome.reason, retryInS: Math.round(wait / 100) / 10 };
        if (hook.failing === 0) log.warn(fields, 'webhook delivery failed; retrying with back-off');
        else log.debug(fields, 'webhook delivery failed again');
        hook.failing++;
        return;
      }
    }
  }

  function launch(hook: Hook, d: Delivery, request: RenderedRequest, probe: boolean): void {
    d.inFlight = true;
    busyHooks.add(hook.id);
    if (probe) {
      hook.probeOwed = false;
      hook.lastProbeSeq = d.seq;
    }
    const done: Promise<void> = send(hook, d, request, probe)
      .catch((err: unknown) => log.error({ webhook: hook.label, err: (err as Error).message }, 'webhook delivery failed unexpectedly'))
      .finally(() => {
        d.inFlight = false;
        busyHooks.delete(hook.id);
        running.delete(done);
        pump();
      });
    running.add(done);
  }

  /** Starts what is due (one request per webhook) and sets the one timer for what is due next. */
  function pump(): void {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (!started || stopper.signal.aborted) return settle();
    const now = clock();
    let wake = Number.POSITIVE_INFINITY;
    for (const hookId of [...outbox.hooks()]) {
      const hook = hooks.get(hookId) as Hook;
      if (busyHooks.has(hookId)) continue;
      for (let d = outbox.head(hookId); d !== undefined; d = outbox.head(hookId)) {
        if (now >= d.createdMs + maxAgeMs) {
          giveUp(hook, d, `not delivered within alerts.maxAgeH (${maxAgeH} h)`);
          continue;
        }
        if (now >= closeDeadline) break; // closing, and its time is up
        follow(hook, d);
        if (hook.probeOwed) {
          const probe = outbox.behindHead(hookId, hook.lastProbeSeq);
          if (probe !== undefined && hook.probeNotBeforeMs <= now) {
            const request = outbox.request(probe, logDamaged, now);
            if (request === null) continue; // its file was damaged: set aside, logged; look again
            launch(hook, probe, request, true);
            break;
          }
          if (probe !== undefined) wake = Math.min(wake, hook.probeNotBeforeMs);
        }
        if (d.nextAttemptMs > now) {
          wake = Math.min(wake, d.nextAttemptMs);
          break;
        }
        const request = outbox.request(d, logDamaged, now);
        if (request === null) continue; // its file was damaged: set aside, logged
        launch(hook, d, request, false);
        break;
      }
    }
    if (wake !== Number.POSITIVE_INFINITY && wake <= closeDeadline) {
      // a Retry-After or maxAgeH far ahead must not overflow the timer (it would fire every millisecond)
      timer = setTimeout(pump, timerDelay(wake - now));
      // while closing, the caller waits for this timer: it must keep the process alive
      if (onSettled === null) timer.unref();
    }
    settle(wake);
  }

  /** While closing: resolves close() once nothing runs and nothing more is due before the deadline. */
  function settle(wake = Number.POSITIVE_INFINITY): void {
    if (onSettled === null || running.size > 0) return;
    if (!stopper.signal.aborted && outbox.size > 0 && wake <= closeDeadline) return;
    onSettled();
  }

  function enqueue(hook: Hook, event: AlertEventName, source: ActivationEvent): void {
    const alert = makeAlert(event, source, config.site);
    try {
      outbox.add(hook.id, event, alert.key, renderAlert(hook.preset, alert, timeZone), clock());
    } catch (err) {
      writeFailures++;
      log.error({ webhook: hook.label, key: alert.key, err: (err as Error).message }, 'webhook outbox: cannot save an alert; it is dropped');
    }
  }

  /** The alert events an activation event makes; "suspected" once per activation. */
  function alertEvents(event: ActivationEvent): AlertEventName[] {
    // the owner chose not to hear of these (an aborted wake, a follow-up, ...)
    if (skipReasons.size > 0 && event.activation.reasons.some((r) => skipReasons.has(r))) return [];
    if (event.kind === 'started') return ['activation.started'];
    const events: AlertEventName[] = [event.kind === 'finished' ? 'activation.finished' : 'activation.verdict-changed'];
    const id = event.activation.id;
    if (event.activation.verdict === 'suspected' && !suspectedIds.has(id)) {
      suspectedIds.add(id);
      if (suspectedIds.size > MAX_SUSPECTED_IDS) suspectedIds.delete(suspectedIds.values().next().value as string);
      events.push('activation.suspected');
    }
    return events;
  }

  return {
    stats,
    onNotice(notice: NoticeEvent): void {
      const name: AlertEventName = `notice.${notice.kind}`;
      let added = false;
      for (const hook of hooks.values()) {
        if (!hook.events.has(name)) continue;
        try {
          outbox.add(hook.id, name, noticeKey(notice), renderNotice(hook.preset, notice, timeZone, config.site), clock());
          added = true;
        } catch (err) {
          writeFailures++;
          log.error({ webhook: hook.label, key: noticeKey(notice), err: (err as Error).message }, 'webhook outbox: cannot save a notice; it is dropped');
        }
      }
      if (added && started && !closed) pump();
    },
    onActivationEvent(event: ActivationEvent): void {
      let added = false;
      for (const name of alertEvents(event)) {
        for (const hook of hooks.values()) {
          if (!hook.events.has(name)) continue;
          enqueue(hook, name, event);
          added = true;
        }
      }
      if (outbox.dropped > lastDropped) {
        log.warn({ dropped: outbox.dropped - lastDropped, max: deps.maxDeliveries ?? MAX_DELIVERIES }, 'webhook outbox full: the oldest alerts were dropped');
        lastDropped = outbox.dropped;
      }
      if (added && started && !closed) pump();
    },
    start(): void {
      if (started || closed) return;
      started = true;
      pump();
    },
    close(waitMs: number): Promise<{ pending: number }> {
      if (closed) return Promise.resolve({ pending: outbox.size });
      closed = true;
      started = true;
      closeDeadline = clock() + Math.max(0, waitMs);
      return new Promise((resolve) => {
        const deadline = setTimeout(() => stopper.abort(), timerDelay(waitMs));
        onSettled = () => {
          onSettled = null;
          clearTimeout(deadline);
          if (timer !== null) clearTimeout(timer);
          timer = null;
          started = false;
          stopper.abort();
          resolve({ pending: outbox.size });
        };
        // the deadline aborts what runs; each aborted attempt settles, and the last one resolves
        stopper.signal.addEventListener('abort', () => settle(), { once: true });
        pump();
      });
    },
  };
}
