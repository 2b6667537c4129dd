/**
 * `npm run dashboards`: writes deploy/grafana/dashboards/*.json and the alert rules' provisioning file
 * from dashboards/*.ts. With `--check` it writes nothing and exits 1 when a file is stale (the
 * test-suite checks the same).
 */
import { writeGenerated } from '../collector/generated-files.js';
import { generatedFiles } from './index.js';

process.exitCode = writeGenerated(generatedFiles(), process.argv.slice(2), 'npm run dashboards');
