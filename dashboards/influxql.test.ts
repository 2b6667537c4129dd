import { describe, expect, it } from 'vitest';
import { as, count, field, fieldEquals, from, ident, last, literal, max, nonNegativeDerivative, perSecond, plus, showTagValues, sum, tag, variable } from './influxql.js';

describe('InfluxQL builder', () => {
  it('quotes identifiers and string literals', () => {
    expect(ident('bytes_up')).toBe('"bytes_up"');
    expect(ident('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(literal("it's")).toBe("'it\\'s'");
    expect(literal('a\\b')).toBe("'a\\\\b'");
  });

  it('builds a grouped, filled time series with $timeFilter last in WHERE', () => {
    const q = from('traffic')
      .select(as(perSecond(sum('bytes_up')), 'upload'))
      .where(tag('service').eq('voice'), tag('device').matchesVariable('device'))
      .groupByTime().groupBy('device', 'device_name').fill(0);
    expect(q.toString()).toBe(
      'SELECT (sum("bytes_up")) * 1000 / $__interval_ms AS "upload" FROM "traffic" WHERE "service" = \'voice\' AND "device" =~ /^$device$/ AND $timeFilter GROUP BY time($__interval), "device", "device_name" fill(0)',
    );
  });

  it('reads another retention policy, orders newest first and limits', () => {
    const q = from('activation', 'earshot_long').select(field('bytes_up'), field('verdict')).where(tag('verdict').ne('suspected')).newestFirst().limit(5);
    expect(q.toString()).toBe('SELECT "bytes_up", "verdict" FROM "earshot_long"."activation" WHERE "verdict" != \'suspected\' AND $timeFilter ORDER BY time DESC LIMIT 5');
  });

  it('nests functions and adds expressions', () => {
    expect(from('collector').select(as(nonNegativeDerivative(max('packets')), 'pps')).groupByTime('10s').fill('none').toString())
      .toBe('SELECT non_negative_derivative(max("packets"), 1s) AS "pps" FROM "collector" WHERE $timeFilter GROUP BY time(10s) fill(none)');
    expect(from('traffic').select(plus(sum('packets_up'), sum('packets_down'))).toString())
      .toBe('SELECT sum("packets_up") + sum("packets_down") FROM "traffic" WHERE $timeFilter');
    expect(from('device').select(last('name'), count('ips')).where(fieldEquals('assistant', true)).groupBy('device').toString())
      .toBe('SELECT last("name"), count("ips") FROM "device" WHERE "assistant" = true AND $timeFilter GROUP BY "device"');
  });

  it('builds SHOW TAG VALUES for template variables', () => {
    expect(showTagValues('traffic', 'device', tag('device').ne('none'))).toBe('SHOW TAG VALUES FROM "traffic" WITH KEY = "device" WHERE "device" != \'none\'');
    expect(showTagValues('activation', 'verdict')).toBe('SHOW TAG VALUES FROM "activation" WITH KEY = "verdict"');
  });

  it('refuses what InfluxDB would refuse', () => {
    expect(() => from('traffic').toString()).toThrow(/no columns/);
    expect(() => from('traffic').select(sum('bytes_up')).fill(0).toString()).toThrow(/groupByTime/);
    expect(() => from('traffic').select(sum('bytes_up')).limit(0)).toThrow(/positive integer/);
    expect(() => variable('not a name')).toThrow(/template variable/);
  });

  it('checks names against the schema at compile time', () => {
    // @ts-expect-error bytes is a collector field, not a traffic field
    from('traffic').select(sum('bytes'));
    // @ts-expect-error verdict is a tag of activation, not of traffic
    from('traffic').select(sum('bytes_up')).where(tag('verdict').eq('suspected'));
    // @ts-expect-error the collector measurement has no tags
    from('collector').select(max('packets')).groupBy('device');
  });
});
