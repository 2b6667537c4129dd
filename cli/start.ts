/** The `earshot` process: runs the CLI with the process's arguments and streams (started by main.ts). */
import { setFlagsFromString } from 'node:v8';
import { EXIT_BUG } from '../collector/errors.js';
import { exitProcess } from '../collector/stop-signals.js';
import { MAX_SEMI_SPACE_MB } from './heap-flags.js';
import { main } from './index.js';

/**
 * How far V8 lets the old generation grow past what its last full collection kept: 1.5x. V8's own rule
 * allows up to 4x when collecting is cheap next to the program's work, which a flood of new flows makes
 * it: each flow (and its record) goes to the old generation at once and dies there when it is evicted, so
 * the heap filled with dead flows before anything collected them. 2M one-packet flows through `earshot
 * collect` peaked at 639 MB (Node 20) and 718 MB (Node 24) with V8's rule, 227 and 327 MB with this one and
 * the 65,536-flow table; the bench capture's replay, whose flows live until its report, is unchanged (README,
 * Performance). The flag is read at every full collection, so setting it here, before the first one,
 * is enough; it holds for the pipeline's thread too (V8's flags are the process's). The bundle's loader
 * (deploy/bundle-loader.mjs) sets the same before it compiles the bundle: a flag set after that would
 * make V8 reject the code cache (test/bundle.test.ts sees it).
 */
const HEAP_GROWING_PERCENT = 50;
setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);

// the young generation's semi-spaces (cli/heap-flags.ts says why), set here for the same reason
setFlagsFromString(`--max-semi-space-size=${MAX_SEMI_SPACE_MB}`);

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
    const exit = () => exitProcess(code);
    const flushed = (stream: NodeJS.WriteStream, then: () => void) => (stream.writableLength > 0 ? stream.write('', then) : then());
    flushed(process.stdout, () => flushed(process.stderr, exit));
  },
  (err: unknown) => {
    process.stderr.write(`earshot: internal error: ${String(err)}\n`);
    process.exitCode = EXIT_BUG;
  },
);
