/**
 * The seeded chaos run (issue 14): a real Echo capture through `earshot collect --file`, paced, with a
 * data directory on a real small tmpfs, a real influxd and a real webhook receiver, while a seeded
 * schedule stops InfluxDB, fills the disk to the last byte, labels activations through the API and
 * finally kills earshot with SIGKILL. Then a start with an empty capture drains what it left, and a
 * last full replay of the capture completes the data. Counted against a clean run of the same capture:
 * - every point in the spool at the kill reaches InfluxDB, and in the end InfluxDB holds exactly the
 *   clean runs' points (nothing lost, nothing doubled: an activation has one current verdict);
 * - every alert in the outbox at the kill is delivered, and the receiver ends with the clean run's alerts;
 * - every label the API accepted (2xx) before the kill is in force after it;
 * - no start crashes, prints a stack or quarantines a file (kill -9 tears nothing: writes are atomic).
 * EARSHOT_CHAOS_SEEDS=N runs N seeds (default 2; `npm run bench` runs 20 through bench/chaos.mjs), EARSHOT_CHAOS_SEED=S one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Report } from '../collector/sink/report.js';
import { classicHeader } from './helpers/capture-files.js';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { describeInflux, freePort, Influxd } from './helpers/influxd.js';
import { WebhookReceiver } from './helpers/receiver.js';
import { describeShared, PROJECT_ROOT, VCFP_CAPTURES } from './helpers/shared.js';
import { tempDir } from './helpers/temp.js';
import { canMount, Tmpfs } from './helpers/tmpfs.js';
import { seeded } from './helpers/seeded.js';

// five spoken commands about 30 s apart in 134 s: five activations; an empty wake-event file makes
// each one suspected, so each is an alert
const CAPTURE = join(VCFP_CAPTURES, 'good_morning_5_30s.pcap');
const SPEED = 10;
const SECRET = 'chaos-receiver-secret';
const TOKEN = 'chaos-api-token-0123456789abcdef';
const seedList = process.env.EARSHOT_CHAOS_SEED
  ? [Number(process.env.EARSHOT_CHAOS_SEED)]
  : Array.from({ length: Number(process.env.EARSHOT_CHAOS_SEEDS ?? 2) }, (_, i) => 1001 + i);


/** An empty classic pcap (a header, no packets): a start that only drains what an earlier run left. */
function emptyCapture(): string {
  const file = join(tempDir('earshot-chaos-'), 'empty.pcap');
  writeFileSync(file, classicHeader({ snaplen: 65535 }));
  return file;
}

/** Splits at separators not escaped by a backslash and not inside double quotes. */
function splitLine(text: string, separator: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length) {
      current += c + text[i + 1];
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === separator && !quoted) {
      out.push(current);
      current = '';
    } else current += c;
  }
  out.push(current);
  return out;
}

const unescape = (s: string) => s.replace(/\\(.)/g, '$1');

/** The identity of a line-protocol point: measurement, tags and time (ms), as InfluxDB keys it. */
function lineKey(line: string): string {
  const [head, , time] = splitLine(line, ' ');
  const [measurement, ...tags] = splitLine(head, ',');
  const tagMap: Record<string, string> = {};
  for (const t of tags) {
    const [k, v] = splitLine(t, '=');
    tagMap[unescape(k)] = unescape(v);
  }
  return pointKey(unescape(measurement), tagMap, Number(time));
}

function pointKey(measurement: string, tags: Record<string, string>, timeMs: number): string {
  const sorted = Object.keys(tags).filter((k) => tags[k] !== '').sort().map((k) => `${k}=${tags[k]}`);
  return `${measurement}|${sorted.join(',')}|${timeMs}`;
}

interface Dump {
  /** point key -> its fields as JSON */
  points: Map<string, string>;
  /** device|time -> verdicts of the activation points marked current */
  currentVerdicts: Map<string, string[]>;
}

/**
 * Every point InfluxDB holds in `db`; `withSelfMetrics` false leaves out earshot's own `collector`
 * points, which follow the process's wall time (they differ from run to run by design).
 */
async function dump(influx: Influxd, db: string, withSelfMetrics = false): Promise<Dump> {
  const [measurements] = await influx.query(db, 'SHOW MEASUREMENTS');
  const names = (measurements[0]?.values ?? []).map((v) => String(v[0])).filter((m) => withSelfMetrics || m !== 'collector');
  const points = new Map<string, string>();
  const currentVerdicts = new Map<string, string[]>();
  for (const m of names) {
    const [series] = await influx.query(db, `SELECT * FROM "${m}" GROUP BY *`);
    for (const s of series) {
      const tags = s.tags ?? {};
      for (const v of s.values) {
        const row = Object.fromEntries(s.columns.map((c, i) => [c, v[i]]));
        const time = Number(row.time);
        delete row.time;
        points.set(pointKey(m, tags, time), JSON.stringify(row));
        if (m === 'activation' && row.current !== false) {
          const at = `${tags.device}|${time}`;
          currentVerdicts.set(at, [...(currentVerdicts.get(at) ?? []), tags.verdict]);
        }
      }
    }
  }
  return { points, currentVerdicts };
}

