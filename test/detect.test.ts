/**
 * Activations and verdicts on the labelled captures: wake events built from the labels (not from
 * earshot's output) confirm the activations they cover; the rest are suspected; without a source they
 * are unverified, except in quiet hours. A paced replay finds the same activations as a fast one.
 */
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { describeShared, PROJECT_ROOT, VCFP_CAPTURES } from './helpers/shared.js';

interface Label { file: string; echo_mac: string; commands: number; reference_bursts: Array<{ start_epoch_s: number }>; reference_agrees_with_commands: boolean }
const dir = mkdtempSync(join(tmpdir(), 'earshot-detect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function activations(file: string, extra: string[] = []) {
  const r = await runCli(['replay', file, '--format', 'json', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout).activations as Array<{ id: string; start: string; verdict: string; reasons: string[]; wakeEvent: string | null; device: string }>);
}

describeShared('verdicts from wake events on real captures', () => {
  const labels = (): Label[] => JSON.parse(readFileSync(join(VCFP_CAPTURES, 'labels.json'), 'utf8'));

  it('a wake-event file covering some activations confirms those and suspects the rest; an empty one suspects all', async () => {
    const label = labels().find((l) => l.reference_agrees_with_commands)!;
    const file = join(VCFP_CAPTURES, label.file);
    // wake words a second before three of the five commands: the labels' own start times
    const covered = label.reference_bursts.slice(0, 3).map((b) => b.start_epoch_s);
    const events = join(dir, 'three.jsonl');
    writeFileSync(events, covered.map((s, i) => JSON.stringify({ time: new Date((s - 1) * 1000).toISOString(), device: i === 0 ? label.echo_mac : undefined, source: 'test' })).join('\n'));
    const found = await activations(file, ['--wake-events', events]);
    expect(found).toHaveLength(5);
    const byVerdict = found.map((a) => {
      const startS = Date.parse(a.start) / 1000;
      const isCovered = covered.some((c) => Math.abs(c - startS) <= 2);
      return [isCovered, a.verdict];
    });
    expect(byVerdict.filter(([c]) => c).every(([, v]) => v === 'confirmed')).toBe(true);
    expect(byVerdict.filter(([c]) => !c).every(([, v]) => v === 'suspected')).toBe(true);
    expect(byVerdict.filter(([c]) => c)).toHaveLength(3);
    for (const a of found.filter((x) => x.verdict === 'confirmed')) expect(a.wakeEvent).not.toBeNull();
    for (const a of found.filter((x) => x.verdict === 'suspected')) expect(a.reasons).toContain('no-wake-event');

    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '');
    expect((await activations(file, ['--wake-events', empty])).map((a) => a.verdict)).toEqual(Array(5).fill('suspected'));
    expect((await activations(file)).map((a) => a.verdict)).toEqual(Array(5).fill('unverified'));
  });

  it('without a source, quiet hours make activations suspected', async () => {
    const label = labels()[0];
    const file = join(VCFP_CAPTURES, label.file);
    const hour = new Date(label.reference_bursts[0].start_epoch_s * 1000).getUTCHours();
    const range = `${String(hour).padStart(2, '0')}:00-${String((hour + 1) % 24).padStart(2, '0')}:00`;
    const found = await activations(file, ['--quiet-hours', range, '--time-zone', 'UTC']);
    expect(found.length).toBeGreaterThan(0);
    for (const a of found) expect([a.verdict, a.reasons.includes('quiet-hours')]).toEqual(['suspected', true]);
  });

  it('a paced replay finds the same activations as a fast one', async () => {
    const label = labels().find((l) => l.file.startsWith('when_is_hanukkah'))!;
    const file = join(VCFP_CAPTURES, label.file);
    const fast = await activations(file);
    const paced = await activations(file, ['--realtime-speed', '40']);
    expect(paced.map((a) => [a.id, a.start])).toEqual(fast.map((a) => [a.id, a.start]));
  });

  it('imports an Amazon voice-history export into wake events the replay understands', async () => {
    const out = join(dir, 'history.jsonl');
    const r = await runCli(['import', 'voice-history', join(PROJECT_ROOT, 'test/fixtures/wake-events/voice-history-rvh.json'), '-o', out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^earshot: \d+ records: \d+ intended .*\d+ not intended/);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.some((e) => e.intended === false)).toBe(true);
    expect(JSON.stringify(lines)).not.toMatch(/transcript/i);
    const replay = await runCli(['replay', join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng'), '--format', 'json', '--wake-events', out]);
    expect(replay.code).toBe(0);
    const bad = await runCli(['import', 'voice-history', join(PROJECT_ROOT, 'README.md')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
