import { describe, expect, it } from 'vitest';
import { DnsAnswer } from '../flow/payload.js';
import { DnsCache, MAX_CLIENTS } from './dns-cache.js';

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

  it('refreshes a repeated answer in place: the same entry, a later expiry, no new object', () => {
    // a home asks for the same names all day: a new entry per answer (and a delete and re-insert in the
    // map) was most of what the pipeline thread's old generation took in over the soak's day
    const cache = new DnsCache(100, 0);
    cache.onAnswer(answer(0, 'alexa.amazon.com', 'CNAME', 'edge.example.net'), 'm1');
    cache.onAnswer(answer(0, 'edge.example.net', 'A', '52.1.2.3', 10), 'm1');
    const first = cache.lookup('m1', '52.1.2.3', 0);
    cache.onAnswer(answer(60_000, 'alexa.amazon.com', 'CNAME', 'edge.example.net'), 'm1');
    cache.onAnswer(answer(60_000, 'edge.example.net', 'A', '52.1.2.3', 10), 'm1');
    const again = cache.lookup('m1', '52.1.2.3', 65_000);
    expect(again).toBe(first);
    expect(again).toMatchObject({ name: 'alexa.amazon.com', expiresMs: 70_000 });
    // another name for the address replaces it
    cache.onAnswer(answer(61_000, 'other.example', 'A', '52.1.2.3', 10), 'm1');
    expect(cache.lookup('m1', '52.1.2.3', 65_000)?.name).toBe('other.example');
  });

  it("a refresh by one client leaves another client's expiry alone", () => {
    const cache = new DnsCache(100, 0);
    cache.onAnswer(answer(0, 'a.example', 'A', '1.2.3.4', 10), 'm1');
    cache.onAnswer(answer(100_000, 'a.example', 'A', '1.2.3.4', 10), 'm2');
    expect(cache.lookup('m1', '1.2.3.4', 0)?.expiresMs).toBe(10_000);
    expect(cache.lookup('m2', '1.2.3.4', 0)?.expiresMs).toBe(110_000);
    expect(cache.lookup('m3', '1.2.3.4', 0)?.expiresMs).toBe(110_000);
  });

  it('evicts the oldest address, but one answered again since it was kept gets a second chance', () => {
    // two entries an address (its clients' names and the latest answer's): 4 hold two addresses
    const cache = new DnsCache(4, 0);
    cache.onAnswer(answer(0, 'a.example', 'A', '10.0.0.1'), 'm1');
    cache.onAnswer(answer(0, 'b.example', 'A', '10.0.0.2'), 'm1');
    cache.onAnswer(answer(1, 'a.example', 'A', '10.0.0.1'), 'm1');
    cache.onAnswer(answer(2, 'c.example', 'A', '10.0.0.3'), 'm1');
    expect(cache.lookup('m1', '10.0.0.1', 0)?.name).toBe('a.example');
    expect(cache.lookup('m1', '10.0.0.2', 0)).toBeNull();
    expect(cache.lookup('m1', '10.0.0.3', 0)?.name).toBe('c.example');
    expect(cache.stats).toMatchObject({ entries: 2, evicted: 1 });
    // a flood of new names: the second chance is spent once, then the refreshed address goes too
    for (let i = 0; i < 2; i++) cache.onAnswer(answer(3, `n${i}.example`, 'A', `10.1.0.${i}`), 'm1');
    expect(cache.lookup('m1', '10.0.0.1', 0)).toBeNull();
    expect(cache.stats.entries).toBe(2);
  });

  it('counts addresses, not clients: many clients of one address take one place, their own names at most MAX_CLIENTS', () => {
    const cache = new DnsCache(2, 0);
    // a shared CDN address: each client asked for its own name
    for (let c = 0; c < MAX_CLIENTS + 3; c++) cache.onAnswer(answer(c, `site${c}.example`, 'A', '10.0.0.1'), `m${c}`);
    expect(cache.stats).toMatchObject({ entries: 1, evicted: 0 });
    // the first three clients' own names went (the first answered first), the rest are theirs
    for (let c = 0; c < 3; c++) expect(cache.lookup(`m${c}`, '10.0.0.1', 0)?.name).toBe(`site${MAX_CLIENTS + 2}.example`);
    for (let c = 3; c < MAX_CLIENTS + 3; c++) expect(cache.lookup(`m${c}`, '10.0.0.1', 0)?.name).toBe(`site${c}.example`);
    // a client with no name of its own gets the latest answer's
    expect(cache.lookup('m99', '10.0.0.1', 0)?.name).toBe(`site${MAX_CLIENTS + 2}.example`);
    expect(cache.rows()).toHaveLength(MAX_CLIENTS + 1);
  });

  it('loads the rows of a state file, its own and those of the key-per-client cache before it', () => {
    const cache = new DnsCache(10, 0);
    cache.load([
      ['m1|1.2.3.4', 'a.example', ['a.example'], 5000],
      ['m2|1.2.3.4', 'b.example', ['b.example', 'edge.example'], 6000],
      ['*|1.2.3.4', 'b.example', ['b.example', 'edge.example'], 6000],
      ['*|5.6.7.8', 'c.example', ['c.example'], 7000],
      ['m1|2001:db8::1', 'v6.example', ['v6.example'], 8000],
      // malformed: no client, no address, no bar, a number for a name
      ['|9.9.9.9', 'x.example', [], 1], ['m1|', 'x.example', [], 1], ['m1', 'x.example', [], 1], ['m1|9.9.9.8', 1 as unknown as string, [], 1],
    ]);
    expect(cache.lookup('m1', '1.2.3.4', 0)?.name).toBe('a.example');
    expect(cache.lookup('m3', '1.2.3.4', 0)).toMatchObject({ name: 'b.example', chain: ['b.example', 'edge.example'], expiresMs: 6000 });
    expect(cache.lookup('m1', '5.6.7.8', 0)?.name).toBe('c.example');
    expect(cache.lookup('m9', '2001:db8::1', 0)?.name).toBe('v6.example');
    expect(cache.stats.entries).toBe(3);
    // and writes them back the same way
    const again = new DnsCache(10, 0);
    again.load(cache.rows());
    expect(again.rows()).toEqual(cache.rows());
  });

  it('a CNAME loop does not hang', () => {
    const cache = new DnsCache(100, 0);
    cache.onAnswer(answer(0, 'a.example', 'CNAME', 'b.example'), 'm1');
    cache.onAnswer(answer(0, 'b.example', 'CNAME', 'a.example'), 'm1');
    cache.onAnswer(answer(0, 'a.example', 'A', '1.1.1.1'), 'm1');
    expect(cache.lookup('m1', '1.1.1.1', 0)?.chain.length).toBeLessThanOrEqual(9);
  });
});
