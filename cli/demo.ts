/**
 * `earshot demo`: the whole system on this machine with no configuration. A private InfluxDB when influxd
 * is installed (temporary data, free port), the bundled captures replayed at speed (a simulated evening
 * with two Echos, a HomePod, a Nest on QUIC, a phone and a TV, wake events for the commands but not for
 * the false wakes; then Dubois et al.'s real Echo Dot 3 capture), the API and the status page, webhook
 * alerts to a local receiver, and a summary. Ends by itself and cleans up, unless --keep-running.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, haveInfluxd, startInfluxd, type RunningInfluxd } from '../collector/influxd.js';
import { buildSource } from '../collector/capture/index.js';
import type { CaptureSource, CaptureStats, PacketSink } from '../collector/capture/types.js';
import { loadConfig } from '../collector/config.js';
import { earshotError } from '../collector/errors.js';
import { exitProcess, onStopSignals } from '../collector/stop-signals.js';
import type { Logger } from '../collector/log.js';
import { packagePath } from '../collector/paths.js';
import { buildRuntime } from '../collector/runtime.js';
import { version } from '../collector/version.js';
import type { CommandSpec, ParsedCommand } from './args.js';
import { startAlertSinks, type CliIo } from './run-capture.js';
import { lazyBuiltin } from '../collector/builtins.js';

const http = lazyBuiltin<typeof import('node:http')>('node:http');

export const demoSpec: CommandSpec = {
  name: 'demo',
  summary: 'Runs the whole system here with no configuration: a private InfluxDB (when influxd is installed), bundled captures with real and false activations, the API and status page, webhook alerts to a local receiver; then prints a summary.',
  usage: 'earshot demo [--speed N] [--keep-running]',
  positionals: [0, 0],
  config: false,
  flags: {
    speed: { type: 'string', value: 'N', description: 'Replay at N times capture time.', default: '40' },
    'keep-running': { type: 'boolean', description: 'Keep the API, status page and InfluxDB up after the replay, until Ctrl-C.' },
  },
  epilog: 'Example:\n  npm run demo        # sets up, then runs earshot demo',
};

const CAPTURES = ['deploy/demo/household.pcap', 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng'];
const WAKE_EVENTS = 'deploy/demo/household-wake-events.jsonl';

/** One source reading several files one after the other. */
function sequence(sources: CaptureSource[]): CaptureSource {
  let current: CaptureSource | null = null;
  let stopped = false;
  let last: CaptureStats | null = null;
  return {
    description: sources.map((s) => s.description).join(', then '),
    async run(sink: PacketSink) {
      for (const s of sources) {
        if (stopped) break;
        current = s;
        last = await s.run(sink);
      }
      current = null;
      return last ?? sources[0].stats();
    },
    stop() {
      stopped = true;
      current?.stop();
    },
    stats: () => (current ?? sources[sources.length - 1]).stats(),
    heldPacketMs: () => current?.heldPacketMs?.() ?? Number.POSITIVE_INFINITY,
  };
}

/** A private influxd on a free port with its data in `dir`, or why it cannot run. */
async function privateInfluxd(dir: string): Promise<RunningInfluxd | { why: string }> {
  if (!haveInfluxd()) return { why: 'influxd is not installed (apt-get install influxdb)' };
  try {
    return await startInfluxd({ dir, httpPort: await freePort(), rpcPort: await freePort(), timeoutMs: 15_000 });
  } catch (err) {
    return { why: (err as Error).message };
  }
}

