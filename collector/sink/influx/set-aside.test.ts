/**
 * Telling a bad batch from an unreachable server, on real sockets: a server that answers /ping but
 * never answers one batch gets that batch set aside after MAX_BATCH_ATTEMPTS and the queue moves on,
 * without ever being called unreachable; a closed port is unreachable and sets nothing aside. And
 * Retry-After: read in seconds or as a date, never beyond MAX_RETRY_AFTER_MS (Node's timers overflow
 * past 2^31 ms and would fire at once).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, until } from '../../../test/helpers/wait.js';
import { buildInfluxClient, MAX_RETRY_AFTER_MS, retryAfterMs, type InfluxTarget } from './client.js';
import { Spool } from './spool.js';
import { InfluxWriter, MAX_BATCH_ATTEMPTS } from './writer.js';

const servers: Server[] = [];
const sockets = new Set<Socket>();
afterEach(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A raw HTTP server: `answer(head, body)` returns the bytes to send, or null to drop the connection. */
async function rawServer(answer: (head: string, body: string) => string | null): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let data = '';
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.slice(0, end);
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (data.length < end + 4 + length) return;
      const body = data.slice(end + 4, end + 4 + length);
      data = data.slice(end + 4 + length);
      requests.push(`${head.split('\r\n')[0]} ${body}`);
      const reply = answer(head, body);
      if (reply === null) socket.destroy();
      else socket.write(reply);
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, requests };
}

const target = (url: string): InfluxTarget => ({ url: new URL(url), database: 'db', token: null, username: null, password: null, timeoutMs: 2000 });
const NO_CONTENT = 'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n';

function newWriter(url: string) {
  const logs: Array<{ msg: string }> = [];
  const log = pino({ level: 'info', base: undefined }, { write: (text: string) => { logs.push(JSON.parse(text) as { msg: string }); } });
  const spool = new Spool(null, 1e9, { log });
  const writer = new InfluxWriter({ batchSize: 2, flushIntervalMs: 60_000, gzip: false, retentionPolicy: null, maxQueuedBatches: 64, retryMinMs: 20, retryMaxMs: 50 }, buildInfluxClient(target(url)), spool, log);
  return { writer, spool, logs };
}

describe('a batch that fails for its own content', () => {
  it('InfluxDB answers /ping but never this batch: it goes to the back, the next one is written, then it is set aside; nobody says "unreachable"', async () => {
    const server = await rawServer((head, body) => (head.startsWith('POST /write') && body.includes('poison') ? null : NO_CONTENT));
    const { writer, spool, logs } = newWriter(server.url);
    for (const l of ['m v=1i 1', 'poison v=2i 2', 'm v=3i 3', 'm v=4i 4']) writer.add(l);
    expect(await writer.close(10_000)).toEqual({ points: 0, spooled: 0 });
    const writes = server.requests.filter((r) => r.startsWith('POST'));
    expect(writes.filter((r) => r.includes('poison'))).toHaveLength(2 * MAX_BATCH_ATTEMPTS);
    // the batch behind it went through before it was given up
    const behind = writes.findIndex((r) => r.includes('m v=3i 3\nm v=4i 4'));
    expect(behind).toBeGreaterThan(writes.findIndex((r) => r.includes('poison')));
    expect(behind).toBeLessThan(writes.findLastIndex((r) => r.includes('poison')));
    expect(server.requests.filter((r) => r.startsWith('GET /ping'))).toHaveLength(2 * MAX_BATCH_ATTEMPTS);
    expect(writer.stats).toMatchObject({ batchesSetAside: 1, pointsWritten: 2, pointsRejected: 2 });
    expect(spool.stats.quarantinedBatches).toBe(1);
    expect(writer.inOutage()).toBe(false);
    expect(logs.map((l) => l.msg).filter((m) => /set aside/.test(m))).toEqual([expect.stringMatching(/InfluxDB answers \/ping and takes other batches but gave no usable answer to this one 6 times/)]);
  });

  it('InfluxDB answers /ping but no write (too busy): nothing is set aside, the order is kept', async () => {
    const server = await rawServer((head) => (head.startsWith('POST /write') ? null : NO_CONTENT));
    const { writer } = newWriter(server.url);
    writer.add('m v=1i 1');
    writer.flush();
    writer.add('m v=2i 2');
    writer.flush();
    await until('many attempts', () => server.requests.filter((r) => r.startsWith('POST')).length >= 4 * MAX_BATCH_ATTEMPTS, 20_000);
    expect(writer.stats.batchesSetAside).toBe(0);
    expect(await writer.close(50)).toEqual({ points: 2, spooled: 2 });
  });

  it('a closed port is unreachable: retried, never set aside', async () => {
    const port = await freePort();
    const { writer } = newWriter(`http://127.0.0.1:${port}`);
    writer.add('m v=1i 1');
    writer.add('m v=2i 2');
    await until('the outage', () => writer.inOutage());
    await new Promise((r) => setTimeout(r, 300));
    expect(writer.stats.writeErrors).toBeGreaterThan(MAX_BATCH_ATTEMPTS);
    expect(writer.stats.batchesSetAside).toBe(0);
    expect(writer.writeProblem()).toMatch(/^ECONNREFUSED/);
    expect(await writer.close(50)).toEqual({ points: 2, spooled: 2 });
  });
});

describe('Retry-After', () => {
  it('is read in seconds or as an HTTP date, within [0, MAX_RETRY_AFTER_MS]', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs('99999999999', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });

  it('a 503 with a huge Retry-After: the client hands back the bounded wait, the writer waits it (not every millisecond)', async () => {
    const server = await rawServer((head) => (head.startsWith('POST') ? 'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 99999999999\r\nContent-Length: 0\r\n\r\n' : NO_CONTENT));
    expect(await buildInfluxClient(target(server.url)).write(Buffer.from('m v=1i 1'), false, null))
      .toEqual({ kind: 'retry', reason: '503 Service Unavailable', answered: true, retryAfterMs: MAX_RETRY_AFTER_MS });
    const { writer } = newWriter(server.url);
    writer.add('m v=1i 1');
    writer.add('m v=2i 2');
    await until('the first answer', () => writer.stats.writeErrors === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(server.requests.filter((r) => r.startsWith('POST'))).toHaveLength(2);
    expect(writer.inOutage()).toBe(false);
    expect(writer.writeProblem()).toBe('503 Service Unavailable');
    await writer.close(10);
  });
});
