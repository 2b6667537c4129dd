/**
 * `earshot export` (docs/export.md) against a real influxd with authentication: three real captures
 * replayed under three site names into one database, exported as CSV and JSON Lines, and checked against
 * each replay's own report: every activation of every site once, no MAC nor device name unless asked,
 * stable pseudonyms per salt, CSV that parses back (a small RFC 4180 parser below, independent of
 * earshot's writer), and a hostile name written by hand that survives quoting.
 */
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { runCli } from './helpers/cli.js';
import { describeInflux, useInfluxd } from './helpers/influxd.js';
import { describeShared, realCapture, VCFP_CAPTURES } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';

const DB = 'study';
const ADMIN = { username: 'admin', password: 'admin-secret' };
const READER = { username: 'researcher', password: 'reader-secret' };
const SITES = [
  { site: 'flat-a', capture: realCapture('amazon-echodot3_activation_neu.pcapng') },
  { site: 'house-b', capture: realCapture('amazon-echodot2_normal-use_jhautry.pcap') },
  { site: 'lab-c', capture: join(VCFP_CAPTURES, 'good_morning_5_30s.pcap') },
];
const HOSTILE = { site: 'evil-d', mac: 'de:ad:be:ef:00:01', name: '=HYPERLINK("http://x","a, \'b\'")', server: '+cmd|\' /C calc\'!A0' };

