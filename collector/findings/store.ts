/**
 * The findings of a run, keyed by (kind, device, subject): one record per key that counts how often it
 * was seen, keeps its first and last time and a few lines of evidence. Everything in it comes from
 * packets (names, paths, hosts), so it is bounded: at most MAX_FINDINGS records (a new key past that is
 * dropped and counted), MAX_EVIDENCE lines each (later lines counted), every text cut to MAX_TEXT.
 * Findings are few and rare (the hooks in index.ts filter per flow before they get here), so records
 * are plain objects and keys are strings.
 */
import { formatMac } from '../decode/packet.js';

export const FINDING_KINDS = [
  'port-mapping', 'igd-discovery', 'inbound-connection',
  'dns-public-resolver', 'dns-bypass', 'dns-over-tls', 'dns-over-https',
  'plain-http', 'old-tls', 'plaintext-protocol',
  'assistant-shares-segment',
] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export const SEVERITIES = ['info', 'low', 'medium', 'high'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Most findings kept; a new one past this is dropped (counted). */
export const MAX_FINDINGS = 500;
/** Most evidence lines per finding (the first ones; later distinct lines are counted). */
export const MAX_EVIDENCE = 10;
/** Longest text kept from a packet (a host, a path, a name), and longest evidence line. */
export const MAX_TEXT = 200;

/** A finding as the API, the report and the events show it. */
export interface FindingRecord {
  /** Stable: kind, device and a hash of the subject. */
  id: string;
  kind: FindingKind;
  severity: Severity;
  /** MAC of the local device it is about; null when none is known. */
  device: string | null;
  deviceName: string | null;
  /** The device is a voice assistant (as the inventory says now). */
  assistant: boolean;
  /** What in particular (a resolver's address, a protocol, a port); '' when the kind says it all. */
  subject: string;
  firstSeen: string;
  lastSeen: string;
  /** Times seen (flows, requests, packets: each kind says). */
  count: number;
  title: string;
  evidence: string[];
  /** Distinct evidence lines left out past MAX_EVIDENCE. */
  evidenceDropped: number;
  advice: string;
}

/** A finding as kept while the run goes on (times in ms, the device as a number). */
export class Finding {
  count = 0;
  lastMs: number;
  readonly evidence: string[] = [];
  evidenceDropped = 0;

  constructor(
    readonly id: string,
    readonly kind: FindingKind,
    public severity: Severity,
    readonly deviceMac: number,
    readonly subject: string,
    readonly firstMs: number,
    public title: string,
    readonly advice: string,
  ) {
    this.lastMs = firstMs;
  }
}

/** Replaces control and format characters (terminal escapes, bidi overrides) and cuts to `max`. */
export function cleanText(text: string, max = MAX_TEXT): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, '?');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** 32-bit FNV-1a of a string, as 8 hex digits (ids: short, stable across runs). */
function fnv(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

const rank = (s: Severity) => SEVERITIES.indexOf(s);

/** What one sighting says: the finding's key, its severity and words, and a line of evidence. */
export interface Sighting {
  kind: FindingKind;
  severity: Severity;
  deviceMac: number;
  subject: string;
  timeMs: number;
  title: string;
  advice: string;
  evidence: string;
}

export interface FindingStoreStats {
  findings: number;
  /** New findings left out because MAX_FINDINGS were held. */
  findingsDropped: number;
}

/**
 * A finding as the state file keeps it (collector/identify/state.ts), so a restarted collector still
 * lists what it found and does not announce it again as new.
 */
export interface SavedFinding {
  kind: FindingKind;
  severity: Severity;
  /** MAC text of the device, null when none is known. */
  device: string | null;
  subject: string;
  firstMs: number;
  lastMs: number;
  count: number;
  title: string;
  advice: string;
  evidence: string[];
  evidenceDropped: number;
}

/**
 * Holds the findings. `onChange(finding, isNew)` is called when a finding appears (isNew) and when its
 * severity rises (not for every further sighting: those only count).
 */
export class FindingStore {
  readonly stats: FindingStoreStats = { findings: 0, findingsDropped: 0 };
  private readonly byKey = new Map<string, Finding>();

  constructor(private readonly onChange: (finding: Finding, isNew: boolean) => void = () => {}, private readonly max = MAX_FINDINGS) {}

  /** A new finding under its key, or null when the bound is reached (counted). */
  private create(kind: FindingKind, severity: Severity, deviceMac: number, subject: string, firstMs: number, title: string, advice: string): Finding | null {
    if (this.byKey.size >= this.max) {
      this.stats.findingsDropped++;
      return null;
    }
    const device = deviceMac >= 0 ? formatMac(deviceMac).replace(/:/g, '') : 'none';
    const f = new Finding(`${kind}-${device}-${fnv(subject)}`, kind, severity, deviceMac, subject, firstMs, cleanText(title), cleanText(advice, 1000));
    this.byKey.set(findingKey(kind, deviceMac, subject), f);
    this.stats.findings = this.byKey.size;
    return f;
  }

  /** Records one sighting; returns the finding (null when the bound dropped it). */
  add(s: Sighting): Finding | null {
    const subject = cleanText(s.subject);
    const held = this.byKey.get(findingKey(s.kind, s.deviceMac, subject));
    const isNew = held === undefined;
    const f = held ?? this.create(s.kind, s.severity, s.deviceMac, subject, s.timeMs, s.title, s.advice);
    if (f === null) return null;
    f.count++;
    if (s.timeMs > f.lastMs) f.lastMs = s.timeMs;
    const line = cleanText(s.evidence);
    if (!f.evidence.includes(line)) {
      if (f.evidence.length < MAX_EVIDENCE) f.evidence.push(line);
      else f.evidenceDropped++;
    }
    const rose = !isNew && rank(s.severity) > rank(f.severity);
    if (rose) {
      f.severity = s.severity;
      f.title = cleanText(s.title);
    }
    if (isNew || rose) this.onChange(f, isNew);
    return f;
  }

  /** Removes the findings `drop` says so of (a resolver found to be the home's own, say). */
  removeWhere(drop: (f: Finding) => boolean): void {
    for (const [key, f] of this.byKey) if (drop(f)) this.byKey.delete(key);
    this.stats.findings = this.byKey.size;
  }

  /** Every finding, in the order they first appeared. */
  all(): Finding[] {
    return [...this.byKey.values()];
  }

  /** The findings as the state file keeps them. */
  saved(): SavedFinding[] {
    return this.all().map((f) => ({
      kind: f.kind, severity: f.severity, device: f.deviceMac >= 0 ? formatMac(f.deviceMac) : null, subject: f.subject, firstMs: f.firstMs,
      lastMs: f.lastMs, count: f.count, title: f.title, advice: f.advice, evidence: [...f.evidence], evidenceDropped: f.evidenceDropped,
    }));
  }

  /**
   * Takes back findings a state file kept (rows the caller checked: kinds, severities, MACs, sizes), without
   * announcing them: they were new in an earlier run. Texts are cleaned and cut again, the bounds hold; a
   * finding already held keeps its own record. Returns how many were taken.
   */
  restore(rows: readonly SavedFinding[], macOf: (text: string) => number): number {
    let taken = 0;
    for (const r of rows) {
      const mac = r.device === null ? -1 : macOf(r.device);
      const subject = cleanText(r.subject);
      if (this.byKey.has(findingKey(r.kind, mac, subject))) continue;
      const f = this.create(r.kind, r.severity, mac, subject, r.firstMs, r.title, r.advice);
      if (f === null) break;
      f.count = r.count;
      f.lastMs = Math.max(r.firstMs, r.lastMs);
      for (const line of r.evidence.slice(0, MAX_EVIDENCE)) {
        const clean = cleanText(line);
        if (!f.evidence.includes(clean)) f.evidence.push(clean);
      }
      f.evidenceDropped = r.evidenceDropped + Math.max(0, r.evidence.length - MAX_EVIDENCE);
      taken++;
    }
    return taken;
  }
}

const findingKey = (kind: FindingKind, deviceMac: number, subject: string) => `${kind}\u0000${deviceMac}\u0000${subject}`;
