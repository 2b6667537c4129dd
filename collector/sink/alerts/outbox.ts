/**
 * The outbox: alerts waiting to be delivered, one queue per webhook, bounded in count. On disk (one
 * JSON file per delivery under dataDir/outbox/webhooks, written with writeFileAtomic: fsynced, renamed,
 * directory fsynced, so a power cut leaves whole deliveries or none) it survives restarts; without a
 * data directory it is kept in memory. When full, the oldest delivery not being attempted is dropped
 * and counted. A file that cannot be read back, and a delivery the receiver refuses for its own
 * content, are moved into the `quarantine` folder beside them (bounded), never silently deleted.
 */
import { readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, quarantine, removeFile, TMP_SUFFIX, writeFileAtomic } from '../../durable.js';
import { makeDirs, removeLeftoverTemporaries, sealJson, unsealJson } from '../../data-dir.js';
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

/** A file or delivery moved aside: where it was, where it is now (null: it could only be removed), why. */
export interface SetAside {
  file: string;
  aside: string | null;
  why: string;
}

/** Most files kept in the quarantine folder; beyond it the oldest are removed. */
export const MAX_QUARANTINED = 100;
/** The folder, inside the outbox directory, that holds what was set aside. */
export const QUARANTINE_DIR = 'quarantine';

const NAME = /^(\d{12})\.json$/;
const EVENTS = new Set(['activation.suspected', 'activation.finished', 'activation.started', 'activation.verdict-changed', 'notice.new-endpoint', 'notice.finding']);
const KEYS = new Set(['v', 'hook', 'event', 'key', 'createdMs', 'attempts', 'nextAttemptMs', 'headers', 'body']);
/** A delivery is a few kilobytes (presets cap their bodies): a file far larger is not one, and is not read. */
const MAX_FILE_BYTES = 1 << 20;
/** Alerts are made by the running clock: a creation time further ahead than this is a damaged file. */
const FUTURE_SLACK_MS = 86_400_000;

/** Checks a delivery file field by field; returns what is wrong, or the file. */
function parseFile(text: string, nowMs: number): DeliveryFile | string {
  if (text.length === 0) return 'empty file';
  if (text.includes('\0')) return 'NUL bytes in the file (a write cut short)';
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'not JSON (a write cut short?)';
  }
  try {
    doc = JSON.parse(unsealJson(text));
  } catch (err) {
    return (err as Error).message;
  }
  const d = doc as Partial<DeliveryFile> | null;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return 'not a JSON object';
  const unknown = Object.keys(d).find((k) => !KEYS.has(k));
  if (unknown !== undefined) return `unknown field ${JSON.stringify(unknown.slice(0, 40))}`;
  if (d.v !== 1) return 'not version 1';
  if (typeof d.hook !== 'string' || d.hook === '' || typeof d.key !== 'string' || d.key === '' || typeof d.body !== 'string') return 'hook, key or body missing';
  if (!EVENTS.has(d.event as string)) return 'unknown event';
  if (!Number.isSafeInteger(d.attempts) || (d.attempts as number) < 0) return 'bad attempts';
  if (!Number.isFinite(d.createdMs) || (d.createdMs as number) <= 0 || (d.createdMs as number) > nowMs + FUTURE_SLACK_MS) return 'bad createdMs';
  if (!Number.isFinite(d.nextAttemptMs)) return 'bad nextAttemptMs';
  if (typeof d.headers !== 'object' || d.headers === null || Array.isArray(d.headers) || Object.values(d.headers).some((v) => typeof v !== 'string')) return 'bad headers';
  try {
    new Headers(d.headers);
  } catch {
    return 'bad headers';
  }
  return d as DeliveryFile;
}

export class Outbox {
  /** Deliveries dropped because the outbox was full. */
  dropped = 0;
  /** Files found unreadable or damaged (quarantined). */
  unreadable = 0;
  /** Deliveries set aside because the receiver refused them for their content (quarantined). */
  refused = 0;
  /** What the constructor moved aside or removed: the sink logs it. */
  readonly foundDamaged: SetAside[] = [];
  private readonly all = new Map<number, Delivery>();
  private readonly byHook = new Map<string, Map<number, Delivery>>();
  private nextSeq = 1;

