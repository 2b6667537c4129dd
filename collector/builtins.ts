/**
 * Node's own modules that only some commands use, loaded when first used: the bundle (deploy/bundle.mjs)
 * otherwise loads every module it names when it starts, and http, https (tls, crypto), child_process
 * (net, dgram) and zlib took ~15-25 ms of each start of every command, a replay of a file included,
 * which uses none of them.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** A function that returns Node's module `id`, loading it at the first call. */
export function lazyBuiltin<T>(id: `node:${string}`): () => T {
  let module: T | undefined;
  return () => (module ??= load(id) as T);
}
