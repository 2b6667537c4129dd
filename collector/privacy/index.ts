/**
 * The privacy stage of a run: the endpoint ledger (collector/privacy/ledger.ts) fed by flow ends, its
 * organisations from the organisation lookup, its memory in the data directory, and the new-endpoint
 * notices it raises for assistants. Built by the runtime; runs on the pipeline's thread.
 */
import type { Config } from '../config.js';
import type { Device } from '../identify/device.js';
import type { Logger } from '../log.js';
import { formatMac } from '../mac.js';
import type { EventDevice, NewEndpointNotice, NoticeEvent } from '../sink/events.js';
import { LocalDays } from '../sink/mqtt/local-day.js';
import { NewestRing } from '../sink/ring.js';
import type { FlowRecord } from '../flow/record.js';
import type { EndpointTraffic } from '../sink/influx/endpoints.js';
import { partyOf } from './orgs.js';
import { loadLedger, PrivacyLedger, saveLedger, type LedgerEndpoint, type NewEndpointEvent, type OrgLookup } from './ledger.js';

/** New-endpoint notices the API and the status page keep (the newest). */
export const MAX_NOTICES = 1000;

/** A new-endpoint notice as the API shows it: the device as its MAC and name, the time as ISO 8601. */
export type ApiNotice = Omit<NewEndpointNotice, 'device' | 'seenMs' | 'atMs'> & { device: string; deviceName: string | null; seen: string };

/** Most seconds between two saves of the ledger's memory while organisations are being learnt. */
const SAVE_EVERY_MS = 10_000;

export interface PrivacyDeps {
  log: Logger;
  /** The inventory's record of a device (undefined when unknown or tagging is off). */
  device: (mac: number) => Device | undefined;
  lookup: OrgLookup;
  onNotice: (event: NoticeEvent) => void;
  /** Each ended flow's traffic by organisation (the InfluxDB sink's `endpoint` points). */
  onTraffic?: (t: EndpointTraffic) => void;
}

/** One assistant's endpoints as the API, the status page and the text report show them. */
export interface PrivacyDevice {
  mac: string;
  name: string | null;
  vendor: string | null;
  assistant: boolean;
  firstSeen: string;
  learningUntil: string;
  learning: boolean;
  organisations: number;
  services: number;
  endpoints: Array<Omit<LedgerEndpoint, 'firstMs' | 'lastMs' | 'lastDay'> & { firstSeen: string; lastSeen: string; connectionsPerDay: number }>;
  days: Array<{ day: string; voiceUp: number; otherUp: number; up: Record<string, number>; down: Record<string, number>; localUp: number; localDown: number }>;
  /** Share of the device's bytes whose endpoint has a known organisation (0..1; 1 with no bytes). */
  namedShare: number;
}

