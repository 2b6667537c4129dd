/** Small waits shared by the tests that run real servers: a free port, and polling until something holds. */

/** A TCP port free on 127.0.0.1 right now (the helper `earshot demo` uses too). */
export { freePort } from '../../collector/influxd.js';

/** Waits until `ok()` holds, polling; fails naming `what` after `timeoutMs`. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 30_000, pollMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Polls `probe` until it gives a value (not null) and returns it; fails naming `what` after `timeoutMs`. */
export async function untilValue<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 30_000, pollMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
