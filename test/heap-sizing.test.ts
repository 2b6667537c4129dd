/**
 * V8's heap sizing for a run that lasts (cli/heap-flags.ts heapSizing): memory first while the traffic is
 * quiet, speed first under load. The switch's rule with a recorded flag setter; that this Node's V8 takes
 * the flag at run time and collects to reduce memory by it (the assumption the switch rests on: a Node
 * that dropped or renamed it would make the switch do nothing, or print V8's "unrecognized flag" at each
 * change); and that `collect` at a paced rate switches to memory at its start and back when its
 * capture ends.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { heapSizing, QUIET_PACKETS_PER_S, QUIET_SECONDS } from '../cli/heap-flags.js';
import { runCli } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';

describe('heapSizing', () => {
  const recorded = () => {
    const flags: string[] = [];
    return { flags, sizing: heapSizing((f) => flags.push(f)) };
  };

  it('starts memory first and switches to speed within a second of a busy rate', () => {
    const { flags, sizing } = recorded();
    expect(sizing.start(0, 0)).toBe('memory');
    expect(flags).toEqual(['--optimize-for-size']);
    // a home's rate, and exactly the threshold: still quiet
    expect(sizing.sample(500, 1000)).toBeNull();
    expect(sizing.sample(500 + QUIET_PACKETS_PER_S, 2000)).toBeNull();
    expect(sizing.mode).toBe('memory');
    // over it: 30,001 packets in the next second
    expect(sizing.sample(500 + QUIET_PACKETS_PER_S + 30_001, 3000)).toBe('speed');
    expect(flags).toEqual(['--optimize-for-size', '--no-optimize-for-size']);
  });

  it('goes back to memory only after QUIET_SECONDS quiet seconds in a row', () => {
    const { flags, sizing } = recorded();
    sizing.start(0, 0);
    let packets = 50_000;
    let ms = 1000;
    expect(sizing.sample(packets, ms)).toBe('speed');
    // quiet for QUIET_SECONDS - 1 seconds, then a burst: the count starts again
    for (let s = 1; s < QUIET_SECONDS; s++) expect(sizing.sample((packets += 100), (ms += 1000))).toBeNull();
    expect(sizing.sample((packets += 100_000), (ms += 1000))).toBeNull();
    for (let s = 1; s < QUIET_SECONDS; s++) expect(sizing.sample((packets += 100), (ms += 1000))).toBeNull();
    expect(sizing.mode).toBe('speed');
    expect(sizing.sample((packets += 100), (ms += 1000))).toBe('memory');
    expect(flags).toEqual(['--optimize-for-size', '--no-optimize-for-size', '--optimize-for-size']);
  });

  it('measures the rate over the time that passed (a late timer is not a burst)', () => {
    const { sizing } = recorded();
    sizing.start(0, 0);
    // 60,000 packets in 5 s (a timer held back by a busy thread): 12,000/s, quiet
    expect(sizing.sample(60_000, 5000)).toBeNull();
    // no time passed: nothing to measure
    expect(sizing.sample(200_000, 5000)).toBeNull();
    expect(sizing.mode).toBe('memory');
  });

  it('stops back at speed, once; a switch never started sets nothing', () => {
    const { flags, sizing } = recorded();
    expect(sizing.stop()).toBeNull();
    expect(flags).toEqual([]);
    sizing.start(0, 0);
    expect(sizing.stop()).toBe('speed');
    expect(sizing.stop()).toBeNull();
    expect(flags).toEqual(['--optimize-for-size', '--no-optimize-for-size']);
  });
});

describe('V8 and --optimize-for-size', () => {
  it('takes the flag at run time, and its full collections then reduce memory', () => {
    // a flow table's life in small: objects that live a while and die, a steady live set of ~200,000.
    // V8's trace marks a full collection made to reduce memory "(reduce)": with the flag every one or
    // nearly (31-34 of 34 here, also on a loaded machine and on Node 24), without it none of 4. (Heap
    // sizes were no test: under a loaded CI run the flagged heap once ended larger.)
    const program = `
      const v8 = require('node:v8');
      if (process.argv[1] === 'on') v8.setFlagsFromString('--optimize-for-size');
      const live = [];
      let sum = 0;
      for (let i = 0; i < 3_000_000; i++) {
        const o = { id: i, a: i * 2, b: 'k' + (i % 1000), c: [i] };
        live.push(o);
        if (live.length > 200_000) live.splice(0, 50_000);
        sum += o.a;
      }
      console.log(sum > 0);`;
    const run = (mode: string) => {
      const r = spawnSync(process.execPath, ['--trace-gc', '-e', program, mode], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      // V8 prints an unknown flag's name on stderr and goes on: that would be a switch that does nothing
      expect(r.stderr).toBe('');
      const full = r.stdout.split('\n').filter((l) => l.includes('Mark-Compact'));
      return { full: full.length, reduce: full.filter((l) => l.includes('Mark-Compact (reduce)')).length };
    };
    const off = run('off');
    const on = run('on');
    expect(off.full).toBeGreaterThan(0);
    expect(off.reduce).toBe(0);
    expect(on.reduce).toBeGreaterThan(0);
  });
});

describe('collect, paced', () => {
  // with the API the pipeline runs on its own thread (cli/pipeline-thread.ts), and sets the process's flag from there
  it.each([['on one thread', ['--api', 'false']], ['on the pipeline\'s thread', ['--listen', '127.0.0.1:0']]])('sizes for memory while it captures and for speed once the capture ended (%s)', async (_, flags) => {
    // 2,778 packets over 48 s at 20x: ~2.4 s, ~1,160 packets/s (quiet)
    const r = await runCli(['collect', '--file', `${PROJECT_ROOT}/test/fixtures/captures/amazon-echodot3_activation_neu.pcapng`, '--realtime-speed', '20',
      '--exit-when-done', ...flags, '--format', 'json', '-o', '/dev/null', '--log-level', 'debug', '--log-format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; heap?: string });
    const modes = lines.filter((l) => l.heap !== undefined).map((l) => l.heap);
    expect(modes).toEqual(['memory', 'speed']);
  });

  it('leaves V8 alone at full speed', async () => {
    const r = await runCli(['collect', '--file', `${PROJECT_ROOT}/test/fixtures/captures/amazon-echodot3_activation_neu.pcapng`,
      '--exit-when-done', '--api', 'false', '--format', 'json', '-o', '/dev/null', '--log-level', 'debug', '--log-format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('V8 heap sizing');
  });
});
