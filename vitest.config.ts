import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/yield.ts'],
    globalSetup: ['test/setup/tmpdir.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Two cores in CI: files run in parallel forks, tests inside a file in order.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
