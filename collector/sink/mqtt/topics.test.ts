import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { deviceKey, mqttTopics, topicMatches } from './topics.js';

describe('MQTT topics', () => {
  it('are made from the prefix, with the wake topic defaulting to PREFIX/wake', () => {
    const topics = mqttTopics(loadConfig({ flags: { 'mqtt-prefix': 'home/earshot' } }).mqtt, 'flat');
    expect(topics.status).toBe('home/earshot/status');
    expect(topics.wake).toBe('home/earshot/wake');
    expect(topics.deviceState(deviceKey('AA:BB:CC:DD:EE:FF'))).toBe('home/earshot/device/aabbccddeeff/state');
    expect(topics.deviceKeyOf('home/earshot/device/aabbccddeeff/state')).toBe('aabbccddeeff');
    expect(topics.deviceKeyOf('home/earshot/device/a/b/state')).toBeNull();
    expect(topics.discovery('sensor', 'x_1')).toBe('homeassistant/sensor/x_1/config');
    expect(topics.idPrefix).toBe('home_earshot');
    expect(topics.isOwn('home/earshot/activation')).toBe(true);
    expect(topics.isOwn('home/earshot/wake')).toBe(false);
  });

  it('default to earshot/<site>/..., with Home Assistant ids unique per site', () => {
    const a = mqttTopics(loadConfig({}).mqtt, 'flat-2');
    const b = mqttTopics(loadConfig({}).mqtt, 'house');
    expect([a.status, a.activation, a.wake, a.presence, a.deviceState('aabbccddeeff')]).toEqual(
      ['earshot/flat-2/status', 'earshot/flat-2/activation', 'earshot/flat-2/wake', 'earshot/flat-2/presence', 'earshot/flat-2/device/aabbccddeeff/state']);
    expect([a.idPrefix, b.idPrefix]).toEqual(['earshot_flat-2', 'earshot_house']);
    expect(a.isOwn('earshot/house/activation')).toBe(false);
    // wake events and presence of earlier versions (and the blueprint's default) still come in with the default prefix only
    expect([a.legacyWake, a.legacyPresence]).toEqual(['earshot/wake', 'earshot/presence']);
    expect([mqttTopics(loadConfig({ flags: { 'mqtt-prefix': 'home/earshot' } }).mqtt, 'x').legacyWake]).toEqual([null]);
    expect([mqttTopics(loadConfig({ flags: { 'mqtt-wake-topic': 'ha/wake' } }).mqtt, 'x').legacyWake]).toEqual([null]);
    expect(mqttTopics(loadConfig({ flags: { 'mqtt-prefix': 'sites/{site}/earshot' } }).mqtt, 'x').status).toBe('sites/x/earshot/status');
  });

  it('match filters with + and # as MQTT does', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+/c', 'a/b/d')).toBe(false);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('#', 'x/y')).toBe(true);
    expect(topicMatches('a/b', 'a/b/c')).toBe(false);
  });
});
