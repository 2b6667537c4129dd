/**
 * The text log (a terminal's): one line per record, every field as key=value, and a value from a packet
 * cannot write fields of its own into the line (a device name with spaces and "=" is quoted).
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildLogger, fieldText } from './log.js';

describe('text log', () => {
  it('quotes a value that is not one plain word; a plain one stays as it is', () => {
    expect(fieldText('aa:bb:cc:dd:ee:ff')).toBe('aa:bb:cc:dd:ee:ff');
    expect(fieldText('Kitchen Echo')).toBe('"Kitchen Echo"');
    expect(fieldText('x mac=aa:bb:cc:dd:ee:ff')).toBe('"x mac=aa:bb:cc:dd:ee:ff"');
    expect(fieldText('a"b')).toBe('"a\\"b"');
    expect(fieldText('')).toBe('""');
    expect(fieldText(3)).toBe('3');
    expect(fieldText(null)).toBe('null');
    expect(fieldText(undefined)).toBe('undefined');
  });

  it('a forged name stays inside its field in the line written', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => { text += d.toString(); });
    const log = buildLogger({ level: 'info', format: 'text' }, out as unknown as NodeJS.WriteStream);
    log.warn({ device: 'aa:bb:cc:dd:ee:01', name: 'Echo) device=aa:bb:cc:dd:ee:99 (x' }, 'a new device');
    await new Promise((r) => setImmediate(r));
    expect(text).toBe('earshot: warn: a new device (device=aa:bb:cc:dd:ee:01 name="Echo) device=aa:bb:cc:dd:ee:99 (x")\n');
  });
});
