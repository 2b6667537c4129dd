/** `earshot collect --file CAPTURE` with its API on a free port, as a real process, for API and page tests. */
import { spawn } from 'node:child_process';
import { EARSHOT_BIN } from './cli.js';
import { PROJECT_ROOT } from './shared.js';
import { freePort } from './wait.js';

export interface CollectRun {
  /** http://127.0.0.1:PORT */
  base: string;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM, then the exit code. */
  stop: () => Promise<number | null>;
  /** Sends `signal` (SIGKILL: a crash, a power cut), then resolves with the exit code or signal. */
  kill: (signal: NodeJS.Signals) => Promise<number | string | null>;
}

/** Starts `earshot collect --file capture --listen 127.0.0.1:PORT ...extra`; resolves once the API answers. */
export async function startCollect(capture: string, extra: string[]): Promise<CollectRun> {
  const port = await freePort();
  const child = spawn(process.execPath, [EARSHOT_BIN, 'collect', '--file', capture, '--listen', `127.0.0.1:${port}`, '--format', 'json', '--log-format', 'text', ...extra], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const ended = new Promise<number | string | null>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/api/v1/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`API did not come up: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base, pid: child.pid ?? -1, stdout: () => stdout, stderr: () => stderr,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill: async (signal) => {
      child.kill(signal);
      return ended;
    },
  };
}
