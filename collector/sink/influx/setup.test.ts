/**
 * docs/influxdb.md shows the setup statements for people who manage InfluxDB themselves: they must be
 * the ones earshot runs (for the default configuration), or the long-term data of a hand-made setup
 * would differ from earshot's own.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../test/helpers/shared.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { loadConfig } from '../../config.js';
import { continuousQueries, createCommand, missingTarget, setupEnabled, setupStatements, writePolicy } from './setup.js';

describe('setup statements', () => {
  it('are the ones docs/influxdb.md shows', () => {
    const docs = readFileSync(join(PROJECT_ROOT, 'docs/influxdb.md'), 'utf8');
    const block = /```sql\n([\s\S]*?)```/.exec(docs)?.[1] ?? '';
    const words = (text: string) => text.replace(/\s+/g, ' ').trim();
    expect(words(block)).toBe(words(setupStatements(loadConfig({}).influx).join('\n')));
  });

  it('downsample activations by device, with the verdicts counted in fields, over a week', () => {
    const [, activation] = continuousQueries(loadConfig({}).influx);
    expect(activation.query).toMatch(/sum\("suspected"\) AS "suspected"/);
    expect(activation.query).toMatch(/WHERE "current" = true GROUP BY time\(5m\), "site", "device", "device_name"$/);
    expect(activation.resampleFor).toBe('1w');
  });
});

describe('setup on or off (influx.setup: auto, true, false)', () => {
  const influx = (sources: Parameters<typeof loadConfig>[0]) => loadConfig(sources).influx;

  it('auto: on without a token (a 1.x of one\'s own), off with one (2.x/3.x, a shared server)', () => {
    expect(influx({}).setup).toBe('auto');
    expect(setupEnabled(influx({}))).toBe(true);
    expect(setupEnabled(influx({ flags: { 'influx-username': 'site1' } }))).toBe(true);
    expect(setupEnabled(influx({ flags: { 'influx-token': 'T' } }))).toBe(false);
    expect(setupEnabled(influx({ env: { EARSHOT_INFLUX_TOKEN: 'T' } }))).toBe(false);
    // off, the policy is the database's default: earshot sends no rp
    expect(writePolicy(influx({ flags: { 'influx-token': 'T' } }))).toBeNull();
  });

  it('true and false win over the token, from a flag, the environment or a file', () => {
    expect(setupEnabled(influx({ flags: { 'influx-token': 'T', 'influx-setup': 'true' } }))).toBe(true);
    expect(setupEnabled(influx({ flags: { 'influx-setup': 'false' } }))).toBe(false);
    expect(influx({ env: { EARSHOT_INFLUX_SETUP: 'off' } }).setup).toBe(false);
    const dir = tempDir('earshot-setup-');
    writeFileSync(join(dir, 'c.yaml'), 'influx:\n  setup: false\n');
    expect(influx({ file: join(dir, 'c.yaml') }).setup).toBe(false);
    writeFileSync(join(dir, 'd.yaml'), 'influx:\n  setup: auto\n  token: T\n');
    expect(setupEnabled(influx({ file: join(dir, 'd.yaml') }))).toBe(false);
    expect(() => influx({ flags: { 'influx-setup': 'maybe' } })).toThrow(/influx-setup/);
  });
});

describe('the command that creates what a write found missing', () => {
  const influx = (flags: Record<string, string> = {}) => loadConfig({ flags }).influx;

  it('reads the servers\' answers: 1.x database and policy, 2.x mapping, 3.x database, Cloud 2 bucket', () => {
    expect(missingTarget(404, 'database not found: "earshot"')).toEqual({ what: 'database', name: 'earshot' });
    expect(missingTarget(500, 'retention policy not found: earshot_raw')).toEqual({ what: 'retention policy', name: 'earshot_raw' });
    expect(missingTarget(404, 'no dbrp mapping found')).toEqual({ what: 'DBRP mapping', name: '' });
    expect(missingTarget(404, 'database not found: earshot')).toEqual({ what: 'database', name: 'earshot' });
    expect(missingTarget(404, 'bucket "earshot/autogen" not found')).toEqual({ what: 'DBRP mapping', name: 'earshot/autogen' });
    // not a missing target: a server error, a bad point, a refused user
    expect(missingTarget(500, 'timeout')).toBeNull();
    expect(missingTarget(400, 'unable to parse')).toBeNull();
    expect(missingTarget(403, '"u" user is not authorized to write to database "d"')).toBeNull();
  });

  it('gives the command of the server that answered (its version), with the configured names', () => {
    const db = { what: 'database', name: 'earshot' } as const;
    expect(createCommand(influx(), db, '1.6.7~rc0')).toBe(`influx -execute 'CREATE DATABASE "earshot"; CREATE RETENTION POLICY "earshot_raw" ON "earshot" DURATION 30d REPLICATION 1 DEFAULT'`);
    expect(createCommand(influx({ 'influx-setup': 'false' }), db, '1.8.10', 'site1')).toBe(`influx -execute 'CREATE DATABASE "earshot"; GRANT WRITE ON "earshot" TO "site1"'`);
    expect(createCommand(influx({ 'influx-rp': 'week', 'influx-setup': 'false' }), { what: 'retention policy', name: 'week' }, '1.8.10')).toBe(`influx -execute 'CREATE RETENTION POLICY "week" ON "earshot" DURATION 30d REPLICATION 1'`);
    expect(createCommand(influx({ 'influx-token': 'T', 'influx-db': 'home' }), { what: 'DBRP mapping', name: '' }, 'v2.7.10')).toBe(
      `influx v1 dbrp create --db 'home' --rp 'autogen' --bucket-id $(influx bucket list --name 'home' --hide-headers | cut -f1) --default (make the bucket first if it is missing: influx bucket create --name 'home' --retention 30d)`);
    expect(createCommand(influx({ 'influx-token': 'T', 'influx-db': 'home' }), db, '3.5.0')).toBe(`influxdb3 create database 'home' --retention-period 30d`);
    // no version header: the token says 2.x/3.x, the mapping says 2.x
    expect(createCommand(influx({ 'influx-token': 'T' }), db, null)).toBe(`influxdb3 create database 'earshot' --retention-period 30d`);
    expect(createCommand(influx({ 'influx-db': "it's" }), db, null)).toBe(`influx -execute 'CREATE DATABASE "it'\\''s"; CREATE RETENTION POLICY "earshot_raw" ON "it'\\''s" DURATION 30d REPLICATION 1 DEFAULT'`);
  });
});
