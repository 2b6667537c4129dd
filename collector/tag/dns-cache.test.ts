import { describe, expect, it } from 'vitest';
import { DnsAnswer } from '../flow/payload.js';
import { DnsCache } from './dns-cache.js';

const answer = (t: number, name: string, type: 'A' | 'CNAME', data: string, ttl = 60) => new DnsAnswer(t, name, type, data, ttl, 1, 4, [0, 0, 0, 1]);

describe('DNS cache', () => {
  it('follows CNAME chains back to the name the device asked for', () => {
    const cache = new DnsCache(100, 0);
    cache.onAnswer(answer(0, 'alexa.amazon.com', 'CNAME', 'pitangui.amazon.com'), 'm1');
    cache.onAnswer(answer(0, 'pitangui.amazon.com', 'CNAME', 'edge.example.net'), 'm1');
    cache.onAnswer(answer(0, 'edge.example.net', 'A', '52.1.2.3'), 'm1');
    expect(cache.lookup('m1', '52.1.2.3', 1000)).toMatchObject({ name: 'alexa.amazon.com', chain: ['alexa.amazon.com', 'pitangui.amazon.com', 'edge.example.net'] });
  });

  it('holds a name for its TTL plus the grace period, per client first', () => {
    const cache = new DnsCache(100, 30_000);
    cache.onAnswer(answer(0, 'a.example', 'A', '1.2.3.4', 10), 'm1');
    cache.onAnswer(answer(5, 'b.example', 'A', '1.2.3.4', 10), 'm2');
    expect(cache.lookup('m1', '1.2.3.4', 39_000)?.name).toBe('a.example');
    expect(cache.lookup('m3', '1.2.3.4', 39_000)?.name).toBe('b.example');
    expect(cache.lookup('m1', '1.2.3.4', 40_001)?.name).toBe('b.example');
    expect(cache.lookup('m1', '1.2.3.4', 50_000)).toBeNull();
  });

  it('is bounded, evicting the oldest, and survives a save and load', () => {
    const cache = new DnsCache(4, 0);
    for (let i = 0; i < 10; i++) cache.onAnswer(answer(0, `n${i}.example`, 'A', `10.0.0.${i}`), 'm1');
    expect(cache.stats.evicted).toBeGreaterThan(0);
    expect(cache.lookup('m1', '10.0.0.0', 0)).toBeNull();
    const again = new DnsCache(4, 0);
    again.load(cache.rows());
    expect(again.lookup('m1', '10.0.0.9', 0)?.name).toBe('n9.example');
    again.load([['x', 1 as unknown as string, [], 0]]);
  });

  it('a CNAME loop does not hang', () => {
    const cache = new DnsCache(100, 0);
    cache.onAnswer(answer(0, 'a.example', 'CNAME', 'b.example'), 'm1');
    cache.onAnswer(answer(0, 'b.example', 'CNAME', 'a.example'), 'm1');
    cache.onAnswer(answer(0, 'a.example', 'A', '1.1.1.1'), 'm1');
    expect(cache.lookup('m1', '1.1.1.1', 0)?.chain.length).toBeLessThanOrEqual(9);
  });
});
