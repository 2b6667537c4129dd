/**
 * The signals that stop a run, and what a run they stopped exits with.
 *
 * SIGINT (Ctrl-C), SIGTERM (systemd, `docker stop`, kill) and SIGHUP (the terminal went away: an SSH
 * session that dropped, a closed window) each stop a run the same way: the capture stops, the flows are
 * finished, the report is written and InfluxDB is given the points (the spool keeps what it does not
 * take). Without a handler Node ends the process at SIGHUP at once: no report, the interval in progress
 * never written. earshot has no configuration reload; SIGHUP is not one (a changed config takes a restart).
 */
import { constants } from 'node:os';
import { isatty } from 'node:tty';
import { isMainThread } from 'node:worker_threads';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** Calls `handler` at each stop signal this process gets; returns what removes it. */
export function onStopSignals(handler: (signal: StopSignal) => void): () => void {
  for (const signal of STOP_SIGNALS) process.on(signal, handler);
  return () => {
    for (const signal of STOP_SIGNALS) process.off(signal, handler);
  };
}

/** The exit code of a run a signal stopped: 128 + the signal's number, as a shell reports it (SIGINT 130). */
export function signalExitCode(signal: string): number {
  return 128 + (constants.signals[signal as NodeJS.Signals] ?? constants.signals.SIGTERM);
}

/** Which of stdin, stdout and stderr were terminals when the process started. */
const terminalsAtStart = [0, 1, 2].map((fd) => isatty(fd));

/** True when a terminal this process was started on has gone away (hung up: it answers as no terminal). */
export function terminalGone(): boolean {
  return terminalsAtStart.some((was, fd) => was && !isatty(fd));
}

/**
 * Ends the process with `code`, at once. A process whose terminal went away ends by SIGHUP instead (as a
 * shell reports it: 129): at exit Node resets the terminals it started on, and its check of that reset
 * aborts the process with a native stack trace when the terminal is gone (nodejs/node#51519: Node 20.20;
 * 24.22 does not).
 */
export function exitProcess(code: number): void {
  if (isMainThread && terminalGone()) {
    process.removeAllListeners('SIGHUP');
    process.kill(process.pid, 'SIGHUP');
  }
  process.exit(code);
}
