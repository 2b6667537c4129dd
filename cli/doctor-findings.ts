/**
 * The doctor's network hygiene check (docs/doctor.md, "findings"): lists the findings of a capture file
 * (`--capture FILE`, run through the pipeline as replay does) or of a running collector (its API,
 * `--api-url URL`, by default api.listen). Findings never block capture: medium and high ones are `warn`.
 */
import { buildSource } from '../collector/capture/index.js';
import type { Config } from '../collector/config.js';
import type { FindingRecord } from '../collector/findings/index.js';
import { buildCollector } from '../collector/index.js';
import type { CheckResult } from './doctor-checks.js';

/** Most finding lines printed; the rest are counted in the summary line. */
const MAX_LINES = 50;
const API_TIMEOUT_MS = 3000;

/** One line per finding, after a summary line that says where they come from. */
export function findingLines(findings: readonly FindingRecord[], where: string): CheckResult[] {
  const serious = findings.filter((f) => f.severity === 'medium' || f.severity === 'high').length;
  const summary: CheckResult = findings.length === 0
    ? { check: 'findings', status: 'ok', message: `no network hygiene finding in ${where}` }
    : { check: 'findings', status: serious > 0 ? 'warn' : 'ok', message: `${findings.length} network hygiene finding${findings.length === 1 ? '' : 's'} in ${where} (${serious} medium or high)${findings.length > MAX_LINES ? `, the first ${MAX_LINES} below` : ''}`, fix: 'docs/privacy.md, "Network hygiene findings", says what each means' };
  return [summary, ...findings.slice(0, MAX_LINES).map((f): CheckResult => ({
    check: 'finding',
    status: f.severity === 'medium' || f.severity === 'high' ? 'warn' : 'ok',
    message: `[${f.severity}] ${f.title}: ${f.device ?? 'no device'}${f.deviceName ? ` (${f.deviceName})` : ''}${f.evidence.length > 0 ? `; ${f.evidence[0]}` : ''}`,
    fix: f.advice,
  }))];
}

/** The findings of a capture file, run through the same pipeline as replay (nothing written). */
export async function checkCaptureFindings(config: Readonly<Config>, path: string, onWarning: (m: string) => void): Promise<CheckResult[]> {
  const collector = buildCollector(config);
  try {
    await collector.run(buildSource({ kind: path === '-' ? 'stdin' : 'file', path }, { onWarning }));
  } catch (err) {
    return [{ check: 'findings', status: 'FAIL', message: (err as Error).message, fix: 'pass a pcap or pcapng file (optionally gzip-compressed)', blocking: true }];
  }
  return findingLines(collector.findings.list(), path);
}

/** The findings of a running collector, from its API (GET /api/v1/findings). */
export async function checkApiFindings(config: Readonly<Config>, url: string | undefined): Promise<CheckResult[]> {
  const base = (url ?? `http://${config.api.listen}`).replace(/\/+$/, '');
  const token = config.api.token ?? process.env.EARSHOT_API_TOKEN;
  try {
    const res = await fetch(`${base}/api/v1/findings?limit=1000`, {
      headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
    });
    if (res.status === 401) return [{ check: 'findings', status: 'warn', message: `${base} asks for the API token (401)`, fix: 'set api.token or EARSHOT_API_TOKEN to the collector\'s token' }];
    if (!res.ok) return [{ check: 'findings', status: 'warn', message: `${base}/api/v1/findings answered ${res.status}`, fix: 'update the running collector (findings came with issue 17)' }];
    const body = (await res.json()) as { findings?: FindingRecord[] };
    return findingLines(Array.isArray(body.findings) ? body.findings : [], `the collector at ${base}`);
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string }; message?: string };
    const why = e.name === 'TimeoutError' ? `no answer in ${API_TIMEOUT_MS / 1000} s` : e.cause?.code ?? e.message ?? String(err);
    return [{ check: 'findings', status: 'skip', message: `no running collector at ${base} (${why})`, fix: 'start earshot collect (it serves the API), pass --api-url URL, or look at a capture: --capture FILE' }];
  }
}
