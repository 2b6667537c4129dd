/**
 * The bundle `npm run build` makes (deploy/bundle.mjs, dist/collector/bin/) is the same program as the
 * compiled modules: the same report byte for byte, the same logs and errors, the API and the optional
 * parts loading from node_modules. The executable runs the bundle only when it is not older than the
 * modules, so a build that skipped bundling never runs stale code.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { otherNode } from './helpers/other-node.js';
import { PROJECT_ROOT } from './helpers/shared.js';

const BUNDLE = join(PROJECT_ROOT, 'dist/collector/bin/start.js');
const MODULES = join(PROJECT_ROOT, 'dist/cli/start.js');
const CAPTURE = join(PROJECT_ROOT, 'test/fixtures/captures/amazon-echodot3_activation_neu.pcapng');

function run(entry: string, args: string[]) {
  const r = spawnSync(process.execPath, [entry, ...args], { cwd: PROJECT_ROOT, encoding: 'utf8', env: { ...process.env, EARSHOT_LOG_FORMAT: 'json' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the bundled executable', () => {
  it('writes the same report as the modules, byte for byte', () => {
    const bundled = run(BUNDLE, ['replay', CAPTURE, '--format', 'json']);
    const modules = run(MODULES, ['replay', CAPTURE, '--format', 'json']);
    expect(bundled.code).toBe(0);
    expect(bundled.stdout.length).toBeGreaterThan(1000);
    expect(bundled.stdout).toBe(modules.stdout);
    expect(JSON.parse(bundled.stdout).activations.length).toBeGreaterThan(0);
  });

  it('a replay of a file loads none of Node\'s modules for networks, child processes or gzip (they cost each start ~15 ms)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-builtins-'));
    try {
      const list = join(dir, 'loaded.txt');
      const preload = join(dir, 'list.cjs');
      writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`);
      const r = spawnSync(process.execPath, ['--require', preload, BUNDLE, 'replay', CAPTURE, '--format', 'json', '-o', join(dir, 'report.json')], { cwd: PROJECT_ROOT, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const loaded = readFileSync(list, 'utf8').split('\n');
      expect(loaded.length).toBeGreaterThan(20);
      expect(loaded.filter((m) => /^NativeModule (http|https|tls|child_process|dgram|zlib)$/.test(m))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the pipeline thread\'s bundle imports no package when it starts (MQTT loads when its sink starts)', () => {
    // an ES module bundle hoists the static imports of what it inlines, dynamic imports' modules too:
    // `mqtt` was loaded at every start of the pipeline's thread (~90 ms), configured or not
    const worker = readFileSync(join(PROJECT_ROOT, 'dist/collector/bin/pipeline-worker.js'), 'utf8');
    // `import x from "p"`, `import { x } from "p"` and a bare `import "p"`
    const imported = [...worker.matchAll(/^import\s*(?:[^;"']*?from\s*)?["']([^"']+)["']/gm)].map((m) => m[1]);
    expect(imported.length).toBeGreaterThan(0);
    expect(imported.filter((name) => !name.startsWith('node:'))).toEqual([]);
  });

  it('gives the same help, the same one-line errors and exit codes', () => {
    for (const args of [['--help'], ['replay', '--help'], ['replay', '/nonexistent.pcap'], ['replay', CAPTURE, '--format', 'yaml'], ['nosuchcommand']]) {
      const bundled = run(BUNDLE, args);
      const modules = run(MODULES, args);
      expect({ args, ...bundled }).toEqual({ args, ...modules });
    }
    expect(run(BUNDLE, ['replay', '/nonexistent.pcap'])).toMatchObject({ code: 2, stderr: 'earshot: /nonexistent.pcap: no such file\n' });
  });

  it('reads a YAML config file (its parser loads from node_modules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'earshot-bundle-'));
    try {
      const config = join(dir, 'earshot.yaml');
      writeFileSync(config, 'report:\n  maxDnsAnswers: 1\n');
      const r = run(BUNDLE, ['replay', CAPTURE, '--format', 'json', '--config', config]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).dns.length).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists each bundled package with its licence', () => {
    const licences = readFileSync(join(PROJECT_ROOT, 'dist/collector/bin/THIRD-PARTY-LICENSES.txt'), 'utf8');
    expect(licences).toMatch(/^pino@\d+\.\d+\.\d+ \(MIT\)/m);
    expect(licences).toMatch(/^@sinclair\/typebox@\d+\.\d+\.\d+ \(MIT\)/m);
    expect(licences).toContain('Permission is hereby granted');
    // the API server, MQTT and InfluxDB stay outside
    expect(licences).not.toMatch(/^(fastify|mqtt|influx)@/m);
  });
});

describe('the code cache of the bundle (deploy/bundle-loader.mjs)', () => {
  // a copy of the bundle beside the real one, so its data files and node_modules resolve alike
  const copy = join(PROJECT_ROOT, `dist/collector/bin-test-${process.pid}`);
  afterAll(() => rmSync(copy, { recursive: true, force: true }));
  const fresh = () => {
    rmSync(copy, { recursive: true, force: true });
    cpSync(join(PROJECT_ROOT, 'dist/collector/bin'), copy, { recursive: true });
  };
  const runCopy = (args: string[], nodeFlags: string[] = []) => {
    const r = spawnSync(process.execPath, [...nodeFlags, join(copy, 'start.js'), ...args], { cwd: PROJECT_ROOT, encoding: 'utf8', env: { ...process.env, EARSHOT_DEBUG_CODE_CACHE: '1' } });
    return { code: r.status, stdout: r.stdout, cache: /^earshot: code cache (.*)$/m.exec(r.stderr)?.[1] };
  };
  const expected = run(MODULES, ['replay', CAPTURE, '--format', 'json']).stdout;

  it('is made by the build and used', () => {
    fresh();
    expect(runCopy(['replay', CAPTURE, '--format', 'json'])).toEqual({ code: 0, stdout: expected, cache: 'used' });
  });

  it('is not needed: the bundle runs without the loader, as a Node without vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER runs it', () => {
    const direct = run(join(PROJECT_ROOT, 'dist/collector/bin/start.cjs'), ['replay', CAPTURE, '--format', 'json']);
    expect({ code: direct.code, stdout: direct.stdout }).toEqual({ code: 0, stdout: expected });
  });

  it('is used under the V8 flags the installed command and the container give node, which match cli/heap-flags.ts\'s', () => {
    const wanted = /const MAX_SEMI_SPACE_MB = (\d+);/.exec(readFileSync(join(PROJECT_ROOT, 'cli/heap-flags.ts'), 'utf8'))?.[1];
    expect(wanted).toBeDefined();
    // each file that starts earshot's node sets it, and to the same size
    for (const file of ['deploy/bundle-loader.mjs', 'deploy/install.sh', 'deploy/Dockerfile']) {
      const sizes = [...readFileSync(join(PROJECT_ROOT, file), 'utf8').matchAll(/--max-semi-space-size=(\d+)/g)].map((m) => m[1]);
      expect({ file, sizes }).toEqual({ file, sizes: [wanted] });
    }
    fresh();
    expect(runCopy(['replay', CAPTURE, '--format', 'json'], [`--max-semi-space-size=${wanted}`])).toEqual({ code: 0, stdout: expected, cache: 'used' });
  });

  it('is refused by V8 under other V8 flags, and the program is the same', () => {
    fresh();
    expect(runCopy(['replay', CAPTURE, '--format', 'json'], ['--no-opt'])).toEqual({ code: 0, stdout: expected, cache: 'rejected by V8' });
  });

  it('is left aside when damaged, and the program is the same', () => {
    fresh();
    const file = join(copy, 'start.cjs.v8cache');
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(file, bytes);
    expect(runCopy(['replay', CAPTURE, '--format', 'json'])).toEqual({ code: 0, stdout: expected, cache: 'damaged' });
    writeFileSync(file, bytes.subarray(0, 100));
    expect(runCopy(['replay', CAPTURE, '--format', 'json'])).toEqual({ code: 0, stdout: expected, cache: 'damaged' });
  });

  describe('made by another Node.js', () => {
    // Node.js 20.19.0 and 20.20 run the same V8 (11.3.244.8) with other patches: 20.19.0 took a cache
    // 20.20.2 made, and every command ended in a segmentation fault (exit 139)
    const version = process.versions.node === '20.19.0' ? '20.20.0' : '20.19.0';
    let node = '';
    beforeAll(() => {
      node = otherNode(version);
    }, 300_000);

    it(`is left aside by Node.js ${version}, and the program is the same`, () => {
      fresh();
      const r = spawnSync(node, [join(copy, 'start.js'), 'replay', CAPTURE, '--format', 'json'], { cwd: PROJECT_ROOT, encoding: 'utf8', env: { ...process.env, EARSHOT_DEBUG_CODE_CACHE: '1' } });
      expect({ code: r.status, signal: r.signal, stdout: r.stdout, cache: /^earshot: code cache (.*)$/m.exec(r.stderr)?.[1] }).toEqual({ code: 0, signal: null, stdout: expected, cache: 'another Node' });
      // and the cache stays this Node's
      expect(runCopy(['replay', CAPTURE, '--format', 'json'])).toEqual({ code: 0, stdout: expected, cache: 'used' });
    });
  });

  it('is left aside for another bundle of the same length (V8 alone would take it: it compares lengths)', () => {
    fresh();
    const file = join(copy, 'start.cjs');
    const source = readFileSync(file, 'utf8');
    const version = run(MODULES, ['--version']).stdout;
    // the same length, one word changed in the text --version prints
    const printed = /`earshot \$\{version\d*\(\)\}(\n|\\n)`/.exec(source);
    expect(printed).not.toBeNull();
    const at = (printed as RegExpExecArray).index;
    writeFileSync(file, `${source.slice(0, at)}\`EARSHOT${source.slice(at + '`earshot'.length)}`);
    expect(readFileSync(file, 'utf8').length).toBe(source.length);
    expect(runCopy(['--version'])).toEqual({ code: 0, stdout: version.replace('earshot', 'EARSHOT'), cache: 'another bundle' });
  });
});

describe('the executable picks the bundle only when it is up to date', () => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-launcher-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // the real launcher beside stand-ins for the two programs, laid out as in dist/
  mkdirSync(join(dir, 'cli'), { recursive: true });
  mkdirSync(join(dir, 'collector/bin'), { recursive: true });
  copyFileSync(join(PROJECT_ROOT, 'dist/cli/main.js'), join(dir, 'cli/main.js'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  const launcher = join(dir, 'cli/main.js');
  const bundle = join(dir, 'collector/bin/start.js');
  const modules = join(dir, 'cli/start.js');
  writeFileSync(bundle, "process.stdout.write('bundle');");
  writeFileSync(modules, "process.stdout.write('modules');");
  const at = (file: string, seconds: number) => utimesSync(file, seconds, seconds);
  const which = () => execFileSync(process.execPath, [launcher], { encoding: 'utf8' });

  it('runs the bundle when it was made after the modules', () => {
    at(modules, 1_700_000_000);
    at(bundle, 1_700_000_010);
    expect(which()).toBe('bundle');
  });

  it('runs the modules when they were compiled after the bundle', () => {
    at(bundle, 1_700_000_000);
    at(modules, 1_700_000_010);
    expect(which()).toBe('modules');
  });

  it('runs the modules when there is no bundle', () => {
    rmSync(bundle);
    expect(which()).toBe('modules');
  });
});

describe('a Node.js older than earshot needs', () => {
  // 20.18 cannot require() an ES module, which the API's packages do (@fastify/static loads
  // content-disposition 3): `collect` ended with an internal error and its stack
  let node = '';
  beforeAll(() => {
    node = otherNode('20.18.0');
  }, 300_000);

  it('gets one line saying which Node.js earshot needs, and exit 2, for every command', () => {
    for (const args of [['collect', '--file', CAPTURE, '--exit-when-done', '--listen', '127.0.0.1:0'], ['replay', CAPTURE], ['--version']]) {
      const r = spawnSync(node, [join(PROJECT_ROOT, 'dist/cli/main.js'), ...args], { cwd: PROJECT_ROOT, encoding: 'utf8' });
      expect({ args, code: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
        args, code: 2, stdout: '',
        stderr: 'earshot: Node.js 20.18.0 is too old: earshot needs 20.19 or later (22.12 or later on 22; 24 is what the installer sets up)\n',
      });
    }
    // what package.json says to npm
    expect(JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).engines.node).toBe('^20.19 || >=22.12');
  });
});