/** Lines of the spool's batches on disk (gzip or not). */
function spooledLines(dataDir: string): string[] {
  const dir = join(dataDir, 'spool', 'influx');
  if (!existsSync(dir)) return [];
  const lines: string[] = [];
  for (const name of readdirSync(dir)) {
    if (!/^\d{12}-\d+\.lp(\.gz)?$/.test(name) || !statSync(join(dir, name)).isFile()) continue;
    const raw = readFileSync(join(dir, name));
    const text = (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    lines.push(...text.split('\n').filter((l) => l !== ''));
  }
  return lines;
}

/** Idempotency keys of the alerts waiting in the outbox on disk. */
function outboxKeys(dataDir: string): string[] {
  const dir = join(dataDir, 'outbox', 'webhooks');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => /^\d{12}\.json$/.test(n)).map((n) => (JSON.parse(readFileSync(join(dir, n), 'utf8')) as { key: string }).key);
}

/** Files under `dir` (recursively) whose names say they were quarantined as damaged. */
function damagedFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) if (/damaged/.test(name)) out.push(name);
  return out;
}

function expectCleanStderr(stderr: string, what: string): void {
  expect(stderr, `${what}: no internal error`).not.toMatch(/internal error|Uncaught|\n\s+at .+:\d+:\d+/);
}

const commonFlags = (influx: Influxd, db: string, receiver: WebhookReceiver, wakeEvents: string) => [
  '--influx-url', influx.url, '--influx-db', db, '--influx-raw-retention', 'INF',
  '--influx-batch-size', '200', '--influx-flush-interval', '0.2',
  // many small intervals: more points, so the outage and the kill catch some in every state
  '--influx-interval', '1', '--influx-device-interval', '5',
  '--wake-events', wakeEvents, '--webhooks', receiver.hooks(),
  '--alert-retry-min', '0.05', '--alert-retry-max', '0.5',
  '--log-format', 'text', '--format', 'json',
];

