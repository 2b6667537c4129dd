import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { Flow } from '../flow/flow.js';
import { parseAddr } from '../flow/local-nets.js';
import { Inventory } from '../identify/inventory.js';
import type { Activation } from './detector.js';
import { buildDetectStage } from './index.js';

const MAC = 0xc49500e3932f;
const T0 = 1_700_000_000_000;

function stageWithOneActivation() {
  const inventory = new Inventory({ lookup: () => ({ organization: 'Amazon Technologies Inc.', vendor: 'amazon' }) }, { maxDevices: 10, devices: {} });
  const finished: Activation[] = [];
  const stage = buildDetectStage(loadConfig({}), inventory, { onActivation: (a) => finished.push(a) });
  const flow = new Flow(1, 6, 4, 0, T0, parseAddr('10.0.0.5')!.words, 40000, parseAddr('52.94.1.1')!.words, 443);
  flow.deviceMac = MAC;
  flow.service = 'voice';
  [22_000, 10_000, 10_000].forEach((bytes, s) => {
    for (let k = 0; k * 1400 < bytes; k++) stage.detector.onPacket(flow, true, 1400, T0 + s * 1000 + k * 50);
  });
  stage.detector.flush();
  return { stage, finished };
}

describe('detect stage', () => {
  it('a wake event that arrives after the activation (API, MQTT) turns it confirmed', () => {
    const { stage, finished } = stageWithOneActivation();
    expect(finished.map((a) => a.verdict)).toEqual(['unverified']);
    const changed = stage.addWakeEvents([{ time: T0 - 500, device: 'c4:95:00:e3:93:2f', source: 'api' }]);
    expect(changed).toHaveLength(1);
    expect(finished[0]).toMatchObject({ verdict: 'confirmed', wakeEventMs: T0 - 500 });
    expect(finished[0].reasons).toContain('wake-event:api');
  });

  it("a person's label wins over the detector and is kept for the state file", () => {
    const { stage, finished } = stageWithOneActivation();
    stage.addWakeEvents([{ time: T0 - 500, device: null, source: 'api' }]);
    expect(stage.label(finished[0].id, 'not-intended')?.activation.verdict).toBe('suspected');
    expect(finished[0].reasons[1]).toBe('label:not-intended');
    expect(stage.labels.get(finished[0].id)).toBe('not-intended');
    expect(stage.label('no-such-id', 'intended')).toBeNull();
    expect(stage.labels.has('no-such-id')).toBe(false);
  });
});
