/** Runs the built `earshot` executable (dist/) as a user would, capturing its output and exit code. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from './shared.js';

export const EARSHOT_BIN = join(PROJECT_ROOT, 'dist/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `earshot ...args`; `input` is written to its stdin; `prefix` runs it through another command (setpriv ...). */
export function runCli(args: string[], options: { input?: Buffer | string; env?: Record<string, string>; timeoutMs?: number; prefix?: string[] } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const [command, ...rest] = [...(options.prefix ?? []), process.execPath, EARSHOT_BIN, ...args];
    const child = spawn(command!, rest, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => { /* the child may exit before reading everything */ });
    child.stdin.end(options.input ?? '');
  });
}
