// End to end: `lorasft loss-grad` on a tiny model against the float64 reference (test/model/reference.ts): the
// loss directly, the gradients by central differences of the reference's loss.
import { describe, expect, it } from 'vitest';
import { lorasft } from '../helpers/run.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel, type TinyModelOpts } from '../../src/model/tiny.ts';
import { run } from '../../src/commands/loss-grad.ts';
import { loadBaseModel, disposeBaseModel } from '../../src/model/model.ts';
import { loraFromTensors } from '../../src/model/lora.ts';
import { readSafetensors, writeSafetensors, type FloatTensor } from '../../src/model/safetensors.ts';
import { saveAdapter } from '../../src/model/peft.ts';
import { Rng } from '../../src/util/random.ts';
import { ensureBackend, toRef } from '../model/helpers.ts';
import { maxAbs, tmpDir } from '../helpers/index.ts';
import { refLossRow, type RefModel } from '../model/reference.ts';

/** `lorasft loss-grad --base-model MODEL --batch BATCH --lora LORA --json ...more`. */
const lossGrad = (model: string, batch: string, lora: string, ...more: string[]) =>
  lorasft(['loss-grad', '--base-model', model, '--batch', batch, '--lora', lora, '--json', ...more]);

/** A rank-4 LoRA on q/v/down with random A and B, in PEFT naming. */
function writeLora(file: string, layers: number, seed: number): void {
  const rng = new Rng(seed);
  const t: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (let l = 0; l < layers; l++) {
    for (const [mod, out, inp] of [
      ['self_attn.q_proj', 32, 32],
      ['self_attn.v_proj', 16, 32],
      ['mlp.down_proj', 32, 48],
    ] as const) {
      t[`base_model.model.model.layers.${l}.${mod}.lora_A.weight`] = {
        shape: [4, inp],
        data: rng.fillNormal(4 * inp, 0.2),
      };
      t[`base_model.model.model.layers.${l}.${mod}.lora_B.weight`] = {
        shape: [out, 4],
        data: rng.fillNormal(out * 4, 0.2),
      };
    }
  }
  writeSafetensors(file, t);
}

/** DIR/model (a tiny model: vocab 48, hidden 32, 2 layers, 4/2 heads), DIR/lora.safetensors and DIR/batch.json. */
function lossGradCase(
  model: Partial<TinyModelOpts> & { family: TinyModelOpts['family'] },
  loraSeed: number,
  batch: object,
): { dir: string; model: string; loraFile: string; batchFile: string } {
  const dir = tmpDir(`lossgrad-${model.family}`);
  const c = {
    dir,
    model: path.join(dir, 'model'),
    loraFile: path.join(dir, 'lora.safetensors'),
    batchFile: path.join(dir, 'batch.json'),
  };
  makeTinyModel({ vocab: 48, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, ...model, out: c.model });
  writeLora(c.loraFile, 2, loraSeed);
  fs.writeFileSync(c.batchFile, JSON.stringify(batch));
  return c;
}

/** `lorasft loss-grad --lora-alpha 16 --out-grads DIR/grads.safetensors --json`: its one JSON line and the gradients. */
async function lossGradWithGrads(
  dir: string,
  model: string,
  batchFile: string,
  loraFile: string,
): Promise<{ out: Record<string, unknown> & { loss: number }; grads: Map<string, FloatTensor> }> {
  const gradsFile = path.join(dir, 'grads.safetensors');
  const r = await lossGrad(model, batchFile, loraFile, '--lora-alpha', '16', '--out-grads', gradsFile);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines.length).toBe(1);
  return { out: JSON.parse(lines[0]), grads: readSafetensors(gradsFile) };
}

/** The float64 reference of MODEL with the LoRA file at alpha 16. */
async function reference(model: string, loraFile: string): Promise<RefModel> {
  const base = await loadBaseModel(model);
  const lora = loraFromTensors(base, readSafetensors(loraFile), { alpha: 16, dropout: 0, useRslora: false }, loraFile);
  const ref = toRef(base, lora);
  lora.dispose();
  disposeBaseModel(base);
  return ref;
}

/** The reference's sum of w * CE over documents [ids, weights] (positions from 0 in each), / weightSum. */
function refLoss(ref: RefModel, docs: Array<[number[], number[]]>, weightSum: number): number {
  let sum = 0;
  for (const [ids, w] of docs)
    sum += refLossRow(
      ref,
      ids,
      ids.map((_, i) => i),
      w,
    ).loss;
  return sum / weightSum;
}

/**
 * Worst |grads - central difference of `loss` wrt the reference's LoRA entry| / max(max|grad of that tensor|, 1e-3)
 * over the first, middle and last entry of every LoRA tensor.
 */
