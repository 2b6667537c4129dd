/** `earshot catalog`: prints the endpoint catalogue (shipped entries plus the config's) with sources. */
import { buildCatalog } from '../collector/tag/catalog.js';
import { earshotError } from '../collector/errors.js';
import type { CommandSpec, ParsedCommand } from './args.js';
import type { CliIo } from './run-capture.js';

export const catalogSpec: CommandSpec = {
  name: 'catalog',
  summary: 'Prints the endpoint catalogue: host-name patterns with vendor, service class (voice, telemetry, api, media, update, connectivity-check, time, push, other) and source; entries from the config file come first.',
  usage: 'earshot catalog [--format text|json] [--vendor V] [--service S]',
  positionals: [0, 0],
  config: true,
  flags: {
    format: { type: 'string', value: 'json|text', description: 'Output format. Default: text on a terminal, json otherwise.' },
    vendor: { type: 'string', value: 'VENDOR', description: 'Only entries of this vendor (amazon, apple, google, sonos).' },
    service: { type: 'string', value: 'SERVICE', description: 'Only entries of this service class.' },
  },
};

/** Runs `earshot catalog`. */
export async function runCatalog(parsed: ParsedCommand, io: CliIo): Promise<number> {
  const catalog = buildCatalog(parsed.config.catalog);
  const format = parsed.flags.format ?? (io.stdout.isTTY ? 'text' : 'json');
  if (format !== 'json' && format !== 'text') throw earshotError('EARSHOT_ERR_USAGE', `--format: must be json or text, got "${String(format)}"`);
  const entries = catalog.entries.filter((e) =>
    (parsed.flags.vendor === undefined || e.vendor === parsed.flags.vendor) && (parsed.flags.service === undefined || e.service === parsed.flags.service));
  if (format === 'json') {
    io.stdout.write(`${JSON.stringify({ files: catalog.files, entries, voicePrefixes: catalog.voicePrefixes }, null, 2)}\n`);
    return 0;
  }
  const width = Math.max(...entries.map((e) => e.pattern.length), 7);
  const lines = [`${'pattern'.padEnd(width)}  vendor  service             source`];
  for (const e of entries) lines.push(`${e.pattern.padEnd(width)}  ${(e.vendor ?? '-').padEnd(6)}  ${e.service.padEnd(18)}  ${e.source}${e.origin === 'config' ? ' [config]' : ''}`);
  lines.push('', `Voice address ranges (for voice connections that carry no name):`);
  for (const v of catalog.voicePrefixes) lines.push(`  ${v.vendor.padEnd(8)}${v.prefix.padEnd(18)}${v.source}`);
  lines.push('', `Files: ${catalog.files.map((f) => `${f.file} (${f.updated})`).join(', ')}`);
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
