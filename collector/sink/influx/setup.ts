/**
 * Database setup (InfluxDB 1.x, InfluxQL): the database, a raw retention policy (the default one, so
 * queries without a policy read raw points; not made when points go to another, configured one) and a long one, and continuous queries that downsample
 * `traffic` and `activation` into the long policy. Idempotent: policies are created or altered to the
 * configured durations, and earshot's continuous queries are dropped and created again. docs/influxdb.md
 * has the same statements for people who manage InfluxDB themselves. On a shared server the schema is
 * its admin's (setup off with a token, or refused to a write-only user): then this module reads what a
 * write found missing and gives the command that creates it, for 1.x, 2.x or 3.x (docs/fleet.md).
 */
import type { InfluxClient } from './client.js';
import { ident } from './line-protocol.js';
import type { Config } from '../../config.js';
import { shellWord } from '../../text.js';

/**
 * Whether earshot runs the setup: `influx.setup`, where `auto` means on without a token (a 1.x server of
 * one's own) and off with one (2.x/3.x, where the v1 API has no CREATE DATABASE, and a shared server whose
 * schema belongs to its admin: a site's token writes, nothing more).
 */
export function setupEnabled(influx: Readonly<Pick<Config['influx'], 'setup' | 'token'>>): boolean {
  return influx.setup === 'auto' ? influx.token === null : influx.setup;
}

/** The retention policy points are written to: the configured one, else the raw one when earshot sets up. */
export function writePolicy(influx: Readonly<Config['influx']>): string | null {
  return influx.retentionPolicy ?? (setupEnabled(influx) ? influx.rawPolicy : null);
}


/**
 * How far back each run of a continuous query recomputes. Traffic: the last hour, so points that come
 * late from the spool (an outage of up to an hour) are downsampled too. Activations: the last week, so
 * a verdict that changes days later (a label from the status page, a late wake event) reaches the
 * downsampled counts; activations are few, so recomputing a week of them every run is cheap.
 */
export const RESAMPLE_TRAFFIC_FOR = '1h';
export const RESAMPLE_ACTIVATIONS_FOR = '1w';

/** The continuous queries, by name: the SELECT ... INTO statements that run every downsample interval. */
export function continuousQueries(influx: Readonly<Config['influx']>): Array<{ name: string; query: string; resampleFor: string }> {
  const db = ident(influx.database);
  const from = (m: string) => `${db}.${ident(writePolicy(influx) ?? 'autogen')}.${ident(m)}`;
  const into = (m: string) => `${db}.${ident(influx.longPolicy)}.${ident(m)}`;
  const every = influx.downsample;
  return [
    {
      name: `earshot_traffic_${every}`,
      query: `SELECT sum("bytes_up") AS "bytes_up", sum("bytes_down") AS "bytes_down", sum("packets_up") AS "packets_up", sum("packets_down") AS "packets_down" INTO ${into('traffic')} FROM ${from('traffic')} GROUP BY time(${every}), *`,
      resampleFor: RESAMPLE_TRAFFIC_FOR,
    },
    {
      // counts per verdict as fields, grouped by device only: a verdict that changes moves a count from
      // one field to another of the same row, which the next run rewrites whole (grouped by the verdict
      // tag, the old verdict's row would keep its count once no current point is left in it)
      name: `earshot_activation_${every}`,
      query: `SELECT count("duration_s") AS "activations", sum("confirmed") AS "confirmed", sum("suspected") AS "suspected", sum("unverified") AS "unverified", sum("duration_s") AS "duration_s", sum("bytes_up") AS "bytes_up", sum("bytes_down") AS "bytes_down" INTO ${into('activation')} FROM ${from('activation')} WHERE "current" = true GROUP BY time(${every}), "site", "device", "device_name"`,
      resampleFor: RESAMPLE_ACTIVATIONS_FOR,
    },
    {
      name: `earshot_endpoint_${every}`,
      query: `SELECT sum("bytes_up") AS "bytes_up", sum("bytes_down") AS "bytes_down", sum("flows") AS "flows" INTO ${into('endpoint')} FROM ${from('endpoint')} GROUP BY time(${every}), *`,
      resampleFor: RESAMPLE_TRAFFIC_FOR,
    },
  ];
}