  /** `dir` null keeps deliveries in memory. Opening a directory picks up what an earlier run left. */
  constructor(private readonly dir: string | null, private readonly maxDeliveries: number, nowMs = Date.now()) {
    if (dir === null) return;
    makeDirs(dir);
    // deliveries cut short by a crash while being written (older runs named them NAME.tmp)
    removeLeftoverTemporaries(dir);
    const names: Array<[number, string]> = [];
    for (const name of readdirSync(dir)) {
      const m = NAME.exec(name);
      if (m) names.push([Number(m[1]), name]);
    }
    names.sort((a, b) => a[0] - b[0]);
    for (const [seq, name] of names) {
      const file = this.readFile(name, nowMs);
      if (typeof file === 'string') {
        this.unreadable++;
        this.foundDamaged.push(this.moveAside(join(dir, name), file, 'damaged'));
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

  /**
   * A delivery behind the head of `hook`'s queue to try while the head keeps failing: the first after
   * `afterSeq`, else the first behind the head (so successive probes walk the queue). Undefined when the
   * head is alone.
   */
  behindHead(hook: string, afterSeq: number): Delivery | undefined {
    const queue = this.byHook.get(hook);
    if (queue === undefined || queue.size < 2) return undefined;
    let first: Delivery | undefined;
    let isHead = true;
    for (const d of queue.values()) {
      if (isHead) {
        isHead = false;
        continue;
      }
      first ??= d;
      if (d.seq > afterSeq) return d;
    }
    return first;
  }

  /** Every delivery for `hook`, oldest first. */
  forHook(hook: string): IterableIterator<Delivery> {
    return (this.byHook.get(hook) ?? new Map<number, Delivery>()).values();
  }

  /** Adds a delivery due at `nowMs`; drops the oldest ones while the outbox is over its bound. */
  add(hook: string, event: AlertEventName, key: string, request: RenderedRequest, nowMs: number): Delivery {
    const delivery: Delivery = { seq: this.nextSeq, hook, event, key, createdMs: nowMs, attempts: 0, nextAttemptMs: nowMs, inFlight: false, request: null };
    if (this.dir === null) delivery.request = request;
    else this.write(delivery, request);
    this.nextSeq++;
    this.index(delivery);
    this.trim();
    return delivery;
  }

  /**
   * The delivery's request; null when its file is gone or damaged: the delivery then leaves the queue,
   * its file is quarantined, and `onDamaged` hears what happened.
   */
  request(delivery: Delivery, onDamaged: (what: SetAside) => void = () => undefined, nowMs = Date.now()): RenderedRequest | null {
    if (delivery.request !== null) return delivery.request;
    const name = this.fileName(delivery);
    const file = this.readFile(name, nowMs);
    if (typeof file === 'string') {
      this.unreadable++;
      this.forget(delivery);
      onDamaged(this.moveAside(join(this.dir as string, name), file, 'damaged'));
      return null;
    }
    return { headers: file.headers, body: file.body };
  }

  /** Saves the delivery's attempts and next attempt time (after a failed attempt). */
  update(delivery: Delivery, request: RenderedRequest): void {
    if (this.dir !== null && this.all.has(delivery.seq)) this.write(delivery, request);
  }

  /** Removes a delivery (delivered, or given up); on disk the removal is fsynced. */
  remove(delivery: Delivery): void {
    if (!this.forget(delivery)) return;
    if (this.dir !== null) removeFile(join(this.dir, this.fileName(delivery)));
  }

  /**
   * Sets a delivery aside that its receiver refuses for its own content while taking others: it leaves
   * the queue and its file goes to the quarantine folder (in memory it is only counted).
   */
  setAside(delivery: Delivery, why: string): SetAside {
    this.refused++;
    this.forget(delivery);
    if (this.dir === null) return { file: delivery.key, aside: null, why };
    return this.moveAside(join(this.dir, this.fileName(delivery)), why, 'refused');
  }

  private readFile(name: string, nowMs: number): DeliveryFile | string {
    try {
      const path = join(this.dir as string, name);
      const size = statSync(path).size;
      if (size > MAX_FILE_BYTES) return `${size} bytes, more than a delivery ever holds`;
      return parseFile(readFileSync(path, 'utf8'), nowMs);
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
  }

  /** Moves a file (or a directory named like one) into the quarantine folder, bounded. */
  private moveAside(path: string, why: string, tag: 'damaged' | 'refused'): SetAside {
    const into = join(this.dir as string, QUARANTINE_DIR);
    try {
      makeDirs(into);
    } catch {
      return { file: path, aside: quarantine(path), why };
    }
    let aside: string | null;
    if (tag === 'damaged') {
      aside = quarantine(path, into);
    } else {
      aside = join(into, `${path.slice(path.lastIndexOf('/') + 1)}.refused-${Date.now()}`);
      try {
        renameSync(path, aside);
        fsyncDir(this.dir as string);
        fsyncDir(into);
      } catch {
        rmSync(path, { force: true, recursive: true });
        aside = null;
      }
    }
    this.boundQuarantine(into);
    return { file: path, aside, why };
  }

  /** Keeps the newest MAX_QUARANTINED files of the quarantine folder (by the time in their names). */
  private boundQuarantine(into: string): void {
    let names: string[];
    try {
      names = readdirSync(into).filter((n) => !TMP_SUFFIX.test(n));
    } catch {
      return;
    }
    if (names.length <= MAX_QUARANTINED) return;
    const timeOf = (n: string) => Number(/-(\d+)$/.exec(n)?.[1] ?? 0);
    names.sort((a, b) => timeOf(a) - timeOf(b) || (a < b ? -1 : 1));
    for (const n of names.slice(0, names.length - MAX_QUARANTINED)) rmSync(join(into, n), { force: true, recursive: true });
    fsyncDir(into);
  }

  private forget(delivery: Delivery): boolean {
    if (!this.all.delete(delivery.seq)) return false;
    const queue = this.byHook.get(delivery.hook);
    queue?.delete(delivery.seq);
    if (queue?.size === 0) this.byHook.delete(delivery.hook);
    return true;
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
    writeFileAtomic(join(this.dir as string, this.fileName(delivery)), sealJson(JSON.stringify(file)));
  }

  private fileName(delivery: Delivery): string {
    return `${String(delivery.seq).padStart(12, '0')}.json`;
  }
}
