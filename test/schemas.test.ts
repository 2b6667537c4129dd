/**
 * The report's shape has one source, collector/sink/report-schema.ts (TypeBox): docs/report.schema.json
 * and docs/openapi.json are generated from it (npm run schemas) and must be what is committed; the API
 * serves that same OpenAPI document; and real reports, made by the `earshot` executable from real
 * captures in ../shared, validate against the generated schema with ajv (not earshot's code), as do the
 * API's activations.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { generatedDocFiles } from '../api/docs-files.js';
import { buildApp, localContext } from '../api/app.js';
import { activationsQuery, callsQuery, flowsQuery, macParams } from '../api/schemas.js';
import { MAC_PATTERN } from '../collector/mac.js';
import { buildSource } from '../collector/capture/index.js';
import { loadConfig } from '../collector/config.js';
import { buildRuntime } from '../collector/runtime.js';
import { publishedReportSchema, ReportSchema } from '../collector/sink/report-schema.js';
import { runCli } from './helpers/cli.js';
import { describeShared, PROJECT_ROOT, REAL_CAPTURES, VCFP_CAPTURES } from './helpers/shared.js';

const committed = (path: string) => readFileSync(join(PROJECT_ROOT, path), 'utf8');

/** ajv for draft 2020-12 in strict mode (unknown keywords are errors), with the formats. */
function newAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv;
}

describe('generated documents', () => {
  it('docs/report.schema.json and docs/openapi.json are what npm run schemas writes', async () => {
    for (const { path, text } of await generatedDocFiles()) expect(committed(path), `${path} is stale: run npm run schemas`).toBe(text);
  });

  it('the published schema does not require the fields later versions added; the TypeScript side has them', () => {
    const published = publishedReportSchema() as { required: string[]; properties: { devices: { items: { required: string[] } }; flows: { items: { required: string[] } } } };
    expect(published.required).toEqual(['schema', 'capture', 'devices', 'flows', 'dns', 'activations']);
    expect(published.properties.devices.items.required).not.toContain('model');
    expect(published.properties.flows.items.required).not.toContain('vendor');
    expect(ReportSchema.required).toEqual(expect.arrayContaining(['calls', 'stats']));
  });

  it('the API serves the committed OpenAPI document, whose Activation is the report\'s with open', async () => {
    const config = loadConfig({});
    const runtime = buildRuntime(config, { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
    const version = (JSON.parse(committed('docs/openapi.json')) as { info: { version: string } }).info.version;
    const app = await buildApp({ token: null, tokenForReads: false, postsPerMinute: 10, failedTokensPerMinute: 10, allowedHosts: [], bodyLimitBytes: 1024, version }, localContext({
      runtime, config, captureRunning: () => false, captureSource: 'file', influxReachable: () => null, startedMs: 0, version, alerts: () => ({}),
    }));
    const served = (await app.inject({ url: '/api/v1/openapi.json' })).json() as { components: { schemas: Record<string, { properties: Record<string, unknown> }> } };
    await app.close();
    expect(served).toEqual(JSON.parse(committed('docs/openapi.json')));
    const report = JSON.parse(committed('docs/report.schema.json')) as { properties: { activations: { items: { properties: Record<string, unknown> } } } };
    // OpenAPI 3.0 writes type [T, "null"] as T with nullable (@fastify/swagger does); read it back
    const asJsonSchema = (property: unknown) => {
      const { nullable, type, ...rest } = property as { nullable?: boolean; type: string };
      return nullable ? { ...rest, type: [type, 'null'] } : { ...rest, type };
    };
    const { open, ...activation } = served.components.schemas.Activation.properties;
    expect(open).toMatchObject({ type: 'boolean' });
    expect(Object.fromEntries(Object.entries(activation).map(([key, value]) => [key, asJsonSchema(value)]))).toEqual(report.properties.activations.items.properties);
  });
});

describe('API parameters', () => {
  it('every MAC in a path or a filter is read by collector/mac.ts\'s rule', () => {
    for (const schema of [macParams.properties.mac, activationsQuery.properties.device, callsQuery.properties.device, flowsQuery.properties.device]) {
      expect(schema.pattern).toBe(MAC_PATTERN);
    }
  });
});

describeShared('real reports against the generated schema (ajv)', () => {
  const validate = newAjv().compile(JSON.parse(committed('docs/report.schema.json')));
  const captures = [
    join(VCFP_CAPTURES, 'good_morning_5_30s.pcap'), // five real activations
    join(REAL_CAPTURES, 'amazon-echo_alexa-timed2_xray.pcap'), // DNS, SNI, cut off mid-packet
    join(REAL_CAPTURES, 'amazon-echodot2_boot-under-sslsplit-mitm_jhautry.pcap'), // DHCP, mDNS names
  ];

  for (const capture of captures) {
    it(`earshot replay ${capture.split('/').pop()} --format json`, async () => {
      const r = await runCli(['replay', capture, '--format', 'json']);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const report = JSON.parse(r.stdout) as { activations: unknown[]; flows: unknown[]; devices: unknown[] };
      const ok = validate(report);
      expect(validate.errors ?? []).toEqual([]);
      expect(ok).toBe(true);
      expect(report.flows.length).toBeGreaterThan(0);
      expect(report.devices.length).toBeGreaterThan(0);
      if (capture.includes('good_morning')) expect(report.activations.length).toBeGreaterThan(0);
    }, 60_000);
  }

  it('the API\'s activations validate against the Activation of the OpenAPI document', async () => {
    const config = loadConfig({});
    const runtime = buildRuntime(config, { clock: 'packet', activity: true }, { log: pino({ level: 'silent' }) });
    await runtime.run(buildSource({ kind: 'file', path: captures[0] }, {}));
    const app = await buildApp({ token: null, tokenForReads: false, postsPerMinute: 10, failedTokensPerMinute: 10, allowedHosts: [], bodyLimitBytes: 1024, version: 'test' }, localContext({
      runtime, config, captureRunning: () => false, captureSource: 'file', influxReachable: () => null, startedMs: 0, version: 'test', alerts: () => ({}),
    }));
    const body = (await app.inject({ url: '/api/v1/activations' })).json() as { activations: unknown[] };
    await app.close();
    const openapi = JSON.parse(committed('docs/openapi.json')) as { components: { schemas: { Activation: Record<string, unknown> } } };
    const ajv = newAjv();
    const validate = ajv.compile({ type: 'array', items: { ...openapi.components.schemas.Activation, $id: undefined } });
    expect(body.activations.length).toBeGreaterThan(0);
    const ok = validate(body.activations);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  }, 60_000);
});
