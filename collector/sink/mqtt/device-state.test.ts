import { describe, expect, it } from 'vitest';
import { DeviceStates } from './device-state.js';
import type { ActivationEvent, ActivationEventKind, EventDevice } from '../events.js';
import type { ReportActivation } from '../report.js';

const ECHO: EventDevice = { mac: 'aa:bb:cc:dd:ee:01', name: 'Kitchen Echo', vendor: 'Amazon', model: 'Echo Dot (3rd Gen)', assistant: true };

/** An activation in report form starting at `start` (ISO). */
function reportActivation(id: string, start: string, verdict: ReportActivation['verdict'] = 'unverified', device = ECHO): ReportActivation {
  const startMs = Date.parse(start);
  return {
    id, device: device.mac, start, end: new Date(startMs + 4000).toISOString(), bytesUp: 90_000, bytesDown: 20_000,
    server: '52.94.1.1', serverName: 'avs-alexa-4-na.amazon.com', score: 0.9, verdict,
    reasons: verdict === 'suspected' ? ['no-wake-event'] : [], wakeEvent: null,
  };
}

function activationEvent(kind: ActivationEventKind, activation: ReportActivation, device = ECHO, atMs = Date.parse(activation.start) + 2000): ActivationEvent {
  return { kind, activation, device, atMs };
}

const T0 = Date.parse('2024-05-01T10:00:00Z');

