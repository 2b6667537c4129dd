/**
 * Command-line parsing: each command declares its own flags; every config key is also a flag
 * (generated from the schema). `--help` shows a command's own flags and the configuration keys most
 * runs of it need; `--help-all` lists every key with its default and environment name (as
 * docs/configuration.md does). Help is wrapped to the terminal's width, 80 columns when not a terminal.
 */
import { parseArgs } from 'node:util';
import { configKeys, loadConfig, type Config } from '../collector/config.js';
import { earshotError } from '../collector/errors.js';
import { refuseInputAsOutput } from '../collector/output-file.js';

export interface FlagSpec {
  type: 'string' | 'boolean';
  description: string;
  short?: string;
  /** Shown as the value's placeholder in help. */
  value?: string;
  default?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  /** Positional arguments: [min, max]. */
  positionals: [number, number];
  flags: Record<string, FlagSpec>;
  /** Whether the config flags (and --config) apply to this command. */
  config: boolean;
  /** Text after the flags in --help (examples). */
  epilog?: string;
}

export interface ParsedCommand {
  flags: Record<string, string | boolean | undefined>;
  positionals: string[];
  config: Readonly<Config>;
}

const COMMON_FLAGS: Record<string, FlagSpec> = {
  help: { type: 'boolean', short: 'h', description: 'Show this help.' },
};

const HELP_ALL_FLAG: Record<string, FlagSpec> = {
  'help-all': { type: 'boolean', description: 'Show every option: all configuration keys with defaults and environment variables.' },
};

/**
 * The configuration flags `--help` shows for each command (by name): what most runs of it set. The
 * others are in `--help-all` and docs/configuration.md.
 */
const COMMON_CONFIG_FLAGS: Record<string, readonly string[]> = {
  replay: ['devices', 'wake-events', 'local-nets', 'data-dir', 'influx-url', 'influx-db', 'influx-raw-retention', 'log-level'],
  collect: ['interface', 'source', 'filter', 'listen', 'data-dir', 'devices', 'wake-events', 'api-token-file', 'influx-url', 'influx-db', 'webhooks', 'mqtt-url', 'log-level'],
  doctor: ['interface', 'source', 'data-dir', 'influx-url', 'webhooks', 'mqtt-url'],
  catalog: ['catalog'],
  export: ['influx-url', 'influx-db', 'influx-username', 'influx-password', 'influx-token', 'influx-rp'],
};

/** The configuration flags `--help` shows for `command` (the rest: --help-all). */
export function commonConfigFlags(command: string): readonly string[] {
  return COMMON_CONFIG_FLAGS[command] ?? [];
}

/** Columns help is wrapped to: the terminal's width (at least 40), 80 when the output is not a terminal. */
export function helpWidth(stream: { isTTY?: boolean; columns?: number }): number {
  return stream.isTTY === true && typeof stream.columns === 'number' && stream.columns > 0 ? Math.max(40, stream.columns) : 80;
}

const CONFIG_FLAG: Record<string, FlagSpec> = {
  config: { type: 'string', short: 'c', value: 'FILE', description: 'YAML configuration file (also EARSHOT_CONFIG).' },
};

/** Configuration flags that name a file or directory (the command flags say so with value: 'FILE'). */
const PATH_FLAGS: ReadonlySet<string> = new Set(['data-dir', 'wake-events', 'api-token-file']);

