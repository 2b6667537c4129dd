/**
 * The outbox: alerts waiting to be delivered, one queue per webhook, bounded in count. On disk (one
 * JSON file per delivery under dataDir/outbox/webhooks, written to a temporary name and renamed, so a
 * crash leaves whole deliveries or none) it survives restarts; without a data directory it is kept in
 * memory. When full, the oldest delivery not being attempted is dropped and counted.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AlertEventName } from './payload.js';
import type { RenderedRequest } from './presets.js';

/** One alert for one webhook. */
export interface Delivery {
  readonly seq: number;
  /** The webhook's id (its name, or one derived from its preset, on and URL). */
  readonly hook: string;
  readonly event: AlertEventName;
  readonly key: string;
  readonly createdMs: number;
  /** Attempts made so far, and when the next may start (ms since the epoch). */
  attempts: number;
  nextAttemptMs: number;
  /** True while an attempt is under way (it is then never dropped). */
  inFlight: boolean;
  /** The request, when the outbox is in memory; on disk it is read at each attempt. */
  request: RenderedRequest | null;
}

/** The file of a delivery (docs/alerts.md, "The outbox"). */
interface DeliveryFile {
  v: 1;
  hook: string;
  event: AlertEventName;
  key: string;
  createdMs: number;
  attempts: number;
  nextAttemptMs: number;
  headers: Record<string, string>;
  body: string;
}

const NAME = /^(\d{12})\.json$/;
const EVENTS = new Set(['activation.suspected', 'activation.finished', 'activation.started', 'activation.verdict-changed']);

function parseFile(text: string): DeliveryFile | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  const d = doc as Partial<DeliveryFile> | null;
  if (!d || d.v !== 1 || typeof d.hook !== 'string' || typeof d.key !== 'string' || typeof d.body !== 'string') return null;
  if (!EVENTS.has(d.event as string) || !Number.isFinite(d.createdMs) || !Number.isFinite(d.attempts) || !Number.isFinite(d.nextAttemptMs)) return null;
  if (typeof d.headers !== 'object' || d.headers === null || Object.values(d.headers).some((v) => typeof v !== 'string')) return null;
  return d as DeliveryFile;
}

export class Outbox {
  /** Deliveries dropped because the outbox was full; files found unreadable (dropped too). */
  dropped = 0;
  unreadable = 0;
  private readonly all = new Map<number, Delivery>();
  private readonly byHook = new Map<string, Map<number, Delivery>>();
  private nextSeq = 1;

  /** `dir` null keeps deliveries in memory. Opening a directory picks up what an earlier run left. */
  constructor(private readonly dir: string | null, private readonly maxDeliveries: number) {
    if (dir === null) return;
    mkdirSync(dir, { recursive: true });
    const names: Array<[number, string]> = [];
    for (const name of readdirSync(dir)) {
      const m = NAME.exec(name);
      if (m) names.push([Number(m[1]), name]);
      // a delivery cut short by a crash while it was being written
      else if (name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
    }
    names.sort((a, b) => a[0] - b[0]);
    for (const [seq, name] of names) {
      let file: DeliveryFile | null = null;
      try {
        file = parseFile(readFileSync(join(dir, name), 'utf8'));
      } catch {
        file = null;
      }
      if (file === null) {
        this.unreadable++;
        rmSync(join(dir, name), { force: true });
        continue;
      }
      this.index({ seq, hook: file.hook, event: file.event, key: file.key, createdMs: file.createdMs, attempts: file.attempts, nextAttemptMs: file.nextAttemptMs, inFlight: false, request: null });
      this.nextSeq = seq + 1;
    }
    this.trim();
  }

  /** True when deliveries survive a restart. */
  get persistent(): boolean {
    return this.dir !== null;
  }

  get size(): number {
    return this.all.size;
  }

  /** The webhooks that have deliveries waiting. */
  hooks(): IterableIterator<string> {
    return this.byHook.keys();
  }

  /** The oldest delivery for `hook`, or undefined. */
  head(hook: string): Delivery | undefined {
    return this.byHook.get(hook)?.values().next().value;
  }

  /** Every delivery for `hook`, oldest first. */
  forHook(hook: string): IterableIterator<Delivery> {
    return (this.byHook.get(hook) ?? new Map<number, Delivery>()).values();
  }

  /** Adds a delivery due at `nowMs`; drops the oldest ones while the outbox is over its bound. */
  add(hook: string, event: AlertEventName, key: string, request: RenderedRequest, nowMs: number): Delivery {
    const delivery: Delivery = { seq: this.nextSeq++, hook, event, key, createdMs: nowMs, attempts: 0, nextAttemptMs: nowMs, inFlight: false, request: null };
    if (this.dir === null) delivery.request = request;
    else this.write(delivery, request);
    this.index(delivery);
    this.trim();
    return delivery;
  }

  /** The delivery's request; null when its file is gone or unreadable (the delivery is then removed and counted). */
  request(delivery: Delivery): RenderedRequest | null {
    if (delivery.request !== null) return delivery.request;
    let file: DeliveryFile | null = null;
    try {
      file = parseFile(readFileSync(join(this.dir as string, this.fileName(delivery)), 'utf8'));
    } catch {
      file = null;
    }
    if (file === null) {
      this.unreadable++;
      this.remove(delivery);
      return null;
    }
    return { headers: file.headers, body: file.body };
  }

  /** Saves the delivery's attempts and next attempt time (after a failed attempt). */
  update(delivery: Delivery, request: RenderedRequest): void {
    if (this.dir !== null && this.all.has(delivery.seq)) this.write(delivery, request);
  }

  /** Removes a delivery (delivered, or given up). */
  remove(delivery: Delivery): void {
    if (!this.all.delete(delivery.seq)) return;
    const queue = this.byHook.get(delivery.hook);
    queue?.delete(delivery.seq);
    if (queue?.size === 0) this.byHook.delete(delivery.hook);
    if (this.dir !== null) rmSync(join(this.dir, this.fileName(delivery)), { force: true });
  }

  private index(delivery: Delivery): void {
    this.all.set(delivery.seq, delivery);
    let queue = this.byHook.get(delivery.hook);
    if (queue === undefined) {
      queue = new Map();
      this.byHook.set(delivery.hook, queue);
    }
    queue.set(delivery.seq, delivery);
  }

  private trim(): void {
    while (this.all.size > this.maxDeliveries) {
      let oldest: Delivery | undefined;
      for (const d of this.all.values()) {
        if (!d.inFlight) {
          oldest = d;
          break;
        }
      }
      if (oldest === undefined) return;
      this.dropped++;
      this.remove(oldest);
    }
  }

  private write(delivery: Delivery, request: RenderedRequest): void {
    const file: DeliveryFile = {
      v: 1, hook: delivery.hook, event: delivery.event, key: delivery.key, createdMs: delivery.createdMs,
      attempts: delivery.attempts, nextAttemptMs: delivery.nextAttemptMs, headers: request.headers, body: request.body,
    };
    const name = this.fileName(delivery);
    const dir = this.dir as string;
    writeFileSync(join(dir, `${name}.tmp`), JSON.stringify(file));
    renameSync(join(dir, `${name}.tmp`), join(dir, name));
  }

  private fileName(delivery: Delivery): string {
    return `${String(delivery.seq).padStart(12, '0')}.json`;
  }
}
