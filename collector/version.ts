/** earshot's version, read from package.json once when first asked (no I/O at import). */
import { readFileSync } from 'node:fs';
import { packagePath } from './paths.js';

let cached: string | null = null;

export function version(): string {
  cached ??= (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
  return cached;
}
