// Helpers the bench scripts share.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A TCP port free on 127.0.0.1 now. */
export const freePort = () => new Promise((res) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => res(port));
  });
});

/** The median of `xs` (NaN when empty). */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * A private influxd (dist/collector/influxd.js, after `npm run build`) with continuous queries off (the long
 * policy's series would come and go with influxd's schedule), for a script that ends with it: at exit it is
 * stopped and its directory removed, and an uncaught error ends the script with one line named `name`.
 */
export async function scriptInfluxd(name) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const { startInfluxd } = await import(join(root, 'dist/collector/influxd.js'));
  const dir = mkdtempSync(join(tmpdir(), `earshot-${name}-`));
  const influxd = await startInfluxd({ dir, httpPort: await freePort(), rpcPort: await freePort(), env: { INFLUXDB_CONTINUOUS_QUERIES_ENABLED: 'false' } });
  process.on('exit', () => {
    influxd.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  process.on('uncaughtException', (err) => {
    console.error(`${name}: ${err.message}`);
    process.exit(1);
  });
  return influxd;
}
