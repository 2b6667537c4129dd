/** The `earshot` process: runs the CLI with the process's arguments and streams (started by main.ts). */
import { EXIT_BUG } from '../errors.js';
import { main } from './index.js';

// a closed stdout (earshot replay x | head) is not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
    // everything is written (stdout and stderr are synchronous for files and pipes here); a native
    // capture handle that node_pcap cannot release without one more packet must not keep us alive
    setTimeout(() => process.exit(code), 250).unref();
  },
  (err: unknown) => {
    process.stderr.write(`earshot: internal error: ${String(err)}\n`);
    process.exitCode = EXIT_BUG;
  },
);
