import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['cli/**/*.test.ts', 'collector/**/*.test.ts', 'api/**/*.test.ts', 'dashboards/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // vitest's default is one file at a time on two cores (cores - 1), and most test files spend their
    // time waiting on the processes and servers they start (earshot, tshark, InfluxDB, Mosquitto,
    // Chromium): two at a time took the whole suite from 834-873 s to 471-491 s on the 2-core machine of
    // 2026-12-07, every test passing. Machines with more cores keep the default.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    globalSetup: ['test/global-setup.ts'],
  },
});
