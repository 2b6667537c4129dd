/**
 * `npm run schemas`: writes docs/report.schema.json and docs/openapi.json from the schemas (see
 * docs-files.ts). With `--check` it writes nothing and exits 1 when a file is stale (the test-suite
 * checks the same).
 */
import { writeGenerated } from '../collector/generated-files.js';
import { generatedDocFiles } from './docs-files.js';

process.exitCode = writeGenerated(await generatedDocFiles(), process.argv.slice(2), 'npm run schemas');
