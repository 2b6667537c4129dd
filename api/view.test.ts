/**
 * The API's read model (api/view.ts) over a real run's view (a real capture replayed): however many
 * requests come at once, the run is asked for a part once per max age; a command makes every part be
 * asked again; and the parts are plain data that cross a thread as they are (structured clone).
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { buildRuntime } from '../collector/runtime.js';
import { buildViewSource, VIEW_PARTS, type ViewPart, type ViewSource } from '../collector/view.js';
import { PROJECT_ROOT } from '../test/helpers/shared.js';
import { localProvider, RunView, type ViewProvider } from './view.js';

const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');

let source: ViewSource;

beforeAll(async () => {
  const runtime = buildRuntime(loadConfig({}), { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
  await runtime.run(buildSource({ kind: 'file', path: CAPTURE }, {}));
  source = buildViewSource(runtime, { captureRunning: () => false, influxReachable: () => null, alerts: () => ({}) });
});

/** A provider over the real view that counts what it is asked, answering after `delayMs`. */
function counting(delayMs = 0): { provider: ViewProvider; asked: Map<ViewPart, number> } {
  const asked = new Map<ViewPart, number>();
  const local = localProvider(source);
  return {
    asked,
    provider: {
      async part(name) {
        asked.set(name, (asked.get(name) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, delayMs));
        return local.part(name);
      },
      command: (command) => local.command(command),
    },
  };
}

describe('RunView', () => {
  it('asks the run once for 200 requests at once, and again only once the part is older than its max age', async () => {
    const { provider, asked } = counting(20);
    const view = new RunView(provider, 200);
    const answers = await Promise.all(Array.from({ length: 200 }, () => view.get('activations')));
    expect(asked.get('activations')).toBe(1);
    expect(new Set(answers).size).toBe(1);
    expect(answers[0].length).toBe(1);
    await view.get('activations');
    expect(asked.get('activations')).toBe(1);
    await new Promise((r) => setTimeout(r, 220));
    await view.get('activations');
    expect(asked.get('activations')).toBe(2);
  });

  it('with max age 0 every request asks (one thread: nothing kept)', async () => {
    const { provider, asked } = counting();
    const view = new RunView(provider, 0);
    await view.get('status');
    await view.get('status');
    expect(asked.get('status')).toBe(2);
  });

  it('a command makes every part be asked again, and its answer shows the change', async () => {
    const { provider, asked } = counting();
    const view = new RunView(provider, 60_000);
    const [before] = await view.get('activations');
    expect(before.verdict).toBe('unverified');
    await view.get('status');
    const result = await view.command({ kind: 'label', id: before.id, label: 'not-intended' });
    expect(result.kind === 'label' && result.activation?.verdict).toBe('suspected');
    const [after] = await view.get('activations');
    expect(after.verdict).toBe('suspected');
    await view.get('status');
    expect([asked.get('activations'), asked.get('status')]).toEqual([2, 2]);
  });

  it('every part is plain data: a structured clone is equal to it', () => {
    for (const name of VIEW_PARTS) {
      const part = source.part(name);
      expect(structuredClone(part), name).toEqual(part);
    }
  });
});
