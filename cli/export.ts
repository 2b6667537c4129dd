/**
 * `earshot export`: activations, verdicts, calls and endpoints read back from InfluxDB, as CSV or JSON
 * Lines, for studies with many homes (docs/export.md). What leaves is what a researcher may publish:
 * no device names, and every MAC replaced by a keyed pseudonym (HMAC-SHA256 with the study's salt)
 * unless asked otherwise. InfluxDB is read in pages (a day at a time, LIMIT/OFFSET or SLIMIT/SOFFSET
 * within it), and each page is written out before the next is asked for, so memory stays bounded
 * however long the study ran.
 */
import { createHmac } from 'node:crypto';
import { readFileBounded } from '../collector/durable.js';
import { openOutputFileWhenRead } from '../collector/output-file.js';
import { printable } from '../collector/text.js';
import { earshotError } from '../collector/errors.js';
import { parseTime as parseWakeTime } from '../collector/detect/wake-events.js';
import { normalizeMac } from '../collector/mac.js';
import { buildInfluxClient, influxTarget, InfluxQueryError, type InfluxClient, type QuerySeries } from '../collector/sink/influx/client.js';
import { ident, literal } from '../collector/sink/influx/line-protocol.js';
import type { CommandSpec, ParsedCommand } from './args.js';
import type { CliIo } from './run-capture.js';

export const KINDS = ['activations', 'verdicts', 'calls', 'endpoints'] as const;
export type ExportKind = (typeof KINDS)[number];

export const exportSpec: CommandSpec = {
  name: 'export',
  summary: 'Exports activations, verdicts, calls or endpoints of one, several or all sites from InfluxDB as CSV or JSON Lines, for studies. ' +
    'MACs are replaced by keyed pseudonyms (HMAC-SHA256 with the study\'s salt) and device names are left out unless asked for (docs/export.md).',
  usage: 'earshot export --since DATE [--until DATE] [--what KIND] [--format csv|jsonl] [--sites A,B] --salt-file FILE [-o FILE]',
  positionals: [0, 0],
  config: true,
  flags: {
    since: { type: 'string', value: 'DATE', description: 'Start (inclusive): 2026-11-01, 2026-11-01T08:00:00Z, or a time ago such as 7d or 12h.' },
    until: { type: 'string', value: 'DATE', description: 'End (exclusive), as --since.', default: 'now' },
    what: { type: 'string', value: 'KIND', description: `What to export, one of: ${KINDS.join(', ')}. activations: one row per activation (its current verdict only); verdicts: every verdict each activation had; calls: one row per call; endpoints: bytes and flows per site, device, organisation and service per --interval.`, default: 'activations' },
    format: { type: 'string', value: 'FORMAT', description: 'csv (RFC 4180, a header row, spreadsheet-safe) or jsonl (one JSON object per line).', default: 'csv' },
    sites: { type: 'string', value: 'A,B', description: 'Only these sites (comma-separated site names, as the collectors\' --site). Default: every site in the database. (--site is this collector\'s own name and does not filter.)' },
    interval: { type: 'string', value: 'N', description: 'endpoints: the interval rows are summed over: 1d, or hours dividing a day (1h, 6h, ...). Rows are whole intervals: a --since or --until inside one takes all of it.', default: '1d' },
    'salt-file': { type: 'string', value: 'FILE', description: 'File holding the study\'s secret salt (its first line, at least 16 characters); also EARSHOT_EXPORT_SALT. Required unless --plain-macs.' },
    'plain-macs': { type: 'boolean', description: 'Write the MACs as they are (a lab\'s own devices); no salt needed.' },
    'device-names': { type: 'boolean', description: 'Add the device names owners gave (e.g. "Anna\'s Echo"): they identify households; left out by default.' },
    output: { type: 'string', short: 'o', value: 'FILE', description: 'Write to FILE (complete or not at all: a temporary file renamed at the end). Default: standard output.' },
  },
  epilog: 'Examples:\n' +
    '  earshot export --since 2026-11-01 --until 2026-12-01 --salt-file study.salt -o activations.csv\n' +
    '  earshot export --since 30d --what endpoints --format jsonl --sites flat-a,house-b --salt-file study.salt',
};

