// The two test tiers. `npm test` runs every file; `npm run test:unit` (vitest.unit.config.ts) leaves out the
// files that start child processes (the CLI end to end) and the slow in-process end-to-end files (training
// runs, the whole data pipeline on real tokenizers, large-shape kernel parity), for a loop under a minute on
// 2 cores. test/unit_tier.test.ts checks that no file of the unit tier starts a process.
export const SUBPROCESS_TESTS = [
  'test/cli.test.ts',
  'test/readme.test.ts',
  'test/commands/**/*.test.ts',
  'test/model/make-tiny-model.test.ts',
  'test/backend/init_backend.test.ts',
  'test/train/lock.test.ts',
  'test/serve/**/*.test.ts',
  'test/infer/hosted.test.ts',
];

export const SLOW_TESTS = [
  'test/train/train.test.ts',
  'test/data/pipeline.test.ts',
  'test/kernels/GatherV2.test.ts',
  'test/train/optimizer.test.ts',
  'test/model/model.test.ts',
  'test/data/tokenizer_parity.test.ts',
];
