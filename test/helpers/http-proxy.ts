/**
 * A small HTTP proxy (node:http on port 0) in front of a real server, for faults the server cannot be
 * made to show on cue: it records every request (headers, body), and can answer the next requests
 * itself with an error status, or hold them without an answer until released.
 */
import { createServer, request, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The status sent back ('held' until released; null when the client left first). */
  status: number | 'held' | null;
  /** Settles once the answer is sent (or the client is gone). */
  done: Promise<void>;
}

type Rule = { kind: 'answer'; status: number; message: string } | { kind: 'hold' };

export class HttpProxy {
  readonly requests: ProxiedRequest[] = [];
  private readonly rules: Array<{ rule: Rule; left: number }> = [];
  private held: Array<() => void> = [];
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server, private readonly target: URL) {}

  /** Starts a proxy to `target` (e.g. http://127.0.0.1:8086) on a free port. */
  static async start(target: string): Promise<HttpProxy> {
    const server = createServer();
    const proxy = new HttpProxy(server, new URL(target));
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => proxy.handle({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) }, res));
    });
    server.on('connection', (s) => {
      proxy.sockets.add(s);
      s.on('close', () => proxy.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    const { port } = this.server.address() as { port: number };
    return `http://127.0.0.1:${port}`;
  }

  /** The next `count` requests (Infinity: all) are answered with `status` and an InfluxDB-style error. */
  answer(status: number, count = 1, message = `proxy says ${status}`): void {
    this.rules.push({ rule: { kind: 'answer', status, message }, left: count });
  }

  /** The next `count` requests get no answer until release(). */
  hold(count = 1): void {
    this.rules.push({ rule: { kind: 'hold' }, left: count });
  }

  /** Drops the rules not used up yet: requests go through again. */
  clearRules(): void {
    this.rules.length = 0;
  }

  /** Sends the held requests on to the server. */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }

  /** Requests to /write, in the order they came. */
  writes(): ProxiedRequest[] {
    return this.requests.filter((r) => r.url.startsWith('/write'));
  }

  async close(): Promise<void> {
    this.held = [];
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(incoming: Omit<ProxiedRequest, 'status' | 'done'>, res: ServerResponse): void {
    let settle!: () => void;
    const recorded: ProxiedRequest = { ...incoming, status: null, done: new Promise((r) => { settle = r; }) };
    this.requests.push(recorded);
    res.on('close', settle);
    const rule = this.nextRule();
    if (rule?.kind === 'answer') {
      recorded.status = rule.status;
      res.writeHead(rule.status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: rule.message }));
      return;
    }
    const forward = () => {
      const headers = { ...incoming.headers, host: this.target.host };
      const upstream = request(new URL(incoming.url, this.target), { method: incoming.method, headers }, (answer) => {
        recorded.status = answer.statusCode ?? 0;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      upstream.end(incoming.body);
    };
    if (rule?.kind === 'hold') {
      recorded.status = 'held';
      this.held.push(forward);
    } else {
      forward();
    }
  }

  private nextRule(): Rule | null {
    const head = this.rules[0];
    if (!head) return null;
    if (--head.left <= 0) this.rules.shift();
    return head.rule;
  }
}
