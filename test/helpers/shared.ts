/**
 * Where the shared real captures live, and how tests that need them behave when they are missing:
 * in CI (CI=true) they fail loudly; elsewhere they are skipped with a message.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
/** The project root. */
export const PROJECT_ROOT = resolve(here, '..', '..');
/** ../shared beside the project (override with EARSHOT_SHARED). */
export const SHARED = process.env.EARSHOT_SHARED ?? resolve(PROJECT_ROOT, '..', 'shared');
export const REAL_CAPTURES = join(SHARED, 'captures', 'real');
export const VCFP_CAPTURES = join(SHARED, 'captures', 'vcfp-haipeng');

const inCi = process.env.CI === 'true';

/** True when the shared captures are present. */
export function haveShared(): boolean {
  return existsSync(REAL_CAPTURES);
}

/**
 * describe() for suites that read ../shared: runs when it is present; in CI a missing ../shared is a
 * failure; elsewhere the suite is skipped with a message.
 */
export function describeShared(name: string, fn: () => void): void {
  if (haveShared()) {
    describe(name, fn);
    return;
  }
  if (inCi) {
    describe(name, () => {
      throw new Error(`${SHARED} is missing: CI must have ../shared/captures beside the project`);
    });
    return;
  }
  console.warn(`skipping "${name}": ${SHARED} not found (set EARSHOT_SHARED)`);
  describe.skip(name, fn);
}

/** A file under ../shared/captures/real. */
export function realCapture(name: string): string {
  return join(REAL_CAPTURES, name);
}

/**
 * describe() for suites that need a program (influxd, mosquitto, ...): runs when `have`; in CI a missing
 * program is a failure naming how to install it; elsewhere the suite is skipped with that message.
 */
export function describeNeeding(name: string, have: boolean, install: string, fn: () => void): void {
  if (have) {
    describe(name, fn);
    return;
  }
  if (inCi) {
    describe(name, () => {
      throw new Error(`missing: ${install}`);
    });
    return;
  }
  console.warn(`skipping "${name}": ${install}`);
  describe.skip(name, fn);
}
