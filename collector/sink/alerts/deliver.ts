/**
 * One delivery attempt over HTTP (node's fetch), and what its answer means: 2xx delivered; 408, 429,
 * 5xx, network errors and timeouts worth another try (Retry-After honoured on 429 and 503); any other
 * answer (4xx, a redirect) refused for good. Plus the back-off between attempts.
 */

/** What an attempt came to. */
export type AttemptOutcome =
  | { kind: 'delivered'; status: number }
  /** Try again; `retryAfterMs` when the receiver said when (Retry-After). */
  | { kind: 'retry'; reason: string; status: number | null; retryAfterMs: number | null }
  /** Refused for good (4xx other than 408/429, 3xx): the reason names the status and the receiver's words. */
  | { kind: 'rejected'; reason: string; status: number }
  /** Stopped by close(): the attempt does not count. */
  | { kind: 'aborted' };

/**
 * Node's timers hold at most 2^31-1 ms (24.8 days); a longer delay fires after 1 ms instead, so every
 * delay earshot computes from a remote value or a large setting goes through timerDelay. A timer cut
 * short this way only wakes a scheduler that looks again at what is due.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` as a delay setTimeout honours: 0 to MAX_TIMER_MS. */
export function timerDelay(ms: number): number {
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), MAX_TIMER_MS) : ms > 0 ? MAX_TIMER_MS : 0;
}

/** How much of a refusal's body goes into the log. */
const REASON_BYTES = 300;

/** Retry-After as milliseconds from `nowMs`: delay-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(value: string | null, nowMs: number): number | null {
  if (value === null || value.trim() === '') return null;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

/**
 * Exponential back-off with full jitter: after the n-th failed attempt, a uniform wait between `minMs`
 * and min(maxMs, minMs * 2^n).
 */
export function backoffMs(attempts: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempts, 40));
  return minMs + random() * Math.max(0, ceiling - minMs);
}

/** The first bytes of a response body, as text; the rest is not read. */
async function readSome(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < REASON_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // the reason is for the log only
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, REASON_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
}

function networkReason(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause;
  if (cause?.code) return cause.code;
  return cause?.message ?? e.message ?? String(err);
}

export interface AttemptOptions {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  /** Aborts the attempt (close). */
  signal: AbortSignal;
  nowMs: number;
}

/** POSTs once and classifies the answer. Never throws. */
export async function attempt(options: AttemptOptions): Promise<AttemptOutcome> {
  const timeout = new AbortController();
  const onAbort = () => timeout.abort();
  options.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => timeout.abort(), timerDelay(options.timeoutMs));
  timer.unref();
  try {
    const response = await fetch(options.url, { method: 'POST', headers: options.headers, body: options.body, redirect: 'manual', signal: timeout.signal });
    const status = response.status;
    if (status >= 200 && status < 300) {
      await response.body?.cancel().catch(() => undefined);
      return { kind: 'delivered', status };
    }
    const said = await readSome(response);
    const reason = `HTTP ${status}${said ? `: ${said}` : ''}`;
    if (status === 408 || status === 429 || status >= 500) {
      const after = status === 429 || status === 503 ? retryAfterMs(response.headers.get('retry-after'), options.nowMs) : null;
      return { kind: 'retry', reason, status, retryAfterMs: after };
    }
    if (status >= 300 && status < 400) {
      const location = response.headers.get('location');
      return { kind: 'rejected', status, reason: `HTTP ${status} redirect${location ? ` to ${location}` : ''} (webhooks are not redirected: configure the final URL)` };
    }
    return { kind: 'rejected', status, reason };
  } catch (err) {
    if (options.signal.aborted) return { kind: 'aborted' };
    if (timeout.signal.aborted) return { kind: 'retry', reason: `no answer within ${options.timeoutMs / 1000} s`, status: null, retryAfterMs: null };
    return { kind: 'retry', reason: networkReason(err), status: null, retryAfterMs: null };
  } finally {
    clearTimeout(timer);
    options.signal.removeEventListener('abort', onAbort);
  }
}
