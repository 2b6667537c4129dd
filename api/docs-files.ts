/**
 * The documents generated from the schemas: docs/report.schema.json from the report's TypeBox schema
 * (collector/sink/report-schema.ts) and docs/openapi.json, the OpenAPI document the API serves at
 * /api/v1/openapi.json, from the app's routes (whose answers reuse the report's parts). `npm run
 * schemas` writes them; a test fails when the committed files differ.
 */
import { loadConfig } from '../collector/config.js';
import { publishedReportSchema } from '../collector/sink/report-schema.js';
import { version } from '../collector/version.js';
import { buildApp } from './app.js';
import { RunView } from './view.js';

export interface GeneratedFile {
  /** Relative to the project root. */
  path: string;
  text: string;
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** The OpenAPI document of the app. Routes only: no request is served, so no runtime is needed. */
export async function openApiDocument(): Promise<unknown> {
  const app = await buildApp(
    { token: null, tokenForReads: false, postsPerMinute: 1, failedTokensPerMinute: 1, allowedHosts: [], bodyLimitBytes: 1024, version: version() },
    {
      // the document is built from the routes' schemas; the handlers that would use these never run
      view: new RunView({ part: () => Promise.reject(new Error('no run')), activations: () => Promise.reject(new Error('no run')), flows: () => Promise.reject(new Error('no run')), device: () => Promise.reject(new Error('no run')), command: () => Promise.reject(new Error('no run')) }, 0),
      config: loadConfig({}), captureSource: 'file', startedMs: 0, version: version(),
    },
  );
  await app.ready();
  const document = app.swagger();
  await app.close();
  return document;
}

/** Every generated document with its text, as committed. */
export async function generatedDocFiles(): Promise<GeneratedFile[]> {
  return [
    { path: 'docs/report.schema.json', text: json(publishedReportSchema()) },
    { path: 'docs/openapi.json', text: json(await openApiDocument()) },
  ];
}
