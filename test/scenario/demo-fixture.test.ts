/**
 * The simulated household that `earshot demo` replays (deploy/demo/): generated here from a fixed seed,
 * so the committed files are what the generator makes. EARSHOT_WRITE_DEMO=1 writes them; otherwise the
 * test fails when they are stale.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../helpers/shared.js';
import { exampleDevices, generateScenario, scenarioPcapBytes } from './generator.js';

const DIR = join(PROJECT_ROOT, 'deploy/demo');

/** An evening at home: two Echos, a HomePod, a Nest on QUIC, a phone and a TV; commands and a few false wakes. */
export function demoScenario() {
  const devices = exampleDevices().filter((d) => d.kind !== 'sonos' && d.kind !== 'laptop');
  const start = Date.UTC(2026, 10, 20, 19, 0, 0);
  const [kitchen, bedroom, homepod, nest] = devices;
  return generateScenario({
    seed: 20261120,
    startMs: start,
    durationMs: 8 * 60_000,
    devices,
    eventPostRate: 0.7,
    activations: [
      { device: kitchen.mac, start: start + 40_000, kind: 'command', intended: true },
      { device: homepod.mac, start: start + 110_000, kind: 'command', intended: true },
      { device: bedroom.mac, start: start + 175_000, kind: 'false', intended: false },
      { device: nest.mac, start: start + 240_000, kind: 'command', intended: true },
      { device: kitchen.mac, start: start + 320_000, kind: 'false', intended: false },
      { device: homepod.mac, start: start + 400_000, kind: 'false', intended: false },
    ],
  });
}

describe('demo household (deploy/demo)', () => {
  it('the committed capture and wake events are what the generator makes', () => {
    const scenario = demoScenario();
    const pcap = scenarioPcapBytes(scenario);
    const events = `${scenario.wakeEvents.map((e) => JSON.stringify(e)).join('\n')}\n`;
    const truth = `${JSON.stringify({ activations: scenario.activations.map((a) => ({ device: a.device, start: new Date(a.start).toISOString(), intended: a.intended, kind: a.kind })) }, null, 2)}\n`;
    if (process.env.EARSHOT_WRITE_DEMO === '1') {
      writeFileSync(join(DIR, 'household.pcap'), pcap);
      writeFileSync(join(DIR, 'household-wake-events.jsonl'), events);
      writeFileSync(join(DIR, 'household-truth.json'), truth);
    }
    expect(existsSync(join(DIR, 'household.pcap')), 'run with EARSHOT_WRITE_DEMO=1 to write deploy/demo').toBe(true);
    expect(readFileSync(join(DIR, 'household.pcap')).equals(pcap)).toBe(true);
    expect(readFileSync(join(DIR, 'household-wake-events.jsonl'), 'utf8')).toBe(events);
    expect(readFileSync(join(DIR, 'household-truth.json'), 'utf8')).toBe(truth);
    // wake events only for the intended ones: the false wakes will be suspected
    expect(scenario.wakeEvents).toHaveLength(scenario.activations.filter((a) => a.intended).length);
  });
});
