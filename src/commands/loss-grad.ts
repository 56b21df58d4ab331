// lorasft loss-grad: loss (sum w*CE / sum w) and LoRA gradients of one batch, for parity checks against HF + PEFT.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../backend/index.ts';
import { UserError } from '../errors.ts';
import { numberFlag, parseFlags } from '../util/args.ts';
import { readJsonFile } from '../util/files.ts';
import { loadModelConfig } from '../model/config.ts';
import { loraFromTensors, type LoraWeights } from '../model/lora.ts';
import { loadBaseModel, lossAndGrads, type BaseModel, type Batch } from '../model/model.ts';
import { modelPrecision, precisionFlag } from '../model/precision.ts';
import { ADAPTER_WEIGHTS, loadAdapter } from '../model/peft.ts';
import { readSafetensors, writeSafetensors, type FloatTensor } from '../model/safetensors.ts';

const IGNORE_INDEX = -100;

const HELP = `usage: lorasft loss-grad --base-model DIR --batch BATCH.json --lora LORA.safetensors [flags]

Loss and LoRA gradients of one batch, as HF transformers + PEFT would compute them.

  --base-model DIR     Hugging Face model dir (config.json + model.safetensors or sharded index)
  --batch FILE         JSON: {"input_ids": [[...]], "labels"?: [[...]], "position_ids"?: [[...]], "weights"?: [[...]]}
                       labels are unshifted (labels[t] is predicted from position t-1), -100 = ignored,
                       default = input_ids; a packed document starts wherever position_ids do not step by +1
                       (attention stays inside it; as in HF, set its first label to -100 to leave it untrained);
                       weights (aligned with labels) default to 1 where the label is not -100; labels[0] of
                       a row is never trained; an attention_mask may be given but must be all 1 (no padding)
  --lora FILE|DIR      LoRA weights in PEFT naming (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight);
                       rank is read from the shapes, targets are the modules present. A PEFT adapter directory
                       (adapter_config.json + adapter_model.safetensors) also gives lora_alpha and use_rslora
  --lora-alpha A       LoRA alpha (scale = alpha / rank); default: an adapter dir's lora_alpha (8, PEFT's default,
                       when its adapter_config.json has none), 2 * rank for a .safetensors file
  --rslora             rsLoRA scaling (alpha / sqrt(rank))
  --out-grads FILE     write d(loss)/dA, d(loss)/dB of the normalised loss, same PEFT names (F32 safetensors)
  --precision P        fp32 (default) | bf16 | auto: bf16 keeps the base weights 16-bit and runs their matmuls and
                       attention's products in bf16 with fp32 accumulation (as train --precision bf16)
  --backend NAME       tensorflow | native | cpu (default: best available)
  --threads N          threads for the native backend
  --json               print one JSON line: {"loss", "loss_sum", "weight_sum", "tokens", ...}`;

type Grid = number[][];

function grid(file: string, j: Record<string, unknown>, key: string, B: number, T: number, int: boolean): Grid | null {
  let v = j[key];
  if (v === undefined || v === null) return null;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) v = [v]; // a single row
  if (!Array.isArray(v) || v.length !== B)
    throw new UserError(`${file}: "${key}" must be a list of ${B} rows like input_ids`);
  (v as unknown[]).forEach((row, b) => {
    if (!Array.isArray(row) || row.length !== T)
      throw new UserError(`${file}: "${key}"[${b}] must be a list of ${T} numbers (the length of input_ids rows)`);
    row.forEach((x, t) => {
      if (typeof x !== 'number' || !Number.isFinite(x) || (int && !Number.isInteger(x))) {
        throw new UserError(
          `${file}: "${key}"[${b}][${t}] is ${JSON.stringify(x)}; expected ${int ? 'an integer' : 'a number'}`,
        );
      }
    });
  });
  return v as Grid;
}

const BATCH_KEYS = ['input_ids', 'labels', 'position_ids', 'weights', 'attention_mask'];