/** A local webhook receiver that prints what it gets. */
async function startReceiver(print: (line: string) => void): Promise<{ url: string; server: Server; received: string[] }> {
  const received: string[] = [];
  const server = http().createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const alert = JSON.parse(Buffer.concat(chunks).toString()) as { event: string; activation: { device: string; start: string; reasons: string[] }; device?: { name?: string | null } };
        received.push(alert.activation.device);
        print(`  webhook received: ${alert.event} from ${alert.device?.name ?? alert.activation.device} at ${alert.activation.start} (${alert.activation.reasons.join(', ')})`);
      } catch {
        print('  webhook received something that is not an earshot alert');
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/alerts`, server, received };
}

/** `earshot demo`. */
export async function runDemo(parsed: ParsedCommand, io: CliIo, cliLog: Logger): Promise<number> {
  // the demo speaks in its own lines; the log says only what went wrong
  const log = cliLog.child({}, { level: 'warn' });
  const speed = Number(parsed.flags.speed ?? '40');
  if (!Number.isFinite(speed) || speed <= 0) throw earshotError('EARSHOT_ERR_USAGE', `demo: --speed must be a number above 0, got ${JSON.stringify(String(parsed.flags.speed).slice(0, 40))}`);
  const out = (line: string) => io.stdout.write(`${line}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'earshot-demo-'));
  const cleanup: Array<() => Promise<void> | void> = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    out(`earshot ${version()} demo: everything below runs on this machine only, in ${dir}`);
    const influx = await privateInfluxd(join(dir, 'influxdb'));
    if ('why' in influx) out(`  InfluxDB: ${influx.why}; going on without it`);
    else {
      out(`  InfluxDB: a private influxd on ${influx.url} (database earshot)`);
      cleanup.unshift(() => influx.stop());
    }
    const receiver = await startReceiver(out);
    cleanup.unshift(() => new Promise<void>((resolve) => receiver.server.close(() => resolve())));
    out(`  webhook receiver: ${receiver.url}`);
    const token = randomBytes(12).toString('base64url');
    const listen = `127.0.0.1:${await freePort()}`;
    const config = loadConfig({
      flags: {
        'data-dir': join(dir, 'data'),
        'wake-events': packagePath(WAKE_EVENTS),
        listen,
        'api-token': token,
        webhooks: JSON.stringify([{ url: receiver.url, on: 'suspected', preset: 'json', secret: token }]),
        'alert-retry-min': '0.2',
        'alert-wait': '5',
        ...('url' in influx ? { 'influx-url': influx.url, 'influx-raw-retention': 'INF', 'influx-wait': '15' } : {}),
        'log-level': 'warn',
      },
    });
    const { prepareDataDir } = await import('../collector/identify/state.js');
    const diskWarning = prepareDataDir(join(dir, 'data'));
    if (diskWarning) log.warn(diskWarning);
    const runtime = buildRuntime(config, { clock: 'packet', activity: true }, { log });
    const alerts = await startAlertSinks(config, runtime, log);
    let capturing = true;
    // the real capture is in a clone's test fixtures, not in an installed package
    const captures = CAPTURES.filter((c) => existsSync(packagePath(c)));
    const source = sequence(captures.map((c) => buildSource({ kind: 'file', path: packagePath(c), realtimeSpeed: speed }, { onWarning: (m) => log.warn(m) })));
    const { startApiServer } = await import('../api/server.js');
    const { localContext } = await import('../api/app.js');
    const api = await startApiServer(config, localContext({
      runtime, config, captureRunning: () => capturing, captureSource: source.description,
      influxReachable: () => (runtime.influx ? !runtime.influx.writer.inOutage() : null),
      startedMs: Date.now(), version: version(), alerts: alerts.stats,
    }), log);
    cleanup.unshift(() => api.close());
    out(`  API and status page: ${api.url}/  (token for labelling: ${token})`);
    out(`  replaying ${captures.length} captures at ${speed}x: a simulated evening (two Echos, a HomePod, a Nest on QUIC, a phone, a TV; wake events for the commands only), then a real Echo Dot 3 capture (Dubois et al.)`);
    const ticker = setInterval(() => runtime.collector.wallTick(Date.now(), speed, source.heldPacketMs?.()), 100);
    let stopping = false;
    const onSignal = () => {
      if (stopping) exitProcess(130);
      stopping = true;
      source.stop();
      wake?.();
    };
    let wake: (() => void) | null = null;
    const offSignals = onStopSignals(onSignal);
    try {
      await runtime.run(source);
    } finally {
      clearInterval(ticker);
    }
    capturing = false;
    const points = runtime.influx ? await runtime.influx.deliver(15_000) : null;
    // alerts of the last activations: give the receiver a moment
    const suspected = runtime.activity?.listActivations().filter((a) => a.verdict === 'suspected') ?? [];
    const deadline = Date.now() + 10_000;
    while (receiver.received.length < suspected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    summary(out, runtime, receiver.received.length, points, api.url, influx, token);
    if (parsed.flags['keep-running'] === true && !stopping) {
      out('  --keep-running: up until Ctrl-C');
      await new Promise<void>((resolve) => { wake = resolve; });
    }
    offSignals();
    await alerts.close();
    return 0;
  } finally {
    for (const step of cleanup) {
      try {
        await step();
      } catch {
        // cleaning up as much as possible
      }
    }
  }
}

function summary(out: (line: string) => void, runtime: ReturnType<typeof buildRuntime>, alerts: number, points: { points: number } | null, url: string, influx: { url: string } | { why: string }, token: string): void {
  const devices = runtime.collector.inventory?.all() ?? [];
  const assistants = devices.filter((d) => d.assistant);
  const activations = [...(runtime.activity?.listActivations() ?? [])].reverse();
  const name = (mac: string) => devices.find((d) => d.macText === mac)?.name ?? mac;
  out('');
  out(`Summary: ${devices.length} devices, ${assistants.length} of them voice assistants:`);
  for (const d of assistants) out(`  ${d.macText}  ${d.name ?? '(no name)'}  ${d.vendor ?? d.ouiVendor ?? ''}${d.model ? ` ${d.model}` : ''}`);
  const suspected = activations.filter((a) => a.verdict === 'suspected');
  out(`${activations.length} activations, ${suspected.length} suspected (uploads with no wake word heard):`);
  for (const a of activations) {
    out(`  ${new Date(a.startMs).toISOString()}  ${name(a.device).padEnd(18)} ${((a.endMs - a.startMs) / 1000).toFixed(1).padStart(5)} s  ${a.verdict.padEnd(10)} ${a.reasons.join(', ')}`);
  }
  const influxLine = points === null ? '' : points.points === 0 ? '; InfluxDB took every point' : `; ${points.points} points did not reach InfluxDB`;
  out(`${alerts} webhook alerts delivered${influxLine}.`);
  out('');
  out('Open:');
  out(`  status page     ${url}/`);
  out(`  API docs        ${url}/api/v1/docs`);
  out(`  activations     ${url}/api/v1/activations?verdict=suspected`);
  out(`  metrics         ${url}/metrics`);
  if ('url' in influx) out(`  InfluxDB        ${influx.url} (database earshot; point Grafana at it with deploy/grafana)`);
  out('  (they stop with the demo; earshot demo --keep-running keeps them up)');
  out(`  (label with: curl -H "Authorization: Bearer ${token}" -H 'content-type: application/json' -d '{"label":"intended"}' ${url}/api/v1/activations/ID/label)`);
}