/** Length of a pseudonym's hex part: 64 bits, so collisions among a study's devices are negligible. */
const PSEUDONYM_HEX = 16;
/** Rows asked for per query: a page of activations is ~0.5 MB of JSON, within the client's 4 MiB answer bound. */
const PAGE_ROWS = 2000;
/** Series asked for per endpoints query (one row each per interval of a day). */
const PAGE_SERIES = 500;
const DAY_MS = 86_400_000;

/** Parses a --since/--until value; throws a usage error naming `flag`. */
export function parseTime(flag: string, value: string, nowMs: number): number {
  const bad = (why = 'not a date') => earshotError('EARSHOT_ERR_USAGE', `export: --${flag}: ${why}: "${value.slice(0, 60)}" (e.g. 2026-11-01, 2026-11-01T08:00:00Z, 7d)`);
  const ago = /^(\d{1,9})(m|h|d|w)$/.exec(value);
  if (ago) {
    const ms = nowMs - Number(ago[1]) * { m: 60_000, h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS }[ago[2] as 'm' | 'h' | 'd' | 'w'];
    // 999999999d went out as "time >= -86398203405731420ms"
    if (ms < 0) throw bad('before 1970');
    return ms;
  }
  const date = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  // a time without a zone would depend on the machine's; a study mixes homes in several
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(date)) throw bad();
  // the wake events' reader checks the fields: Date.parse rolled 2026-02-30 over to 2026-03-02
  try {
    return parseWakeTime(date);
  } catch {
    throw bad();
  }
}

/** The pseudonym of a device tag value: MACs are keyed-hashed; `other`, `none` and names stay as they are. */
export function pseudonym(salt: string, device: string): string {
  const mac = normalizeMac(device);
  if (mac === null) return device;
  return `d-${createHmac('sha256', salt).update(mac).digest('hex').slice(0, PSEUDONYM_HEX)}`;
}

/**
 * An activation or call id with its MAC part (detector.ts: MAC without colons, then the start in ms)
 * replaced by the device's pseudonym, so the id stays unique and joinable but names no device.
 */