/**
 * BATCH.json (HF conventions) -> Batch. With `vocabSize`, token ids and labels outside [0, vocabSize) are
 * errors naming their [row][position].
 */
export function parseBatchFile(file: string, vocabSize?: number): Batch {
  const j = readJsonFile(file, 'expected a BATCH.json file with "input_ids"') as Record<string, unknown>;
  if (typeof j !== 'object' || j === null || Array.isArray(j))
    throw new UserError(`${file}: expected a JSON object with "input_ids"`);
  for (const k of Object.keys(j))
    if (!BATCH_KEYS.includes(k)) throw new UserError(`${file}: unknown key "${k}" (expected ${BATCH_KEYS.join(', ')})`);
  const raw = j.input_ids;
  const rows = Array.isArray(raw) && raw.every((x) => typeof x === 'number') ? [raw] : raw;
  if (!Array.isArray(rows) || rows.length === 0 || !Array.isArray(rows[0]) || rows[0].length === 0) {
    throw new UserError(`${file}: "input_ids" must be a non-empty list of token-id rows ([batch][seq])`);
  }
  const B = rows.length;
  const T = (rows[0] as unknown[]).length;
  const ids = grid(file, { input_ids: rows }, 'input_ids', B, T, true)!;
  const labels = grid(file, j, 'labels', B, T, true) ?? ids;
  const pos = grid(file, j, 'position_ids', B, T, true);
  const weights = grid(file, j, 'weights', B, T, false);
  const mask = grid(file, j, 'attention_mask', B, T, true);
  const batch: Batch = {
    B,
    T,
    inputIds: new Int32Array(B * T),
    positionIds: new Int32Array(B * T),
    weights: new Float32Array(B * T),
    labels: new Int32Array(B * T),
  };
  const bad = (key: string, b: number, t: number, v: number, want: string) =>
    new UserError(`${file}: "${key}"[${b}][${t}] is ${v}; expected ${want}`);
  const tokenId =
    vocabSize === undefined ? 'a token id >= 0' : `a token id in the model's vocabulary [0, ${vocabSize})`;
  const inVocab = (v: number) => v >= 0 && (vocabSize === undefined || v < vocabSize);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      const lab = labels[b][t];
      if (!inVocab(ids[b][t])) throw bad('input_ids', b, t, ids[b][t], tokenId);
      if (lab !== IGNORE_INDEX && !inVocab(lab)) throw bad('labels', b, t, lab, `${IGNORE_INDEX} or ${tokenId}`);
      if (pos && pos[b][t] < 0) throw bad('position_ids', b, t, pos[b][t], 'a position >= 0');
      // Padding changes nothing for the positions before it in a causal model, but HF would still train the
      // padded labels unless they are -100: refuse rather than guess.
      if (mask && mask[b][t] !== 1)
        throw bad(
          'attention_mask',
          b,
          t,
          mask[b][t],
          '1 (padding is not supported: remove it, or keep attention_mask 1 and set the padded labels to -100)',
        );
      batch.inputIds[i] = ids[b][t];
      batch.positionIds[i] = pos ? pos[b][t] : t;
      batch.labels![i] = lab === IGNORE_INDEX ? 0 : lab;
      batch.weights[i] = lab === IGNORE_INDEX || t === 0 ? 0 : weights ? weights[b][t] : 1;
    }
  }
  return batch;
}