/** RFC 4180: fields separated by commas, records by CRLF, quoted fields with "" for a quote. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      field += c; i++; continue;
    }
    if (c === '"' && field === '') { quoted = true; i++; continue; }
    if (c === ',') { record.push(field); field = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { record.push(field); records.push(record); record = []; field = ''; i += 2; continue; }
    if (c === '"' || c === '\n' || c === '\r') throw new Error(`not RFC 4180 at ${i}: ${JSON.stringify(text.slice(Math.max(0, i - 20), i + 20))}`);
    field += c; i++;
  }
  if (field !== '' || record.length > 0) throw new Error('last record does not end with CRLF');
  return records;
}

function table(csv: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(csv);
  for (const r of rows) expect(r.length).toBe(header.length);
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
}

describeInflux('earshot export (real influxd with authentication)', () => {
  const server = useInfluxd({ env: { INFLUXDB_HTTP_AUTH_ENABLED: 'true' } });
  const dir = tempDir('earshot-export-');
  const reports = new Map<string, Report>();
  const salt = join(dir, 'study.salt');
  const salt2 = join(dir, 'other.salt');
  const read = ['--influx-url', '', '--influx-db', DB, '--influx-username', READER.username, '--influx-password', READER.password];
  const exportCli = (args: string[], env: Record<string, string> = {}) =>
    runCli(['export', ...read.map((a) => (a === '' ? server.url : a)), '--since', '2000-01-01', ...args], { env });

  describeShared('three sites replayed into one database', () => {
    beforeAll(async () => {
      await server.createAdmin(ADMIN.username, ADMIN.password);
      await server.query(null, `CREATE USER "${READER.username}" WITH PASSWORD '${READER.password}'`);
      writeFileSync(salt, 'a-study-salt-of-32-characters-xx\n');
      writeFileSync(salt2, 'another-salt-of-32-characters-yy\n');
      const runs = await Promise.all(SITES.map(({ site, capture }) => runCli([
        'replay', capture, '--format', 'json', '--site', site, '--influx-url', server.url, '--influx-db', DB,
        '--influx-username', ADMIN.username, '--influx-password', ADMIN.password, '--influx-raw-retention', 'INF', '--log-level', 'warn',
      ], { timeoutMs: 120_000 })));
      for (const [i, { site }] of SITES.entries()) {
        expect(runs[i].code, `${site}: ${runs[i].stderr.slice(-1500)}`).toBe(0);
        reports.set(site, JSON.parse(runs[i].stdout) as Report);
      }
      await server.query(null, `GRANT READ ON "${DB}" TO "${READER.username}"`);
      // a hostile home: names a spreadsheet would run as formulas, with quotes and commas, written by hand
      const esc = (s: string) => s.replace(/[ ,=]/g, (c) => `\\${c}`);
      const line = `activation,site=${HOSTILE.site},device=${HOSTILE.mac},device_name=${esc(HOSTILE.name)},verdict=suspected ` +
        `id="deadbeef0001-1600000000000",duration_s=2.5,bytes_up=100i,bytes_down=50i,score=0.5,reasons="no-wake-event",server_name="${HOSTILE.server.replace(/["\\]/g, '\\$&')}",current=true 1600000000000`;
      const res = await fetch(`${server.url}/write?db=${DB}&precision=ms`, {
        method: 'POST', body: line, headers: { Authorization: `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}` },
      });
      expect(res.status, await res.text()).toBe(204);
    }, 240_000);

    it('CSV: every activation of every site once, its verdict and bytes; no MAC and no device name', async () => {
      const r = await exportCli(['--salt-file', salt]);
      expect(r.code, r.stderr).toBe(0);
      const rows = table(r.stdout);
      let total = 0;
      for (const [site, report] of reports) {
        const mine = rows.filter((x) => x.site === site);
        // ids carry the MAC (MAC without colons, then the start): expected with the pseudonym computed here
        const hmac = (mac: string) => `d-${createHmac('sha256', 'a-study-salt-of-32-characters-xx').update(mac).digest('hex').slice(0, 16)}`;
        const expected = report.activations.map((a) => ({ id: a.id.replace(/^([0-9a-f]{12})-/, (_, h: string) => `${hmac(h.match(/../g)!.join(':'))}-`), verdict: a.verdict, bytes_up: String(a.bytesUp), bytes_down: String(a.bytesDown) })).sort((a, b) => a.id.localeCompare(b.id));
        expect(mine.map((x) => ({ id: x.id, verdict: x.verdict, bytes_up: x.bytes_up, bytes_down: x.bytes_down })).sort((a, b) => a.id.localeCompare(b.id)), site).toEqual(expected);
        total += expected.length;
        for (const d of report.devices) {
          expect(r.stdout.toLowerCase(), `${site}: MAC ${d.mac}`).not.toContain(d.mac.toLowerCase());
          expect(r.stdout.toLowerCase(), `${site}: MAC ${d.mac}`).not.toContain(d.mac.replace(/:/g, '-').toLowerCase());
          expect(r.stdout.toLowerCase(), `${site}: MAC ${d.mac}`).not.toContain(d.mac.replace(/:/g, '').toLowerCase());
          if (d.name) expect(r.stdout, `${site}: name ${d.name}`).not.toContain(d.name);
        }
      }
      expect(total).toBeGreaterThan(0);
      expect(rows.length).toBe(total + 1);
      expect(r.stdout).not.toContain(HOSTILE.mac);
      expect(r.stdout).not.toContain('deadbeef0001');
      expect(r.stdout).not.toContain('HYPERLINK');
      expect(Object.keys(rows[0])).not.toContain('device_name');
      // the pseudonym is HMAC-SHA256(salt, mac), 16 hex digits (docs/export.md), computed here independently
      const evil = rows.find((x) => x.site === HOSTILE.site)!;
      expect(evil.device).toBe(`d-${createHmac('sha256', 'a-study-salt-of-32-characters-xx').update(HOSTILE.mac).digest('hex').slice(0, 16)}`);
      expect(evil.server_name).toBe(`'${HOSTILE.server}`);
    }, 60_000);

    it('a hostile device name survives quoting and is defused; JSON Lines carry the same rows; pseudonyms are stable per salt', async () => {
      const names = await exportCli(['--salt-file', salt, '--device-names', '--sites', HOSTILE.site]);
      expect(names.code, names.stderr).toBe(0);
      const [row] = table(names.stdout);
      expect(row.device_name).toBe(`'${HOSTILE.name}`);
      expect(row.server_name).toBe(`'${HOSTILE.server}`);

      const csv = table((await exportCli(['--salt-file', salt])).stdout);
      const again = table((await exportCli([], { EARSHOT_EXPORT_SALT: 'a-study-salt-of-32-characters-xx' })).stdout);
      const other = table((await exportCli(['--salt-file', salt2])).stdout);
      expect(again).toEqual(csv);
      // ids are pseudonymised too, so rows of the two salts are matched by site and time
      const byKey = new Map(other.map((x) => [`${x.site}|${x.time}`, x.device]));
      for (const x of csv) if (x.device.startsWith('d-')) expect(byKey.get(`${x.site}|${x.time}`)).not.toBe(x.device);

      const jsonl = await exportCli(['--salt-file', salt, '--format', 'jsonl']);
      expect(jsonl.code, jsonl.stderr).toBe(0);
      const objects = jsonl.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(objects.map((o) => [o.id, o.device, o.site, o.verdict]).sort()).toEqual(csv.map((x) => [x.id, x.device, x.site, x.verdict]).sort());
      expect(objects.find((o) => o.site === HOSTILE.site)?.server_name).toBe(HOSTILE.server);

      const plain = await exportCli(['--plain-macs', '--sites', 'flat-a,house-b']);
      const plainRows = table(plain.stdout);
      expect(new Set(plainRows.map((x) => x.site))).toEqual(new Set(['flat-a', 'house-b']));
      expect(plainRows.map((x) => x.device).sort()).toEqual([...reports.get('flat-a')!.activations, ...reports.get('house-b')!.activations].map((a) => a.device).sort());
    }, 60_000);

    it('endpoints per day: each site\'s bytes per device equal its report\'s devices; --output is written whole; pseudonymised by default', async () => {
      const out = join(dir, 'endpoints.csv');
      const r = await exportCli(['--plain-macs', '--what', 'endpoints', '-o', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('');
      const rows = table(readFileSync(out, 'utf8'));
      for (const [site, report] of reports) {
        const sums = new Map<string, number>();
        for (const x of rows.filter((y) => y.site === site)) sums.set(x.device, (sums.get(x.device) ?? 0) + Number(x.bytes_up) + Number(x.bytes_down));
        const expected = new Map(report.devices.filter((d) => d.bytesUp + d.bytesDown > 0).map((d) => [d.mac, d.bytesUp + d.bytesDown]));
        expect(Object.fromEntries(sums), site).toEqual(Object.fromEntries(expected));
      }
      const hashed = await exportCli(['--salt-file', salt, '--what', 'endpoints', '--format', 'jsonl']);
      expect(hashed.code, hashed.stderr).toBe(0);
      expect(hashed.stdout.trimEnd().split('\n')).toHaveLength(rows.length);
      for (const report of reports.values()) for (const d of report.devices) expect(hashed.stdout).not.toContain(d.mac);
    }, 60_000);
  });

  it('bad flags name the flag and exit 2; a wrong password or no server exits 3 with one line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--since', 'yesterday'], /--since: not a date/],
      // impossible dates rolled forward (2026-02-30 was sent as 2026-03-02), and a span before 1970 went out
      [['--since', '2026-02-30', '--plain-macs'], /--since: not a date: "2026-02-30"/],
      [['--since', '2026-01-01', '--until', '2026-04-31T10:00:00Z', '--plain-macs'], /--until: not a date: "2026-04-31T10:00:00Z"/],
      [['--since', '2026-01-01T24:00:00Z', '--plain-macs'], /--since: not a date/],
      [['--since', '2016-12-31T23:59:60Z', '--plain-macs'], /--since: not a date/],
      [['--since', '999999999d', '--plain-macs'], /--since: before 1970: "999999999d"/],
      [['--since', '2026-01-01', '--format', 'xlsx', '--plain-macs'], /--format: unknown format "xlsx"/],
      [['--since', '2026-01-01', '--what', 'payloads', '--plain-macs'], /--what: unknown kind/],
      [['--since', '2026-01-01'], /--salt-file: a salt is required/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['export', '--influx-url', server.url, ...args], { env: { EARSHOT_EXPORT_SALT: '' } });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    const noServer = await runCli(['export', '--influx-url', 'http://127.0.0.1:9', '--since', '2026-01-01', '--plain-macs', '--sites', 'x']);
    expect(noServer.code).toBe(3);
    expect(noServer.stderr).toMatch(/^earshot: InfluxDB at http:\/\/127\.0\.0\.1:9 cannot be read: ECONNREFUSED/);
    const out = join(dir, 'denied.csv');
    const denied = await runCli(['export', '--influx-url', server.url, '--influx-username', 'nobody', '--influx-password', 'x', '--since', '2026-01-01', '--plain-macs', '-o', out]);
    expect(denied.code, denied.stderr).toBe(3);
    expect(denied.stderr.trim().split('\n')).toHaveLength(1);
    expect(denied.stderr).toMatch(/401/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});
