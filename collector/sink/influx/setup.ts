/**
 * Database setup (InfluxDB 1.x, InfluxQL): the database, a raw retention policy (the default one, so
 * queries without a policy read raw points) and a long one, and continuous queries that downsample
 * `traffic` and `activation` into the long policy. Idempotent: policies are created or altered to the
 * configured durations, and earshot's continuous queries are dropped and created again. docs/influxdb.md
 * has the same statements for people who manage InfluxDB themselves.
 */
import type { InfluxClient } from './client.js';
import type { Config } from '../../config.js';

/** The retention policy points are written to: the configured one, else the raw one when earshot sets up. */
export function writePolicy(influx: Readonly<Config['influx']>): string | null {
  return influx.retentionPolicy ?? (influx.setup ? influx.rawPolicy : null);
}

const ident = (name: string) => `"${name.replace(/(["\\])/g, '\\$1')}"`;

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

/** The InfluxQL statements of the setup, in order (also printed in docs/influxdb.md). */
export function setupStatements(influx: Readonly<Config['influx']>): string[] {
  const db = ident(influx.database);
  const statements = [
    `CREATE DATABASE ${db}`,
    `CREATE RETENTION POLICY ${ident(influx.rawPolicy)} ON ${db} DURATION ${influx.rawRetention} REPLICATION 1 DEFAULT`,
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
  await policy(influx.rawPolicy, influx.rawRetention, true);
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