/**
 * Whether the setup makes the raw policy, as the database's default: only when points go there. With
 * another policy configured (`influx.retentionPolicy`, e.g. autogen) it would be an empty default that
 * every query without a policy reads, earshot's dashboards and anything else in the database alike.
 */
function makesRawPolicy(influx: Readonly<Config['influx']>): boolean {
  return writePolicy(influx) === influx.rawPolicy;
}

/** The InfluxQL statements of the setup, in order (also printed in docs/influxdb.md). */
export function setupStatements(influx: Readonly<Config['influx']>): string[] {
  const db = ident(influx.database);
  const statements = [
    `CREATE DATABASE ${db}`,
    ...(makesRawPolicy(influx) ? [`CREATE RETENTION POLICY ${ident(influx.rawPolicy)} ON ${db} DURATION ${influx.rawRetention} REPLICATION 1 DEFAULT`] : []),
    `CREATE RETENTION POLICY ${ident(influx.longPolicy)} ON ${db} DURATION ${influx.longRetention} REPLICATION 1`,
  ];
  for (const cq of continuousQueries(influx)) {
    statements.push(`CREATE CONTINUOUS QUERY ${ident(cq.name)} ON ${db} RESAMPLE FOR ${cq.resampleFor} BEGIN ${cq.query} END`);
  }
  return statements;
}

/**
 * Runs the setup against InfluxDB: the statements of setupStatements(), with ALTER for a policy that
 * exists and earshot's continuous queries dropped first. Rejects with the client's InfluxQueryError when
 * InfluxDB refuses a statement, with the network error when it is away.
 */
export async function setupDatabase(client: Pick<InfluxClient, 'query'>, influx: Readonly<Config['influx']>): Promise<void> {
  const db = ident(influx.database);
  await client.query(`CREATE DATABASE ${db}`);
  const [policies] = await client.query(`SHOW RETENTION POLICIES ON ${db}`);
  const nameColumn = policies?.columns.indexOf('name') ?? -1;
  const existing = new Set((policies?.values ?? []).map((row) => row[nameColumn]));
  const policy = (name: string, duration: string, isDefault: boolean) =>
    client.query(`${existing.has(name) ? 'ALTER' : 'CREATE'} RETENTION POLICY ${ident(name)} ON ${db} DURATION ${duration} REPLICATION 1${isDefault ? ' DEFAULT' : ''}`);
  if (makesRawPolicy(influx)) await policy(influx.rawPolicy, influx.rawRetention, true);
  await policy(influx.longPolicy, influx.longRetention, false);
  // one series per database, named after it
  const queries = (await client.query('SHOW CONTINUOUS QUERIES')).find((s) => s.name === influx.database);
  const queryName = queries?.columns.indexOf('name') ?? -1;
  for (const row of queries?.values ?? []) {
    const name = row[queryName];
    if (typeof name === 'string' && name.startsWith('earshot_')) await client.query(`DROP CONTINUOUS QUERY ${ident(name)} ON ${db}`);
  }
  for (const cq of continuousQueries(influx)) {
    await client.query(`CREATE CONTINUOUS QUERY ${ident(cq.name)} ON ${db} RESAMPLE FOR ${cq.resampleFor} BEGIN ${cq.query} END`);
  }
}

/** What a write found missing on the server: its database, its retention policy, or (2.x) the DBRP mapping to a bucket. */
export interface MissingTarget {
  what: 'database' | 'retention policy' | 'DBRP mapping';
  /** The name InfluxDB gave, else the configured one. */
  name: string;
}

/**
 * Reads a refused write: does it say the database, the retention policy or the mapping is missing?
 * The texts are the servers' own: 1.x `404 database not found: "db"` and `500 retention policy not
 * found: rp` (a 500, checked against influxd 1.6.7), 2.x `404 {"code":"not found","message":"no dbrp
 * mapping found"}` (influxdb v2 http/legacy/write_handler.go), 3.x `404 database not found: db`
 * (influxdb3_server http.rs, WriteBufferError::DatabaseNotFound); InfluxDB Cloud 2 answers
 * `bucket "db/rp" not found`.
 */
