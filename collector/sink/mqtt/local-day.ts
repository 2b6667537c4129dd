/**
 * Calendar days in the owner's time zone (detect.timeZone): the daily counters published over MQTT
 * reset when the local day changes, and Home Assistant is told the instant they did (last_reset).
 */
import { earshotError } from '../../errors.js';

/** One local calendar day. */
export interface LocalDay {
  /** YYYY-MM-DD in the time zone. */
  key: string;
  /** First instant of the day (epoch ms): local midnight, or the first instant after a gap at midnight. */
  startMs: number;
  /** First instant of the next day (epoch ms). */
  endMs: number;
  /** startMs as ISO 8601 local time with the zone's offset, e.g. 2024-03-31T00:00:00+01:00. */
  startIso: string;
}

interface Parts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Zones that are UTC: their days are plain arithmetic, with no Intl formatter (ICU's first costs ~20 ms at start). */
const UTC_ZONES = new Set(['UTC', 'Etc/UTC']);

/** Days of one time zone; the day last asked for is kept, so most calls cost a comparison. */
export class LocalDays {
  /** Null in UTC (UTC_ZONES). */
  private readonly format: Intl.DateTimeFormat | null = null;
  private last: LocalDay | null = null;

  /** Throws the configuration error for an unknown zone. */
  constructor(readonly timeZone: string) {
    if (UTC_ZONES.has(timeZone)) return;
    try {
      this.format = new Intl.DateTimeFormat('en-GB', {
        timeZone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
      });
    } catch {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', 'detect.timeZone', `${JSON.stringify(timeZone)} is not an IANA time zone such as Europe/Berlin`);
    }
  }

  /** The local day that contains `ms`. */
  dayOf(ms: number): LocalDay {
    const last = this.last;
    if (last !== null && ms >= last.startMs && ms < last.endMs) return last;
    const p = this.parts(ms);
    const startMs = this.startOf(p.year, p.month, p.day);
    const next = new Date(Date.UTC(p.year, p.month - 1, p.day + 1));
    const endMs = this.startOf(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate());
    const day: LocalDay = { key: `${p.year}-${pad(p.month)}-${pad(p.day)}`, startMs, endMs, startIso: this.isoLocal(startMs) };
    this.last = day;
    return day;
  }

  /** `ms` as ISO 8601 local time with the zone's offset (seconds precision). */
  isoLocal(ms: number): string {
    const p = this.parts(ms);
    const offsetMin = Math.round(this.offsetMs(Math.floor(ms / 1000) * 1000) / 60_000);
    const sign = offsetMin < 0 ? '-' : '+';
    const abs = Math.abs(offsetMin);
    return `${p.year}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  }

  private parts(ms: number): Parts {
    if (this.format === null) {
      const d = new Date(ms);
      return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
    }
    const out: Parts = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
    for (const part of this.format.formatToParts(ms)) {
      if (part.type in out) out[part.type as keyof Parts] = Number(part.value);
    }
    return out;
  }

  /** Local time minus UTC at `ms`, in ms (whole seconds). */
  private offsetMs(ms: number): number {
    const p = this.parts(ms);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
  }

  /**
   * The first instant of a local date. Midnight read with the offset in force before and after it;
   * where midnight falls in a DST gap (Santiago, Beirut) the earliest instant already on that date wins.
   */
  private startOf(year: number, month: number, day: number): number {
    const naive = Date.UTC(year, month - 1, day);
    const first = naive - this.offsetMs(naive);
    const second = naive - this.offsetMs(first);
    const key = `${year}-${month}-${day}`;
    const onDate = (ms: number) => {
      const p = this.parts(ms);
      return `${p.year}-${p.month}-${p.day}` === key;
    };
    const candidates = [first, second].filter(onDate).sort((a, b) => a - b);
    return candidates[0] ?? Math.max(first, second);
  }
}
