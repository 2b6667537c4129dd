/**
 * docs/influxdb.md shows the setup statements for people who manage InfluxDB themselves: they must be
 * the ones earshot runs (for the default configuration), or the long-term data of a hand-made setup
 * would differ from earshot's own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../test/helpers/shared.js';
import { loadConfig } from '../../config.js';
import { continuousQueries, setupStatements } from './setup.js';

describe('setup statements', () => {
  it('are the ones docs/influxdb.md shows', () => {
    const docs = readFileSync(join(PROJECT_ROOT, 'docs/influxdb.md'), 'utf8');
    const block = /```sql\n([\s\S]*?)```/.exec(docs)?.[1] ?? '';
    const words = (text: string) => text.replace(/\s+/g, ' ').trim();
    expect(words(block)).toBe(words(setupStatements(loadConfig({}).influx).join('\n')));
  });

  it('downsample activations by device, with the verdicts counted in fields, over a week', () => {
    const [, activation] = continuousQueries(loadConfig({}).influx);
    expect(activation.query).toMatch(/sum\("suspected"\) AS "suspected"/);
    expect(activation.query).toMatch(/WHERE "current" = true GROUP BY time\(5m\), "site", "device", "device_name"$/);
    expect(activation.resampleFor).toBe('1w');
  });
});
