/** Builds dist/ once before the tests that run the `earshot` executable, as `npm run build` does. */
import { execFileSync } from 'node:child_process';
import { PROJECT_ROOT } from './helpers/shared.js';

export default function setup(): void {
  execFileSync(process.execPath, [`${PROJECT_ROOT}/node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
  // the bundle the executable runs (as `npm run build` makes it)
  execFileSync(process.execPath, [`${PROJECT_ROOT}/deploy/bundle.mjs`], { cwd: PROJECT_ROOT, stdio: 'inherit' });
}
