/** The check that refuses a replay whose points the raw retention policy would drop, before it reads the capture. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.js';
import { durationMs, refuseReplayBeyondRetention } from './retention.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 4);
const influx = (flags: Record<string, string> = {}) => loadConfig({ flags: { 'influx-url': 'http://127.0.0.1:8086', ...flags } }).influx;

describe('refuseReplayBeyondRetention', () => {
  it('reads InfluxQL durations as the config takes them', () => {
    expect(durationMs('30d')).toBe(30 * DAY);
    expect(durationMs('104w')).toBe(104 * 7 * DAY);
    expect(durationMs('1h30m')).toBe(90 * 60_000);
    expect(durationMs('INF')).toBe(Infinity);
  });

  it('refuses a capture older than the raw retention, naming the flag; takes one within it', () => {
    expect(() => refuseReplayBeyondRetention(influx(), NOW - 31 * DAY, NOW)).toThrow(/^replay: the capture starts 2026-11-03 00:00 UTC, .* add --influx-raw-retention INF /);
    expect(() => refuseReplayBeyondRetention(influx(), NOW - 29 * DAY, NOW)).not.toThrow();
    expect(() => refuseReplayBeyondRetention(influx({ 'influx-raw-retention': '52w' }), NOW - 31 * DAY, NOW)).not.toThrow();
    expect(() => refuseReplayBeyondRetention(influx({ 'influx-raw-retention': 'INF' }), Date.UTC(2018, 5, 13), NOW)).not.toThrow();
  });

  it('leaves policies it does not set up to the user, and runs without InfluxDB', () => {
    const old = Date.UTC(2018, 5, 13);
    expect(() => refuseReplayBeyondRetention(influx({ 'influx-rp': 'autogen' }), old, NOW)).not.toThrow();
    expect(() => refuseReplayBeyondRetention(influx({ 'influx-setup': 'false' }), old, NOW)).not.toThrow();
    expect(() => refuseReplayBeyondRetention(loadConfig({}).influx, old, NOW)).not.toThrow();
    // the raw policy named as it is: still the one setup gives 30 days
    expect(() => refuseReplayBeyondRetention(influx({ 'influx-rp': 'earshot_raw' }), old, NOW)).toThrow(/--influx-raw-retention INF/);
  });
});