describe('DeviceStates', () => {
  it('is listening from started to finished and counts each activation once', () => {
    const states = new DeviceStates({ timeZone: 'UTC', maxDevices: 10 });
    const a = reportActivation('a1', '2024-05-01T09:59:58.000Z');
    let state = states.apply(activationEvent('started', a), T0);
    expect(state.listening).toBe(true);
    expect(states.payload(state)).toMatchObject({ listening: true, activations_today: 1, suspected_today: 0, last_activation: a.start, last_suspected: null, day: '2024-05-01', last_reset: '2024-05-01T00:00:00+00:00', name: 'Kitchen Echo', mac: ECHO.mac });
    state = states.apply(activationEvent('finished', { ...a, verdict: 'confirmed' }), T0 + 5000);
    expect(states.payload(state)).toMatchObject({ listening: false, activations_today: 1, suspected_today: 0 });
  });

  it('moves the suspected count both ways when a verdict changes, and the last suspected with it', () => {
    const states = new DeviceStates({ timeZone: 'UTC', maxDevices: 10 });
    const first = reportActivation('a1', '2024-05-01T08:00:00.000Z', 'suspected');
    const second = reportActivation('a2', '2024-05-01T09:00:00.000Z', 'suspected');
    states.apply(activationEvent('started', first), T0);
    states.apply(activationEvent('finished', first), T0);
    states.apply(activationEvent('started', second), T0);
    let state = states.apply(activationEvent('finished', second), T0);
    expect(states.payload(state)).toMatchObject({ activations_today: 2, suspected_today: 2, last_suspected: second.start });
    expect(state.lastSuspected).toMatchObject({ id: 'a2', reasons: ['no-wake-event'], server_name: 'avs-alexa-4-na.amazon.com' });
    // a late wake event confirms the second: the first is the last suspected again
    state = states.apply(activationEvent('verdict-changed', { ...second, verdict: 'confirmed', reasons: [] }), T0 + 1000);
    expect(states.payload(state)).toMatchObject({ activations_today: 2, suspected_today: 1, last_suspected: first.start });
    state = states.apply(activationEvent('verdict-changed', { ...first, verdict: 'confirmed', reasons: [] }), T0 + 2000);
    expect(states.payload(state)).toMatchObject({ suspected_today: 0, last_suspected: null, last_suspected_activation: null });
  });

  it('starts the counts again at local midnight in the configured time zone', () => {
    const states = new DeviceStates({ timeZone: 'Europe/Berlin', maxDevices: 10 });
    const evening = Date.parse('2024-05-01T21:30:00Z'); // 23:30 in Berlin
    states.apply(activationEvent('started', reportActivation('a1', '2024-05-01T21:29:58.000Z', 'suspected')), evening);
    let state = states.apply(activationEvent('finished', reportActivation('a1', '2024-05-01T21:29:58.000Z', 'suspected')), evening);
    expect(states.payload(state)).toMatchObject({ activations_today: 1, suspected_today: 1, day: '2024-05-01' });
    const rolled = states.rolloverAll(Date.parse('2024-05-01T22:00:01Z'));
    expect(rolled).toHaveLength(1);
    state = rolled[0];
    expect(states.payload(state)).toMatchObject({ activations_today: 0, suspected_today: 0, day: '2024-05-02', last_reset: '2024-05-02T00:00:00+02:00', last_suspected: '2024-05-01T21:29:58.000Z' });
    // yesterday's activation confirmed today does not take from today's count
    state = states.apply(activationEvent('verdict-changed', reportActivation('a1', '2024-05-01T21:29:58.000Z', 'confirmed')), Date.parse('2024-05-01T22:05:00Z'));
    expect(states.payload(state)).toMatchObject({ activations_today: 0, suspected_today: 0, last_suspected: null });
  });

  it('adds the counts an earlier run retained for the same day, once', () => {
    const states = new DeviceStates({ timeZone: 'UTC', maxDevices: 10 });
    states.apply(activationEvent('started', reportActivation('new', '2024-05-01T09:59:58.000Z')), T0);
    const old = {
      mac: ECHO.mac, name: 'Kitchen Echo', vendor: 'Amazon', model: null, listening: true,
      last_activation: '2024-05-01T07:00:00.000Z', last_suspected: '2024-05-01T07:00:00.000Z',
      last_suspected_activation: { id: 'old', start: '2024-05-01T07:00:00.000Z', end: '2024-05-01T07:00:04.000Z', verdict: 'suspected', reasons: ['no-wake-event'], server_name: null, bytes_up: 1 },
      activations_today: 3, suspected_today: 1, day: '2024-05-01', last_reset: '2024-05-01T00:00:00+00:00',
    };
    const state = states.restore('aabbccddee01', old, T0)!;
    states.restore('aabbccddee01', old, T0);
    expect(states.payload(state)).toMatchObject({ listening: true, activations_today: 4, suspected_today: 1, last_activation: '2024-05-01T09:59:58.000Z', last_suspected: '2024-05-01T07:00:00.000Z' });
    expect(state.lastSuspected?.id).toBe('old');
    // another day's counts are not today's; not a state at all is ignored
    const other = new DeviceStates({ timeZone: 'UTC', maxDevices: 10 });
    expect(other.payload(other.restore('aabbccddee01', { ...old, day: '2024-04-30' }, T0)!)).toMatchObject({ activations_today: 0, last_activation: '2024-05-01T07:00:00.000Z' });
    expect(other.restore('aabbccddee02', { hello: 1 }, T0)).toBeNull();
    expect(other.restore('ffffffffffff', old, T0)).toBeNull();
  });

  it('keeps at most maxDevices, dropping the least recently used (counted)', () => {
    const states = new DeviceStates({ timeZone: 'UTC', maxDevices: 2 });
    for (const n of [1, 2, 3]) states.touch({ ...ECHO, mac: `aa:bb:cc:dd:ee:0${n}` }, T0);
    expect(states.size).toBe(2);
    expect(states.evicted).toBe(1);
    expect(states.get('aabbccddee01')).toBeUndefined();
    expect(states.get('aabbccddee03')).toBeDefined();
  });

  it('drops a device seen uploading audio, or configured, only after every other one (a flood of forged assistants)', () => {
    const configured = new Set(['aabbccddee02']);
    const states = new DeviceStates({ timeZone: 'UTC', maxDevices: 4, configured });
    // the real Echo: one activation, long ago; a configured speaker, never active; then a flood
    states.apply(activationEvent('started', reportActivation('a1', '2024-05-01T09:00:00.000Z')), T0);
    states.touch({ ...ECHO, mac: 'aa:bb:cc:dd:ee:02' }, T0);
    const forged = (n: number) => ({ ...ECHO, name: `Forged ${n}`, mac: `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}` });
    for (let n = 0; n < 1000; n++) states.touch(forged(n), T0 + n);
    expect(states.size).toBe(4);
    expect(states.evicted).toBe(998);
    expect(states.get('aabbccddee01')).toBeDefined();
    expect(states.get('aabbccddee02')).toBeDefined();
    // the forged ones still churn among themselves: the two most recent are held
    expect([...states.values()].map((s) => s.name)).toEqual(['Kitchen Echo', 'Kitchen Echo', 'Forged 998', 'Forged 999']);
    // with only proven ones left, the least recently used of them goes
    const full = new DeviceStates({ timeZone: 'UTC', maxDevices: 2 });
    for (const n of [1, 2, 3]) full.apply(activationEvent('started', reportActivation(`b${n}`, '2024-05-01T09:00:00.000Z', 'unverified', { ...ECHO, mac: `aa:bb:cc:dd:ee:0${n}` }), { ...ECHO, mac: `aa:bb:cc:dd:ee:0${n}` }), T0);
    expect([...full.values()].map((s) => s.mac)).toEqual(['aa:bb:cc:dd:ee:02', 'aa:bb:cc:dd:ee:03']);
  });
});