/** Parses argv for `spec`, loads the config (file < EARSHOT_* env < flags), and returns both. */
export function parseCommand(spec: CommandSpec, argv: string[], env: Record<string, string | undefined>): ParsedCommand {
  const keys = spec.config ? configKeys() : [];
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, f] of Object.entries({ ...COMMON_FLAGS, ...HELP_ALL_FLAG, ...(spec.config ? CONFIG_FLAG : {}), ...spec.flags })) {
    options[name] = f.short ? { type: f.type, short: f.short } : { type: f.type };
  }
  for (const k of keys) if (!(k.flag in options)) options[k.flag] = { type: 'string' };
  // a value that starts with "-" and a digit is a negative number or a duration ("--since -7d"), never a
  // flag: Node's parseArgs calls it ambiguous, which says nothing of what is wrong with the value
  const args = argv.flatMap((arg, i) => {
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : null;
    const next = argv[i + 1];
    if (name !== null && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) return [`${arg}=${next}`];
    const previous = argv[i - 1];
    const joined = i > 0 && previous.startsWith('--') && !previous.includes('=') && options[previous.slice(2)]?.type === 'string' && /^-\d/.test(arg);
    return joined ? [] : [arg];
  });
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0].replace(/\. To specify a positional.*$/, '');
    throw earshotError('EARSHOT_ERR_USAGE', `${spec.name}: ${msg} (see earshot ${spec.name} --help)`);
  }
  // a flag given twice with two values: the last won in silence (`collect --file a.pcap --file b.pcapng`
  // read b only); the same value twice says nothing new (a wrapper's `--source stdin` and the user's)
  const given = new Map<string, string[]>();
  const specs: Record<string, { value?: string }> = { ...COMMON_FLAGS, ...(spec.config ? CONFIG_FLAG : {}), ...spec.flags };
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option' || token.value === undefined) continue;
    // an empty file or directory name (an unset shell variable: -o "$OUT") was taken as one and came back
    // as "earshot: : no such file"
    if (token.value === '' && (specs[token.name]?.value === 'FILE' || PATH_FLAGS.has(token.name))) {
      throw earshotError('EARSHOT_ERR_USAGE', `${spec.name}: --${token.name}: an empty ${token.name === 'data-dir' ? 'directory' : 'file'} name (an unset variable?)`);
    }
    const before = given.get(token.name);
    if (before?.includes(token.value)) continue;
    const values = [...(before ?? []), token.value];
    given.set(token.name, values);
    if (values.length === 2) {
      throw earshotError('EARSHOT_ERR_USAGE', `${spec.name}: --${token.name} given twice (${values.map((v) => JSON.stringify(v.slice(0, 80))).join(' and ')}): give it once${options[token.name] !== undefined && keys.some((k) => k.flag === token.name && k.kind === 'string[]') ? ', its values separated by commas' : ''}`);
    }
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help || values['help-all']) return { flags: values, positionals: parsed.positionals, config: loadConfig({}) };
  const [min, max] = spec.positionals;
  // the usage's forms on one line: an error is one line (a line break in it is shown escaped)
  const usage = spec.usage.split('\n').map((form) => form.trim()).join(', or ');
  if (parsed.positionals.length < min) throw earshotError('EARSHOT_ERR_USAGE', `${spec.name}: missing argument (usage: ${usage})`);
  if (parsed.positionals.length > max) throw earshotError('EARSHOT_ERR_USAGE', `${spec.name}: unexpected argument "${parsed.positionals[max]}" (usage: ${usage})`);
  if (parsed.positionals.some((p) => p === '')) throw earshotError('EARSHOT_ERR_USAGE', `${spec.name}: an empty argument (an unset variable?) (usage: ${usage})`);
  const configFlags: Record<string, string | undefined> = {};
  for (const k of keys) {
    const v = values[k.flag];
    if (typeof v === 'string') configFlags[k.flag] = v;
  }
  const file = (values.config as string | undefined) ?? env.EARSHOT_CONFIG ?? null;
  const config = loadConfig({ file: spec.config ? file : null, env: spec.config ? env : {}, flags: configFlags });
  // before anything is read or written: `replay x.pcap -o x.pcap` destroyed the capture
  if (typeof values.output === 'string') {
    refuseInputAsOutput(values.output, [
      ...parsed.positionals.map((path) => ['the input file', path] as const),
      ['the capture file (--file)', values.file as string | undefined],
      ['the config file', spec.config ? file : null],
      ['the wake-events file (detect.wakeEvents)', config.detect.wakeEvents],
      ['the API token file (api.tokenFile)', config.api.tokenFile],
      ['the salt file (--salt-file)', values['salt-file'] as string | undefined],
    ]);
  }
  return { flags: values, positionals: parsed.positionals, config };
}

