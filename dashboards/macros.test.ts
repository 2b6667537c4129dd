import { describe, expect, it } from 'vitest';
import { escapeRegex, expandMacros, formatInterval, interpolateVariables, parseDuration, queryIntervalMs } from './macros.js';

describe('Grafana macro expansion (as the tests apply it)', () => {
  it('regex-escapes a variable value, and joins several as (a|b)', () => {
    expect(escapeRegex('/special/path.x')).toBe('\\/special\\/path\\.x');
    const q = '"device" =~ /^$device$/ AND "x" =~ /^${many}$/';
    expect(interpolateVariables(q, { device: 'aa:bb', many: ['a.b', 'c'] })).toBe('"device" =~ /^aa:bb$/ AND "x" =~ /^(a\\.b|c)$/');
  });

  it('leaves Grafana\'s own macros alone and refuses unknown variables', () => {
    const q = 'WHERE $timeFilter GROUP BY time($__interval) LIMIT $__interval_ms';
    expect(interpolateVariables(q, {})).toBe(q);
    expect(() => interpolateVariables('"d" =~ /^$nope$/', {})).toThrow(/\$nope/);
  });

  it('expands $timeFilter and the interval macros like the backend', () => {
    const q = 'SELECT sum(x) * 1000 / $__interval_ms FROM m WHERE $timeFilter GROUP BY time($__interval), time($interval)';
    expect(expandMacros(q, { fromMs: 1000, toMs: 2000 }, 10_000))
      .toBe('SELECT sum(x) * 1000 / 10000 FROM m WHERE time >= 1000ms and time <= 2000ms GROUP BY time(10s), time(10s)');
  });

  it('computes the interval from the range, never below the minimum', () => {
    expect(queryIntervalMs(0, 15 * 60_000, 1000, 10_000)).toBe(10_000);
    expect(queryIntervalMs(0, 7 * 86_400_000, 1000, 10_000)).toBe(600_000);
    expect(formatInterval(600_000)).toBe('10m');
    expect(formatInterval(43_200_000)).toBe('12h');
    expect(parseDuration('10s')).toBe(10_000);
  });
});
