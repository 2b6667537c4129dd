/**
 * The write client against a real influxd: what goes over the wire (seen by a proxy in front of it:
 * gzip, token and basic-auth headers), what each kind of failure comes to (retry or rejected, with
 * InfluxDB's reason), and authentication against an influxd that requires it.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpProxy } from '../../../test/helpers/http-proxy.js';
import { describeInflux, freePort, Influxd } from '../../../test/helpers/influxd.js';
import { buildWriteClient, type InfluxTarget } from './client.js';

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
    const client = buildWriteClient(target(proxy.url));
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
    await buildWriteClient(target(proxy.url, { token: 'abc' })).write(Buffer.from(LINES), false, null);
    expect(lastWrite().headers.authorization).toBe('Token abc');
    await buildWriteClient(target(proxy.url, { username: 'earshot', password: 'p:ss wörd' })).write(Buffer.from(LINES), false, null);
    expect(lastWrite().headers.authorization).toBe(`Basic ${Buffer.from('earshot:p:ss wörd').toString('base64')}`);
    // credentials in the URL are not sent as they are: the target carries them
    await buildWriteClient(target(proxy.url.replace('//', '//user:pw@'))).write(Buffer.from(LINES), false, null);
    expect(lastWrite().headers.authorization).toBeUndefined();
  });

  it('4xx answers are rejected with InfluxDB\'s reason: a bad line (400), a missing database (404)', async () => {
    const client = buildWriteClient(target(proxy.url));
    expect(await client.write(Buffer.from('wire bytes='), false, null)).toEqual({ kind: 'rejected', status: 400, reason: 'unable to parse \'wire bytes=\': missing field value' });
    const missing = buildWriteClient(target(proxy.url, { database: 'nowhere' }));
    expect(await missing.write(Buffer.from(LINES), false, null)).toEqual({ kind: 'rejected', status: 404, reason: 'database not found: "nowhere"' });
  });

  it('a server that is busy, slow or away is a "retry": 503, 429, 408, a timeout, a refused connection', async () => {
    const client = buildWriteClient(target(proxy.url, { timeoutMs: 300 }));
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
    const nobody = buildWriteClient(target(`http://127.0.0.1:${await freePort()}`));
    expect(await nobody.write(Buffer.from(LINES), false, null)).toMatchObject({ kind: 'retry', reason: expect.stringMatching(/^ECONNREFUSED/) });
    // the client works on after all of that
    expect(await client.write(Buffer.from(LINES), false, null)).toEqual({ kind: 'ok' });
  });
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
      const client = buildWriteClient(target(server.url, { username: 'admin', password: 'x' }));
      expect(await client.write(gzipSync(LINES), true, null)).toEqual({ kind: 'ok' });
      expect(await server.rows('wire', 'SELECT count(bytes) AS n FROM wire')).toEqual([{ time: 0, n: 2 }]);
    });

    it('with a wrong password or none are rejected with 401', async () => {
      const wrong = buildWriteClient(target(server.url, { username: 'admin', password: 'y' }));
      expect(await wrong.write(Buffer.from(LINES), false, null)).toEqual({ kind: 'rejected', status: 401, reason: 'authorization failed' });
      const none = buildWriteClient(target(server.url));
      expect(await none.write(Buffer.from(LINES), false, null)).toMatchObject({ kind: 'rejected', status: 401 });
    });
  });
});
