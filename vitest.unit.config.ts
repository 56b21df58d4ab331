// `npm run test:unit`: every test file except those that start child processes or are slow (test/tiers.ts).
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.ts';
import { SLOW_TESTS, SUBPROCESS_TESTS } from './test/tiers.ts';

export default mergeConfig(
  base,
  defineConfig({ test: { exclude: [...SUBPROCESS_TESTS, ...SLOW_TESTS, 'node_modules/**'] } }),
);
