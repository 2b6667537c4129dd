/**
 * Listens: resolves the token (config, environment, file, or a generated one kept in the data
 * directory), builds the app and binds `api.listen`. Beyond loopback every route needs the token.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../collector/config.js';
import { writeFileAtomic } from '../collector/durable.js';
import { earshotError, systemReason } from '../collector/errors.js';
import type { Logger } from '../collector/log.js';
import { buildApp, type AppContext, type AppOptions } from './app.js';

/** HOST and PORT of `api.listen` ("127.0.0.1:8377", "[::1]:8377", "0.0.0.0:8377"). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', '--listen', `expected HOST:PORT (e.g. 127.0.0.1:8377 or [::1]:8377), got "${listen}"`);
  return { host: m[1] ?? m[2], port };
}

/** Beyond loopback every route needs the token: without one, the API does not start. */
function beyondLoopbackError(host: string): Error {
  return earshotError('EARSHOT_ERR_CONFIG_INVALID', '--listen', `listening on ${host} beyond loopback needs an API token (api.token or --data-dir to keep a generated one)`);
}

/** EARSHOT_ERR_LISTEN for a bind that failed, in words a person acts on. */
function listenError(listen: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const reasons: Record<string, string> = {
    EADDRINUSE: 'the address is in use (another earshot, or another program on this port)',
    EADDRNOTAVAIL: 'no interface of this machine has that address',
    EACCES: 'ports below 1024 need root or CAP_NET_BIND_SERVICE',
    ENOTFOUND: 'the host name does not resolve',
    EAI_AGAIN: 'the host name does not resolve (no answer from DNS)',
  };
  const out = earshotError('EARSHOT_ERR_LISTEN', listen, (e.code !== undefined ? reasons[e.code] : undefined) ?? e.message);
  // the system's error, for a caller that acts on its code (doctor: a port in use by the running collector)
  out.cause = err;
  return out;
}

/**
 * Checks before a run starts what would stop the API from starting, writing nothing: `api.listen`'s form,
 * an address that is one, a token where one is needed (a configured one of the right form), and a bind
 * that succeeds (then let go at once). Before, a bad port, an address in use or a missing token came after
 * the capture had been announced, the state loaded and the alert sinks connected.
 */
export async function checkApiStart(config: Readonly<Config>): Promise<void> {
  const listen = config.api.listen;
  const { host, port } = parseListen(listen);
  if (/^[\d.]+$/.test(host) && isIP(host) === 0) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', '--listen', `"${host}" is not an IPv4 address`);
  const token = config.api.token;
  const problem = token === null ? null : tokenProblem(token);
  if (problem !== null) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', configTokenSource(), problem);
  if (!isLoopback(host) && token === null && !config.api.tokenFile && config.dataDir === null) throw beyondLoopbackError(host);
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => resolve());
    });
  } catch (err) {
    throw listenError(listen, err);
  } finally {
    await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  }
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** The fewest bytes a token may have: a damaged, truncated or guessable token refuses the start. */
export const MIN_TOKEN_BYTES = 16;
/** The most: a token travels in a request header (Node takes 16 KiB of headers in all). */
const MAX_TOKEN_BYTES = 1024;

/** Why `token` cannot be the API token, or null when it can. */
export function tokenProblem(token: string): string | null {
  const bytes = Buffer.byteLength(token);
  if (bytes < MIN_TOKEN_BYTES) return `the API token is ${bytes} bytes; it must be at least ${MIN_TOKEN_BYTES} (e.g. openssl rand -base64 24)`;
  if (bytes > MAX_TOKEN_BYTES) return `the API token is ${bytes} bytes; it must be at most ${MAX_TOKEN_BYTES}`;
  // what a client can send in a header as it is: printable ASCII, no space at either end
  if (!/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(token)) return 'the API token must be printable ASCII with no space at either end (it travels in an HTTP header)';
  return null;
}

/** The first line of a token file, trimmed; reads at most 4 KiB (a token file is one short line). */
function readFirstLine(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, n).toString('utf8').split('\n')[0].trim();
  } finally {
    closeSync(fd);
  }
}

/**
 * Where `api.token` came from, for the message that refuses it: the same precedence as loadConfig
 * (flag, then environment, then the config file).
 */
function configTokenSource(argv: readonly string[] = process.argv, env: NodeJS.ProcessEnv = process.env): string {
  if (argv.some((a) => a === '--api-token' || a.startsWith('--api-token='))) return '--api-token';
  if (env.EARSHOT_API_TOKEN) return 'EARSHOT_API_TOKEN';
  const i = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  const file = i < 0 ? env.EARSHOT_CONFIG : argv[i].startsWith('--config=') ? argv[i].slice('--config='.length) : argv[i + 1];
  return file ? `${file}: api.token` : 'api.token';
}