/** `text` in lines of at most `width` columns (a longer word gets a line of its own), later lines indented by `indent`. */
export function wrap(text: string, width: number, indent: number): string {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

/**
 * A command line (usage, example) within `width`: broken at spaces with a shell continuation (` \\`)
 * and the rest indented, so a copied example still runs.
 */
export function wrapCommandLine(line: string, width: number): string {
  const indent = (/^ */.exec(line)?.[0].length ?? 0) + 4;
  const out: string[] = [];
  let rest = line;
  while (rest.length > width) {
    const cut = rest.lastIndexOf(' ', width - 2);
    if (cut <= indent) break;
    out.push(`${rest.slice(0, cut)} \\`);
    rest = `${' '.repeat(indent)}${rest.slice(cut + 1).trimStart()}`;
  }
  out.push(rest);
  return out.join('\n');
}

/** A flag and its description; the description starts at column 34, or 2/5 of a narrow width. */
function flagLine(name: string, short: string | undefined, value: string | undefined, description: string, width: number): string {
  const left = `  ${short ? `-${short}, ` : '    '}--${name}${value ? ` ${value}` : ''}`;
  const pad = Math.min(34, Math.floor(width * 0.4));
  const text = wrap(description, width - pad, pad);
  return left.length >= pad ? `${left}\n${' '.repeat(pad)}${text}` : `${left.padEnd(pad)}${text}`;
}

/** Options for commandHelp(). */
export interface HelpOptions {
  /** Columns to wrap to (helpWidth()). */
  width?: number;
  /** Every configuration key (--help-all), not only the command's common ones. */
  all?: boolean;
}

/**
 * The --help text of a command: usage, its flags, then its common configuration flags and a pointer to
 * the rest; with `all`, every config flag with default and environment name.
 */
export function commandHelp(spec: CommandSpec, options: HelpOptions = {}): string {
  const width = options.width ?? 80;
  const out = [...`Usage: ${spec.usage}`.split('\n').map((l) => wrapCommandLine(l, width)), '', wrap(spec.summary, width, 0), '', 'Options:'];
  for (const [name, f] of Object.entries({ ...spec.flags, ...(spec.config ? CONFIG_FLAG : {}), ...COMMON_FLAGS, ...(spec.config ? HELP_ALL_FLAG : {}) })) {
    const def = f.default !== undefined ? ` (default: ${f.default})` : '';
    out.push(flagLine(name, f.short, f.value ?? (f.type === 'string' ? 'VALUE' : undefined), f.description + def, width));
  }
  if (spec.config) {
    const keys = configKeys().filter((k) => !(k.flag in spec.flags));
    const common = commonConfigFlags(spec.name);
    const shown = options.all ? keys : keys.filter((k) => common.includes(k.flag));
    out.push('', wrap(`${options.all ? 'Configuration' : 'Common configuration'} (flag, or environment variable, or key in the --config file):`, width, 0));
    for (const k of shown) {
      const def = k.default === null || (Array.isArray(k.default) && k.default.length === 0) ? 'unset' : JSON.stringify(k.default);
      const choices = k.choices ? ` One of: ${k.choices.join(', ')}.` : '';
      const value = k.kind === 'string[]' ? 'LIST' : k.kind === 'json' ? 'JSON' : k.kind === 'integer' || k.kind === 'number' ? 'N' : 'VALUE';
      out.push(flagLine(k.flag, undefined, value, `${k.description}${choices} Default: ${def}. [${k.env}, ${k.path.join('.')}]`, width));
    }
    if (!options.all) {
      out.push('', wrap(`${keys.length - shown.length} more configuration keys (capture, tagging, detection, InfluxDB, API, webhooks, MQTT, report, log): ` +
        `earshot ${spec.name} --help-all, or docs/configuration.md.`, width, 0));
    }
  }
  if (spec.epilog) out.push('', ...spec.epilog.split('\n').map((l) => wrapCommandLine(l, width)));
  return `${out.join('\n')}\n`;
}

/** The top-level help: what earshot is, its commands with their summaries' first sentence, wrapped to `width`. */
export function mainHelp(commands: readonly CommandSpec[], width = 80): string {
  const nameWidth = Math.max(...commands.map((c) => c.name.length)) + 4;
  const lines = [
    'Usage: earshot <command> [options]',
    '',
    wrap('Watches voice assistants (Amazon Echo, Apple HomePod, Google Nest, Sonos) from the router and tells ' +
      'you when they sent audio to the cloud, and when nobody had said the wake word.', width, 0),
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(nameWidth - 2)}${wrap(`${c.summary.split('. ')[0].replace(/\.$/, '')}.`, width - nameWidth, nameWidth)}`),
    '',
    wrap('Run "earshot <command> --help" for its options, "--help-all" for all of them. Every configuration key ' +
      'is also a flag and an EARSHOT_* environment variable; see docs/configuration.md.', width, 0),
    '',
    'Options:',
    '  -h, --help       Show this help.',
    '  -V, --version    Show the version.',
  ];
  return `${lines.join('\n')}\n`;
}
