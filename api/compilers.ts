/**
 * fastify's own schema compilers, its defaults (@fastify/ajv-compiler checks requests,
 * @fastify/fast-json-stringify-compiler writes answers), loaded and run when a route first needs one
 * instead of when the app is built. Building them at the start was ~0.14 s of the ~0.55 s that
 * `collect` with the API took to replay the demo capture (its start waits for the API; 9 interleaved
 * runs): loading Ajv and fast-json-stringify, checking the shared schemas against JSON Schema's
 * meta-schema and compiling every route's schemas, most of which a run never uses. A route's first
 * request pays for its own schemas (a few ms).
 *
 * What a request or an answer gets is the same: the same compilers with the same options and shared
 * schemas. The difference is when a schema that does not compile would show: at that route's first use
 * (a 500) instead of at the start; api/app.test.ts builds the app with every schema compiled at once
 * (AppOptions.eagerSchemas) and fails if one does not.
 */
import type { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** A compiler: what fastify gives it of a route (its schema, method, url, ...) to a compiled function. */
type Compile = (route: object) => (...args: unknown[]) => unknown;
type Factory = (externalSchemas: unknown, options: unknown) => Compile;
type Factories = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;

/**
 * A factory like `make()`'s, whose compilers compile on their first call (or the first look at one of
 * their properties: fastify reads a validator's `errors` and Ajv's `schemaEnv`), through a proxy that
 * then hands calls, property reads and `in` to the compiled function (fastify writes no property of
 * them).
 */
function lazyFactory(make: () => Factory): Factory {
  return (externalSchemas, options) => {
    let compile: Compile | null = null;
    return (route) => {
      let compiled: ((...args: unknown[]) => unknown) | null = null;
      const fn = () => (compiled ??= (compile ??= make()(externalSchemas, options))(route));
      return new Proxy(() => undefined, {
        apply: (_target, self, args: unknown[]) => Reflect.apply(fn(), self, args),
        get: (_target, property) => Reflect.get(fn(), property),
        has: (_target, property) => Reflect.has(fn(), property),
      });
    };
  };
}

/** For `schemaController.compilersFactory.buildValidator`: fastify's Ajv compiler, lazily. */
export const lazyValidators = lazyFactory(() => (load('@fastify/ajv-compiler') as () => Factory)()) as unknown as NonNullable<Factories['buildValidator']>;

/** For `schemaController.compilersFactory.buildSerializer`: fastify's fast-json-stringify compiler, lazily. */
export const lazySerializers = lazyFactory(() => (load('@fastify/fast-json-stringify-compiler') as { SerializerSelector: typeof SerializerSelector }).SerializerSelector() as unknown as Factory) as unknown as NonNullable<Factories['buildSerializer']>;
