import { describe, expect, it } from 'vitest';
import { domainOf } from './index.js';

describe('domainOf', () => {
  it('is the last two labels, lower case, as splitting the name on dots gives', () => {
    const split = (name: string) => name.toLowerCase().split('.').slice(-2).join('.');
    const names = ['', '.', '..', 'a', 'a.', '.a', 'a.b', 'A.B.C', 'x.y.z.Example.COM', 'a..b', '..b', 'b..', 'foo.bar.', '.foo.bar', 'x.y.', 'avs-alexa-4-na.amazon.com'];
    for (const name of names) expect(domainOf(name), JSON.stringify(name)).toBe(split(name));
  });
});
