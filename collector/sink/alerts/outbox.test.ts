/**
 * The outbox: one queue per webhook, oldest first; files written whole (tmp + rename) and found again
 * by a second outbox on the same directory, with attempts and next attempt time; half-written files
 * removed, unreadable ones quarantined and counted; the bound dropping the oldest delivery that is not in flight.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_QUARANTINED, Outbox } from './outbox.js';

const dirs: string[] = [];
function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-outbox-test-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const T0 = 1_714_533_136_250;
const request = (body: string) => ({ headers: { 'Content-Type': 'application/json' }, body });
const keys = (outbox: Outbox, hook: string) => [...outbox.forHook(hook)].map((d) => d.key);

for (const kind of ['disk', 'memory'] as const) {
  describe(`${kind} outbox`, () => {
    const open = (max = 100) => new Outbox(kind === 'disk' ? newDir() : null, max);

    it('queues per webhook, oldest first, and removes what is done', () => {
      const outbox = open();
      const a1 = outbox.add('slack', 'activation.suspected', 'a.1', request('1'), T0);
      outbox.add('ntfy', 'activation.suspected', 'a.1', request('n'), T0);
      outbox.add('slack', 'activation.finished', 'a.2', request('2'), T0 + 1);
      expect(outbox.size).toBe(3);
      expect([...outbox.hooks()].sort()).toEqual(['ntfy', 'slack']);
      expect(outbox.head('slack')?.key).toBe('a.1');
      expect(outbox.request(a1)).toEqual(request('1'));
      expect(a1).toMatchObject({ attempts: 0, createdMs: T0, nextAttemptMs: T0, event: 'activation.suspected' });
      outbox.remove(a1);
      expect(keys(outbox, 'slack')).toEqual(['a.2']);
      outbox.remove(outbox.head('ntfy')!);
      expect([...outbox.hooks()]).toEqual(['slack']);
      expect(outbox.size).toBe(1);
    });

    it('drops the oldest delivery not in flight beyond its bound, and counts it', () => {
      const outbox = open(3);
      const first = outbox.add('h', 'activation.suspected', 'k1', request('1'), T0);
      first.inFlight = true;
      for (let i = 2; i <= 5; i++) outbox.add('h', 'activation.suspected', `k${i}`, request(String(i)), T0 + i);
      expect(keys(outbox, 'h')).toEqual(['k1', 'k4', 'k5']);
      expect(outbox.dropped).toBe(2);
    });
  });
}

describe('outbox on disk', () => {
  it('is found again by the next run, with attempts and next attempt time, in order', () => {
    const dir = newDir();
    const first = new Outbox(dir, 100);
    const d1 = first.add('ha', 'activation.suspected', 'k1', request('{"n":1}'), T0);
    first.add('ha', 'activation.finished', 'k2', request('{"n":2}'), T0 + 5);
    d1.attempts = 3;
    d1.nextAttemptMs = T0 + 9000;
    first.update(d1, request('{"n":1}'));
    expect(readdirSync(dir).sort()).toEqual(['000000000001.json', '000000000002.json']);
    expect(JSON.parse(readFileSync(join(dir, '000000000001.json'), 'utf8'))).toEqual({
      v: 1, hook: 'ha', event: 'activation.suspected', key: 'k1', createdMs: T0, attempts: 3, nextAttemptMs: T0 + 9000,
      headers: { 'Content-Type': 'application/json' }, body: '{"n":1}', sum: expect.stringMatching(/^[0-9a-f]{64}$/),
    });

    const second = new Outbox(dir, 100);
    expect(second.size).toBe(2);
    const head = second.head('ha')!;
    expect(head).toMatchObject({ seq: 1, key: 'k1', attempts: 3, nextAttemptMs: T0 + 9000, createdMs: T0, request: null });
    expect(second.request(head)).toEqual(request('{"n":1}'));
    second.remove(head);
    // new deliveries continue the sequence
    expect(second.add('ha', 'activation.suspected', 'k3', request('3'), T0 + 10).seq).toBe(3);
    expect(readdirSync(dir).sort()).toEqual(['000000000002.json', '000000000003.json']);
  });

  it('removes half-written files, and quarantines and counts the unreadable', () => {
    const dir = newDir();
    const first = new Outbox(dir, 100);
    first.add('h', 'activation.suspected', 'k1', request('1'), T0);
    const d2 = first.add('h', 'activation.suspected', 'k2', request('2'), T0);
    writeFileSync(join(dir, '000000000003.json.tmp'), '{"v":1,"hoo');
    writeFileSync(join(dir, '000000000004.json'), 'not json');
    writeFileSync(join(dir, '000000000005.json'), JSON.stringify({ v: 1, hook: 'h', event: 'activation.exploded', key: 'k5', createdMs: T0, attempts: 0, nextAttemptMs: T0, headers: {}, body: '' }));
    writeFileSync(join(dir, 'README'), 'not ours');
    const second = new Outbox(dir, 100);
    expect(keys(second, 'h')).toEqual(['k1', 'k2']);
    expect(second.unreadable).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['000000000001.json', '000000000002.json', 'README', 'quarantine']);
    expect(readdirSync(join(dir, 'quarantine')).map((n) => n.replace(/\d+$/, 'T')).sort()).toEqual(['000000000004.json.damaged-T', '000000000005.json.damaged-T']);
    expect(second.foundDamaged.map((f) => [f.file, f.why])).toEqual([[join(dir, '000000000004.json'), 'not JSON (a write cut short?)'], [join(dir, '000000000005.json'), 'unknown event']]);
    // files of an earshot before checksums are read; a changed byte in a sealed file is caught
    writeFileSync(join(dir, '000000000007.json'), JSON.stringify({ v: 1, hook: 'h', event: 'activation.suspected', key: 'k7', createdMs: T0, attempts: 0, nextAttemptMs: T0, headers: {}, body: 'old' }));
    const sealed = readFileSync(join(dir, '000000000001.json'), 'utf8');
    writeFileSync(join(dir, '000000000008.json'), sealed.replace('"k1"', '"k8"'));
    const reopened = new Outbox(dir, 100);
    expect(keys(reopened, 'h')).toEqual(['k1', 'k2', 'k7']);
    expect(reopened.foundDamaged.map((f) => f.why)).toEqual(['checksum mismatch (bytes changed on disk)']);
    rmSync(join(dir, '000000000007.json'));
    // a file far larger than any delivery is not read into memory
    writeFileSync(join(dir, '000000000006.json'), Buffer.alloc(2 << 20, 0x20));
    const third = new Outbox(dir, 100);
    expect(third.foundDamaged.map((f) => f.why)).toEqual([`${2 << 20} bytes, more than a delivery ever holds`]);
    // a file that vanished under a waiting delivery
    rmSync(join(dir, '000000000002.json'));
    const missing = [...second.forHook('h')].find((d) => d.seq === d2.seq)!;
    expect(second.request(missing)).toBeNull();
    expect(second.unreadable).toBe(3);
    expect(keys(second, 'h')).toEqual(['k1']);
  });

  it('keeps at most MAX_QUARANTINED files in its quarantine folder, the newest', () => {
    const dir = newDir();
    for (let seq = 1; seq <= MAX_QUARANTINED + 5; seq++) writeFileSync(join(dir, `${String(seq).padStart(12, '0')}.json`), '');
    const outbox = new Outbox(dir, 100);
    expect(outbox.unreadable).toBe(MAX_QUARANTINED + 5);
    const kept = readdirSync(join(dir, 'quarantine')).sort();
    expect(kept).toHaveLength(MAX_QUARANTINED);
    expect(kept[0]).toMatch(/^000000000006\.json\.damaged-\d+$/);
  });
});
