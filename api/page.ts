/**
 * The status page at / (api/page/: index.html, page.js, page.css): plain files read once at
 * registration from the package root (dist/ holds no non-TS files), served with their content types.
 * The page holds no data: it fetches /api/v1/* itself, sending the token the user gave it. Its routes
 * carry config.public so an auth hook can let them through when reads need the token.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { packagePath } from '../collector/paths.js';

const FILES: Array<{ url: string; file: string; type: string }> = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/page.js', file: 'page.js', type: 'text/javascript; charset=utf-8' },
  { url: '/page.css', file: 'page.css', type: 'text/css; charset=utf-8' },
];

/** Registers GET /, /page.js and /page.css. */
export async function registerPage(app: FastifyInstance): Promise<void> {
  for (const { url, file, type } of FILES) {
    const body = readFileSync(packagePath('api', 'page', file));
    app.get(url, { schema: { hide: true }, config: { public: true } }, async (_request, reply) => {
      // the security headers (CSP, nosniff, X-Frame-Options) are set on every answer by api/guards.ts
      void reply.type(type).header('cache-control', 'no-cache');
      return body;
    });
  }
}
