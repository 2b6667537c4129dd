/** `earshot import voice-history FILE`: turns an Amazon voice-history export into a wake-event file. */
import { importVoiceHistory } from '../collector/detect/voice-history.js';
import { earshotError } from '../collector/errors.js';
import { printable } from '../collector/text.js';
import type { CommandSpec, ParsedCommand } from './args.js';
import type { CliIo } from './run-capture.js';

export const importSpec: CommandSpec = {
  name: 'import',
  summary: "Imports wake-word events. `earshot import voice-history FILE` reads an Amazon voice-history export (the privacy page's JSON, or a CSV) and writes JSON Lines wake events for --wake-events: records Amazon marks as not intended for the device become confirmed false activations. Transcripts are dropped.",
  usage: 'earshot import voice-history FILE [-o OUT.jsonl]',
  positionals: [2, 2],
  config: false,
  flags: {
    output: { type: 'string', short: 'o', value: 'FILE', description: 'Where to write the wake events (JSON Lines). Default: standard output.' },
  },
  epilog: 'Example:\n  earshot import voice-history alexa-history.json -o wake-events.jsonl\n  earshot replay capture.pcap --wake-events wake-events.jsonl',
};

/** Runs `earshot import`. */
export async function runImport(parsed: ParsedCommand, io: CliIo): Promise<number> {
  const [kind, file] = parsed.positionals;
  if (kind !== 'voice-history') throw earshotError('EARSHOT_ERR_USAGE', `import: unknown source "${kind}" (known: voice-history)`);
  const output = (parsed.flags.output as string | undefined) ?? '-';
  const counts = await importVoiceHistory(file, output, (message) => io.stderr.write(`earshot: ${printable(message)}\n`));
  // a /0 turn Amazon calls "not intended" but followed by the request is a pause after the wake word
  const paused = `; ${counts.pausedWakes} paused wake words (a "not intended" /0 turn before its request) folded in`;
  io.stderr.write(`earshot: ${counts.records} records: ${counts.intended} intended (${counts.arbitration} arbitration), ${counts.notIntended} not intended for the device${paused}${output === '-' ? '' : `; wrote ${printable(output)}`}\n`);
  return 0;
}