export async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags('loss-grad', argv, {
    'base-model': { type: 'string' },
    batch: { type: 'string' },
    lora: { type: 'string' },
    'lora-alpha': { type: 'string' },
    rslora: { type: 'boolean' },
    'out-grads': { type: 'string' },
    precision: { type: 'string' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length)
    throw new UserError(`lorasft loss-grad: unexpected argument '${positionals[0]}' (see lorasft loss-grad --help)`);
  for (const f of ['base-model', 'batch', 'lora'] as const)
    if (!v[f]) throw new UserError(`lorasft loss-grad: --${f} is required (see lorasft loss-grad --help)`);
  const alphaFlag = numberFlag('lora-alpha', v['lora-alpha'], { above: 0 });
  const threads = numberFlag('threads', v.threads, { integer: true, min: 1 });
  const requested = precisionFlag(v.precision ?? 'fp32');
  const outGrads = v['out-grads'];
  if (outGrads && fs.existsSync(outGrads) && fs.statSync(outGrads).isDirectory()) {
    throw new UserError(`${outGrads}: is a directory (--out-grads expects a .safetensors file to write)`);
  }
  // Everything about the input is checked before the model is loaded or anything is computed.
  const batch = parseBatchFile(v.batch!, loadModelConfig(v['base-model']!).vocabSize);
  const trainedWeight = batch.weights.reduce((a, w) => a + w, 0);
  if (!batch.weights.some((w) => w !== 0))
    throw new UserError(`${v.batch}: no trained tokens (every label is -100 or has weight 0)`);
  if (trainedWeight === 0)
    throw new UserError(
      `${v.batch}: the weights of the trained tokens sum to 0, so the loss (sum w*CE / sum w) is undefined`,
    );
  const backend = await initBackend({ backend: v.backend, threads });
  if (!v.json) console.error(`backend: ${backend.name} (${backend.reason})`);

  const precision = modelPrecision(v['base-model']!, requested);
  const base = await loadBaseModel(v['base-model']!, { precision });
  const lora = loadLoraArg(base, v.lora!, alphaFlag, v.rslora === true);
  try {
    const { lossSum, weightSum, grads } = lossAndGrads(base, lora, batch);
    if (outGrads) {
      const out = new Map<string, FloatTensor>();
      for (const [name, g] of grads) {
        const d = g.dataSync() as Float32Array;
        out.set(name, { shape: g.shape, data: d.map((x) => x / weightSum) });
      }
      writeSafetensors(outGrads, out, { format: 'pt' });
    }
    for (const g of grads.values()) g.dispose();
    const tokens = batch.weights.reduce((n, w, i) => n + (w !== 0 && i % batch.T !== 0 ? 1 : 0), 0);
    const result = {
      loss: lossSum / weightSum,
      loss_sum: lossSum,
      weight_sum: weightSum,
      tokens,
      batch: batch.B,
      seq_len: batch.T,
      lora_rank: lora.cfg.rank,
      lora_alpha: lora.cfg.alpha,
      lora_targets: lora.cfg.targets,
      backend: backend.name,
      precision,
    };
    if (v.json) console.log(JSON.stringify(result));
    else
      console.log(
        `loss ${result.loss.toFixed(6)} over ${tokens} tokens (weight sum ${weightSum})${outGrads ? `; gradients -> ${outGrads}` : ''}`,
      );
  } finally {
    lora.dispose();
  }
  return 0;
}

/** --precision: auto | fp32 (the default) | bf16. */
/** --lora: a PEFT adapter dir or a .safetensors file of LoRA tensors (alpha: --lora-alpha, the adapter's, or 2r). */
function loadLoraArg(base: BaseModel, arg: string, alphaFlag: number | undefined, rslora: boolean): LoraWeights {
  const isDir = fs.existsSync(arg) && fs.statSync(arg).isDirectory();
  const adapter = isDir ? loadAdapter(arg) : null;
  const tensors = adapter ? adapter.lora : readSafetensors(arg);
  const firstA = [...tensors.entries()].find(([n]) => n.includes('.lora_A.'));
  const rank = firstA ? firstA[1].shape[0] : 0;
  const alpha = alphaFlag ?? adapter?.cfg.alpha ?? 2 * rank;
  const useRslora = rslora || adapter?.cfg.useRslora === true;
  return loraFromTensors(
    base,
    tensors,
    { alpha, dropout: 0, useRslora },
    isDir ? path.join(arg, ADAPTER_WEIGHTS) : arg,
  );
}