export function pseudonymId(salt: string, id: string): string {
  const m = /^(call-)?([0-9a-fA-F]{12})-(.*)$/.exec(id);
  if (!m) return id;
  return `${m[1] ?? ''}${pseudonym(salt, m[2])}-${m[3]}`;
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF. A text that a spreadsheet
 * would run as a formula (starting with = + - @, tab or CR: OWASP's CSV injection list) gets a leading
 * single quote; numbers are never changed (a negative number is not text from a packet).
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The columns of each kind, in order; the `device` column is the pseudonym (or the MAC with --plain-macs). */
const COLUMNS: Record<ExportKind, readonly string[]> = {
  activations: ['time', 'site', 'id', 'device', 'device_name', 'vendor', 'model', 'verdict', 'duration_s', 'bytes_up', 'bytes_down', 'score', 'reasons', 'server_name', 'wake_event_ms'],
  verdicts: ['time', 'site', 'id', 'device', 'device_name', 'verdict', 'current', 'reasons'],
  calls: ['time', 'site', 'id', 'device', 'device_name', 'duration_s', 'end_ms', 'bytes_up', 'bytes_down', 'packets_up', 'packets_down', 'media_seconds', 'peers'],
  endpoints: ['time', 'site', 'device', 'device_name', 'org', 'category', 'service', 'party', 'bytes_up', 'bytes_down', 'flows'],
};

interface Out {
  write(text: string): void;
  done(): void;
  abort(): void;
}

/** Standard output, or FILE written whole or not at all (collector/output-file.ts: temporary file, fsync, rename; a device in place). */
async function openOutput(path: string | undefined, io: CliIo): Promise<Out> {
  if (path === undefined || path === '-') return { write: (t) => { io.stdout.write(t); }, done: () => {}, abort: () => {} };
  const file = await openOutputFileWhenRead(path, { mode: 0o600 }, { onWait: (message) => io.stderr.write(`earshot: ${printable(message)}\n`) });
  return { write: (t) => file.write(t), done: () => file.commit(), abort: () => file.abort() };
}

/** Largest salt file read (a salt is one line). */
const MAX_SALT_FILE_BYTES = 64 * 1024;

/** Epoch ms of a time InfluxDB answered (RFC 3339, up to nanoseconds). */
function influxTime(value: unknown): number {
  const ms = Date.parse(String(value).replace(/(\.\d{3})\d+/, '$1'));
  if (!Number.isFinite(ms)) throw earshotError('EARSHOT_ERR_INFLUX_QUERY', 'InfluxDB', `an answer with a time that is not one: ${String(value)}`);
  return ms;
}

/** Runs a query; InfluxDB unreachable or refusing becomes one line and exit 3. */
async function ask(client: InfluxClient, url: string, q: string): Promise<QuerySeries[]> {
  try {
    return await client.query(q);
  } catch (err) {
    if (err instanceof InfluxQueryError) throw earshotError('EARSHOT_ERR_INFLUX_QUERY', url, err.message);
    const e = err as NodeJS.ErrnoException;
    throw earshotError('EARSHOT_ERR_INFLUX_QUERY', url, `${e.code ?? ''} ${e.message}`.trim());
  }
}

/** Runs `earshot export`. */
export async function runExport(parsed: ParsedCommand, io: CliIo): Promise<number> {
  const f = parsed.flags;
  const now = Date.now();
  if (typeof f.since !== 'string') throw earshotError('EARSHOT_ERR_USAGE', 'export: --since is required (e.g. --since 2026-11-01 or --since 7d)');
  let since = parseTime('since', f.since, now);
  let until = typeof f.until === 'string' && f.until !== 'now' ? parseTime('until', f.until, now) : now;
  if (until <= since) throw earshotError('EARSHOT_ERR_USAGE', `export: --until (${new Date(until).toISOString()}) is not after --since (${new Date(since).toISOString()})`);
  const format = (f.format as string | undefined) ?? 'csv';
  if (format !== 'csv' && format !== 'jsonl') throw earshotError('EARSHOT_ERR_USAGE', `export: --format: unknown format "${format}" (csv or jsonl)`);
  const what = ((f.what as string | undefined) ?? 'activations') as ExportKind;
  if (!KINDS.includes(what)) throw earshotError('EARSHOT_ERR_USAGE', `export: --what: unknown kind "${String(what)}" (one of: ${KINDS.join(', ')})`);
  const interval = (f.interval as string | undefined) ?? '1d';
  const hours = /^(\d+)h$/.exec(interval);
  if (interval !== '1d' && !(hours && Number(hours[1]) > 0 && 24 % Number(hours[1]) === 0)) {
    throw earshotError('EARSHOT_ERR_USAGE', `export: --interval: "${interval}" is not 1d or hours dividing a day (1h, 2h, 3h, 4h, 6h, 8h, 12h)`);
  }
  // endpoints are whole intervals (UTC, as InfluxDB groups them), each row labelled with its start: a
  // --since or --until inside one widens the range to it, else the first row (--since 7d is always
  // inside a day) would carry a part of its interval under the interval's label
  let widened = '';
  if (what === 'endpoints') {
    const step = interval === '1d' ? DAY_MS : Number((hours as RegExpExecArray)[1]) * 3_600_000;
    const [asked, askedUntil] = [since, until];
    since = Math.floor(since / step) * step;
    until = Math.ceil(until / step) * step;
    if (since !== asked || until !== askedUntil) widened = `, whole ${interval} intervals from ${new Date(since).toISOString()} to ${new Date(until).toISOString()}`;
  }
  const plain = f['plain-macs'] === true;
  let salt: string | null = null;
  if (!plain) {
    const file = f['salt-file'] as string | undefined;
    if (file !== undefined) {
      try {
        salt = readFileBounded(file, MAX_SALT_FILE_BYTES).toString('utf8').split(/\r?\n/)[0].trim();
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw earshotError('EARSHOT_ERR_USAGE', `export: --salt-file: cannot read ${file}: ${e.code === 'EFBIG' ? e.message : e.code ?? e.message}`);
      }
    } else salt = io.env.EARSHOT_EXPORT_SALT || null;
    // no random salt: pseudonyms that change at every run cannot be joined across exports, and a salt
    // printed to a terminal ends up in logs; the study must choose and keep its own
    if (salt === null) throw earshotError('EARSHOT_ERR_USAGE', 'export: --salt-file: a salt is required to pseudonymise MACs (a file, or EARSHOT_EXPORT_SALT; e.g. head -c 32 /dev/urandom | base64 > study.salt), or --plain-macs');
    if (salt.length < 16) throw earshotError('EARSHOT_ERR_USAGE', `export: --salt-file: the salt has ${salt.length} characters; at least 16 are needed`);
  }
  const withNames = f['device-names'] === true;
  const target = influxTarget(parsed.config.influx);
  if (target === null) throw earshotError('EARSHOT_ERR_USAGE', 'export: --influx-url: where to read from is required (influx.url)');
  const url = target.url.origin;
  const client = buildInfluxClient(target);
  const rp = parsed.config.influx.retentionPolicy;
  const from = (m: string) => `${ident(target.database)}.${rp !== null ? ident(rp) : ''}.${ident(m)}`;

  // --sites: each must be in the database (a typo would silently export nothing)
  let siteClause = '';
  if (typeof f.sites === 'string') {
    const wanted = f.sites.split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (wanted.length === 0) throw earshotError('EARSHOT_ERR_USAGE', 'export: --sites: no site named');
    const known = new Set<string>();
    for (const s of await ask(client, url, 'SHOW TAG VALUES WITH KEY = "site"')) for (const v of s.values ?? []) known.add(String(v[1]));
    const unknown = wanted.filter((s) => !known.has(s));
    if (unknown.length > 0) throw earshotError('EARSHOT_ERR_USAGE', `export: --sites: no site "${unknown.join('", "')}" in database ${target.database} (sites: ${[...known].sort().join(', ') || 'none'})`);
    siteClause = ` AND (${wanted.map((s) => `"site" = ${literal(s)}`).join(' OR ')})`;
  }

  const columns = COLUMNS[what].filter((c) => withNames || c !== 'device_name');
  const out = await openOutput(f.output as string | undefined, io);
  // vendor and model are on the `device` inventory points, not the activation's: one small map (a
  // value per device the sites have, at most 1024 each) read before the rows
  const inventory = new Map<string, { vendor: unknown; model: unknown }>();
  if (what === 'activations') {
    for (let offset = 0; ; offset += PAGE_SERIES) {
      const series = await ask(client, url, `SELECT last("vendor") AS "vendor", last("model") AS "model" FROM ${from('device')} WHERE time < ${until}ms${siteClause} GROUP BY "site", "device" SLIMIT ${PAGE_SERIES} SOFFSET ${offset}`);
      for (const s of series) {
        const v = s.values?.[0] ?? [];
        inventory.set(`${s.tags?.site ?? ''}|${s.tags?.device ?? ''}`, { vendor: v[s.columns.indexOf('vendor')] ?? null, model: v[s.columns.indexOf('model')] ?? null });
      }
      if (series.length < PAGE_SERIES) break;
    }
  }
  let rows = 0;
  const emit = (row: Record<string, unknown>) => {
    const dev = row.device;
    if (typeof dev === 'string' && salt !== null) row.device = pseudonym(salt, dev);
    // the id holds the MAC too (detector.ts); leaving it would undo the pseudonym
    if (typeof row.id === 'string' && salt !== null) row.id = pseudonymId(salt, row.id);
    if (format === 'csv') out.write(`${columns.map((c) => csvField(row[c])).join(',')}\r\n`);
    else out.write(`${JSON.stringify(Object.fromEntries(columns.map((c) => [c, row[c] ?? null])))}\n`);
    rows++;
  };
  try {
    if (format === 'csv') out.write(`${columns.join(',')}\r\n`);
    const measurement = what === 'calls' ? 'call' : what === 'endpoints' ? 'endpoint' : 'activation';
    const filter = what === 'activations' ? ' AND "current" = true' : '';
    // a day (UTC) at a time: pages stay small and OFFSET never runs far; days without points are
    // skipped by asking for the next point, so a study since 2020 costs no query per empty day
    for (let start = since; start < until;) {
      const next = await ask(client, url, `SELECT * FROM ${from(measurement)} WHERE time >= ${start}ms AND time < ${until}ms${siteClause}${filter} ORDER BY time ASC LIMIT 1`);
      const first = next[0]?.values?.[0]?.[0];
      if (first === undefined) break;
      start = Math.max(start, Math.floor(influxTime(first) / DAY_MS) * DAY_MS);
      const end = Math.min(until, Math.floor(start / DAY_MS) * DAY_MS + DAY_MS);
      const range = `time >= ${start}ms AND time < ${end}ms${siteClause}`;
      if (what === 'endpoints') {
        const bucket = interval === '1d' ? '1d' : interval;
        for (let offset = 0; ; offset += PAGE_SERIES) {
          const series = await ask(client, url, `SELECT sum("bytes_up") AS "bytes_up", sum("bytes_down") AS "bytes_down", sum("flows") AS "flows" FROM ${from('endpoint')} ` +
            // by device name only when names are exported: a device renamed within an interval (a DHCP name
            // learned later) gave two rows of the same key, each with part of the interval
            `WHERE ${range} GROUP BY time(${bucket}), "site", "device", ${withNames ? '"device_name", ' : ''}"org", "category", "service", "party" fill(none) SLIMIT ${PAGE_SERIES} SOFFSET ${offset}`);
          for (const s of series) {
            for (const v of s.values ?? []) {
              const row: Record<string, unknown> = { ...s.tags };
              s.columns.forEach((c, i) => { row[c] = v[i]; });
              for (const k of Object.keys(row)) if (row[k] === '') row[k] = null;
              emit(row);
            }
          }
          if (series.length < PAGE_SERIES) break;
        }
        start = end;
        continue;
      }
      for (let offset = 0; ; offset += PAGE_ROWS) {
        const series = await ask(client, url, `SELECT * FROM ${from(measurement)} WHERE ${range}${filter} ORDER BY time ASC LIMIT ${PAGE_ROWS} OFFSET ${offset}`);
        const s = series[0];
        const values = s?.values ?? [];
        for (const v of values) {
          const row: Record<string, unknown> = {};
          s.columns.forEach((c, i) => { row[c] = v[i]; });
          if (what === 'activations') Object.assign(row, inventory.get(`${String(row.site ?? '')}|${String(row.device)}`) ?? {});
          emit(row);
        }
        if (values.length < PAGE_ROWS) break;
      }
      start = end;
    }
    out.done();
  } catch (err) {
    out.abort();
    throw err;
  }
  io.stderr.write(`earshot: exported ${rows} ${what} rows (${format}${salt !== null ? ', MACs pseudonymised' : plain ? ', plain MACs' : ''}${withNames ? ', with device names' : ''}${widened})\n`);
  return 0;
}
