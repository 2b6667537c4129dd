/**
 * The hand-made ground truth for the real captures (bench/truth/real.json) against the packets:
 * bench/truth/make-truth.mjs reads each capture with tshark (no earshot code) and fails when a label has no
 * packets behind it or an upload burst of >= 3 kB has no label, so the labels cannot drift silently.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { describeShared, PROJECT_ROOT, SHARED } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';

const run = promisify(execFile);
const SCRIPT = join(PROJECT_ROOT, 'bench', 'truth', 'make-truth.mjs');
const LABELS = join(PROJECT_ROOT, 'bench', 'truth', 'real.json');

interface Burst { start: number; end: number; bytes: number; labels: string[] }
interface FileResult { file: string; problems: string[]; bursts: Burst[]; voice: number; uncertain: number; nonVoice: number }
interface Label { start_epoch: number; end_epoch: number; bytes_up: number; server: string; kind?: string; what?: string }
interface Entry { file: string; device_mac: string; voice_uploads: Label[]; non_voice_bursts: Label[] }

/** make-truth's exit code and per-file results for a labels file. */
async function makeTruth(labels: string): Promise<{ code: number; results: FileResult[] }> {
  const options = { cwd: PROJECT_ROOT, env: { ...process.env, EARSHOT_SHARED: SHARED }, maxBuffer: 1 << 26 };
  try {
    const { stdout } = await run(process.execPath, [SCRIPT, '--json', '--labels', labels], options);
    return { code: 0, results: JSON.parse(stdout) as FileResult[] };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (e.code !== 1) throw new Error(`make-truth exited ${e.code}: ${e.stderr}`);
    return { code: 1, results: JSON.parse(e.stdout ?? '[]') as FileResult[] };
  }
}

describeShared('ground truth of the real captures matches the packets (bench/truth)', () => {
  const truth = JSON.parse(readFileSync(LABELS, 'utf8')) as Entry[];
  let labelled: { code: number; results: FileResult[] };
  let drifted: { code: number; results: FileResult[] };

  beforeAll(async () => {
    // three kinds of drift in a copy: a start that is no packet, a missing label, a wrong byte count
    const copy = JSON.parse(JSON.stringify(truth)) as Entry[];
    const byFile = (name: string) => copy.find((e) => e.file === name) as Entry;
    byFile('amazon-echo_alexa-timed2_xray.pcap').voice_uploads[2].start_epoch += 0.2;
    const normal = byFile('amazon-echodot2_normal-use_jhautry.pcap');
    normal.non_voice_bursts = normal.non_voice_bursts.filter((b) => !b.what?.includes('device-metrics'));
    byFile('amazon-echodot3_activation_neu.pcapng').voice_uploads[0].bytes_up += 1;
    const path = join(tempDir('earshot-truth-'), 'drifted.json');
    writeFileSync(path, JSON.stringify(copy));
    [labelled, drifted] = await Promise.all([makeTruth(LABELS), makeTruth(path)]);
  }, 180_000);

  it('every label has its packets and every upload burst of >= 3 kB has a label', () => {
    const problems = labelled.results.flatMap((r) => r.problems.map((p) => `${r.file}: ${p}`));
    expect(problems).toEqual([]);
    expect(labelled.code).toBe(0);
    expect(labelled.results.map((r) => r.file).sort()).toEqual(truth.map((e) => e.file).sort());
  });

  it('holds the counts bench/truth/README.md gives', () => {
    const counts = Object.fromEntries(labelled.results.map((r) => [r.file, [r.voice, r.uncertain]]));
    expect(counts).toEqual({
      'amazon-echo_alexa-time-query-0_xray.pcap': [3, 0],
      'amazon-echo_alexa-time-query-1_xray.pcap': [4, 0],
      'amazon-echo_alexa-timed2_xray.pcap': [16, 0],
      'amazon-echodot2_normal-use_jhautry.pcap': [8, 0],
      'amazon-echodot3_activation_neu.pcapng': [1, 0],
      'amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap': [0, 0],
      'android-alexa-app_jhautry.pcap': [0, 0],
    });
  });

  it('keeps voice and an assistant\'s other uploads apart by size', () => {
    // an audio stream is tens of kB; the assistants' telemetry, CDN requests and boot handshakes are not
    for (const entry of truth) {
      for (const v of entry.voice_uploads) expect(v.bytes_up, `${entry.file} ${v.start_epoch}`).toBeGreaterThanOrEqual(25_000);
      if (entry.file.startsWith('android')) continue;
      for (const b of entry.non_voice_bursts) expect(b.bytes_up, `${entry.file} ${b.start_epoch}`).toBeLessThan(20_000);
    }
  });

  it('fails when a label drifts from the packets', () => {
    expect(drifted.code).toBe(1);
    const problems = (file: string) => drifted.results.find((r) => r.file === file)?.problems.join('\n') ?? '';
    expect(problems('amazon-echo_alexa-timed2_xray.pcap')).toMatch(/no data frame to 52\.94\.219\.213:443 at its start/);
    expect(problems('amazon-echodot2_normal-use_jhautry.pcap')).toMatch(/^burst 1490284741\.480-.* not labelled$/m);
    expect(problems('amazon-echodot3_activation_neu.pcapng')).toMatch(/bytes_up 221534, tshark reads 221533/);
    expect(problems('amazon-echo_alexa-time-query-0_xray.pcap')).toBe('');
  });
});