/**
 * The API token: configured, from a file, or generated once and kept in the data directory (0600).
 * A token shorter than 16 bytes from any of them refuses the start (one line naming the source).
 */
export function resolveToken(api: Readonly<Config['api']>, dataDir: string | null, log: Logger): string | null {
  if (api.token !== null) {
    const problem = tokenProblem(api.token);
    if (problem) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', configTokenSource(), problem);
    return api.token;
  }
  if (api.tokenFile) {
    let token: string;
    try {
      token = readFirstLine(api.tokenFile);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw earshotError('EARSHOT_ERR_FILE_UNREADABLE', `${api.tokenFile} (api.tokenFile)`, e.code === 'ENOENT' ? 'no such file' : systemReason(e));
    }
    const problem = tokenProblem(token);
    if (problem) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', api.tokenFile, `${problem} (api.tokenFile, its first line)`);
    return token;
  }
  if (dataDir === null) {
    log.warn('no API token configured (api.token, EARSHOT_API_TOKEN, api.tokenFile) and no data directory to keep one: POST routes are refused');
    return null;
  }
  const file = join(dataDir, 'api-token');
  if (existsSync(file)) {
    // a start that died writing it (before writes were atomic), a torn write, an owner's `touch`: never
    // an empty or short token, and no new one in its place that the owner's clients do not know
    const remedy = 'delete the file to have a new token generated at the next start';
    let token: string;
    try {
      token = readFirstLine(file);
    } catch (err) {
      throw earshotError('EARSHOT_ERR_CONFIG_INVALID', file, `cannot read the kept API token (${(err as Error).message}); ${remedy}`);
    }
    const problem = tokenProblem(token);
    if (problem) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', file, `the kept API token is damaged (${problem.replace(/^the API token /, 'it ').replace(/ \(e\.g\. .*\)$/, '')}): ${remedy}`);
    return token;
  }
  const token = randomBytes(24).toString('base64url');
  try {
    writeFileAtomic(file, `${token}\n`, { mode: 0o600 });
  } catch (err) {
    // a full or read-only disk must not stop the capture: without a kept token, POSTs are refused
    log.warn({ file, err: (err as Error).message }, `cannot keep a generated API token in ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): POST routes are refused until it can be written (restart then)`);
    return null;
  }
  log.info({ file }, `API token generated: ${file}`);
  return token;
}

export interface ApiServer {
  app: FastifyInstance;
  /** The bound address, e.g. http://127.0.0.1:8377. */
  url: string;
  close(): Promise<void>;
}

/** The app, built and ready but not listening yet. */
export interface PreparedApiServer {
  /** Resolves the token (config, environment, its file, or a new one kept in the data directory) and listens on config.api.listen. */
  listen(): Promise<ApiServer>;
  /** Lets the app go without listening (the run ended before it was asked to). */
  close(): Promise<void>;
}

/**
 * Builds the app (its plugins and routes: ~0.2 s here; its schemas compile at each route's first use,
 * api/compilers.ts) without the token and without listening, so it can be made while something else
 * starts (the pipeline's thread); nothing is written or logged until listen(). Requests read the token
 * when they come, and none comes before listen().
 */
export async function prepareApiServer(config: Readonly<Config>, context: AppContext, log: Logger): Promise<PreparedApiServer> {
  const { host, port } = parseListen(config.api.listen);
  const options: AppOptions = {
    token: null,
    tokenForReads: !isLoopback(host),
    postsPerMinute: config.api.postsPerMinute,
    failedTokensPerMinute: config.api.failedTokensPerMinute,
    // a listen address given as a name (--listen earshot.lan:8377) is a name clients use
    allowedHosts: [...config.api.allowedHosts, ...(isIP(host) === 0 ? [host] : [])],
    bodyLimitBytes: config.api.bodyLimitKB * 1024,
    requestTimeoutMs: config.api.requestTimeoutS * 1000,
    version: context.version,
    log,
  };
  const app = await buildApp(options, context);
  await app.ready();
  return {
    async listen() {
      options.token = resolveToken(config.api, config.dataDir, log);
      if (!isLoopback(host) && options.token === null) throw beyondLoopbackError(host);
      try {
        await app.listen({ host, port });
      } catch (err) {
        throw listenError(config.api.listen, err);
      }
      const address = app.server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
      log.info({ url }, `API on ${url}/api/v1 (docs: ${url}/api/v1/docs)`);
      return { app, url, close: () => app.close() };
    },
    close: () => app.close(),
  };
}

/** Builds the app and listens on config.api.listen. */
export async function startApiServer(config: Readonly<Config>, context: AppContext, log: Logger): Promise<ApiServer> {
  return (await prepareApiServer(config, context, log)).listen();
}
