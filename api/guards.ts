/**
 * What stands between a request and a route: the Host check (a page reached by DNS rebinding sends a
 * name that is not earshot's), the token (constant-time; an empty one never matches), one rate limit
 * per client for POSTs whatever the route, one for wrong tokens, and the headers that keep browsers
 * from framing, sniffing or leaking what earshot answers. docs/api.md ("Security") says the same.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP, isIPv6 } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The status page's policy, and every other answer's: only its own files run, nothing inline, no
 * framing, no form sent anywhere (the token form is handled by page.js; if that failed, the token must
 * not travel in a URL).
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** swagger-ui's page (/api/v1/docs): its own files and the OpenAPI document; React sets inline styles. */
export const DOCS_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Headers every answer carries (the Content-Security-Policy besides). */
const SECURITY_HEADERS: Record<string, string> = {
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // another site may not even load earshot's answers as images or scripts (no-cors reads)
  'cross-origin-resource-policy': 'same-origin',
};

const sha = (text: string) => createHash('sha256').update(text).digest();

/**
 * Compares a presented token with the configured one in constant time (digests of equal length). An
 * empty token, presented or configured, never matches: a damaged token file must not open the API.
 */
export function tokenMatches(presented: string | undefined, token: string): boolean {
  if (presented === undefined || presented.length === 0 || token.length === 0) return false;
  return timingSafeEqual(sha(presented), sha(token));
}

/** The token a request carries (`Authorization: Bearer TOKEN` or `X-Earshot-Token`); undefined: none. */
export function presentedToken(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string' && /^Bearer(\s|$)/i.test(auth)) return auth.replace(/^Bearer/i, '').trim();
  const header = request.headers['x-earshot-token'];
  return typeof header === 'string' ? header.trim() : undefined;
}

/** The name in a Host header, lower-cased, without port, brackets or final dot. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined) : h.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

/**
 * A check of the Host header: true for the names earshot answers to. IP literals (a rebinding page
 * always uses a DNS name, so an address cannot be rebound), localhost and *.localhost (browsers resolve
 * them to loopback themselves), the machine's host name, its first label and FIRST.local (mDNS), and
 * `extra`: exact names, or `.example.net` for that domain and its subdomains (e.g. a reverse proxy's).
 */
export function hostCheck(extra: readonly string[], machine = hostname()): (host: string | undefined) => boolean {
  const names = new Set<string>();
  const suffixes: string[] = [];
  const first = machine.toLowerCase().split('.')[0];
  for (const n of [machine.toLowerCase(), first, `${first}.local`]) if (n) names.add(n.replace(/\.$/, ''));
  for (const raw of extra) {
    const n = raw.trim().toLowerCase().replace(/\.$/, '');
    if (n.startsWith('.')) {
      suffixes.push(n);
      names.add(n.slice(1));
    } else if (n) {
      names.add(n);
    }
  }
  return (host) => {
    // HTTP/1.0 without Host: no browser sends that, so it cannot be a rebinding page
    if (host === undefined) return true;
    const name = hostName(host);
    if (isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost') || names.has(name)) return true;
    return suffixes.some((s) => name.endsWith(s));
  };
}

export interface GuardOptions {
  /** The token; null: POSTs are refused (401), GETs need none on loopback. */
  token: string | null;
  /** The server listens beyond loopback: every route needs the token. */
  tokenForReads: boolean;
  postsPerMinute: number;
  /** Wrong tokens allowed per client and minute; then every request needing one gets 429. */
  failedTokensPerMinute: number;
  /** Names besides the machine's own that Host may carry (api.allowedHosts, and a named listen host). */
  allowedHosts: readonly string[];
}

// 'Connection: close': a refused request's body is never read (a client trickling a declared 1-GB body after its 401 kept the connection)
const refuse = (reply: FastifyReply, statusCode: number, error: string, message: string) => reply.status(statusCode).header('connection', 'close').send({ statusCode, error, message });

/**
 * fastify's `frameworkErrors`: what its router answers itself, before any hook runs (a path with a
 * malformed %-escape, an over-long path parameter). The same headers and error shape as every other
 * answer, and no echo of the path. No data is reached by such a request, so no Host or token check is due.
 */
export function frameworkErrorReply(err: { code?: string }, _request: FastifyRequest, reply: FastifyReply): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) void reply.header(name, value);
  void reply.header('content-security-policy', PAGE_CSP);
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void refuse(reply, 414, 'URI Too Long', 'a part of the path is too long');
    return;
  }
  if (err.code === 'FST_ERR_BAD_URL') {
    void refuse(reply, 400, 'Bad Request', 'the path is not a valid URL (a malformed %-escape)');
    return;
  }
  void refuse(reply, 400, 'Bad Request', 'the request cannot be routed');
}

