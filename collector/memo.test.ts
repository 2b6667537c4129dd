import { describe, expect, it } from 'vitest';
import { fillOnceMemo } from './memo.js';

describe('fillOnceMemo', () => {
  it('computes once for the first maxEntries inputs it admits, and every time for the rest', () => {
    const calls: string[] = [];
    const upper = fillOnceMemo((s: string) => { calls.push(s); return s.toUpperCase(); }, 2, (s) => s.length <= 3);
    for (const s of ['ab', 'ab', 'long text', 'long text', 'cd', 'cd', 'ef', 'ef', 'ab']) expect(upper(s)).toBe(s.toUpperCase());
    // ab and cd kept; long text not admitted; ef came when the memo was full
    expect(calls).toEqual(['ab', 'long text', 'long text', 'cd', 'ef', 'ef']);
  });
});
