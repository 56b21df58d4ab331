// A deterministic stand-in for Ctrl-C or `kill -9` at a known point, for the tests only: with
// LORASFT_TEST_STOP_AFTER_STEP=N the trainer sends itself LORASFT_TEST_STOP_SIGNAL (SIGINT by default)
// right after step N's checkpoint is written, instead of a test polling for files and then killing it.

/** Called by the loop after each step's checkpoint decision; signals this process once step N is reached. */
export function testStopAfterStep(step: number): void {
  const at = process.env.LORASFT_TEST_STOP_AFTER_STEP;
  if (!at || Number(at) !== step) return;
  const sig = (process.env.LORASFT_TEST_STOP_SIGNAL || 'SIGINT') as NodeJS.Signals;
  delete process.env.LORASFT_TEST_STOP_AFTER_STEP; // once per process
  process.kill(process.pid, sig);
}