/** The /64 prefixes (first four groups, as text) of this machine's own IPv6 addresses: its LANs. */
function localIpv6Prefixes(): Set<string> {
  const prefixes = new Set<string>();
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv6' && !a.internal) prefixes.add(prefix64(a.address));
  }
  return prefixes;
}

/** The first 64 bits of an IPv6 address as four hex groups ("2001:db8:1:2"). */
function prefix64(address: string): string {
  const [head, tail = ''] = address.split('%')[0].toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}

/**
 * The rate limits' key for a client: its address. @fastify/rate-limit keys IPv6 by /64, but a home LAN
 * is one /64: one device's ten wrong tokens then locked every IPv6 client out (the owner's browser, Home
 * Assistant, Prometheus), the right token included. Clients on this machine's own IPv6 networks, and
 * link-local ones, are keyed by their whole address; others (beyond a router) by their /64.
 */
export function clientKey(lanPrefixes: ReadonlySet<string>): (request: FastifyRequest) => string {
  return (request) => {
    const ip = request.ip.startsWith('::ffff:') && request.ip.includes('.') ? request.ip.slice(7) : request.ip;
    if (!isIPv6(ip)) return ip;
    const prefix = prefix64(ip);
    if (/^fe[89ab]/i.test(ip) || lanPrefixes.has(prefix)) return ip.split('%')[0].toLowerCase();
    return `${prefix}::/64`;
  };
}

/**
 * Adds the guards to `app` (with @fastify/rate-limit registered): the headers on every answer, the
 * Host check, the token and the rate limits, in that order, before any route runs.
 */
export function registerGuards(app: FastifyInstance, options: GuardOptions): void {
  const hostAllowed = hostCheck(options.allowedHosts);
  // keyed by client address (see clientKey), bounded (an LRU of 5,000 clients each), one budget across routes
  const keyGenerator = clientKey(localIpv6Prefixes());
  const postLimit = app.createRateLimit({ max: options.postsPerMinute, timeWindow: 60_000, keyGenerator });
  const failedTokens = app.createRateLimit({ max: options.failedTokensPerMinute, timeWindow: 60_000, keyGenerator });

  app.addHook('onSend', async (_request, reply) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) void reply.header(name, value);
    // swagger-ui's routes set DOCS_CSP in their own scope's onSend
    if (!reply.hasHeader('content-security-policy')) void reply.header('content-security-policy', PAGE_CSP);
  });

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (!hostAllowed(request.headers.host)) {
      // (the message names no accepted name: a rebinding page can read it)
      return refuse(reply, 403, 'Forbidden', `Host "${String(request.headers.host).slice(0, 100)}" is not a name of this earshot: add the name you use to api.allowedHosts (IP addresses, localhost and this machine's own names need none)`);
    }
    // the status page's own files hold no data (its requests for data carry the token)
    if ((request.routeOptions.config as { public?: boolean } | undefined)?.public) return;
    const isPost = request.method !== 'GET' && request.method !== 'HEAD';
    if (!isPost && !options.tokenForReads) return;
    if (options.token === null) {
      return refuse(reply, 401, 'Unauthorized', 'no API token is configured (api.token, EARSHOT_API_TOKEN or api.tokenFile)');
    }
    const presented = presentedToken(request);
    const matches = tokenMatches(presented, options.token);
    if (presented !== undefined) {
      // every wrong token counts (one atomic increment, whatever runs in between); past the limit a
      // wrong and a right token both get 429, so no answer tells the next guess apart
      const guesses = await failedTokens(request, { increment: !matches });
      if (!guesses.isAllowed && (matches ? guesses.remaining === 0 : guesses.isExceeded)) {
        void reply.header('retry-after', String(Math.max(1, guesses.ttlInSeconds)));
        return refuse(reply, 429, 'Too Many Requests', `too many wrong tokens from ${request.ip}: retry in ${Math.max(1, guesses.ttlInSeconds)} s`);
      }
    }
    // no token at all is no guess, and is not counted (the status page asks for one after such a 401)
    if (!matches) return refuse(reply, 401, 'Unauthorized', 'a valid token is required (Authorization: Bearer TOKEN)');
    if (isPost) {
      const posts = await postLimit(request);
      if (!posts.isAllowed && posts.isExceeded) {
        void reply.header('retry-after', String(Math.max(1, posts.ttlInSeconds)));
        return refuse(reply, 429, 'Too Many Requests', `more than ${options.postsPerMinute} POST requests a minute from ${request.ip}: retry in ${Math.max(1, posts.ttlInSeconds)} s`);
      }
    }
  });
}
