/**
 * Listens: resolves the token (config, environment, file, or a generated one kept in the data
 * directory), builds the app and binds `api.listen`. Beyond loopback every route needs the token.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../collector/config.js';
import { earshotError } from '../collector/errors.js';
import type { Logger } from '../collector/log.js';
import { buildApp, type AppContext } from './app.js';

/** HOST and PORT of `api.listen` ("127.0.0.1:8377", "[::1]:8377", "0.0.0.0:8377"). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', '--listen', `expected HOST:PORT (e.g. 127.0.0.1:8377 or [::1]:8377), got "${listen}"`);
  return { host: m[1] ?? m[2], port };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** The API token: configured, from a file, or generated once and kept in the data directory (0600). */
export function resolveToken(api: Readonly<Config['api']>, dataDir: string | null, log: Logger): string | null {
  if (api.token) return api.token;
  if (api.tokenFile) {
    let text: string;
    try {
      text = readFileSync(api.tokenFile, 'utf8');
    } catch (err) {
      throw earshotError('EARSHOT_ERR_CONFIG_FILE', api.tokenFile, (err as Error).message);
    }
    const token = text.split('\n')[0].trim();
    if (token.length < 8) throw earshotError('EARSHOT_ERR_CONFIG_INVALID', `${api.tokenFile}`, 'the API token must be at least 8 characters');
    return token;
  }
  if (dataDir === null) {
    log.warn('no API token configured (api.token, EARSHOT_API_TOKEN, api.tokenFile) and no data directory to keep one: POST routes are refused');
    return null;
  }
  const file = join(dataDir, 'api-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  log.info({ file }, `API token generated: ${file}`);
  return token;
}

export interface ApiServer {
  app: FastifyInstance;
  /** The bound address, e.g. http://127.0.0.1:8377. */
  url: string;
  close(): Promise<void>;
}

/** Builds the app and listens on config.api.listen. */
export async function startApiServer(config: Readonly<Config>, context: AppContext, log: Logger): Promise<ApiServer> {
  const { host, port } = parseListen(config.api.listen);
  const token = resolveToken(config.api, config.dataDir, log);
  const app = await buildApp({
    token,
    tokenForReads: !isLoopback(host),
    postsPerMinute: config.api.postsPerMinute,
    bodyLimitBytes: config.api.bodyLimitKB * 1024,
    version: context.version,
  }, context);
  if (!isLoopback(host) && token === null) {
    throw earshotError('EARSHOT_ERR_CONFIG_INVALID', '--listen', `listening on ${host} beyond loopback needs an API token (api.token or --data-dir to keep a generated one)`);
  }
  try {
    await app.listen({ host, port });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw earshotError('EARSHOT_ERR_LISTEN', config.api.listen, e.code === 'EADDRINUSE' ? 'the address is in use' : e.message);
  }
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  log.info({ url }, `API on ${url}/api/v1 (docs: ${url}/api/v1/docs)`);
  return { app, url, close: () => app.close() };
}
