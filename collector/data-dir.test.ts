import { describe, expect, it } from 'vitest';
import { sealJson, unsealJson } from './data-dir.js';

describe('sealed JSON', () => {
  const text = JSON.stringify({ version: 1, devices: { a: 1 } });
  const sealed = sealJson(text);

  it('gives back the text, and reads a file from before seals as it is', () => {
    expect(unsealJson(sealed)).toBe(text);
    expect(unsealJson(text)).toBe(text);
  });

  it('no single flipped byte passes unseal and parse: in the text, the digest, or the seal\'s own key', () => {
    for (let i = 0; i < sealed.length; i++) {
      const flipped = sealed.slice(0, i) + String.fromCharCode(sealed.charCodeAt(i) ^ 0x01) + sealed.slice(i + 1);
      // what a reader does: unseal, then parse; either step may refuse, neither may pass a changed file
      let read: unknown = null;
      try {
        read = JSON.parse(unsealJson(flipped));
      } catch {
        read = null;
      }
      expect(read, `byte ${i} (${JSON.stringify(sealed[i])})`).toBeNull();
    }
  });
});
