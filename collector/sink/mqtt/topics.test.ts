import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { deviceKey, mqttTopics, topicMatches } from './topics.js';

describe('MQTT topics', () => {
  it('are made from the prefix, with the wake topic defaulting to PREFIX/wake', () => {
    const topics = mqttTopics(loadConfig({ flags: { 'mqtt-prefix': 'home/earshot' } }).mqtt);
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
