/**
 * The write client against a real influxd: what goes over the wire (seen by a proxy in front of it:
 * gzip, token and basic-auth headers), what each kind of failure comes to (retry or rejected, with
 * InfluxDB's reason), and authentication against an influxd that requires it.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpProxy } from '../../../test/helpers/http-proxy.js';
import { describeInflux, freePort, Influxd } from '../../../test/helpers/influxd.js';
import { loadConfig } from '../../config.js';
import { buildInfluxClient, InfluxQueryError, type InfluxTarget } from './client.js';
import { setupDatabase } from './setup.js';

const LINES = 'wire,device=a bytes=1i 1700000000000\nwire,device=b bytes=2i 1700000000001';

function target(url: string, more: Partial<InfluxTarget> = {}): InfluxTarget {
  return { url: new URL(url), database: 'wire', token: null, username: null, password: null, timeoutMs: 10_000, ...more };
}

describeInflux('InfluxDB write client (real influxd)', () => {
  let server: Influxd;
  let proxy: HttpProxy;
  beforeAll(async () => {
    server = await Influxd.start();
    await server.query(null, 'CREATE DATABASE wire');
    proxy = await HttpProxy.start(server.url);
  }, 30_000);
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
  });

  const lastWrite = () => proxy.writes()[proxy.writes().length - 1];

  it('sends gzip bodies with Content-Encoding gzip, plain ones without, to /write with db and precision', async () => {
    const client = buildInfluxClient(target(proxy.url));
    expect(await client.write(gzipSync(LINES), true, null)).toEqual({ kind: 'ok' });
    const gzipped = lastWrite();
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gzipped.body).toString()).toBe(LINES);
    expect(Object.fromEntries(new URL(gzipped.url, 'http://x').searchParams)).toEqual({ db: 'wire', precision: 'ms' });

    expect(await client.write(Buffer.from(LINES), false, 'autogen')).toEqual({ kind: 'ok' });
    const plain = lastWrite();
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(LINES);
    expect(new URL(plain.url, 'http://x').searchParams.get('rp')).toBe('autogen');
    expect(await server.rows('wire', 'SELECT bytes, device FROM wire')).toEqual([
      { time: 1700000000000, bytes: 1, device: 'a' },
      { time: 1700000000001, bytes: 2, device: 'b' },
    ]);
  });

  it('sends "Authorization: Token <token>" when a token is set, basic auth for a username and password', async () => {
    await buildInfluxClient(target(proxy.url, { token: 'abc' })).write(Buffer.from(LINES), false, null);
    expect(lastWrite().headers.authorization).toBe('Token abc');
    await buildInfluxClient(target(proxy.url, { username: 'earshot', password: 'p:ss wörd' })).write(Buffer.from(LINES), false, null);
    expect(lastWrite().headers.authorization).toBe(`Basic ${Buffer.from('earshot:p:ss wörd').toString('base64')}`);
    // credentials in the URL are not sent as they are: the target carries them
    await buildInfluxClient(target(proxy.url.replace('//', '//user:pw@'))).write(Buffer.from(LINES), false, null);
    expect(lastWrite().headers.authorization).toBeUndefined();
  });

  it('4xx answers are rejected with InfluxDB\'s reason (a bad line, 400); a missing database (404) is "missing", with the server\'s version', async () => {
    const client = buildInfluxClient(target(proxy.url));
    expect(await client.write(Buffer.from('wire bytes='), false, null)).toEqual({ kind: 'rejected', status: 400, reason: 'unable to parse \'wire bytes=\': missing field value' });
    const missing = buildInfluxClient(target(proxy.url, { database: 'nowhere' }));
    expect(await missing.write(Buffer.from(LINES), false, null)).toEqual({
      kind: 'missing', status: 404, reason: 'database not found: "nowhere"', missing: { what: 'database', name: 'nowhere' }, server: expect.stringMatching(/^1\.\d+\.\d+/) as unknown,
    });
  });

  it('a server that is busy, slow or away is a "retry": 503, 429, 408, a timeout, a refused connection', async () => {
    const client = buildInfluxClient(target(proxy.url, { timeoutMs: 300 }));
    proxy.answer(503);
    expect(await client.write(Buffer.from(LINES), false, null)).toEqual({ kind: 'retry', reason: '503 proxy says 503', answered: true });
    proxy.answer(429, 1, 'slow down');
    expect(await client.write(Buffer.from(LINES), false, null)).toEqual({ kind: 'retry', reason: '429 slow down', answered: true });
    proxy.answer(408, 1, 'took too long');
    expect(await client.write(Buffer.from(LINES), false, null)).toEqual({ kind: 'retry', reason: '408 took too long', answered: true });
    proxy.hold();
    const started = Date.now();
    expect(await client.write(Buffer.from(LINES), false, null)).toEqual({ kind: 'retry', reason: 'ETIMEDOUT no answer within 0.3 s' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    const nobody = buildInfluxClient(target(`http://127.0.0.1:${await freePort()}`));
    expect(await nobody.write(Buffer.from(LINES), false, null)).toMatchObject({ kind: 'retry', reason: expect.stringMatching(/^ECONNREFUSED/) });
    // the client works on after all of that
    expect(await client.write(Buffer.from(LINES), false, null)).toEqual({ kind: 'ok' });
  });
});

describeInflux('InfluxQL through the client: statements and the database setup (real influxd)', () => {
  let server: Influxd;
  beforeAll(async () => {
    server = await Influxd.start();
  }, 30_000);
  afterAll(async () => {
    await server?.close();
  });

  it('answers a statement with its series; a statement InfluxDB refuses is an InfluxQueryError with status 200', async () => {
    const client = buildInfluxClient(target(server.url, { database: 'q1' }));
    await client.query('CREATE DATABASE "q1"');
    const [databases] = await client.query('SHOW DATABASES');
    expect(databases.values?.map((row) => row[0])).toContain('q1');
    const refused = await client.query('CREATE RETENTION POLICY "r" ON "q1" DURATION 1s REPLICATION 1').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(InfluxQueryError);
    expect(refused).toMatchObject({ status: 200, message: 'retention policy duration must be at least 1h0m0s' });
    const nonsense = await client.query('SELEKT 1').catch((err: unknown) => err);
    expect(nonsense).toMatchObject({ status: 400, message: expect.stringMatching(/^400 error parsing query: found SELEKT/) });
  });

  it('an answer over the 4 MiB read is an error naming its size, never a cut answer read as whole', async () => {
    const client = buildInfluxClient(target(server.url, { database: 'big' }));
    await client.query('CREATE DATABASE "big"');
    // 40,000 points with a 100-byte text field: about 6 MB of JSON for SELECT *
    const text = 'x'.repeat(100);
    const lines = Array.from({ length: 40_000 }, (_, i) => `m v="${text}",n=${i}i ${1_700_000_000_000 + i}`).join('\n');
    const written = await client.write(Buffer.from(lines), false, null);
    expect(written).toEqual({ kind: 'ok' });
    const all = await client.query('SELECT * FROM "m"').catch((err: unknown) => err);
    expect(all).toBeInstanceOf(InfluxQueryError);
    expect((all as Error).message).toMatch(/^an answer of \d+ bytes, over the 4194304 read: ask for fewer rows$/);
    const [page] = await client.query('SELECT * FROM "m" LIMIT 1000');
    expect(page.values).toHaveLength(1000);
  });

  it('sets up a new database, and again over one whose policies and earshot queries changed, keeping other queries', async () => {
    const influx = { ...loadConfig({}).influx, database: 'setup1' };
    const client = buildInfluxClient(target(server.url, { database: 'setup1' }));
    await setupDatabase(client, influx);
    // someone shortened the raw policy, and left an earshot query of an older interval and one of their own
    await server.query(null, 'ALTER RETENTION POLICY "earshot_raw" ON "setup1" DURATION 2d');
    await server.query(null, 'CREATE CONTINUOUS QUERY "earshot_traffic_1m" ON "setup1" BEGIN SELECT sum("bytes_up") INTO "x" FROM "traffic" GROUP BY time(1m) END');
    await server.query(null, 'CREATE CONTINUOUS QUERY "mine" ON "setup1" BEGIN SELECT sum("bytes_up") INTO "y" FROM "traffic" GROUP BY time(1m) END');
    await setupDatabase(client, influx);
    const policies = await server.rows('setup1', 'SHOW RETENTION POLICIES');
    expect(policies.map((p) => [p.name, p.duration, p.default])).toEqual([
      ['autogen', '0s', false],
      ['earshot_raw', '720h0m0s', true],
      ['earshot_long', '17472h0m0s', false],
    ]);
    const [cqs] = await server.query(null, 'SHOW CONTINUOUS QUERIES');
    const names = cqs.find((s) => s.name === 'setup1')?.values.map((row) => row[0]);
    expect(names?.sort()).toEqual(['earshot_activation_5m', 'earshot_endpoint_5m', 'earshot_traffic_5m', 'mine']);
  });

  it('a server that requires credentials and gets none: an InfluxQueryError with status 401', async () => {
    const locked = await Influxd.start({ env: { INFLUXDB_HTTP_AUTH_ENABLED: 'true' } });
    try {
      await locked.query(null, 'CREATE USER admin WITH PASSWORD \'x\' WITH ALL PRIVILEGES');
      const err = await buildInfluxClient(target(locked.url)).query('SHOW DATABASES').catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 401 });
      expect(err).toBeInstanceOf(InfluxQueryError);
      const [databases] = await buildInfluxClient(target(locked.url, { username: 'admin', password: 'x' })).query('SHOW DATABASES');
      expect(databases.columns).toEqual(['name']);
    } finally {
      await locked.close();
    }
  }, 30_000);
});

describeInflux('InfluxDB write client against an influxd that requires authentication', () => {
  let server: Influxd;
  beforeAll(async () => {
    server = await Influxd.start({ env: { INFLUXDB_HTTP_AUTH_ENABLED: 'true' } });
    // the first user may be created without credentials
    await server.query(null, 'CREATE USER admin WITH PASSWORD \'x\' WITH ALL PRIVILEGES');
    server.auth = { username: 'admin', password: 'x' };
    await server.query(null, 'CREATE DATABASE wire');
  }, 30_000);
  afterAll(async () => {
    await server?.close();
  });

  describe('writes', () => {
    it('with the right username and password are taken', async () => {
      const client = buildInfluxClient(target(server.url, { username: 'admin', password: 'x' }));
      expect(await client.write(gzipSync(LINES), true, null)).toEqual({ kind: 'ok' });
      expect(await server.rows('wire', 'SELECT count(bytes) AS n FROM wire')).toEqual([{ time: 0, n: 2 }]);
    });

    it('with a wrong password or none are rejected with 401', async () => {
      const wrong = buildInfluxClient(target(server.url, { username: 'admin', password: 'y' }));
      expect(await wrong.write(Buffer.from(LINES), false, null)).toEqual({ kind: 'rejected', status: 401, reason: 'authorization failed' });
      const none = buildInfluxClient(target(server.url));
      expect(await none.write(Buffer.from(LINES), false, null)).toMatchObject({ kind: 'rejected', status: 401 });
    });
  });
});
