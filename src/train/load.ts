// The loading stages of a job: the data (validate -> carve out eval -> render/tokenize/mask/truncate) and the LoRA
// weights (checkpoint, warm start or fresh). Signal handlers get a turn between stages.
import * as path from 'node:path';
import { loadDataset } from '../data/validate.ts';
import { loadChatTokenizer } from '../data/tokenizer.ts';
import { buildExamples } from '../data/pipeline.ts';
import type { DatasetExample, TokenizedExample } from '../data/types.ts';
import type { BaseModel } from '../model/model.ts';
import { DEFAULT_LORA_TARGETS, initLora, loraFromTensors, type LoraWeights } from '../model/lora.ts';
import { loadAdapter, type LoadedAdapter } from '../model/peft.ts';
import { testHook } from '../util/testhooks.ts';
import type { TrainConfig } from './config.ts';
import { carveOut } from './carveout.ts';
import type { loadLatestCheckpoint } from './checkpoint.ts';
import { checkWarmStartBase } from './warm_start.ts';

/** Let pending signal handlers run (between loading stages and steps). */
export const yieldToSignals = () => new Promise((r) => setImmediate(r));

export type Resumed = ReturnType<typeof loadLatestCheckpoint>;

/** validate -> carve out eval -> render/tokenize/mask/truncate; `requests` counts the training examples. */
export async function loadData(
  cfg: TrainConfig,
  log: (m: string) => void,
): Promise<{ trainEx: TokenizedExample[]; evalEx: TokenizedExample[]; requests: number }> {
  const tok = await loadChatTokenizer(cfg.baseModel, { jinjaTemplate: cfg.jinjaTemplate || undefined });
  let trainRaw: DatasetExample[] = loadDataset(cfg.dataset, { epochs: cfg.epochs });
  testHook('loading');
  await yieldToSignals();
  let evalRaw: DatasetExample[] = [];
  if (cfg.evaluationDataset) evalRaw = loadDataset(cfg.evaluationDataset, {});
  else if (cfg.evalAutoCarveout) {
    const split = carveOut(trainRaw, cfg.seed);
    if (split.skipped) log(`notice: ${split.skipped}`);
    [trainRaw, evalRaw] = [split.train, split.eval];
  }
  const warn = (m: string) => log(`warning: ${m}`);
  const built = buildExamples(trainRaw, tok, { maxContextLength: cfg.maxContextLength, warn });
  const evalEx = evalRaw.length
    ? buildExamples(evalRaw, tok, { maxContextLength: cfg.maxContextLength, warn }).examples
    : [];
  await yieldToSignals();
  const from = cfg.evaluationDataset ? ` from ${cfg.evaluationDataset}` : evalEx.length ? ' (carve-out)' : '';
  log(
    `data: ${trainRaw.length} training examples (${built.examples.length} after reasoning expansion, ${built.stats.trainedTokens} trained tokens), ${evalEx.length} eval examples${from}`,
  );
  return { trainEx: built.examples, evalEx, requests: trainRaw.length };
}

/**
 * A warm start's adapter as `lorasft train` checked and loaded it before the job was written, and what it is (the
 * line checkWarmStartBase returns). loadLora takes the adapter (sets it to null): its tensors are not kept for the run.
 */
export interface WarmStart {
  adapter: LoadedAdapter | null;
  about: string;
}

/**
 * LoRA weights: from the checkpoint when resuming, else a warm-start adapter (`warm`'s, or checked and read here),
 * else fresh (seeded).
 */
export function loadLora(
  cfg: TrainConfig,
  base: BaseModel,
  resumed: Resumed,
  log: (m: string) => void,
  warm?: WarmStart,
): LoraWeights {
  const loraCfg = {
    rank: cfg.loraRank,
    alpha: cfg.loraAlpha,
    targets: DEFAULT_LORA_TARGETS,
    dropout: cfg.loraDropout,
    useRslora: false,
  };
  if (resumed) return loraFromTensors(base, resumed.ck.params, loraCfg, resumed.dir);
  if (!cfg.warmStartFrom) return initLora(base, loraCfg, cfg.seed);
  const about = warm?.about ?? checkWarmStartBase(cfg.warmStartFrom, cfg.baseModel);
  const a = warm?.adapter ?? loadAdapter(cfg.warmStartFrom);
  if (warm) warm.adapter = null;
  const lora = loraFromTensors(
    base,
    a.lora,
    { ...loraCfg, rank: a.cfg.rank, alpha: a.cfg.alpha, useRslora: a.cfg.useRslora },
    cfg.warmStartFrom,
  );
  log(`warm start: loaded ${a.lora.size} tensors from ${path.resolve(cfg.warmStartFrom)}: ${about}`);
  return lora;
}
