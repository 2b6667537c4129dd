/**
 * The heap a test holds, after full collections: V8's gc extension switched on at run time (vitest runs
 * tests without --expose-gc), so a test can measure what a structure keeps per entry.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
/** A full collection. */
export const gc = runInNewContext('gc') as () => void;

/** Bytes of heap in use after two full collections (the second frees what the first's finalizers let go). */
export function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
