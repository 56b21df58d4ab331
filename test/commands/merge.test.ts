import { describe, expect, it, beforeAll } from 'vitest';
import { patchAdapterConfig } from '../helpers/index.ts';
import { lorasft } from '../helpers/run.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBaseModel, forwardLogits } from '../../src/model/model.ts';
import { mergeAdapter } from '../../src/infer/merge.ts';
import { loadAdapter } from '../../src/model/peft.ts';
import { loraFromTensors } from '../../src/model/lora.ts';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/model/safetensors.ts';
import { f32ToBf16 } from '../../src/model/dtypes.ts';
import { makeTinyModel } from '../../src/model/tiny.ts';
import { makeFixture, randomAdapter, type Fixture } from '../train/fixture.ts';

let fx: Fixture;
let adapterDir: string;
beforeAll(async () => {
  fx = makeFixture(4, 3);
  adapterDir = await randomAdapter(fx, 'adapter', 2);
});

const QWEN_IDS = Int32Array.from([151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198]);

/** Largest |merged - (base + adapter)| logit, and the adapter's own effect on the logits (both loaded fp32). */
async function compareLogits(model: string, adapter: string, merged: string, ids: Int32Array) {
  const base = await loadBaseModel(model);
  const a = loadAdapter(adapter);
  const lora = loraFromTensors(base, a.lora, a.cfg, adapter);
  const m = await loadBaseModel(merged);
  const want = forwardLogits(base, lora, ids).dataSync();
  const got = forwardLogits(m, null, ids).dataSync();
  const plain = forwardLogits(base, null, ids).dataSync();
  let maxdiff = 0;
  let effect = 0;
  for (let i = 0; i < want.length; i++) {
    maxdiff = Math.max(maxdiff, Math.abs(want[i] - got[i]));
    effect = Math.max(effect, Math.abs(want[i] - plain[i]));
  }
  console.log(
    `merged vs base+adapter logits: maxdiff ${maxdiff.toExponential(2)} (adapter effect ${effect.toExponential(2)})`,
  );
  return { maxdiff, effect };
}

