/**
 * Command-line parsing: each command declares its own flags; every config key is also a flag
 * (generated from the schema), so `--help` lists them all with their defaults and environment names.
 */
import { parseArgs } from 'node:util';
import { configKeys, loadConfig, type Config } from '../collector/config.js';
import { earshotError } from '../collector/errors.js';

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

const CONFIG_FLAG: Record<string, FlagSpec> = {
  config: { type: 'string', short: 'c', value: 'FILE', description: 'YAML configuration file (also EARSHOT_CONFIG).' },
};

/** Parses argv for `spec`, loads the config (file < EARSHOT_* env < flags), and returns both. */
export function parseCommand(spec: CommandSpec, argv: string[], env: Record<string, string | undefined>): ParsedCommand {
  const keys = spec.config ? configKeys() : [];
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, f] of Object.entries({ ...COMMON_FLAGS, ...(spec.config ? CONFIG_FLAG : {}), ...spec.flags })) {
    options[name] = f.short ? { type: f.type, short: f.short } : { type: f.type };
  }
  for (const k of keys) if (!(k.flag in options)) options[k.flag] = { type: 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0].replace(/\. To specify a positional.*$/, '');
    throw earshotError('EARSHOT_ERR_USAGE', `${spec.name}: ${msg} (see earshot ${spec.name} --help)`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return { flags: values, positionals: parsed.positionals, config: loadConfig({}) };
  const [min, max] = spec.positionals;
  if (parsed.positionals.length < min) throw earshotError('EARSHOT_ERR_USAGE', `${spec.name}: missing argument (usage: ${spec.usage})`);
  if (parsed.positionals.length > max) throw earshotError('EARSHOT_ERR_USAGE', `${spec.name}: unexpected argument "${parsed.positionals[max]}" (usage: ${spec.usage})`);
  const configFlags: Record<string, string | undefined> = {};
  for (const k of keys) {
    const v = values[k.flag];
    if (typeof v === 'string') configFlags[k.flag] = v;
  }
  const file = (values.config as string | undefined) ?? env.EARSHOT_CONFIG ?? null;
  const config = loadConfig({ file: spec.config ? file : null, env: spec.config ? env : {}, flags: configFlags });
  return { flags: values, positionals: parsed.positionals, config };
}

function wrap(text: string, width: number, indent: number): string {
  const words = text.split(/\s+/);
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

function flagLine(name: string, short: string | undefined, value: string | undefined, description: string): string {
  const left = `  ${short ? `-${short}, ` : '    '}--${name}${value ? ` ${value}` : ''}`;
  const pad = 34;
  return left.length >= pad ? `${left}\n${' '.repeat(pad)}${wrap(description, 80 - pad, pad)}` : `${left.padEnd(pad)}${wrap(description, 80 - pad, pad)}`;
}

/** The --help text of a command: usage, its flags, then every config flag with default and env name. */
export function commandHelp(spec: CommandSpec): string {
  const out = [`Usage: ${spec.usage}`, '', spec.summary, '', 'Options:'];
  for (const [name, f] of Object.entries({ ...spec.flags, ...(spec.config ? CONFIG_FLAG : {}), ...COMMON_FLAGS })) {
    const def = f.default !== undefined ? ` (default: ${f.default})` : '';
    out.push(flagLine(name, f.short, f.value ?? (f.type === 'string' ? 'VALUE' : undefined), f.description + def));
  }
  if (spec.config) {
    out.push('', 'Configuration (flag, or environment variable, or key in the --config file):');
    for (const k of configKeys()) {
      if (k.flag in spec.flags) continue;
      const def = k.default === null || (Array.isArray(k.default) && k.default.length === 0) ? 'unset' : JSON.stringify(k.default);
      const choices = k.choices ? ` One of: ${k.choices.join(', ')}.` : '';
      const value = k.kind === 'string[]' ? 'LIST' : k.kind === 'json' ? 'JSON' : k.kind === 'integer' || k.kind === 'number' ? 'N' : 'VALUE';
      out.push(flagLine(k.flag, undefined, value, `${k.description}${choices} Default: ${def}. [${k.env}, ${k.path.join('.')}]`));
    }
  }
  if (spec.epilog) out.push('', spec.epilog);
  return `${out.join('\n')}\n`;
}