function worstVsFiniteDifferences(ref: RefModel, grads: Map<string, FloatTensor>, loss: () => number): number {
  let worst = 0;
  for (const [name, t] of ref.lora) {
    const g = grads.get(name)!.data;
    for (const idx of [0, Math.floor(t.data.length / 2), t.data.length - 1]) {
      const x0 = t.data[idx];
      t.data[idx] = x0 + 1e-4;
      const lp = loss();
      t.data[idx] = x0 - 1e-4;
      const lm = loss();
      t.data[idx] = x0;
      worst = Math.max(worst, Math.abs(g[idx] - (lp - lm) / 2e-4) / Math.max(maxAbs(g), 1e-3));
    }
  }
  return worst;
}

describe('lorasft loss-grad', () => {
  it('prints the normalised loss and writes gradients that match the float64 reference', async () => {
    await ensureBackend();
    // Row 0 packs two documents (positions restart); row 1 masks its prompt with -100 and weights tokens.
    const { dir, model, loraFile, batchFile } = lossGradCase({ family: 'qwen3', std: 0.15, seed: 11 }, 5, {
      input_ids: [
        [5, 6, 7, 8, 9, 10, 11, 12],
        [20, 21, 22, 23, 24, 25, 26, 27],
      ],
      // A packer masks the first token of each document (-100): nothing in its own document predicts it.
      labels: [
        [5, 6, 7, -100, 9, 10, 11, 12],
        [-100, -100, -100, 23, 24, 25, 26, 27],
      ],
      position_ids: [
        [0, 1, 2, 0, 1, 2, 3, 4],
        [0, 1, 2, 3, 4, 5, 6, 7],
      ],
      weights: [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 0.5, 1, 1, 1, 3],
      ],
    });
    const { out, grads } = await lossGradWithGrads(dir, model, batchFile, loraFile);
    expect(out).toMatchObject({
      tokens: 11,
      weight_sum: 12.5,
      lora_rank: 4,
      lora_alpha: 16,
      lora_targets: ['q_proj', 'v_proj', 'down_proj'],
    });

    // The float64 reference, document by document (packing must not leak attention across documents).
    const ref = await reference(model, loraFile);
    const docs: Array<[number[], number[]]> = [
      [
        [5, 6, 7],
        [0, 1, 1],
      ],
      [
        [8, 9, 10, 11, 12],
        [0, 1, 1, 1, 1],
      ],
      [
        [20, 21, 22, 23, 24, 25, 26, 27],
        [0, 0, 0, 0.5, 1, 1, 1, 3],
      ],
    ];
    const want = refLoss(ref, docs, 12.5);
    expect(Math.abs(out.loss - want) / want).toBeLessThan(1e-5);

    // Gradients of the normalised loss: one tensor per LoRA tensor, same names and shapes.
    expect([...grads.keys()].sort()).toEqual([...ref.lora.keys()].sort());
    for (const [name, t] of ref.lora) expect(grads.get(name)!.shape, name).toEqual(t.shape);
    const worst = worstVsFiniteDifferences(ref, grads, () => refLoss(ref, docs, 12.5));
    console.log(
      `loss-grad qwen3: grads vs reference central differences max |diff|/max|grad| ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-4);

    // Defaults: labels = input_ids, alpha = 2 * rank (= 8 here, so a different loss), human-readable output.
    fs.writeFileSync(batchFile, JSON.stringify({ input_ids: [[5, 6, 7, 8]] }));
    const d = await lossGrad(model, batchFile, loraFile);
    expect(JSON.parse(d.stdout)).toMatchObject({ tokens: 3, weight_sum: 3, lora_alpha: 8 });

    // A PEFT adapter directory: alpha and rsLoRA come from adapter_config.json.
    const adapterDir = path.join(dir, 'adapter');
    saveAdapter(
      adapterDir,
      readSafetensors(loraFile),
      { rank: 4, alpha: 16, targets: ['q_proj', 'v_proj', 'down_proj'], dropout: 0, useRslora: true },
      model,
    );
    const e = await lossGrad(model, batchFile, adapterDir);
    expect(JSON.parse(e.stdout)).toMatchObject({ lora_alpha: 16, lora_rank: 4 });
    // rsLoRA scale 16/sqrt(4) = 8 equals the plain scale 32/4.
    const f = await lossGrad(model, batchFile, loraFile, '--lora-alpha', '32');
    // Each against the reference at its scale: alpha/rank = 8/4 for d; 16/sqrt(4) = 32/4 = 8 for e and f.
    const short: Array<[number[], number[]]> = [
      [
        [5, 6, 7, 8],
        [0, 1, 1, 1],
      ],
    ];
    const at = (scale: number) => refLoss({ ...ref, scale }, short, 3);
    expect(at(2)).not.toBeCloseTo(at(8), 3);
    for (const [r, scale] of [
      [d, 2],
      [e, 8],
      [f, 8],
    ] as const)
      expect(Math.abs(JSON.parse(r.stdout).loss - at(scale)) / at(scale)).toBeLessThan(1e-5);
  });

  it.each([
    ['gemma3' as const, { slidingWindow: 3, extraConfig: { query_pre_attn_scalar: 10, final_logit_softcapping: 5 } }],
    ['mistral' as const, { slidingWindow: 3, headDim: 8 }],
  ])(
    '%s: loss and gradients equal the float64 reference (sliding window 3 inside packed documents)',
    async (family, extra) => {
      await ensureBackend();
      // Row 0 packs documents of 3 and 6 tokens, row 1 is one 9-token document: a window of 3 cuts the longer ones.
      const { dir, model, loraFile, batchFile } = lossGradCase({ family, std: 0.15, seed: 12, ...extra }, 6, {
        input_ids: [
          [5, 6, 7, 8, 9, 10, 11, 12, 13],
          [20, 21, 22, 23, 24, 25, 26, 27, 28],
        ],
        labels: [
          [5, 6, 7, -100, 9, 10, 11, 12, 13],
          [-100, 21, 22, 23, 24, 25, 26, 27, 28],
        ],
        position_ids: [
          [0, 1, 2, 0, 1, 2, 3, 4, 5],
          [0, 1, 2, 3, 4, 5, 6, 7, 8],
        ],
      });
      const { out, grads } = await lossGradWithGrads(dir, model, batchFile, loraFile);
      expect(out).toMatchObject({ tokens: 15, weight_sum: 15 });
      const ref = await reference(model, loraFile);
      const docs: Array<[number[], number[]]> = [
        [
          [5, 6, 7],
          [0, 1, 1],
        ],
        [
          [8, 9, 10, 11, 12, 13],
          [0, 1, 1, 1, 1, 1],
        ],
        [
          [20, 21, 22, 23, 24, 25, 26, 27, 28],
          [0, 1, 1, 1, 1, 1, 1, 1, 1],
        ],
      ];
      const want = refLoss(ref, docs, 15);
      const rel = Math.abs(out.loss - want) / want;
      const worst = worstVsFiniteDifferences(ref, grads, () => refLoss(ref, docs, 15));
      console.log(
        `loss-grad ${family}: loss ${out.loss} vs float64 reference ${want} (rel ${rel.toExponential(2)}); grads vs reference central differences max |diff|/max|grad| ${worst.toExponential(2)}`,
      );
      expect(rel).toBeLessThan(1e-5);
      expect(worst).toBeLessThan(1e-4);
    },
  );

  it('--precision bf16 runs the bf16 path on a bf16 checkpoint: recorded, within bf16 rounding of fp32', async () => {
    const batch = { input_ids: [[5, 6, 7, 8, 9, 10, 11, 12, 13, 14]] };
    const { dir, model, loraFile, batchFile } = lossGradCase({ family: 'qwen3', dtype: 'bf16' }, 3, batch);
    const run = async (precision: string) => {
      const gradsFile = path.join(dir, `grads-${precision}.safetensors`);
      const r = await lossGrad(model, batchFile, loraFile, '--precision', precision, '--out-grads', gradsFile);
      expect(r.status).toBe(0);
      return { out: JSON.parse(r.stdout) as { loss: number; precision: string }, grads: readSafetensors(gradsFile) };
    };
    const [fp, bf] = [await run('fp32'), await run('bf16')];
    expect([fp.out.precision, bf.out.precision]).toEqual(['fp32', 'bf16']);
    let num = 0,
      den = 0;
    for (const [name, g] of fp.grads) {
      const h = bf.grads.get(name)!.data;
      g.data.forEach((x, i) => ((num += (x - h[i]) ** 2), (den += x * x)));
    }
    const dl = Math.abs(bf.out.loss - fp.out.loss) / fp.out.loss,
      dg = Math.sqrt(num / den);
    console.log(`loss-grad bf16 vs fp32: loss rel diff ${dl.toExponential(2)}, grads rel L2 ${dg.toExponential(2)}`);
    expect(dl).toBeGreaterThan(0); // the bf16 path really ran
    expect(dl).toBeLessThan(1e-2);
    expect(dg).toBeLessThan(5e-2);
    const bad = await lossGrad(model, batchFile, loraFile, '--precision', 'fp16');
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toBe("error: --precision: must be one of auto, fp32, bf16, got 'fp16'");
  });

  it('reports bad input as one line naming the file, exit code 1', async () => {
    const { dir, model, loraFile } = lossGradCase({ family: 'llama' }, 1, { input_ids: [[1, 2, 3]] });
    const batch = (name: string, j: unknown) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, typeof j === 'string' ? j : JSON.stringify(j));
      return f;
    };
    const cases: Array<[string[], RegExp]> = [
      [
        [
          '--batch',
          batch('a.json', {
            input_ids: [
              [1, 2, 3],
              [4, 5],
            ],
          }),
        ],
        /a.json: "input_ids"\[1\] must be a list of 3 numbers/,
      ],
      [['--batch', batch('b.json', '{"input_ids": [[1, 2')], /b.json:1:21: invalid JSON: unexpected end of file$/],
      [
        ['--batch', batch('c.json', { input_ids: [[1, 2, 3]], labels: [[1, -5, 3]] })],
        /c.json: "labels"\[0\]\[1\] is -5; expected -100 or a token id in the model's vocabulary \[0, 48\)/,
      ],
      [
        ['--batch', batch('d.json', { input_ids: [[1, 2, 300]] })],
        /d.json: "input_ids"\[0\]\[2\] is 300; expected a token id in the model's vocabulary \[0, 48\)/,
      ],
      [
        [
          '--batch',
          batch('d2.json', {
            input_ids: [
              [1, 2, 3],
              [1, 2, 3],
            ],
            labels: [
              [1, 2, 3],
              [-100, 2, 48],
            ],
          }),
        ],
        /d2.json: "labels"\[1\]\[2\] is 48; expected -100 or a token id in the model's vocabulary \[0, 48\)/,
      ],
      [
        ['--batch', batch('f.json', { input_ids: [[1, 2, 3]], attention_mask: [[1, 1, 0]] })],
        /f.json: "attention_mask"\[0\]\[2\] is 0; expected 1 \(padding is not supported/,
      ],
      [
        ['--batch', batch('g.json', { input_ids: [[1, 2, 3]], token_type_ids: [[0, 0, 0]] })],
        /g.json: unknown key "token_type_ids" \(expected input_ids, labels, position_ids, weights, attention_mask\)/,
      ],
      [
        ['--batch', batch('h.json', { input_ids: [[1, 2, 3]], position_ids: [[0, -1, 0]] })],
        /h.json: "position_ids"\[0\]\[1\] is -1; expected a position >= 0/,
      ],
      [
        ['--batch', batch('i.json', { input_ids: [[1, 2, 3]], weights: [[1, 2, -2]] })],
        /i.json: the weights of the trained tokens sum to 0/,
      ],
      [
        ['--batch', batch('ok1.json', { input_ids: [[1, 2, 3]] }), '--out-grads', dir],
        /is a directory \(--out-grads expects a .safetensors file to write\)/,
      ],
      [
        ['--batch', batch('ok2.json', { input_ids: [[1, 2, 3]] }), '--lora-alpha', '0'],
        /^--lora-alpha: must be a number > 0, got '0'$/,
      ],
      [['--batch', batch('ok3.json', { input_ids: [[1, 2, 3]] }), 'stray'], /unexpected argument 'stray'/],
      [
        ['--batch', batch('e.json', { input_ids: [[1, 2, 3]], labels: [[-100, -100, -100]] })],
        /e.json: no trained tokens/,
      ],
      [
        ['--batch', path.join(dir, 'missing.json')],
        /missing.json: no such file \(expected a BATCH.json file with "input_ids"\)/,
      ],
      [['--batch', dir], /: is a directory \(expected a BATCH.json file/],
    ];
    for (const [args, re] of cases) {
      await expect(run(['--base-model', model, '--lora', loraFile, '--json', ...args]), args.join(' ')).rejects.toThrow(
        re,
      );
    }
    // Through the real CLI: one line on stderr, exit code 1, no stack trace.
    const bad = await lossGrad(model, path.join(dir, 'a.json'), loraFile);
    expect(bad.status).toBe(1);
    expect(
      bad.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('npm warn')),
    ).toEqual([expect.stringMatching(/^error: .*a.json: "input_ids"\[1\]/)]);
    const ok = batch('ok.json', { input_ids: [[1, 2, 3]] });
    const wrongShape = path.join(dir, 'wrong.safetensors');
    writeSafetensors(wrongShape, {
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': { shape: [4, 30], data: new Float32Array(120) },
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': { shape: [32, 4], data: new Float32Array(128) },
    });
    await expect(run(['--base-model', model, '--batch', ok, '--lora', wrongShape, '--json'])).rejects.toThrow(
      /wrong.safetensors: model.layers.0.self_attn.q_proj.lora_A.weight has shape \[4,30\], expected \[4,32\]/,
    );
    await expect(run(['--batch', ok, '--lora', loraFile])).rejects.toThrow(/--base-model is required/);
  });
});