/** merge and generate both refuse `base` + `adapter` with the one error line `want`; merge makes no `out`. */
async function refusedByBoth(base: string, adapter: string, out: string, want: string): Promise<void> {
  for (const cmd of [
    ['merge', '--out', out],
    ['generate', '--prompt', 'hi'],
  ]) {
    const r = await lorasft([...cmd, '--base-model', base, '--adapter', adapter], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toBe(want);
  }
  expect(fs.existsSync(out)).toBe(false);
}

describe('merge', () => {
  it('merged-model logits equal base + adapter logits', async () => {
    const out = path.join(fx.root, 'merged');
    const r = await lorasft(['merge', '--adapter', adapterDir, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'])
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    const { maxdiff, effect } = await compareLogits(fx.model, adapterDir, out, QWEN_IDS);
    expect(effect).toBeGreaterThan(0.1);
    expect(maxdiff).toBeLessThan(1e-3);
    expect(() => mergeAdapter(fx.model, adapterDir, fx.model)).toThrow(/must differ/);
  });

  it('a bf16 base merges to bf16 weights (merged in f32, rounded once) and keeps its torch_dtype unless --dtype says', async () => {
    const g = { ...fx, model: path.join(fx.root, 'gemma-bf16') };
    makeTinyModel({ family: 'gemma3', out: g.model, hidden: 72, headDim: 16, layers: 2, dtype: 'bf16', seed: 5 });
    const adapter = await randomAdapter(g, 'gemma-adapter', 3);
    const out = path.join(fx.root, 'gemma-merged');
    const r = await lorasft(['merge', '--base-model', g.model, '--adapter', adapter, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const dtypes = [...readSafetensorsHeader(path.join(out, 'model.safetensors')).tensors.values()].map((t) => t.dtype);
    expect(new Set(dtypes)).toEqual(new Set(['BF16']));
    const cfgOf = (d: string) => JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    expect(cfgOf(out).torch_dtype).toBe('bfloat16');
    expect(cfgOf(out)).toEqual(cfgOf(g.model));
    // q_proj of layer 0 is bf16(f32(W + s * B @ A)), bit for bit.
    const q = 'model.layers.0.self_attn.q_proj';
    const W = readSafetensors(path.join(g.model, 'model.safetensors')).get(`${q}.weight`)!;
    const { lora, cfg } = loadAdapter(adapter);
    const A = lora.get(`base_model.model.${q}.lora_A.weight`)!;
    const B = lora.get(`base_model.model.${q}.lora_B.weight`)!;
    const [nOut, nIn] = W.shape;
    const ref = new Float32Array(nOut * nIn);
    for (let o = 0; o < nOut; o++)
      for (let i = 0; i < nIn; i++) {
        let d = 0;
        for (let k = 0; k < cfg.rank; k++) d += B.data[o * cfg.rank + k] * A.data[k * nIn + i];
        ref[o * nIn + i] = W.data[o * nIn + i] + (cfg.alpha / cfg.rank) * d;
      }
    const got = readSafetensors(path.join(out, 'model.safetensors'), { keep16: () => true }).get(`${q}.weight`)!;
    expect(Array.from(got.bf16!)).toEqual(Array.from(f32ToBf16(ref)));
    const ids = Int32Array.from([2, 17, 99, 5, 201, 64, 3, 250]);
    const { maxdiff, effect } = await compareLogits(g.model, adapter, out, ids);
    expect(effect).toBeGreaterThan(0.05);
    expect(maxdiff).toBeLessThan(effect / 40); // the bf16 rounding of the merged weights only
    // An F16 base stays F16.
    const f16 = path.join(fx.root, 'gemma-f16');
    fs.cpSync(g.model, f16, { recursive: true });
    const st = path.join(f16, 'model.safetensors');
    writeSafetensors(st, readSafetensors(st), undefined, { dtype: 'F16' });
    mergeAdapter(f16, adapter, path.join(fx.root, 'gemma-f16-merged'));
    const h16 = readSafetensorsHeader(path.join(fx.root, 'gemma-f16-merged', 'model.safetensors'));
    expect(new Set([...h16.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['F16']));
    // --dtype f32 writes float32 and says so in config.json.
    const f32 = path.join(fx.root, 'gemma-merged-f32');
    const r2 = await lorasft(['merge', '--base-model', g.model, '--adapter', adapter, '--out', f32, '--dtype', 'f32']);
    expect(r2.status, r2.stderr).toBe(0);
    const h = readSafetensorsHeader(path.join(f32, 'model.safetensors'));
    expect(new Set([...h.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['F32']));
    expect(cfgOf(f32).torch_dtype).toBe('float32');
  });

  it('names the real problem with --adapter: a missing dir, or a base model that is not local', async () => {
    const nodir = path.join(fx.root, 'nodir');
    const r = await lorasft(['merge', '--adapter', nodir, '--out', path.join(fx.root, 'x')], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `error: ${nodir}: no such directory (expected a PEFT adapter directory with adapter_config.json and adapter_model.safetensors for --adapter)\n`,
    );
    const remote = path.join(fx.root, 'remote-adapter');
    fs.cpSync(adapterDir, remote, { recursive: true });
    const cfgFile = patchAdapterConfig(remote, { base_model_name_or_path: 'Qwen/Qwen3-0.6B' });
    for (const cmd of [
      ['merge', '--adapter', remote, '--out', path.join(fx.root, 'y')],
      ['generate', '--adapter', remote, '--prompt', 'hi'],
    ]) {
      const g = await lorasft([...cmd]);
      expect(g.status).toBe(1);
      expect(g.stderr).toBe(
        `error: ${cfgFile}: base_model_name_or_path "Qwen/Qwen3-0.6B" is not a local model dir; pass --base-model DIR\n`,
      );
    }
    expect(fs.existsSync(path.join(fx.root, 'x'))).toBe(false);
  });

  it('an adapter of another model is refused up front naming the adapter and the tensor, as generate does', async () => {
    const other = path.join(fx.root, 'other-model');
    makeTinyModel({ family: 'qwen3', out: other, tokenizer: 'qwen3', hidden: 48, layers: 1, heads: 2, kvHeads: 1 });
    const want = `error: ${adapterDir}: model.layers.0.self_attn.q_proj.lora_A.weight has shape [4,32], expected [4,48] (rank 4)\n`;
    const out = path.join(fx.root, 'mismatch');
    await refusedByBoth(other, adapterDir, out, want);
  });

  it('an --out that is the base or the adapter through a symlink is refused; the base keeps its weights', async () => {
    const base = path.join(fx.root, 'self-base');
    fs.cpSync(fx.model, base, { recursive: true });
    const weights = fs.readFileSync(path.join(base, 'model.safetensors'));
    for (const [target, what] of [
      [base, 'the base model dir'],
      [adapterDir, 'the adapter dir'],
    ]) {
      const link = path.join(fx.root, `link-${path.basename(target)}`);
      fs.symlinkSync(target, link);
      expect(() => mergeAdapter(base, adapterDir, link)).toThrow(`--out ${link}: must differ from ${what}`);
      const r = await lorasft(['merge', '--base-model', base, '--adapter', adapterDir, '--out', link, '--overwrite'], {
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toBe(`error: --out ${link}: must differ from ${what}\n`);
    }
    expect(fs.readFileSync(path.join(base, 'model.safetensors')).equals(weights)).toBe(true);
    expect(fs.existsSync(path.join(adapterDir, 'model.safetensors'))).toBe(false);
  });

  it('merging into a dir that held another model removes its shards, index and generation config', async () => {
    const out = path.join(fx.root, 'replaced');
    fs.mkdirSync(out);
    const stale = ['model-00001-of-00002.safetensors', 'model.safetensors.index.json', 'generation_config.json'];
    for (const f of [...stale, 'tokenizer.model', 'notes.txt']) fs.writeFileSync(path.join(out, f), '{}');
    mergeAdapter(fx.model, adapterDir, out);
    expect(fs.readdirSync(out).sort()).toEqual(
      [...fs.readdirSync(fx.model).filter((f) => f !== 'model.safetensors'), 'model.safetensors', 'notes.txt'].sort(),
    );
  });

  it('an adapter on a base of another family with the same shapes is refused in one line, as generate does', async () => {
    const gemma = path.join(fx.root, 'gemma-same-shapes');
    makeTinyModel({ family: 'gemma3', out: gemma, hidden: 32, layers: 1, heads: 2, kvHeads: 1, intermediate: 32 });
    const want = `error: --base-model ${gemma}: a gemma3_text model, but the adapter ${adapterDir} was trained on ${fx.model}, a qwen3 model; pass --base-model ${fx.model}, or an adapter trained on a gemma3_text model\n`;
    const out = path.join(fx.root, 'other-family');
    await refusedByBoth(gemma, adapterDir, out, want);
  });

  it('an adapter of a shallower model is refused unless its config says which layers it adapts', async () => {
    const deep = path.join(fx.root, 'deeper');
    makeTinyModel({ family: 'qwen3', out: deep, hidden: 32, layers: 2, heads: 2, kvHeads: 1, intermediate: 32 });
    const want = `error: ${adapterDir}: LoRA weights for 1 of the base model's 2 layers (none for layer 1) and no layers_to_transform: an adapter of a model with fewer layers; pass the --base-model it was trained on\n`;
    const out = path.join(fx.root, 'deeper-merged');
    await refusedByBoth(deep, adapterDir, out, want);
    // PEFT's layers_to_transform or exclude_modules: layer 0 only, on purpose.
    const partial = path.join(fx.root, 'layer0-adapter');
    fs.cpSync(adapterDir, partial, { recursive: true });
    const cfgFile = path.join(partial, 'adapter_config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    for (const subset of [{ layers_to_transform: [0] }, { exclude_modules: ['model.layers.1.self_attn.q_proj'] }]) {
      fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, base_model_name_or_path: deep, ...subset }));
      expect(mergeAdapter(deep, partial, out).merged).toHaveLength(7);
    }
  });

  it('an --out that cannot be used is one error line, checked before merging; a non-empty one needs --overwrite', async () => {
    const file = path.join(fx.root, 'afile');
    fs.writeFileSync(file, '');
    const full = path.join(fx.root, 'full');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'notes.txt'), 'mine');
    for (const [out, msg] of [
      [file, `${file}: is a file; --out names a directory to write into`],
      [path.join(file, 'm'), `${path.join(file, 'm')}: cannot be created, ${file} is a file`],
      [fx.model, `--out ${fx.model}: must differ from the base model dir`],
      [adapterDir, `--out ${adapterDir}: must differ from the adapter dir`],
      [full, `${full}: not empty (notes.txt); choose another --out, or pass --overwrite to write into it`],
    ]) {
      const r = await lorasft(['merge', '--base-model', fx.model, '--adapter', adapterDir, '--out', out], {
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toBe(`error: ${msg}\n`);
    }
    expect(fs.readdirSync(full)).toEqual(['notes.txt']);
    const r = await lorasft(['merge', '--base-model', fx.model, '--adapter', adapterDir, '--out', full, '--overwrite']);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(full, 'model.safetensors'))).toBe(true);
  });
});
