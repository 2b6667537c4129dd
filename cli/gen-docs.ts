/** `npm run docs:config`: rewrites docs/configuration.md and deploy/earshot.example.yaml from the schema. */
import { writeFileSync } from 'node:fs';
import { configReference, exampleConfig } from '../collector/config-docs.js';

const root = new URL('../../', import.meta.url);
writeFileSync(new URL('docs/configuration.md', root), configReference());
writeFileSync(new URL('deploy/earshot.example.yaml', root), exampleConfig());
process.stdout.write('wrote docs/configuration.md and deploy/earshot.example.yaml\n');
