/** V8 heap sizes: the process's (set by cli/start.ts) and where the pipeline's thread differs (cli/pipeline-thread.ts). */

/**
 * The young generation's semi-spaces: 8 MB at most. Node 24's V8 lets each grow to 32 MB where Node 20's
 * stopped at 16, and a replay of the bench capture peaked at 187-252 MB on Node 24 against 142 MB on Node
 * 20; with 8 MB, 135-141 MB and 123-125 MB, no slower (5 interleaved runs each; README, Performance).
 * V8 sizes a heap when it makes it: set at run time (cli/start.ts), the flag holds for threads made after,
 * not for the main thread, which gets it from the command line (`node --max-semi-space-size=8`, as the
 * installed `earshot` command and the container run it: deploy/install.sh, deploy/Dockerfile). start.ts
 * sets it all the same so that V8's flags, and with them the code cache's check, are the same with or
 * without it.
 *
 * The pipeline's thread has a smaller young generation of its own (PIPELINE_YOUNG_GENERATION_MB,
 * cli/pipeline-thread.ts), which the flag would override: V8 takes a flag over a worker's
 * resourceLimits, and flags are the process's. So the flag is unset while that thread is made.
 */
export const MAX_SEMI_SPACE_MB = 8;