export function missingTarget(status: number, reason: string): MissingTarget | null {
  if (status !== 404 && status !== 500) return null;
  const rp = /retention policy not found:?\s*"?([^"\s]*)"?/i.exec(reason);
  if (rp) return { what: 'retention policy', name: rp[1] };
  if (status !== 404) return null;
  if (/no dbrp mapping found/i.test(reason)) return { what: 'DBRP mapping', name: '' };
  const bucket = /bucket "?([^"]*?)"? not found/i.exec(reason);
  if (bucket) return { what: 'DBRP mapping', name: bucket[1] };
  const db = /database not found:?\s*"?([^"]*)"?/i.exec(reason);
  if (db) return { what: 'database', name: db[1].trim() };
  return null;
}

/** `text` inside single quotes for a POSIX shell. */
const shellQuote = (text: string) => shellWord(text, true);

/**
 * The one command that creates what a write found missing, for the server that answered (its
 * X-Influxdb-Version: 1.x, 2.x, 3.x; unknown: 1.x without a token, 3.x with one), with the configured
 * names and the raw retention as the duration. earshot never runs it itself when setup is off: on a
 * shared server the schema is the admin's.
 */
export function createCommand(influx: Readonly<Config['influx']>, missing: MissingTarget, serverVersion: string | null, user: string | null = influx.username): string {
  const major = /^v?(\d+)\./.exec(serverVersion ?? '')?.[1] ?? null;
  const db = influx.database;
  const rp = writePolicy(influx);
  const retention = influx.rawRetention;
  if (major === '2' || (major === null && missing.what === 'DBRP mapping')) {
    const bucket = missing.name || (rp === null ? db : `${db}/${rp}`);
    return `influx v1 dbrp create --db ${shellQuote(db)} --rp ${shellQuote(rp ?? 'autogen')} --bucket-id $(influx bucket list --name ${shellQuote(bucket)} --hide-headers | cut -f1) --default` +
      ` (make the bucket first if it is missing: influx bucket create --name ${shellQuote(bucket)}${retention === 'INF' ? '' : ` --retention ${retention}`})`;
  }
  if (major === '3' || (major === null && influx.token !== null)) {
    return `influxdb3 create database ${shellQuote(db)}${retention === 'INF' ? '' : ` --retention-period ${retention}`}`;
  }
  const policy = missing.what === 'retention policy' && missing.name !== '' ? missing.name : rp;
  const statements: string[] = [];
  if (missing.what === 'database') statements.push(`CREATE DATABASE ${ident(db)}`);
  if (policy !== null) {
    // the raw policy is the default one, as the setup makes it: queries without a policy read it
    statements.push(`CREATE RETENTION POLICY ${ident(policy)} ON ${ident(db)} DURATION ${retention} REPLICATION 1${policy === influx.rawPolicy ? ' DEFAULT' : ''}`);
  }
  // a new database has no grants: the site's user gets the right to write, and no more
  if (missing.what === 'database' && user !== null) statements.push(`GRANT WRITE ON ${ident(db)} TO ${ident(user)}`);
  return `influx -execute ${shellQuote(statements.join('; '))}`;
}

/**
 * The setup, as the command an admin runs on 1.x instead of earshot: every statement of setupStatements(),
 * and the user's WRITE grant (the least it needs).
 */
export function adminSetupCommand(influx: Readonly<Config['influx']>, user: string | null = influx.username): string {
  const statements = setupStatements(influx);
  if (user !== null) statements.push(`GRANT WRITE ON ${ident(influx.database)} TO ${ident(user)}`);
  return `influx -execute ${shellQuote(statements.join('; '))}`;
}

/**
 * True when InfluxDB refused a setup statement for the user's rights (1.x: 403 "requires admin privilege").
 * Not a 401: that is a wrong password or user, which the write says plainly (EARSHOT_ERR_INFLUX_AUTH);
 * taken for missing admin rights, it printed the admin's command and skipped the setup for the rest of the run.
 */
export function setupDenied(status: number, message: string): boolean {
  return status !== 401 && (status === 403 || /requires admin privilege|not authorized/i.test(message));
}
