/**
 * A webhook receiver for tests: a real HTTP server on a free port that verifies each alert's signature
 * (as docs/alerts.md tells receivers to) and dedupes by idempotency key. `refuse` decides per request
 * which answer to give instead of 200 (an outage, or an alert it can never take).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface ReceivedAlert {
  key: string;
  body: Record<string, unknown>;
}

export class WebhookReceiver {
  /** Alerts taken (2xx), first copy per idempotency key. */
  readonly byKey = new Map<string, Record<string, unknown>>();
  /** Requests seen, taken or not. */
  requests = 0;
  /** Requests whose key was already taken (repeats: allowed, at least once). */
  repeats = 0;
  badSignatures = 0;
  /** X-Earshot-Site values seen. */
  readonly sites = new Set<string>();
  port = 0;
  /** Return a status to refuse this request (e.g. 503), or null to take it. */
  refuse: (key: string, body: Record<string, unknown>) => number | null = () => null;
  private server: Server | null = null;

  constructor(private readonly secret: string) {}

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        if (req.headers['x-earshot-site'] !== undefined) this.sites.add(String(req.headers['x-earshot-site']));
        const raw = Buffer.concat(chunks);
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(raw.toString()) as Record<string, unknown>;
        } catch {
          res.writeHead(400).end();
          return;
        }
        const key = String(req.headers['x-earshot-idempotency-key']);
        const status = this.refuse(key, body);
        if (status !== null) {
          res.writeHead(status).end();
          return;
        }
        if (!this.signed(req.headers, raw)) this.badSignatures++;
        if (this.byKey.has(key)) this.repeats++;
        else this.byKey.set(key, body);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', resolve));
    this.port = (this.server?.address() as { port: number }).port;
  }

  /** The `webhooks` config for earshot: every suspected activation to this receiver. */
  hooks(on = 'suspected'): string {
    return JSON.stringify([{ url: `http://127.0.0.1:${this.port}/hook`, secret: this.secret, on }]);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }

  private signed(headers: IncomingHttpHeaders, raw: Buffer): boolean {
    const header = String(headers['x-earshot-signature'] ?? '');
    const t = /t=(\d+)/.exec(header)?.[1] ?? '';
    const v1 = /v1=([0-9a-f]+)/.exec(header)?.[1] ?? '';
    const expected = createHmac('sha256', this.secret).update(`${t}.`).update(raw).digest();
    return v1.length === 64 && timingSafeEqual(Buffer.from(v1, 'hex'), expected);
  }
}
