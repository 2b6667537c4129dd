/**
 * One table of coded errors. Every error a user can meet has a code here, a message template and the
 * exit code the CLI uses for it. Per-packet problems are never errors: they are counted (decodeErrors).
 * docs/errors.md documents every code; a test fails when one is missing there.
 */

/** Exit codes of the CLI. */
export const EXIT_OK = 0;
export const EXIT_BUG = 1;
export const EXIT_BAD_INPUT = 2;
/** The work was done but its points did not all reach InfluxDB (they wait in the spool, or were refused). */
export const EXIT_UNDELIVERED = 3;

interface ErrorSpec {
  /** Message template; {0}, {1}, ... are replaced by the arguments given to earshotError(). */
  readonly message: string;
  readonly exitCode: number;
}

export const ERRORS = {
  // input files
  EARSHOT_ERR_FILE_NOT_FOUND: { message: '{0}: no such file', exitCode: EXIT_BAD_INPUT },
  // a name with bytes that are not UTF-8: Node.js decodes the command line as UTF-8, so the file cannot be named
  EARSHOT_ERR_FILE_NAME_NOT_UTF8: { message: '{0}: no such file as given: the name on the command line has bytes that are not UTF-8, which Node.js cannot pass on (shown as \uFFFD); rename the file, or give it on standard input as - (earshot replay - < FILE)', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_FILE_IS_DIRECTORY: { message: '{0}: is a directory, not a file', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_FILE_UNREADABLE: { message: '{0}: cannot read: {1}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_NOT_A_CAPTURE: { message: '{0}: not a pcap or pcapng capture ({1})', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_BAD_CAPTURE_HEADER: { message: '{0}: damaged capture header at offset {1}: {2}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_UNKNOWN_LINKTYPE: { message: '{0}: link type {1} is not supported (supported: {2})', exitCode: EXIT_BAD_INPUT },
  // output files
  EARSHOT_ERR_OUTPUT: { message: '{0}: cannot write: {1}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_OUTPUT_IS_INPUT: { message: '-o {0}: is {1}, which this command reads: writing there would destroy it (choose another file)', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_GZIP: { message: '{0}: broken gzip stream: {1}', exitCode: EXIT_BAD_INPUT },
  // live capture
  EARSHOT_ERR_NO_LIBPCAP: { message: 'live capture needs the optional "pcap" package (libpcap-dev, then npm install pcap) or --source tcpdump: {0}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_NO_TCPDUMP: { message: 'tcpdump not found on PATH (install it, or use --source libpcap)', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_CAPTURE_OPEN: { message: 'cannot capture on {0}: {1}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_CAPTURE_FAILED: { message: 'capture on {0} failed: {1}', exitCode: EXIT_BAD_INPUT },
  // configuration and command line
  EARSHOT_ERR_CONFIG_FILE: { message: '{0}: cannot read config: {1}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_CONFIG_YAML: { message: '{0}: invalid YAML: {1}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_CONFIG_INVALID: { message: '{0}: {1}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_USAGE: { message: '{0}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_LISTEN: { message: 'cannot listen on {0}: {1}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_DATA_DIR: { message: '{0}: data directory is not usable: {1}', exitCode: EXIT_BAD_INPUT },
  // another earshot process holds the data directory's lock ({1}: its PID, {2}: since when)
  EARSHOT_ERR_DATA_DIR_IN_USE: { message: '{0}: data directory in use by another earshot (PID {1}, since {2}): two runs on one data directory overwrite each other\'s spool and state; stop that one, or give this run a data directory of its own (--data-dir)', exitCode: EXIT_BAD_INPUT },
  // a MAC address a person gave ({0} says where, {1} is the text, {2} the accepted spellings)
  EARSHOT_ERR_BAD_MAC: { message: '{0}: {1} is not a MAC address ({2})', exitCode: EXIT_BAD_INPUT },
  // wake-word events and imports ({0} is "file:line" or "file: record", {1} names the field and the problem)
  EARSHOT_ERR_WAKE_EVENTS: { message: '{0}: {1}', exitCode: EXIT_BAD_INPUT },
  EARSHOT_ERR_VOICE_HISTORY: { message: '{0}: {1}', exitCode: EXIT_BAD_INPUT },
  // InfluxDB ({0} is a count of points, {1} says where they are)
  EARSHOT_ERR_INFLUX_UNDELIVERED: { message: '{0} points were not written to InfluxDB: {1}', exitCode: EXIT_UNDELIVERED },
  // logged, not thrown: the collector goes on and keeps the points ({0} what is missing, {1} InfluxDB's answer, {2} the command)
  EARSHOT_ERR_INFLUX_MISSING: { message: 'InfluxDB has no {0} ({1}): points wait in the spool until it exists; create it with: {2}', exitCode: EXIT_UNDELIVERED },
  // logged, not thrown: a write answered 401/403 ({0} InfluxDB's answer, {1} what to check)
  EARSHOT_ERR_INFLUX_AUTH: { message: 'InfluxDB refused the credentials ({0}): check {1}; points wait in the spool and are retried', exitCode: EXIT_UNDELIVERED },
  // earshot export: InfluxDB away or refusing the read ({0} where, {1} why)
  EARSHOT_ERR_INFLUX_QUERY: { message: 'InfluxDB at {0} cannot be read: {1}', exitCode: EXIT_UNDELIVERED },
  // logged, not thrown: earshot writes without the setup ({0} who, {1} InfluxDB's answer, {2} the command for an admin)
  EARSHOT_ERR_INFLUX_SETUP_DENIED: { message: '{0} may not run the database setup ({1}); writing without it. An admin can run it: {2}; then set influx.setup to false', exitCode: EXIT_UNDELIVERED },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error meant for the user: one line, a code, an exit code. Never printed with a stack. */
export class EarshotError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'EarshotError';
    this.code = code;
    this.exitCode = ERRORS[code].exitCode;
  }
}

/** Builds the coded error `code` with its message filled from `args`. */
export function earshotError(code: ErrorCode, ...args: Array<string | number>): EarshotError {
  const message = ERRORS[code].message.replace(/\{(\d+)\}/g, (_, i: string) => String(args[Number(i)] ?? ''));
  return new EarshotError(code, message);
}

/** True for errors made by earshotError(). */
export function isEarshotError(err: unknown): err is EarshotError {
  return err instanceof EarshotError;
}

/**
 * What went wrong in words, without Node's repetition of the call and a path the user did not give
 * ("ENOENT: no such file or directory, open '/proc/foo.tmp-18992'" becomes "no such file or directory").
 */
export function systemReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const match = typeof e?.message === 'string' ? /^[A-Z]+: ([^,]+)(,|$)/.exec(e.message) : null;
  return match !== null ? match[1] : (e as Error)?.message ?? String(err);
}
