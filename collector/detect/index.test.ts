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

const LOSER = 0xfc65de123456;
const WINNER = 0x44650da1b2c3;

/**
 * Two Echos hear one wake word: the loser uploads for 3 s and ends first; the winner starts half a
 * second later, uploads for 8 s and is still uploading when the input ends (it finishes at flush()).
 */
function raceOfTwo(config = loadConfig({})) {
  const inventory = new Inventory({ lookup: () => ({ organization: 'Amazon Technologies Inc.', vendor: 'amazon' }) }, { maxDevices: 10, devices: {} });
  const finished: Activation[] = [];
  const changes: Array<[string, string, string]> = [];
  const stage = buildDetectStage(config, inventory, {
    onActivation: (a) => finished.push(a),
    onVerdictChanged: (a, before) => changes.push([a.id, before, a.verdict]),
  });
  const flowOf = (mac: number, ip: string) => {
    const flow = new Flow(1, 6, 4, 0, T0, parseAddr(ip)!.words, 40000, parseAddr('52.94.1.1')!.words, 443);
    flow.deviceMac = mac;
    flow.service = 'voice';
    return flow;
  };
  const packets: Array<[Flow, number]> = [];
  const loser = flowOf(LOSER, '10.0.0.6');
  const winner = flowOf(WINNER, '10.0.0.5');
  for (let ms = 0; ms < 3000; ms += 50) packets.push([loser, T0 + ms]);
  for (let ms = 500; ms < 8500; ms += 50) packets.push([winner, T0 + ms]);
  packets.sort((x, y) => x[1] - y[1]);
  const run = () => {
    for (const [flow, time] of packets) {
      stage.detector.tick(time);
      stage.detector.onPacket(flow, true, 1400, time);
    }
    stage.detector.flush();
  };
  return { stage, finished, changes, run };
}

const idOf = (mac: number, startMs: number) => `${mac.toString(16).padStart(12, '0')}-${startMs}`;

describe('detect stage', () => {
  it('the loser of a race, decided first, is confirmed with the winner at the end of the input, and the change is announced', () => {
    const { stage, finished, changes, run } = raceOfTwo();
    // the wake word was heard by the winner only
    stage.restoreWakeEvents([{ time: T0 + 100, device: '44:65:0d:a1:b2:c3', source: 'test' }]);
    run();
    expect(finished.map((a) => a.id)).toEqual([idOf(LOSER, T0), idOf(WINNER, T0 + 500)]);
    expect(finished.map((a) => a.verdict)).toEqual(['confirmed', 'confirmed']);
    expect(finished[0].reasons).toContain('arbitration');
    expect(changes).toEqual([[idOf(LOSER, T0), 'suspected', 'confirmed']]);
  });

  it("in quiet hours without a source, a person's label on one member re-decides the other, and says so", () => {
    const { stage, finished, changes, run } = raceOfTwo(loadConfig({ flags: { 'quiet-hours': '00:00-23:59' } }));
    run();
    expect(finished.map((a) => [a.verdict, a.reasons.includes('quiet-hours')])).toEqual([['suspected', true], ['suspected', true]]);
    expect(changes).toEqual([]);
    const labelled = stage.label(idOf(WINNER, T0 + 500), 'intended');
    expect(labelled?.changed.map((a) => [a.id, a.verdict])).toEqual([[idOf(WINNER, T0 + 500), 'confirmed'], [idOf(LOSER, T0), 'confirmed']]);
    // and back: the person changes their mind
    const back = stage.label(idOf(WINNER, T0 + 500), 'not-intended');
    expect(back?.changed.map((a) => [a.id, a.verdict])).toEqual([[idOf(WINNER, T0 + 500), 'suspected'], [idOf(LOSER, T0), 'suspected']]);
  });

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
