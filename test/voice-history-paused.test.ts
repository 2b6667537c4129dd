/**
 * `earshot import voice-history` on a pause after the wake word, end to end on a real capture: Amazon
 * writes the first turn of the dialog (/0) as "audio was not intended for Alexa" and the request as the
 * next turn (/1) seconds later. The export is built around the labels' own upload starts (not earshot's
 * output): the /0 at the wake word, the /1 as Amazon stamps the request. The replay must confirm the
 * upload, not suspect it on the strength of Amazon's /0 record.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { describeShared, VCFP_CAPTURES } from './helpers/shared.js';

interface Label { file: string; echo_mac: string; reference_bursts: Array<{ start_epoch_s: number }>; reference_agrees_with_commands: boolean }

const dir = mkdtempSync(join(tmpdir(), 'earshot-paused-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One Review Voice History record (the shape of test/fixtures/wake-events/voice-history-rvh.json). */
function record(timeMs: number, utteranceType: string, utteranceId: string) {
  return {
    recordKey: `A1EXAMPLE0CUST#${timeMs}#A4ZXE0RM7LQ7A#G090XX0000000001`, recordType: 'VOICE_HISTORY', timestamp: timeMs,
    device: { deviceName: 'Kitchen Echo', deviceEntityId: null }, utteranceType,
    voiceHistoryRecordItems: [{ recordItemType: utteranceType === 'GENERAL' ? 'CUSTOMER_TRANSCRIPT' : 'ASR_REPLACEMENT_TEXT', utteranceId, timestamp: timeMs, transcriptText: '' }],
  };
}

describeShared('a pause after the wake word on a real capture', () => {
  it('the /0 "not intended" turn before the request confirms the upload instead of suspecting it', async () => {
    const labels = JSON.parse(readFileSync(join(VCFP_CAPTURES, 'labels.json'), 'utf8')) as Label[];
    const label = labels.find((l) => l.reference_agrees_with_commands)!;
    const startMs = label.reference_bursts[0].start_epoch_s * 1000;
    const dialog = 'A4ZXE0RM7LQ7A:1.0/2018/10/22/03/G090XX0000000001/46:35::TNIH_2V.00000000-0000-0000-0000-000000000001ZXV';
    const history = join(dir, 'history.json');
    // newest first, as Amazon lists them: the request 3.5 s after the wake word, then the wake word's turn
    writeFileSync(history, JSON.stringify({ customerHistoryRecords: [
      record(startMs + 3500, 'GENERAL', `${dialog}/1`),
      record(startMs - 300, 'DISCARDED_NON_DEVICE_DIRECTED_INTENT', `${dialog}/0`),
    ] }));
    const events = join(dir, 'events.jsonl');
    const imported = await runCli(['import', 'voice-history', history, '-o', events]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/: 2 records: 2 intended \(0 arbitration\), 0 not intended for the device; 1 paused wake words .* folded in; wrote /);
    expect(imported.stderr.trim().split('\n')).toHaveLength(1);

    const config = join(dir, 'earshot.yaml');
    writeFileSync(config, `devices:\n  "${label.echo_mac}": { name: Kitchen Echo }\n`);
    const r = await runCli(['replay', join(VCFP_CAPTURES, label.file), '--config', config, '--format', 'json', '--wake-events', events]);
    expect(r.code, r.stderr).toBe(0);
    const activations = JSON.parse(r.stdout).activations as Array<{ start: string; verdict: string; reasons: string[] }>;
    const first = activations.find((a) => Math.abs(Date.parse(a.start) - startMs) <= 2000);
    expect(first, JSON.stringify(activations)).toBeDefined();
    expect(first!.verdict).toBe('confirmed');
    expect(first!.reasons).toContain('wake-event:amazon-voice-history:paused');
    expect(first!.reasons).not.toContain('voice-history:not-intended');
  });
});