describeShared('seeded chaos: kill -9, a full disk and an InfluxDB outage lose nothing accepted', () => {
  describeInflux('with a real influxd, webhook receiver and tmpfs', () => {
    let influx: Influxd;
    let wakeEvents: string;
    let empty: string;
    let clean: { dump: Dump; again: Dump; alerts: Set<string>; report: Report };

    beforeAll(async () => {
      if (!canMount()) throw new Error('the chaos run mounts a tmpfs: run it as root (as CI does)');
      influx = await Influxd.start();
      wakeEvents = join(tempDir('earshot-chaos-'), 'none.jsonl');
      writeFileSync(wakeEvents, '');
      empty = emptyCapture();
      // the clean run: the same capture, nothing goes wrong
      const receiver = new WebhookReceiver(SECRET);
      await receiver.start();
      const dataDir = tempDir('earshot-chaos-clean-');
      const r = await runCli(['replay', CAPTURE, '--data-dir', dataDir, ...commonFlags(influx, 'clean', receiver, wakeEvents)]);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      // the chaos run's last round replays the capture a second time with what the first rounds kept
      // (devices, DNS names): a second clean pass over the same data directory says what that writes
      const again = await runCli(['replay', CAPTURE, '--data-dir', dataDir, ...commonFlags(influx, 'clean_again', receiver, wakeEvents)]);
      expect(again.code, again.stderr).toBe(0);
      await receiver.stop();
      clean = { dump: await dump(influx, 'clean'), again: await dump(influx, 'clean_again'), alerts: new Set(receiver.byKey.keys()), report };
      // the capture is what the test needs: five activations, each an alert
      expect(report.activations.length).toBe(5);
      expect(clean.alerts.size).toBe(5);
    }, 120_000);

    afterAll(async () => {
      await influx?.close();
    });

    for (const seed of seedList) {
      it(`seed ${seed}`, async () => {
        const random = seeded(seed);
        const db = `chaos_${seed}`;
        const disk = Tmpfs.mount(2048);
        const receiver = new WebhookReceiver(SECRET);
        await receiver.start();
        try {
          const dataDir = join(disk.dir, 'data');
          mkdirSync(dataDir);
          const flags = commonFlags(influx, db, receiver, wakeEvents);

          // round A: the paced run, with the seeded schedule
          const port = await freePort();
          const runMs = (134 / SPEED) * 1000;
          const outageAtMs = random() * runMs * 0.5;
          const outageForMs = 1500 + random() * 4000;
          // half the kills land inside the outage (the spool holds points), the others anywhere after it began
          const killAtMs = random() < 0.5
            ? outageAtMs + 500 + random() * (outageForMs - 500)
            : outageAtMs + 500 + random() * (runMs - outageAtMs - 500);
          // the receiver is down for a while too: alerts wait in the outbox
          const receiverDownAtMs = random() * killAtMs;
          const receiverDownForMs = 2000 + random() * 6000;
          // the disk fills while InfluxDB is away: the spool is needed and cannot be written
          const fullAtMs = outageAtMs + random() * outageForMs * 0.5;
          const fullForMs = 1000 + random() * 3000;
          const schedule = `seed ${seed}: kill at ${Math.round(killAtMs)} ms, outage ${Math.round(outageAtMs)}+${Math.round(outageForMs)} ms, disk full ${Math.round(fullAtMs)}+${Math.round(fullForMs)} ms, receiver down ${Math.round(receiverDownAtMs)}+${Math.round(receiverDownForMs)} ms`;
          const child: ChildProcess = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--file', CAPTURE, '--realtime-speed', String(SPEED), '--exit-when-done', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...flags], {
            cwd: PROJECT_ROOT, env: { ...process.env, EARSHOT_API_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'],
          });
          let stderrA = '';
          child.stderr?.on('data', (d: Buffer) => { stderrA += d.toString(); });
          child.stdout?.resume();
          const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('close', (code, signal) => resolve(signal ?? code)));
          const started = Date.now();
          const at = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, started + ms - Date.now())));

          // the schedule's events, in order on one chain (influxd takes a moment to stop and start)
          let influxUp = true;
          const events: Array<[number, () => Promise<void> | void]> = [
            [outageAtMs, async () => { influxUp = false; await influx.stop(); }],
            [fullAtMs, () => { disk.fill(); }],
            [fullAtMs + fullForMs, () => disk.free()],
            [outageAtMs + outageForMs, async () => { await influx.start(); influxUp = true; }],
            [receiverDownAtMs, () => { receiver.refuse = () => 503; }],
            [receiverDownAtMs + receiverDownForMs, () => { receiver.refuse = () => null; }],
          ];
          events.sort((a, b) => a[0] - b[0]);
          const chaos = (async () => {
            for (const [ms, action] of events) {
              if (ms >= killAtMs) break;
              await at(ms);
              await action();
            }
          })();

          // labels: each activation the API shows finished gets one, alternating intended / not-intended
          const accepted = new Map<string, 'intended' | 'not-intended'>();
          let labelling = true;
          const labeller = (async () => {
            while (labelling) {
              try {
                const res = await fetch(`http://127.0.0.1:${port}/api/v1/activations?limit=50`, { headers: { Authorization: `Bearer ${TOKEN}` } });
                const list = (await res.json()) as { activations: Array<{ id: string; open: boolean }> };
                for (const a of list.activations) {
                  if (a.open || accepted.has(a.id)) continue;
                  const label = accepted.size % 2 === 0 ? 'intended' : 'not-intended';
                  const post = await fetch(`http://127.0.0.1:${port}/api/v1/activations/${encodeURIComponent(a.id)}/label`, {
                    method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ label }),
                  });
                  if (post.ok) accepted.set(a.id, label);
                }
              } catch {
                // not listening yet, or killed
              }
              await new Promise((r) => setTimeout(r, 150));
            }
          })();

          await at(killAtMs);
          child.kill('SIGKILL');
          const endA = await exited;
          labelling = false;
          await labeller;
          await chaos;
          // whatever the schedule did not get to: the disk comes back, InfluxDB too
          disk.free();
          receiver.refuse = () => null;
          if (!influxUp) await influx.start();
          expect(endA, `${schedule}: round A ended by the kill, not by a crash\n${stderrA}`).toBe('SIGKILL');
          expectCleanStderr(stderrA, `${schedule}, round A`);

          // what earshot had accepted at the kill
          const spooled = spooledLines(dataDir);
          const waiting = outboxKeys(dataDir);

          // round B: a start with nothing to capture delivers what was left
          const b = await runCli(['replay', empty, '--data-dir', dataDir, ...flags, '--influx-wait', '60', '--alert-wait', '20'], { env: { EARSHOT_API_TOKEN: TOKEN } });
          expect(b.code, `${schedule}: round B\n${b.stderr}`).toBe(0);
          expectCleanStderr(b.stderr, `${schedule}, round B`);
          const afterB = await dump(influx, db, true);
          const lost = spooled.filter((l) => !afterB.points.has(lineKey(l)));
          expect(lost, `${schedule}: spooled points missing after the restart`).toEqual([]);
          for (const key of waiting) expect(receiver.byKey.has(key), `${schedule}: alert ${key} from the outbox`).toBe(true);

          // round C: the whole capture again, nothing goes wrong
          const c = await runCli(['replay', CAPTURE, '--data-dir', dataDir, ...flags, '--influx-wait', '60', '--alert-wait', '20'], { env: { EARSHOT_API_TOKEN: TOKEN } });
          expect(c.code, `${schedule}: round C\n${c.stderr}`).toBe(0);
          expectCleanStderr(c.stderr, `${schedule}, round C`);
          const report = JSON.parse(c.stdout) as Report;

          // labels accepted before the kill are in force
          for (const [id, label] of accepted) {
            const a = report.activations.find((x) => x.id === id);
            expect(a, `${schedule}: labelled activation ${id}`).toBeDefined();
            expect(a?.reasons, `${schedule}: label of ${id}`).toContain(`label:${label}`);
          }

          // InfluxDB: the clean run's points, each activation once with its final verdict
          const final = await dump(influx, db);
          // traffic (and wake events) add up: each point must be there once. The same packets seen twice
          // (round A, then round C with what A kept) may be named with more knowledge the second time
          // (server name, service): a point is the same when its device, time and counts are. Device points are
          // snapshots of what earshot knew at a moment (a paced run takes them in quiet seconds too): each
          // device must have them, at whatever moments
          const counted = (d: Dump) => new Set([...d.points].filter(([k]) => !k.startsWith('activation|') && !k.startsWith('device|')).map(([k, fields]) => {
            const [measurement, tags, time] = k.split('|');
            const device = /(?:^|,)device=([^,]*)/.exec(tags)?.[1] ?? '';
            return `${measurement}|${device}|${time}|${fields}`;
          }));
          const finalCounted = counted(final);
          const cleanCounted = new Set([...counted(clean.dump), ...counted(clean.again)]);
          const missing = [...counted(clean.again)].filter((k) => !finalCounted.has(k));
          expect(missing, `${schedule}: points of the clean run missing`).toEqual([]);
          const extra = [...finalCounted].filter((k) => !cleanCounted.has(k));
          expect(extra, `${schedule}: points the clean runs do not have (doubled)`).toEqual([]);
          const devicesOf = (d: Dump) => new Set([...d.points.keys()].filter((k) => k.startsWith('device|')).map((k) => k.split('|')[1]));
          expect(devicesOf(final), `${schedule}: device snapshots`).toEqual(devicesOf(clean.again));
          for (const a of report.activations) {
            const key = [...final.currentVerdicts.keys()].find((k) => k.endsWith(`|${Date.parse(a.start)}`) && k.startsWith(`${a.device}|`));
            expect(key, `${schedule}: activation ${a.id} in InfluxDB`).toBeDefined();
            expect(final.currentVerdicts.get(key as string), `${schedule}: current verdict of ${a.id}`).toEqual([a.verdict]);
          }
          expect(final.currentVerdicts.size, `${schedule}: activations in InfluxDB`).toBe(clean.report.activations.length);

          // alerts: the clean run's, each delivered (a repeat keeps its key); none unknown
          for (const key of receiver.byKey.keys()) expect(clean.alerts.has(key), `${schedule}: unknown alert ${key}`).toBe(true);
          const intendedBeforeKill = [...accepted].filter(([, l]) => l === 'intended').map(([id]) => id);
          for (const key of clean.alerts) {
            const alert = [...receiver.byKey.entries()].find(([k]) => k === key);
            // an activation labelled intended is no longer suspected: its alert exists only if it left before
            if (alert === undefined) {
              const id = (clean.report.activations.find((a) => key.includes(a.id)) ?? { id: '?' }).id;
              expect(intendedBeforeKill, `${schedule}: alert ${key} never delivered`).toContain(id);
            }
          }
          expect(receiver.badSignatures).toBe(0);
          expect(damagedFiles(dataDir), `${schedule}: files quarantined`).toEqual([]);
          console.log(`chaos ${schedule}: ${accepted.size} labels accepted, ${spooled.length} points spooled and ${waiting.length} alerts waiting at the kill; ${final.points.size} points and ${receiver.byKey.size} alerts in the end (${receiver.repeats} repeated)`);
        } finally {
          await receiver.stop();
          disk.unmount();
        }
      }, 240_000);
    }
  });
});
