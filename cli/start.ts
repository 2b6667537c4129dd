/** The `earshot` process: runs the CLI with the process's arguments and streams (started by main.ts). */
import { EXIT_BUG } from '../collector/errors.js';
import { main } from './index.js';

// a closed stdout (earshot replay x | head) is not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
    // a native capture handle that node_pcap cannot release without one more packet must not keep us
    // alive; but the report may still be on its way: a pipe holds 64 KiB, and a reader slow to start
    // (`earshot replay x --format json | python3 ...` on a busy machine) would lose the rest at exit.
    // Exit once stdout and stderr have taken everything, at once: everything the command does is done
    // when main() settles, and an exit by an empty event loop first tore the heap down page by page
    // (~500 unmapped 256-kB pages after a replay of the bench capture), which process.exit() skips
    const exit = () => process.exit(code);
    const flushed = (stream: NodeJS.WriteStream, then: () => void) => (stream.writableLength > 0 ? stream.write('', then) : then());
    flushed(process.stdout, () => flushed(process.stderr, exit));
  },
  (err: unknown) => {
    process.stderr.write(`earshot: internal error: ${String(err)}\n`);
    process.exitCode = EXIT_BUG;
  },
);
