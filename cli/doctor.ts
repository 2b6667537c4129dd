/**
 * `earshot doctor`: checks what collect needs (capture tool, permission, interface, traffic, InfluxDB,
 * spool, webhooks, MQTT, clock) and says for each what to do. Exit 2 when something blocks capture;
 * other problems are reported but leave the exit code 0. docs/doctor.md describes every check.
 */
import { earshotError } from '../collector/errors.js';
import { printable } from '../collector/text.js';
import type { Logger } from '../collector/log.js';
import type { CommandSpec, ParsedCommand } from './args.js';
import {
  checkApiListen, checkCapture, checkCaptureTool, checkClock, checkInflux, checkMqtt, checkSpool, checkWebhooks,
  type CaptureFindings, type CheckResult,
} from './doctor-checks.js';
import { checkApiFindings, checkCaptureFindings } from './doctor-findings.js';
import type { CliIo } from './run-capture.js';

export const doctorSpec: CommandSpec = {
  name: 'doctor',
  summary: 'Checks what collect needs and explains what to do: capture tool (libpcap or tcpdump), permission to capture, the interface and its traffic (assistants seen, both directions), InfluxDB, the spool, webhooks, MQTT, the API address, the clock, and the network hygiene findings of a running collector (or of a capture file: --capture). Exit 2 when something blocks capture.',
  usage: 'earshot doctor [--interface IF] [--seconds N] [--api-url URL] [--format text|json] [options]\n       earshot doctor --capture FILE [--format text|json] [options]',
  positionals: [0, 0],
  config: true,
  flags: {
    seconds: { type: 'string', value: 'N', description: 'Capture this many seconds to look at the traffic.', default: '5' },
    format: { type: 'string', value: 'text|json', description: 'Output format.', default: 'text' },
    capture: { type: 'string', value: 'FILE', description: 'Only list the network hygiene findings of this capture file (pcap or pcapng, optionally gzip-compressed); no other check runs.' },
    'api-url': { type: 'string', value: 'URL', description: 'Read the network hygiene findings from the collector serving the API at URL (default: http:// and api.listen).' },
  },
  epilog: 'Examples:\n  sudo earshot doctor --interface br-lan\n  earshot doctor --config /etc/earshot/earshot.yaml --seconds 60 --format json\n  earshot doctor --capture home.pcapng',
};

function parseSeconds(value: unknown): number {
  if (value === undefined) return 5;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 3600) {
    throw earshotError('EARSHOT_ERR_USAGE', `--seconds: expected a number of seconds in (0, 3600], got "${String(value)}"`);
  }
  return n;
}

/** --api-url: an http(s) URL (a mistyped one was tried, and said as "no running collector at notaurl"). */
function parseApiUrl(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  let url: URL | null = null;
  try {
    url = new URL(String(value));
  } catch {
    url = null;
  }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw earshotError('EARSHOT_ERR_USAGE', `--api-url: expected the collector's API as http://HOST:PORT (e.g. http://127.0.0.1:8377), got "${String(value)}"`);
  }
  return String(value);
}

/** One text line: status padded to 5, the check, what was found, and what to do. */
export function formatLine(r: CheckResult): string {
  // a message can hold a device's name from mDNS or a server's error text: escaped for the terminal
  return printable(`${r.status.padEnd(5)}${r.check}: ${r.message}${r.fix ? ` — ${r.fix}` : ''}`);
}

/** Runs every check; the capture and the network checks run at the same time. */
export async function runChecks(parsed: ParsedCommand, log: Logger, seconds: number, apiUrl: string | undefined): Promise<CheckResult[]> {
  const { config } = parsed;
  const tool = checkCaptureTool(config);
  const capture: Promise<CaptureFindings> = tool.status === 'ok'
    ? checkCapture(config, seconds, (m) => log.warn(m))
    : Promise.resolve({
      lastMs: Number.NaN,
      results: tool.status === 'skip' ? [] : [{ check: 'capture permission', status: 'skip', message: 'needs a capture tool first (see above)' }],
    });
  const [found, influx, webhooks, mqtt, api, findings] = await Promise.all([capture, checkInflux(config), checkWebhooks(config), checkMqtt(config), checkApiListen(config), checkApiFindings(config, apiUrl)]);
  return [tool, ...found.results, checkClock(found.lastMs), ...influx, ...checkSpool(config), ...webhooks, mqtt, api, ...findings];
}

/** `earshot doctor`. */
export async function runDoctor(parsed: ParsedCommand, io: CliIo, log: Logger): Promise<number> {
  const format = parsed.flags.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw earshotError('EARSHOT_ERR_USAGE', `--format: must be json or text, got "${String(format)}"`);
  const seconds = parseSeconds(parsed.flags.seconds);
  const apiUrl = parseApiUrl(parsed.flags['api-url']);
  const capture = parsed.flags.capture as string | undefined;
  // a capture file: its findings only (the live checks are about an interface it does not use)
  const results = capture !== undefined ? await checkCaptureFindings(parsed.config, capture, (m) => log.warn(m)) : await runChecks(parsed, log, seconds, apiUrl);
  const blocked = results.some((r) => r.status === 'FAIL' && r.blocking === true);
  const exitCode = blocked ? 2 : 0;
  if (format === 'json') {
    io.stdout.write(`${JSON.stringify({ exitCode, captureBlocked: blocked, checks: results }, null, 2)}\n`);
  } else {
    const count = (s: string) => results.filter((r) => r.status === s).length;
    const summary = capture !== undefined
      ? (blocked ? 'the capture file could not be read (exit 2)' : `the network hygiene findings of ${capture} (${results.filter((r) => r.check === 'finding' && r.status === 'warn').length} medium or high)`)
      : blocked
      ? 'capture is blocked: earshot collect cannot run until the FAIL lines about capture are fixed (exit 2)'
      : `nothing blocks capture (${count('FAIL')} FAIL, ${count('warn')} warn)`;
    io.stdout.write(`${results.map(formatLine).join('\n')}\n\n${summary}\n`);
  }
  return exitCode;
}
