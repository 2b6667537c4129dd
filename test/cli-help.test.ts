/**
 * Help a person reads: `earshot --help` wrapped to the terminal (80 columns when not a terminal), and a
 * command's --help with its common options and a pointer to --help-all (every key) and
 * docs/configuration.md. Run through the built executable, in a real terminal (script(1)) where the
 * width matters.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { commonConfigFlags, wrapCommandLine } from '../cli/args.js';
import { configKeys } from '../collector/config.js';
import { EARSHOT_BIN, runCli } from './helpers/cli.js';
import { PROJECT_ROOT } from './helpers/shared.js';

const haveScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Runs `earshot ...args` in a pseudo-terminal `columns` wide; its output with the terminal's CRLF undone. */
function inTerminal(columns: number, args: string[]): string {
  const command = `stty cols ${columns}; ${[process.execPath, EARSHOT_BIN, ...args].map((a) => `'${a}'`).join(' ')}`;
  return execFileSync('script', ['-qec', command, '/dev/null'], { cwd: PROJECT_ROOT, encoding: 'utf8' }).replace(/\r\n/g, '\n');
}

const widest = (text: string) => Math.max(...text.split('\n').map((l) => l.length));
const COMMANDS = ['replay', 'collect', 'catalog', 'blocklist', 'import', 'doctor', 'demo'];

describe('earshot --help', () => {
  it('not on a terminal: wrapped to 80 columns, every command listed', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(widest(r.stdout)).toBeLessThanOrEqual(80);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^ {2}${c} +[A-Z]`, 'm'));
    expect(r.stdout).toContain('--help-all');
    // at the top there is nothing more to show
    expect((await runCli(['--help-all'])).stdout).toBe(r.stdout);
  });

  it('help for an unknown command is an error; bare earshot is a usage error, its help on stderr', async () => {
    const unknown = await runCli(['help', 'bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/^earshot: unknown command "bogus" \(commands: replay, collect, /);
    const bare = await runCli([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toMatch(/^Usage: earshot <command>/);
  });

  it.skipIf(!haveScript)('on a terminal: wrapped to its width', () => {
    const narrow = inTerminal(60, ['--help']);
    expect(narrow).toMatch(/^Usage: earshot <command>/);
    expect(widest(narrow)).toBeLessThanOrEqual(60);
    const wide = inTerminal(140, ['--help']);
    expect(widest(wide)).toBeGreaterThan(80);
    expect(widest(wide)).toBeLessThanOrEqual(140);
    // the same words, only the lines differ
    const words = (t: string) => t.split(/\s+/).filter(Boolean);
    expect(words(wide)).toEqual(words(narrow));
  });
});

describe('earshot <command> --help', () => {
  it('replay --help: its own flags and the common configuration, then where the rest is; under 80 lines', async () => {
    const r = await runCli(['replay', '--help']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.length).toBeLessThan(80);
    for (const flag of ['--format', '--output', '--realtime-speed', '--config', '--help-all', ...commonConfigFlags('replay').map((f) => `--${f}`)]) {
      expect(r.stdout).toMatch(new RegExp(`^ +(-\\w, )?${flag}\\b`, 'm'));
    }
    expect(r.stdout).not.toContain('--mqtt-url');
    expect(r.stdout).not.toContain('--influx-batch-size');
    expect(r.stdout).toMatch(/\d+ more configuration keys .*: earshot replay --help-all, or\s+docs\/configuration\.md\./s);
  });

  it('--help-all lists every configuration key with its environment variable (also as `earshot help replay --help-all`)', async () => {
    for (const args of [['replay', '--help-all'], ['collect', '--help-all'], ['help', 'replay', '--help-all'], ['--help-all', 'replay']]) {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      for (const key of configKeys()) {
        expect(r.stdout).toContain(`--${key.flag}`);
        expect(r.stdout).toContain(key.env);
      }
    }
  });

  it('every command\'s help and help-all fit 80 columns; long examples break with a shell continuation', async () => {
    for (const c of COMMANDS) {
      for (const flag of ['--help', '--help-all']) {
        const r = await runCli([c, flag]);
        expect([c, flag, r.code, r.stderr]).toEqual([c, flag, 0, '']);
        expect(widest(r.stdout), `${c} ${flag}`).toBeLessThanOrEqual(80);
      }
    }
    const example = '  ssh router tcpdump -i br-lan -U -w - not port 22 | earshot collect --source stdin --filter "not port 22"';
    const wrapped = wrapCommandLine(example, 60);
    expect(wrapped.split('\n').length).toBeGreaterThan(1);
    expect(widest(wrapped)).toBeLessThanOrEqual(60);
    // each break is a shell line continuation: joined back, the example is the same command
    expect(wrapped.replace(/ \\\n +/g, ' ')).toBe(example);
  });

  it('the common configuration flags are configuration keys (a renamed key must not drop out of help)', () => {
    const flags = new Set(configKeys().map((k) => k.flag));
    for (const c of COMMANDS) for (const f of commonConfigFlags(c)) expect(flags).toContain(f);
  });
});

describe('earshot catalog --format text', () => {
  it('fits 80 columns when not on a terminal, with every entry and its whole source', async () => {
    const text = await runCli(['catalog', '--format', 'text']);
    const json = JSON.parse((await runCli(['catalog', '--format', 'json'])).stdout) as { entries: Array<{ pattern: string; source: string }> };
    expect(text.code).toBe(0);
    expect(widest(text.stdout)).toBeLessThanOrEqual(80);
    const flat = text.stdout.replace(/\s+/g, ' ');
    for (const e of json.entries) {
      expect(text.stdout).toMatch(new RegExp(`^${e.pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `, 'm'));
      expect(flat).toContain(e.source.replace(/\s+/g, ' '));
    }
  });

  it('--vendor and --service are checked (a typo printed an empty table, exit 0), and the voice ranges follow --vendor', async () => {
    const typo = await runCli(['catalog', '--vendor', 'Amazon']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe('earshot: catalog: --vendor: must be one of amazon, apple, google, sonos, got "Amazon"\n');
    const service = await runCli(['catalog', '--service', 'voise']);
    expect(service.code).toBe(2);
    expect(service.stderr).toMatch(/^earshot: catalog: --service: must be one of voice, telemetry, .* got "voise"\n$/);
    const all = JSON.parse((await runCli(['catalog', '--format', 'json'])).stdout) as { voicePrefixes: Array<{ vendor: string }> };
    const google = JSON.parse((await runCli(['catalog', '--format', 'json', '--vendor', 'google'])).stdout) as { entries: Array<{ vendor: string }>; voicePrefixes: Array<{ vendor: string }> };
    expect(all.voicePrefixes.some((v) => v.vendor === 'amazon')).toBe(true);
    expect(google.voicePrefixes.filter((v) => v.vendor !== 'google')).toEqual([]);
    expect(google.entries.length).toBeGreaterThan(0);
    expect(google.entries.filter((e) => e.vendor !== 'google')).toEqual([]);
  });

  it.skipIf(!haveScript)('on a wide terminal: the source beside the other columns', () => {
    const wide = inTerminal(220, ['catalog', '--format', 'text']);
    expect(wide.split('\n')[0]).toMatch(/^pattern +vendor +service +source$/);
    expect(wide).toMatch(/^avs-alexa-\*\.amazon\.com +amazon +voice +Alexa Voice Service endpoints/m);
    expect(widest(wide)).toBeLessThanOrEqual(220);
  });
});

