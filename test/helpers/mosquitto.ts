/**
 * A real Mosquitto broker for tests (Debian's mosquitto): started on a free loopback port with its
 * config in a temp dir, stopped and started again on the same port (outage tests). A TCP proxy in front
 * of it can cut every connection at once, so the broker sees a client vanish (Last Will). Missing
 * mosquitto fails in CI and skips elsewhere, like influxd.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describeNeeding } from './shared.js';
import { freePort, until } from './wait.js';

/** The mosquitto executable: on PATH, else Debian's /usr/sbin (not on a normal user's PATH). */
export function mosquittoPath(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const file = join(dir, 'mosquitto');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** describe() for suites that need mosquitto: in CI its absence fails; elsewhere the suite is skipped. */
export function describeMosquitto(name: string, fn: () => void): void {
  describeNeeding(name, mosquittoPath() !== null, "mosquitto is missing: apt-get install mosquitto (deploy/setup.sh installs Debian's package)", fn);
}

export { freePort, until };

/** Resolves once a TCP connection to 127.0.0.1:port succeeds; false when none did within `ms`. */
async function tcpReachable(port: number, ms: number, alive: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && alive()) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connectTcp(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export class Mosquitto {
  readonly dir = mkdtempSync(join(tmpdir(), 'earshot-mosquitto-'));
  private child: ChildProcess | null = null;
  private stderr = '';
  private constructor(readonly port: number, private readonly extra = '') {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Starts a broker on `port` (a free one when not given); `extra`: more mosquitto.conf lines (a bridge). */
  static async start(port?: number, extra = ''): Promise<Mosquitto> {
    const broker = new Mosquitto(port ?? (await freePort()), extra);
    await broker.start();
    return broker;
  }

  /** Starts mosquitto (again) on the same port; resolves once it accepts TCP connections. */
  async start(): Promise<void> {
    const file = join(this.dir, 'mosquitto.conf');
    // no persistence: a restart is a broker that lost its retained messages
    writeFileSync(file, `listener ${this.port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n${this.extra}`);
    const child = spawn(mosquittoPath() ?? 'mosquitto', ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.child = child;
    if (!(await tcpReachable(this.port, 20_000, () => child.exitCode === null && child.signalCode === null))) {
      child.kill('SIGKILL');
      throw new Error(`mosquitto did not accept connections on port ${this.port} within 20 s (exit ${child.exitCode}): ${this.stderr}`);
    }
  }

  /** Stops mosquitto (SIGTERM) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    });
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A TCP proxy on a free port in front of a broker; cut() drops every connection without a goodbye. */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  port = 0;

  private constructor(targetPort: number) {
    this.server = createServer((client) => {
      const upstream = connectTcp(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    proxy.port = await new Promise<number>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve((proxy.server.address() as { port: number }).port));
    });
    return proxy;
  }

  /** Connections open now (each client counts twice: its side and the broker's). */
  get connections(): number {
    return this.sockets.size;
  }

  /** Destroys every connection at once, as a pulled cable or a crashed process would. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

