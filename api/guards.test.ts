/**
 * The rate limits' client key. A home LAN is one IPv6 /64: keyed by /64 (the rate-limit plugin's
 * default), one device's ten wrong tokens locked every IPv6 client of the home out, the right token
 * included (found by an audit, through the app's own guards and fastify's inject with client addresses).
 */
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { clientKey, registerGuards } from './guards.js';

const TOKEN = 'guards-unit-token-0123456789';
const key = (ip: string, lan: string[] = []) => clientKey(new Set(lan))({ ip } as FastifyRequest);

describe('the rate limits key a client', () => {
  it('by its whole address on this machine\'s IPv6 networks and link-local; by /64 beyond; IPv4 as it is', () => {
    expect(key('2001:db8:1:2::10', ['2001:db8:1:2'])).toBe('2001:db8:1:2::10');
    expect(key('2001:db8:1:2:aaaa:bbbb:cccc:dddd', ['2001:db8:1:2'])).toBe('2001:db8:1:2:aaaa:bbbb:cccc:dddd');
    expect(key('2001:0db8:0001:0002:0:0:0:10', ['2001:db8:1:2'])).toBe('2001:0db8:0001:0002:0:0:0:10');
    expect(key('fe80::1%eth0')).toBe('fe80::1');
    expect(key('2001:db8:9:9::10', ['2001:db8:1:2'])).toBe('2001:db8:9:9::/64');
    expect(key('2001:db8:9:9:ffff::1', ['2001:db8:1:2'])).toBe('2001:db8:9:9::/64');
    expect(key('192.168.1.20')).toBe('192.168.1.20');
    expect(key('::ffff:192.168.1.20')).toBe('192.168.1.20');
  });

  it('one link-local client\'s wrong tokens do not lock out another of the same /64', async () => {
    const app = Fastify({ logger: false });
    await app.register(rateLimit, { global: false });
    registerGuards(app, { token: TOKEN, tokenForReads: true, postsPerMinute: 100, failedTokensPerMinute: 10, allowedHosts: [] });
    app.get('/api/v1/health', async () => ({ ok: true }));
    await app.ready();
    const ask = (remoteAddress: string, token: string) =>
      app.inject({ method: 'GET', url: '/api/v1/health', remoteAddress, headers: { host: 'localhost', authorization: `Bearer ${token}` } });
    const owner = 'fe80::10';
    const attacker = 'fe80::aaaa:bbbb:cccc:dddd';
    expect((await ask(owner, TOKEN)).statusCode).toBe(200);
    const wrong: number[] = [];
    for (let i = 0; i < 11; i++) wrong.push((await ask(attacker, `wrong-token-${i}-0123456789`)).statusCode);
    expect(wrong).toEqual([...Array<number>(10).fill(401), 429]);
    // the attacker is limited, the right token included (no oracle); the owner is not
    expect((await ask(attacker, TOKEN)).statusCode).toBe(429);
    expect((await ask(owner, TOKEN)).statusCode).toBe(200);
    await app.close();
  });
});
