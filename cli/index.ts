/**
 * The `earshot` command. Exit codes: 0 success, 2 unusable input or configuration (one line on stderr
 * starting "earshot:"), 1 for a bug.
 */
import { readFileSync } from 'node:fs';
import { EXIT_BUG, isEarshotError, type EarshotError } from '../collector/errors.js';
import { originOf, unknownEnvironment } from '../collector/config.js';
import { packagePath } from '../collector/paths.js';
import { buildLogger } from '../collector/log.js';
import { printable } from '../collector/text.js';
import { commandHelp, helpWidth, mainHelp, parseCommand, type CommandSpec, type ParsedCommand } from './args.js';
import { blocklistSpec, runBlocklist } from './blocklist.js';
import { catalogSpec, runCatalog } from './catalog.js';
import { doctorSpec, runDoctor } from './doctor.js';
import { exportSpec, runExport } from './export.js';
import { importSpec, runImport } from './import.js';
import { collectSpec, replaySpec, runCollect, runReplay, type CliIo } from './run-capture.js';
import { demoSpec, runDemo } from './demo.js';
import { checkReplay } from './replay-check.js';
import type { Logger } from '../collector/log.js';

interface Command {
  spec: CommandSpec;
  run: (parsed: ParsedCommand, io: CliIo, log: Logger) => Promise<number>;
}

const COMMANDS: Command[] = [
  // an old capture into InfluxDB is refused before it is read (replay-check.ts)
  { spec: replaySpec, run: async (parsed, io, log) => { await checkReplay(parsed); return runReplay(parsed, io, log); } },
  { spec: collectSpec, run: runCollect },
  { spec: catalogSpec, run: runCatalog },
  { spec: blocklistSpec, run: runBlocklist },
  { spec: importSpec, run: runImport },
  { spec: exportSpec, run: runExport },
  { spec: doctorSpec, run: runDoctor },
  { spec: demoSpec, run: runDemo },
];

function version(): string {
  const pkg = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * A configuration error found after loading names its key ("detect.timeZone: ..."): the flag, variable
 * or file the value came from is added, as errors.md promises ("detect.timeZone (EARSHOT_DETECT_TIME_ZONE): ...").
 */
function withOrigin(err: EarshotError, config: object | null): string {
  if (err.code !== 'EARSHOT_ERR_CONFIG_INVALID' || config === null) return err.message;
  const key = /^([a-zA-Z]+\.[a-zA-Z]+): /.exec(err.message)?.[1];
  const origin = key === undefined ? null : originOf(config, key);
  return origin === null ? err.message : `${key} (${origin})${err.message.slice((key as string).length)}`;
}

/** Runs the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '--help-all' || name === '-h' || name === 'help') {
    const topicName = rest.find((arg) => !arg.startsWith('-'));
    const topic = COMMANDS.find((c) => c.spec.name === topicName);
    if (topicName !== undefined && topic === undefined) {
      io.stderr.write(`earshot: unknown command "${printable(topicName)}" (commands: ${COMMANDS.map((c) => c.spec.name).join(', ')})\n`);
      return 2;
    }
    // bare `earshot` is a usage error: its help goes where errors go
    const out = name === undefined ? io.stderr : io.stdout;
    const width = helpWidth(out);
    out.write(topic ? commandHelp(topic.spec, { width, all: name === '--help-all' || rest.includes('--help-all') }) : mainHelp(COMMANDS.map((c) => c.spec), width));
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`earshot ${version()}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
  let parsedConfig: object | null = null;
  try {
    if (!command) {
      io.stderr.write(`earshot: unknown command "${printable(name)}" (commands: ${COMMANDS.map((c) => c.spec.name).join(', ')}; see earshot --help)\n`);
      return 2;
    }
    const parsed = parseCommand(command.spec, rest, io.env);
    parsedConfig = parsed.config;
    if (parsed.flags.help || parsed.flags['help-all']) {
      io.stdout.write(commandHelp(command.spec, { width: helpWidth(io.stdout), all: parsed.flags['help-all'] === true }));
      return 0;
    }
    const log = buildLogger(parsed.config.log, io.stderr);
    if (command.spec.config) for (const warning of unknownEnvironment(io.env)) log.warn(warning);
    return await command.run(parsed, io, log);
  } catch (err) {
    if (isEarshotError(err)) {
      // one line, whatever the paths and values in it hold (a file name with an ESC sequence or a line
      // break, from a directory someone else fills): shown escaped, as the log shows names
      io.stderr.write(`earshot: ${printable(withOrigin(err, parsedConfig))}\n`);
      return err.exitCode;
    }
    io.stderr.write(`earshot: internal error (a bug; please report it): ${(err as Error)?.stack ?? String(err)}\n`);
    return EXIT_BUG;
  }
}

