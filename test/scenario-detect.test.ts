/**
 * Edge cases no real capture has, from labelled scenarios (test/scenario): two Echos answering one wake
 * word, a HomePod, a Nest on QUIC, an upload across midnight, and a random household. The scenario's
 * activation list is the ground truth; the real captures (test/detect.test.ts, npm run eval) remain the
 * judge of the detector's numbers.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ReportActivation } from '../collector/sink/report.js';
import { runCli } from './helpers/cli.js';
import { exampleDevices, generateScenario, writeScenarioPcap } from './scenario/generator.js';
import type { Scenario } from './scenario/types.js';

const dir = mkdtempSync(join(tmpdir(), 'earshot-scenario-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const T0 = Date.UTC(2026, 10, 24, 23, 50, 0); // ten minutes before midnight

async function replay(scenario: Scenario, name: string, extra: string[] = []): Promise<ReportActivation[]> {
  const pcap = join(dir, `${name}.pcap`);
  writeScenarioPcap(scenario, pcap);
  const r = await runCli(['replay', pcap, '--format', 'json', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).activations;
}

/** Pairs each true activation with a detection on the same device starting within 2 s. */
function matchAll(truth: Scenario['activations'], found: ReportActivation[]) {
  const used = new Set<ReportActivation>();
  const missed = [];
  for (const t of truth) {
    const hit = found.find((f) => !used.has(f) && f.device === t.device && Math.abs(Date.parse(f.start) - t.start) <= 2000);
    if (hit) used.add(hit);
    else missed.push(t);
  }
  return { missed, extra: found.filter((f) => !used.has(f)), pairs: used.size };
}

describe('detection on generated households', () => {
  const devices = exampleDevices();
  const [kitchenEcho, bedroomEcho, homepod, nest] = devices;

  it('two Echos for one wake word, a HomePod false activation, a Nest on QUIC, an upload across midnight', async () => {
    const scenario = generateScenario({
      seed: 11,
      startMs: T0,
      durationMs: 20 * 60_000,
      devices,
      activations: [
        { device: kitchenEcho.mac, start: T0 + 60_000, kind: 'command', intended: true },
        { device: bedroomEcho.mac, start: T0 + 60_200, kind: 'command', intended: true, arbitration: 'lost' },
        { device: homepod.mac, start: T0 + 180_000, kind: 'false', intended: false },
        { device: nest.mac, start: T0 + 300_000, kind: 'command', intended: true },
        { device: kitchenEcho.mac, start: T0 + 600_000 - 2_000, kind: 'false', intended: false },
      ],
    });
    // the wake word is heard once: only the winner has a wake event (the loser's upload is arbitration)
    const events = join(dir, 'events.jsonl');
    writeFileSync(events, scenario.wakeEvents.filter((e) => e.device !== bedroomEcho.mac).map((e) => JSON.stringify(e)).join('\n'));
    const found = await replay(scenario, 'edge', ['--wake-events', events]);
    const { missed, extra } = matchAll(scenario.activations, found);
    expect(missed).toEqual([]);
    expect(extra).toEqual([]);
    const verdictOf = (mac: string, start: number) => found.find((f) => f.device === mac && Math.abs(Date.parse(f.start) - start) <= 2000);
    expect(verdictOf(kitchenEcho.mac, T0 + 60_000)?.verdict).toBe('confirmed');
    expect(verdictOf(bedroomEcho.mac, T0 + 60_200)).toMatchObject({ verdict: 'confirmed', reasons: expect.arrayContaining(['arbitration']) });
    expect(verdictOf(homepod.mac, T0 + 180_000)?.verdict).toBe('suspected');
    expect(verdictOf(nest.mac, T0 + 300_000)?.verdict).toBe('confirmed');
    const midnight = verdictOf(kitchenEcho.mac, T0 + 598_000);
    expect(midnight?.verdict).toBe('suspected');
    expect(new Date(midnight!.start).getUTCDate()).not.toBe(new Date(midnight!.end).getUTCDate());
  });

  it('a random household over two hours: every activation found, decoys ignored', async () => {
    const scenario = generateScenario({ seed: 2026, startMs: T0, durationMs: 2 * 3600_000, devices, randomActivations: 16 });
    const found = await replay(scenario, 'random');
    const { missed, extra } = matchAll(scenario.activations, found);
    const recall = (scenario.activations.length - missed.length) / scenario.activations.length;
    const precision = (found.length - extra.length) / Math.max(1, found.length);
    expect({ recall, precision, missed: missed.map((m) => `${m.kind} ${m.device} ${m.durationMs}ms ${m.bytesUp}B`), extra: extra.map((e) => `${e.device} ${e.start} ${e.bytesUp}B ${e.reasons}`) })
      .toEqual({ recall: 1, precision: 1, missed: [], extra: [] });
  });
});
