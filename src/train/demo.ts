// The embedded default of `lorasft train` with no --base-model and no --dataset: a tiny random Qwen3-architecture
// model with the real Qwen3 tokenizer (generated once, deterministically, into a cache dir) and the bundled
// dataset examples/demo/train.jsonl, whose answers always follow one fixed format the adapter learns.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTinyModel, type TinyModelOpts } from '../model/tiny.ts';
import type { TrainConfig } from './config.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DEMO_DATASET = path.join(REPO_ROOT, 'examples/demo/train.jsonl');
export const DEMO_OUT = 'out/demo';

/** Small enough to train in a few minutes on 2 cores (the 151k-row tied embedding / lm_head dominates). std 0.25
 * (not HF's 0.02) so that logits h.e can reach a useful range: with |e| ~ 0.16 a small model cannot push any
 * token far above uniform over 151k, whatever the adapter learns. 128 wide x 4 layers is the smallest tried that
 * learns the answers themselves, not only their format, in 15 epochs (2 layers x 64 learned only the format). */
const DEMO_MODEL: Omit<TinyModelOpts, 'out'> = {
  family: 'qwen3',
  tokenizer: 'qwen3',
  hidden: 128,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  intermediate: 256,
  seed: 1234,
  tie: true,
  std: 0.25,
};

/** Demo hyperparameters (a random tiny base needs a larger learning rate than the managed default). */
export const DEMO_CONFIG: Partial<TrainConfig> = {
  displayName: 'lorasft demo',
  epochs: 15,
  learningRate: 1e-2,
  learningRateWarmupSteps: 3,
  batchSize: 512,
  loraRank: 8,
  evalEverySteps: 10,
};

/** Where the demo model lives: $LORASFT_CACHE/demo-model, else <repo>/.cache/demo-model. */
export function demoModelDir(): string {
  return path.join(process.env.LORASFT_CACHE || path.join(REPO_ROOT, '.cache'), 'demo-model');
}

/** The demo model dir, generated on first use (and regenerated if the recipe changed or the files are incomplete). */
export function ensureDemoModel(log: (m: string) => void = console.log): string {
  const dir = demoModelDir();
  const stamp = path.join(dir, 'lorasft-demo.json');
  const recipe = JSON.stringify(DEMO_MODEL);
  const ok = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].every((f) =>
    fs.existsSync(path.join(dir, f)),
  );
  if (ok && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === recipe) return dir;
  log(`demo: generating the tiny Qwen3-architecture demo model in ${dir} (once)`);
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  makeTinyModel({ ...DEMO_MODEL, out: tmp });
  fs.writeFileSync(path.join(tmp, 'lorasft-demo.json'), recipe);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.renameSync(tmp, dir);
  return dir;
}
