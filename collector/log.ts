/**
 * The logger: pino on stderr, as JSON lines or, for people at a terminal, as short text lines
 * ("earshot: warn: ..."). Logging is for events, never per packet.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { printable } from './text.js';

export type { Logger };

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/**
 * A field's value in a text line: as it is when it is one plain word, else quoted. A device
 * name from a packet ("x mac=aa:bb:cc:dd:ee:ff") could otherwise write fields of its own into the line.
 */
export function fieldText(value: unknown): string {
  // quoted with " and \ escaped: the controls are escaped for the whole line by printable(), as in the message
  if (typeof value === 'string') return /^[^\s"=()]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
  return JSON.stringify(value) ?? String(value);
}

/** A stream that turns pino's JSON lines into "earshot: level: message key=value" lines. */
function textDestination(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          const extras = Object.entries(rec)
            .filter(([k]) => !SKIP.has(k))
            .map(([k, v]) => `${k}=${fieldText(v)}`);
          const level = LEVEL_NAMES[rec.level as number] ?? 'info';
          // JSON.parse has undone pino's escaping: a name from a packet would reach the terminal raw
          out.write(`earshot: ${level === 'info' ? '' : `${level}: `}${printable(`${String(rec.msg ?? '')}${extras.length ? ` (${extras.join(' ')})` : ''}`)}\n`);
        } catch {
          out.write(`${printable(line)}\n`);
        }
      }
      done();
    },
  });
}

/** Streams whose write errors are already taken (one listener each, however many loggers write to them). */
const tolerated = new WeakSet<NodeJS.EventEmitter>();

/**
 * A log line that cannot be written is lost, not fatal: after a hang-up stderr is a terminal that is gone
 * (EIO), and an 'error' event nobody listens to ended the process in the middle of its stop, before the
 * report and the last points (test/hangup.test.ts).
 */
function tolerateWriteErrors(stream: NodeJS.EventEmitter): void {
  // a caller's own writer (tests, an embedding program) may be no event emitter: its errors are its own
  if (typeof stream.on !== 'function' || tolerated.has(stream)) return;
  tolerated.add(stream);
  stream.on('error', () => undefined);
}

/** Builds the logger for `level` and `format` ('auto' = text on a TTY, JSON otherwise). */
export function buildLogger(options: { level: string; format: 'auto' | 'text' | 'json' }, stream: NodeJS.WriteStream = process.stderr): Logger {
  const text = options.format === 'text' || (options.format === 'auto' && stream.isTTY === true);
  const base = { level: options.level, base: undefined } as const;
  tolerateWriteErrors(stream);
  if (!text) {
    const destination = pino.destination({ fd: (stream as NodeJS.WriteStream & { fd?: number }).fd ?? 2, sync: true });
    tolerateWriteErrors(destination);
    return pino(base, destination);
  }
  return pino(base, textDestination(stream));
}
