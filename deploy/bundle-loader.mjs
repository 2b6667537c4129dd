// earshot's bundle loader: deploy/bundle.mjs copies this file to dist/collector/bin/start.js, beside the
// bundle (start.cjs) and its V8 code cache (start.cjs.v8cache). Compiling the 1.2-MB bundle, and then
// each function it calls for the first time, costs ~60 ms at every start of every command; the cache
// holds that work, done once at build time by a replay of the demo capture.
//
// The cache is used only when it is this bundle's, made by this Node.js: V8 checks its own version and
// flags, but tells sources apart by their length only, and its version is not the Node build's (Node
// 20.18.0 and 20.20.2 both run V8 11.3.244.8, with other patches: Node 20.18 took 20.20's cache and
// crashed, a segmentation fault at every command, as an appliance would after its Node.js was upgraded
// under a built earshot). So the file also carries the SHA-256 of the bundle it was made from, of the
// Node.js build that made it (process.versions, the platform, the architecture and process.config), and
// of itself (a disk that lost part of it). Anything else (no cache, another bundle, another Node, a
// damaged file, a Node without vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER) runs the bundle without
// it: a slower start, never a different program.
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import vm from 'node:vm';

// cli/start.ts's heap rules (see there and cli/heap-flags.ts), set before the bundle is compiled: V8 keeps its flags' hash in a
// code cache and rejects the cache under other flags, so the cache is made and used under this one
setFlagsFromString('--heap-growing-percent=50');
setFlagsFromString('--max-semi-space-size=8');

const MAGIC = Buffer.from('earshot-v8cache-2\n');
const HASH = 32;
const file = fileURLToPath(new URL('./start.cjs', import.meta.url));
const cacheFile = `${file}.v8cache`;
const loader = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;

if (loader === undefined) {
  await import(file);
} else {
  const bytes = readFileSync(file);
  const sourceHash = createHash('sha256').update(bytes).digest();
  const nodeHash = createHash('sha256').update(JSON.stringify([process.versions, process.platform, process.arch, process.config])).digest();
  // esbuild writes ASCII (non-ASCII characters escaped): read as such, no UTF-8 decoding of 1.2 MB
  const source = isAscii(bytes) ? bytes.latin1Slice() : bytes.toString('utf8');
  let cachedData;
  // what became of the cache, told on stderr with EARSHOT_DEBUG_CODE_CACHE=1 (test/bundle.test.ts, or a person wondering)
  let state = 'none';
  try {
    const raw = readFileSync(cacheFile);
    // MAGIC, the bundle's hash, the Node build's, the data's, the data
    const field = (i) => raw.subarray(MAGIC.length + i * HASH, MAGIC.length + (i + 1) * HASH);
    const data = raw.subarray(MAGIC.length + 3 * HASH);
    if (!raw.subarray(0, MAGIC.length).equals(MAGIC)) state = 'damaged';
    else if (!field(2).equals(createHash('sha256').update(data).digest())) state = 'damaged';
    else if (!field(0).equals(sourceHash)) state = 'another bundle';
    else if (!field(1).equals(nodeHash)) state = 'another Node';
    else cachedData = data;
  } catch {
    // no cache: compile
  }
  // the CommonJS wrapper on the bundle's first line: its line numbers stay those of start.cjs
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
    importModuleDynamically: loader,
  });
  if (cachedData !== undefined) state = script.cachedDataRejected ? 'rejected by V8' : 'used';
  if (process.env.EARSHOT_DEBUG_CODE_CACHE === '1') process.stderr.write(`earshot: code cache ${state}\n`);
  if (process.env.EARSHOT_WRITE_CODE_CACHE === '1') {
    // deploy/bundle.mjs: after the training run, the functions it compiled go into the cache
    process.once('exit', () => {
      const data = script.createCachedData();
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      const fd = openSync(tmp, 'w');
      try {
        for (const part of [MAGIC, sourceHash, nodeHash, createHash('sha256').update(data).digest(), data]) {
          for (let at = 0; at < part.length; ) at += writeSync(fd, part, at, part.length - at);
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, cacheFile);
    });
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
}