export function buildPrivacy(config: Readonly<Config>, deps: PrivacyDeps) {
  const days = new LocalDays(config.detect.timeZone);
  const learningMs = config.privacy.learningPeriodH * 3_600_000;
  const eventDevice = (mac: number): EventDevice => {
    const d = deps.device(mac);
    return d ? { mac: d.macText, name: d.name, vendor: d.vendor ?? d.ouiVendor, model: d.model, assistant: d.assistant } : { mac: formatMac(mac), name: null, vendor: null, model: null, assistant: false };
  };
  const ledger = new PrivacyLedger({
    learningMs,
    dayOf: (ms) => days.dayOf(ms).key,
    lookup: deps.lookup,
    vendorOf: (mac) => deps.device(mac)?.vendor ?? null,
    partyOf,
    watched: (mac) => deps.device(mac)?.assistant === true,
    onTraffic: deps.onTraffic === undefined ? undefined : (mac, e, bytesUp, bytesDown) => {
      const d = deps.device(mac);
      deps.onTraffic?.({ mac, device: d?.macText ?? formatMac(mac), deviceName: d?.name ?? null, org: e.org, category: e.category, service: e.service, party: e.party, bytesUp, bytesDown, endpoint: e });
    },
    onNewEndpoint(e: NewEndpointEvent) {
      const event: NoticeEvent = {
        kind: 'new-endpoint', what: e.kind, subject: e.subject, organisation: e.org, service: e.service, endpoint: e.endpoint,
        device: eventDevice(e.mac), seenMs: e.atMs, atMs: Date.now(),
      };
      deps.log.info({ device: event.device.mac, what: e.kind, subject: e.subject, endpoint: e.endpoint }, `${event.device.name ?? event.device.mac} contacted ${e.kind === 'new-service' ? `a new kind of service: ${e.subject}` : `a new organisation: ${e.subject}`} (${e.endpoint})`);
      notices.push({
        kind: 'new-endpoint', what: e.kind, subject: e.subject, organisation: e.org, service: e.service, endpoint: e.endpoint,
        device: event.device.mac, deviceName: event.device.name, seen: new Date(e.atMs).toISOString(),
      });
      deps.onNotice(event);
    },
  });
  const notices = new NewestRing<ApiNotice>(MAX_NOTICES);
  let dataDir: string | null = null;
  let lastSaveMs = 0;
  let saveFailing = false;

  const save = (nowMs: number): void => {
    if (dataDir === null || !ledger.dirty) return;
    lastSaveMs = nowMs;
    try {
      saveLedger(dataDir, ledger);
      if (saveFailing) deps.log.info('the endpoint ledger is saved again');
      saveFailing = false;
    } catch (err) {
      if (!saveFailing) deps.log.warn({ err: (err as Error).message }, `cannot save the endpoint ledger: ${(err as Error).message}; earshot tries again`);
      saveFailing = true;
    }
  };

  return {
    ledger,
    /** A flow ended. */
    onFlowEnd(record: FlowRecord): void {
      ledger.add(record);
      if (dataDir !== null && ledger.dirty) {
        const now = Date.now();
        if (now - lastSaveMs >= SAVE_EVERY_MS) save(now);
      }
    },
    /** Takes back what a run before remembered in `dir`, and saves there from now on. Returns a warning. */
    open(dir: string): string | null {
      dataDir = dir;
      const { saved, warning } = loadLedger(dir);
      if (saved !== null) ledger.restore(saved);
      return warning;
    },
    /** Saves what changed (at the end of a run). */
    close(): void {
      save(Date.now());
    },
    /** Every device the ledger holds (assistants first, then by bytes), in the API's form. */
    devices(options: { assistantsOnly?: boolean } = {}): PrivacyDevice[] {
      const out: PrivacyDevice[] = [];
      for (const mac of ledger.macs()) {
        const d = deps.device(mac);
        const assistant = d?.assistant === true;
        if (options.assistantsOnly === true && !assistant) continue;
        const v = ledger.view(mac);
        if (v === null || v.endpoints.length === 0) continue;
        const learningEnds = v.firstSeenMs + learningMs;
        let bytes = 0;
        let named = 0;
        for (const e of v.endpoints) {
          bytes += e.bytesUp + e.bytesDown;
          if (e.org !== null) named += e.bytesUp + e.bytesDown;
        }
        out.push({
          mac: formatMac(mac), name: d?.name ?? null, vendor: d?.vendor ?? d?.ouiVendor ?? null, assistant,
          firstSeen: new Date(v.firstSeenMs).toISOString(), learningUntil: new Date(learningEnds).toISOString(),
          learning: v.endpoints.every((e) => e.lastMs < learningEnds),
          organisations: v.organisations, services: v.services,
          endpoints: v.endpoints.map(({ firstMs, lastMs, lastDay: _lastDay, ...e }) => ({
            ...e, firstSeen: new Date(firstMs).toISOString(), lastSeen: new Date(lastMs).toISOString(),
            connectionsPerDay: Math.round((e.flows / Math.max(1, e.days)) * 10) / 10,
          })),
          days: v.days.map((x) => {
            const voiceUp = x.up.voice ?? 0;
            let otherUp = 0;
            for (const [service, n] of Object.entries(x.up)) if (service !== 'voice') otherUp += n;
            return { day: x.day, voiceUp, otherUp, up: x.up, down: x.down, localUp: x.localUp, localDown: x.localDown };
          }),
          namedShare: bytes === 0 ? 1 : named / bytes,
        });
      }
      const total = (p: PrivacyDevice) => p.endpoints.reduce((n, e) => n + e.bytesUp + e.bytesDown, 0);
      return out.sort((a, b) => Number(b.assistant) - Number(a.assistant) || total(b) - total(a) || (a.mac < b.mac ? -1 : 1));
    },
    /** The new-endpoint notices so far, newest first. */
    notices: (): ApiNotice[] => notices.toArray().reverse(),
    stats: ledger.stats,
  };
}

export type Privacy = ReturnType<typeof buildPrivacy>;
