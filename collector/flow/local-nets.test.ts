import { describe, expect, it } from 'vitest';
import { isEarshotError } from '../errors.js';
import { buildLocalNets, parseAddr, parseCidr } from './local-nets.js';

const local = buildLocalNets(['203.0.113.0/25', '2001:db8:1::/48']);
const is = (text: string) => {
  const a = parseAddr(text)!;
  return local.isLocal(a.version, a.words);
};

describe('local networks', () => {
  it('knows the private, CGNAT, link-local, multicast and ULA ranges, and nothing public', () => {
    for (const a of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.12.112', '100.64.0.1', '169.254.1.1', '224.0.0.251', '239.255.255.250', '255.255.255.255', '0.0.0.0', 'fd00::1', 'fe80::1', 'ff02::fb', '::1']) {
      expect(is(a), a).toBe(true);
    }
    for (const a of ['172.32.0.1', '100.128.0.1', '52.94.233.109', '8.8.8.8', '2a00:1450::1', '2003:de:2016:120::a08:53']) {
      expect(is(a), a).toBe(false);
    }
  });

  it('adds the configured prefixes, to the bit', () => {
    expect(is('203.0.113.127')).toBe(true);
    expect(is('203.0.113.128')).toBe(false);
    expect(is('2001:db8:1:ffff::1')).toBe(true);
    expect(is('2001:db8:2::1')).toBe(false);
  });

  it('parses addresses and rejects bad prefixes with a message naming them', () => {
    expect(parseAddr('::ffff:1.2.3.4')?.words[3]).toBe(0x01020304);
    expect(parseAddr('1.2.3.256')).toBeNull();
    expect(parseAddr('1::2::3')).toBeNull();
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'nonsense', '10.0.0.0/x']) {
      try {
        parseCidr(bad, 'localNets[0]');
        throw new Error('expected an error');
      } catch (err) {
        expect(isEarshotError(err)).toBe(true);
        expect((err as Error).message).toMatch(/^localNets\[0\]: ".*" is not a CIDR prefix/);
      }
    }
  });
});
