/**
 * collector/mac.ts, the one reader and writer of MAC text: every accepted spelling, the ones refused,
 * the coded error, and the places that used to carry their own copy (config keys, wake-event devices)
 * agreeing with it (the API's pattern: test/schemas.test.ts). Expected integers come from Buffer's own hex
 * reader, not from mac.ts.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalMac, formatMac, isGroupMac, isMac, MAC_PATTERN, NO_MAC, normalizeMac, parseMac, parseMacOrThrow, readMac } from './mac.js';
import { EarshotError } from './errors.js';
import { normalizeDevice } from './detect/wake-events.js';
import { loadConfig } from './config.js';

/** The integer of 12 hex digits, read by Buffer (an independent reader). */
const fromHex = (hex: string) => Buffer.from(hex.padStart(16, '0'), 'hex').readBigUInt64BE(0);

const ACCEPTED = ['aa:bb:cc:00:11:22', 'AA:BB:CC:00:11:22', 'Aa:bB:cC:00:11:22', 'aa-bb-cc-00-11-22', 'AA-BB-CC-00-11-22', 'aabbcc001122', 'AABBCC001122', 'aabb.cc00.1122', 'AABB.CC00.1122'];
const REFUSED = [
  '', 'aa:bb:cc:00:11', 'aa:bb:cc:00:11:22:33', 'aa:bb-cc:00:11:22', 'aa:bb:cc:00:11:2g', 'aabbcc00112', 'aabbcc0011223',
  'aa.bb.cc.00.11.22', 'aabb:cc00:1122', ' aa:bb:cc:00:11:22', 'aa:bb:cc:00:11:22 ', 'aa::bb:cc:00:11:22', 'a:bb:cc:00:11:22:2',
  'aa_bb_cc_00_11_22', 'Kitchen Echo', 'aa:bb:cc:00:11:22\n',
];

describe('MAC text: one rule', () => {
  it('reads every accepted spelling, any case, to the same integer and the canonical text', () => {
    for (const text of ACCEPTED) {
      expect(isMac(text), text).toBe(true);
      expect(BigInt(parseMac(text)), text).toBe(fromHex('aabbcc001122'));
      expect(normalizeMac(text), text).toBe('aa:bb:cc:00:11:22');
    }
  });

  it('refuses mixed separators, wrong lengths, stray spaces and non-hex; names stay names', () => {
    for (const text of REFUSED) {
      expect(isMac(text), JSON.stringify(text)).toBe(false);
      expect(parseMac(text), JSON.stringify(text)).toBe(NO_MAC);
      expect(normalizeMac(text), JSON.stringify(text)).toBeNull();
    }
  });

  it('bad input a person gave is the coded error naming where, with the accepted spellings', () => {
    for (const text of REFUSED) {
      let caught: unknown = null;
      try {
        parseMacOrThrow(text, 'devices');
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(EarshotError);
      expect((caught as EarshotError).code).toBe('EARSHOT_ERR_BAD_MAC');
      expect((caught as EarshotError).exitCode).toBe(2);
      expect((caught as EarshotError).message).toMatch(/^devices: ".*" is not a MAC address \(aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabbccddeeff or aabb\.ccdd\.eeff\)$/);
      expect((caught as EarshotError).message).not.toContain('\n');
    }
    expect(canonicalMac('AABB.CC00.1122', 'mac')).toBe('aa:bb:cc:00:11:22');
  });

  it('formats the extremes and refuses what is not a 48-bit integer', () => {
    expect(formatMac(0)).toBe('00:00:00:00:00:00');
    expect(formatMac(0xffffffffffff)).toBe('ff:ff:ff:ff:ff:ff');
    expect(formatMac(0x0000000000a0)).toBe('00:00:00:00:00:a0');
    expect(formatMac(0x010000000000)).toBe('01:00:00:00:00:00');
    for (const bad of [NO_MAC, -5, 0x1000000000000, 1.5, Number.NaN]) expect(formatMac(bad)).toBe('');
  });

  it('reads a MAC from bytes, and format(read(bytes)) is the bytes in hex (any 6 bytes)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (bytes) => {
      const hex = Buffer.from(bytes).toString('hex');
      const mac = readMac(bytes, 0);
      expect(BigInt(mac)).toBe(fromHex(hex));
      expect(formatMac(mac)).toBe(hex.match(/../g)!.join(':'));
      expect(parseMac(formatMac(mac))).toBe(mac);
      expect(isGroupMac(mac)).toBe((bytes[0] & 1) === 1);
    }));
  });

  it('the JSON Schema pattern is the same rule (a back-reference-free regex other tools can run)', () => {
    expect(MAC_PATTERN).not.toMatch(/\\\d/);
    const re = new RegExp(MAC_PATTERN, 'u'); // ajv compiles patterns with the u flag
    for (const text of ACCEPTED) expect(re.test(text), text).toBe(true);
    for (const text of REFUSED) expect(re.test(text), JSON.stringify(text)).toBe(false);
  });
});

describe('the places that read MACs agree', () => {
  it('wake-event devices: a MAC in any accepted spelling is canonical, anything else is a name', () => {
    for (const text of ACCEPTED) expect(normalizeDevice(text)).toBe('aa:bb:cc:00:11:22');
    expect(normalizeDevice(' aa:bb:cc:00:11:22 ')).toBe('aa:bb:cc:00:11:22');
    expect(normalizeDevice('aa:bb-cc:00:11:22')).toBe('aa:bb-cc:00:11:22');
  });

  it('config devices keys: every accepted spelling is taken, a refused one is a config error naming the key', () => {
    for (const text of ACCEPTED) {
      const config = loadConfig({ flags: { devices: JSON.stringify({ [text]: { name: 'Kitchen' } }) } });
      expect(Object.keys(config.devices)).toEqual([text]);
    }
    expect(() => loadConfig({ flags: { devices: '{"aa:bb-cc:00:11:22":{}}' } })).toThrow('--devices: "aa:bb-cc:00:11:22" is not a MAC address');
  });
});
