import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configReference, exampleConfig } from './config-docs.js';
import { configKeys, loadConfig } from './config.js';
import { isEarshotError } from './errors.js';
import { PROJECT_ROOT } from '../test/helpers/shared.js';
import { tempDir } from '../test/helpers/temp.js';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isEarshotError(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('config', () => {
  const dir = tempDir('earshot-config-');

  it('has defaults for every key', () => {
    const c = loadConfig({});
    expect(c.flows.maxFlows).toBe(200000);
    expect(c.dataDir).toBeNull();
    expect(Object.isFrozen(c.flows)).toBe(true);
  });

  it('layers file < env < flags', () => {
    const file = join(dir, 'a.yaml');
    writeFileSync(file, 'flows:\n  maxFlows: 10\n  udpIdleTimeoutS: 5\nlocalNets: [203.0.113.0/24]\n');
    const c = loadConfig({ file, env: { EARSHOT_FLOWS_MAX_FLOWS: '20', EARSHOT_FLOWS_UDP_IDLE_TIMEOUT_S: '7' }, flags: { 'max-flows': '30' } });
    expect(c.flows.maxFlows).toBe(30);
    expect(c.flows.udpIdleTimeoutS).toBe(7);
    expect(c.localNets).toEqual(['203.0.113.0/24']);
    expect(loadConfig({ flags: { 'local-nets': '10.9.0.0/16, fd00::/8' } }).localNets).toEqual(['10.9.0.0/16', 'fd00::/8']);
  });

  it('rejects unknown keys, wrong types and bad values with one line naming them', () => {
    const file = join(dir, 'b.yaml');
    writeFileSync(file, 'flows:\n  maxFlow: 10\n');
    expect(errorOf(() => loadConfig({ file }))).toMatch(/b\.yaml: flows: unknown key "maxFlow"/);
    writeFileSync(file, 'flows:\n  maxFlows: lots\n');
    expect(errorOf(() => loadConfig({ file }))).toMatch(/b\.yaml: flows\.maxFlows: /);
    expect(errorOf(() => loadConfig({ flags: { 'max-flows': 'x' } }))).toBe('--max-flows: expected an integer, got "x"');
    expect(errorOf(() => loadConfig({ env: { EARSHOT_LOG_LEVEL: 'loud' } }))).toMatch(/^EARSHOT_LOG_LEVEL: must be one of fatal, error/);
    writeFileSync(file, 'flows: [1\n');
    expect(errorOf(() => loadConfig({ file }))).toMatch(/b\.yaml: invalid YAML/);
    expect(errorOf(() => loadConfig({ file: join(dir, 'missing.yaml') }))).toMatch(/missing\.yaml: cannot read config: no such file/);
    expect(errorOf(() => loadConfig({ file: dir }))).toMatch(/cannot read config: is a directory/);
    writeFileSync(file, '- a\n- b\n');
    expect(errorOf(() => loadConfig({ file }))).toMatch(/top level must be a mapping/);
  });

  it('derives a flag and an environment variable for every key', () => {
    const flags = configKeys().map((k) => k.flag);
    expect(new Set(flags).size).toBe(flags.length);
    expect(configKeys().find((k) => k.flag === 'data-dir')?.env).toBe('EARSHOT_DATA_DIR');
  });

  it('generated docs are up to date (npm run docs:config)', () => {
    expect(readFileSync(join(PROJECT_ROOT, 'docs/configuration.md'), 'utf8')).toBe(configReference());
    expect(readFileSync(join(PROJECT_ROOT, 'deploy/earshot.example.yaml'), 'utf8')).toBe(exampleConfig());
  });

  it('the example config loads and equals the defaults', () => {
    expect(loadConfig({ file: join(PROJECT_ROOT, 'deploy/earshot.example.yaml') })).toEqual(loadConfig({}));
  });
});
