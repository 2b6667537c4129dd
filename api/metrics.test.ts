/**
 * /health's status and drops: degraded while the capture drops packets (the last 5 minutes), ok again
 * after (found by an audit: one burst at boot kept it degraded until a restart, so a monitor could not
 * tell "dropping now" from "dropped once"). The counters still hold every drop.
 */
import { describe, expect, it } from 'vitest';
import { emptyCaptureStats } from '../collector/capture/types.js';
import { threadHeap, type StatusPart } from '../collector/view.js';
import { health, RECENT_DROPS_MS, type HealthSource } from './metrics.js';

const source = { captureSource: 'interface eth0', startedMs: Date.now() - 3_600_000, version: 'test' } as unknown as HealthSource;

function status(kernelDrops: number, lastDropMs: number | null): StatusPart {
  const capture = { ...emptyCaptureStats(), kernelDrops, lastDropMs };
  return {
    captureRunning: true,
    stats: { capture: { packets: 1000, bytes: 100_000 }, decode: { decodeErrors: 0 }, flows: { active: 3, evicted: 0 }, detect: null },
    capture, influx: null, alerts: {}, presence: null, byVerdict: {}, activationsByDevice: {}, calls: null, heap: threadHeap(),
  } as unknown as StatusPart;
}

describe('GET /api/v1/health and drops', () => {
  it('is degraded while drops are recent, and says when the last came', () => {
    const h = health(source, status(296_093, Date.now() - 10_000));
    expect(h.status).toBe('degraded');
    expect(h.problems).toEqual([expect.stringMatching(/^the capture dropped packets 1\d s ago \(296093 since it began\)$/)]);
    expect(h.capture.kernelDrops).toBe(296_093);
  });

  it('is ok again once no packet was dropped for 5 minutes; the counters keep every drop', () => {
    const last = Date.now() - RECENT_DROPS_MS - 1000;
    const h = health(source, status(296_093, last));
    expect({ status: h.status, problems: h.problems }).toEqual({ status: 'ok', problems: [] });
    expect(h.capture).toMatchObject({ kernelDrops: 296_093, lastDropAt: new Date(last).toISOString() });
  });

  it('is ok with no drops at all', () => {
    expect(health(source, status(0, null))).toMatchObject({ status: 'ok', problems: [], capture: { kernelDrops: 0, lastDropAt: null } });
  });
});
