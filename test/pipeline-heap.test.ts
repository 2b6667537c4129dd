/**
 * The pipeline's thread runs with a capped young generation (cli/pipeline-thread.ts): uncapped, V8 grew
 * it to 32 MB within two hours of the 24-h soak and kept it (bench/soak.mjs).
 */
import { describe, expect, it } from 'vitest';
import { PIPELINE_YOUNG_GENERATION_MB } from '../cli/pipeline-thread.js';
import { runCli } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';

describe('the pipeline thread\'s heap', () => {
  it('has a young generation of 12 MB', async () => {
    const r = await runCli(['collect', '--file', `${PROJECT_ROOT}/test/fixtures/captures/sonos_local-tls_ndpi.pcapng`, '--exit-when-done',
      '--listen', '127.0.0.1:0', '--format', 'json', '-o', '/dev/null', '--log-level', 'debug', '--log-format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const started = r.stderr.split('\n').filter((l) => l.includes('the pipeline thread started')).map((l) => JSON.parse(l) as { resourceLimits: Record<string, number> });
    expect(started).toHaveLength(1);
    expect(PIPELINE_YOUNG_GENERATION_MB).toBe(12);
    expect(started[0].resourceLimits.maxYoungGenerationSizeMb).toBe(12);
  });
});
