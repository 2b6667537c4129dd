/** `earshot catalog`: prints the endpoint catalogue (shipped entries plus the config's) with sources. */
import { buildCatalog, SERVICES } from '../collector/tag/catalog.js';
import { earshotError } from '../collector/errors.js';
import { helpWidth, wrap, type CommandSpec, type ParsedCommand } from './args.js';
import type { CliIo } from './run-capture.js';

export const catalogSpec: CommandSpec = {
  name: 'catalog',
  summary: 'Prints the endpoint catalogue: host-name patterns with vendor, service class (voice, telemetry, api, media, update, connectivity-check, time, push, network, other) and source; entries from the config file come first.',
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
  // a misspelt filter printed an empty table with exit 0, which reads as "no such entries"
  const vendor = parsed.flags.vendor as string | undefined;
  const service = parsed.flags.service as string | undefined;
  const vendors = [...new Set([...catalog.entries.map((e) => e.vendor), ...catalog.voicePrefixes.map((v) => v.vendor)].filter((v): v is string => typeof v === 'string'))].sort();
  if (vendor !== undefined && !vendors.includes(vendor)) throw earshotError('EARSHOT_ERR_USAGE', `catalog: --vendor: must be one of ${vendors.join(', ')}, got ${JSON.stringify(vendor.slice(0, 40))}`);
  if (service !== undefined && !(SERVICES as readonly string[]).includes(service)) throw earshotError('EARSHOT_ERR_USAGE', `catalog: --service: must be one of ${SERVICES.join(', ')}, got ${JSON.stringify(service.slice(0, 40))}`);
  const entries = catalog.entries.filter((e) => (vendor === undefined || e.vendor === vendor) && (service === undefined || e.service === service));
  // the voice ranges are the vendor's too (and are voice)
  const voicePrefixes = catalog.voicePrefixes.filter((v) => (vendor === undefined || v.vendor === vendor) && (service === undefined || service === 'voice'));
  if (format === 'json') {
    io.stdout.write(`${JSON.stringify({ files: catalog.files, entries, voicePrefixes }, null, 2)}\n`);
    return 0;
  }
  const columns = helpWidth(io.stdout);
  const width = Math.max(...entries.map((e) => e.pattern.length), 7);
  // the source beside the other columns when it has room there, else on lines of its own below them
  const sourceAt = width + 2 + 8 + 20;
  const beside = columns - sourceAt >= 30;
  const lines = [`${'pattern'.padEnd(width)}  vendor  service${beside ? '             source' : ''}`];
  for (const e of entries) {
    const source = `${e.source}${e.origin === 'config' ? ' [config]' : ''}`;
    const row = `${e.pattern.padEnd(width)}  ${(e.vendor ?? '-').padEnd(6)}  ${e.service}`;
    if (beside) lines.push(`${row.padEnd(sourceAt)}${wrap(source, columns - sourceAt, sourceAt)}`);
    else lines.push(row, `    ${wrap(source, columns - 4, 4)}`);
  }
  lines.push('', `Voice address ranges (for voice connections that carry no name):`);
  for (const v of voicePrefixes) lines.push(`  ${v.vendor.padEnd(8)}${v.prefix.padEnd(18)}${wrap(v.source, columns - 28, 28)}`);
  lines.push('', wrap(`Files: ${catalog.files.map((f) => `${f.file} (${f.updated})`).join(', ')}`, columns, 2));
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
