import { describe, expect, it } from 'vitest';
import { run } from '../helpers/run.ts';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/model/tiny.ts';
import { loadModelConfig } from '../../src/model/config.ts';
import { readSafetensors, readSafetensorsHeader } from '../../src/model/safetensors.ts';
import { disposeBaseModel, loadBaseModel } from '../../src/model/model.ts';
import { ensureBackend } from './helpers.ts';
import { tmpDir } from '../helpers/index.ts';

describe('make-tiny-model', () => {
  it('writes an HF model dir with the family tensor names, deterministic in the seed', async () => {
    const a = tmpDir('tiny'),
      b = tmpDir('tiny');
    makeTinyModel({ family: 'qwen2', out: a, seed: 3, tie: false });
    makeTinyModel({ family: 'qwen2', out: b, seed: 3, tie: false });
    expect(
      fs.readFileSync(path.join(a, 'model.safetensors')).equals(fs.readFileSync(path.join(b, 'model.safetensors'))),
    ).toBe(true);
    const names = [...readSafetensorsHeader(path.join(a, 'model.safetensors')).tensors.keys()];
    expect(names).toContain('model.layers.1.self_attn.q_proj.bias');
    expect(names).toContain('lm_head.weight');
    expect(names).not.toContain('model.layers.0.self_attn.o_proj.bias');
    const q = tmpDir('tiny');
    makeTinyModel({ family: 'qwen3', out: q, dtype: 'bf16' });
    const h = readSafetensorsHeader(path.join(q, 'model.safetensors'));
    expect(h.tensors.get('model.layers.0.self_attn.q_norm.weight')).toMatchObject({ dtype: 'BF16', shape: [16] });
    expect(h.tensors.has('lm_head.weight')).toBe(false); // qwen3 default: tied
    const norm = readSafetensors(path.join(q, 'model.safetensors'), { names: ['model.norm.weight'] }).get(
      'model.norm.weight',
    )!.data;
    expect(Math.abs(norm.reduce((s, x) => s + x, 0) / norm.length - 1)).toBeLessThan(0.1);
  });

  it('gemma3 and mistral: HF architectures, family fields and tensor names', () => {
    const g = tmpDir('tiny'),
      m = tmpDir('tiny');
    const gc = makeTinyModel({ family: 'gemma3', out: g, layers: 3, slidingWindow: 5 }).config;
    expect(gc).toMatchObject({
      architectures: ['Gemma3ForCausalLM'],
      model_type: 'gemma3_text',
      hidden_activation: 'gelu_pytorch_tanh',
      sliding_window: 5,
      layer_types: ['sliding_attention', 'full_attention', 'sliding_attention'],
      tie_word_embeddings: true,
      query_pre_attn_scalar: 16,
    });
    expect(gc.hidden_act).toBeUndefined();
    const names = [...readSafetensorsHeader(path.join(g, 'model.safetensors')).tensors.keys()];
    for (const n of [
      'pre_feedforward_layernorm',
      'post_feedforward_layernorm',
      'post_attention_layernorm',
      'self_attn.q_norm',
      'self_attn.k_norm',
    ]) {
      expect(names).toContain(`model.layers.2.${n}.weight`);
    }
    expect(names).not.toContain('lm_head.weight');
    // Gemma's norms are stored zero-centred (applied as 1 + w).
    const norm = readSafetensors(path.join(g, 'model.safetensors'), { names: ['model.norm.weight'] }).get(
      'model.norm.weight',
    )!.data;
    expect(Math.abs(norm.reduce((s, x) => s + x, 0) / norm.length)).toBeLessThan(0.1);
    const mc = makeTinyModel({ family: 'mistral', out: m, headDim: 8, hidden: 64 }).config;
    expect(mc).toMatchObject({
      architectures: ['MistralForCausalLM'],
      model_type: 'mistral',
      sliding_window: null,
      head_dim: 8,
      tie_word_embeddings: false,
    });
    expect(() => makeTinyModel({ family: 'llama', out: tmpDir('tiny'), slidingWindow: 4 })).toThrow(
      /only mistral and gemma3 have sliding-window layers/,
    );
  });

  it('copies a real tokenizer and sizes the vocabulary to it (qwen3 ids up to 151668)', async () => {
    await ensureBackend();
    const d = tmpDir('tok');
    makeTinyModel({
      family: 'qwen3',
      out: d,
      tokenizer: 'qwen3',
      hidden: 16,
      heads: 2,
      kvHeads: 1,
      layers: 1,
      intermediate: 16,
    });
    expect(fs.existsSync(path.join(d, 'tokenizer.json')) && fs.existsSync(path.join(d, 'tokenizer_config.json'))).toBe(
      true,
    );
    const c = loadModelConfig(d);
    expect(c.vocabSize).toBe(151669);
    expect(c.eosTokenId).toEqual([151645]); // <|im_end|>
    const base = await loadBaseModel(d);
    expect(base.weights.get('lm_head.weight')).toBe(base.weights.get('model.embed_tokens.weight'));
    disposeBaseModel(base);
    const l = tmpDir('tok');
    makeTinyModel({
      family: 'llama',
      out: l,
      tokenizer: 'llama3',
      hidden: 16,
      heads: 2,
      kvHeads: 1,
      layers: 1,
      intermediate: 16,
      tie: true,
    });
    expect(loadModelConfig(l)).toMatchObject({ vocabSize: 128256, bosTokenId: 128000, eosTokenId: [128001] });
  });

  it('runs from the command line (scripts/make-tiny-model) and rejects bad flags', async () => {
    const out = path.join(tmpDir('cli'), 'm');
    const script = new URL('../../scripts/make-tiny-model', import.meta.url).pathname;
    const ok = await run(script, ['--family', 'qwen2', '--out', out, '--layers', '1', '--tie', 'true', '--seed', '5'], {
      encoding: 'utf8',
    });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/wrote qwen2 model \(vocab 256, hidden 64, layers 1\)/);
    expect(loadModelConfig(out)).toMatchObject({ modelType: 'qwen2', numLayers: 1, tieWordEmbeddings: true });
    const bad = await run(script, ['--family', 'gpt2', '--out', out], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--family gpt2: expected qwen3, qwen2, llama, mistral, gemma3/);
    // From another directory (the wrapper finds this checkout's tsx); bad values write nothing.
    const elsewhere = path.join(tmpDir('cli'), 'n');
    const cases: Array<[string[], string]> = [
      [['--std', 'abc'], 'error: --std abc: expected a number >= 0\n'],
      [['--hidden', '63'], 'error: --hidden 63 is not a multiple of --heads 4 (or give --head-dim)\n'],
      [['--layers', '0'], 'error: make-tiny-model: "num_hidden_layers" is 0; expected a positive integer\n'],
      [
        ['--sliding-window', '8'],
        'error: --sliding-window: only mistral and gemma3 have sliding-window layers (got --family qwen3)\n',
      ],
    ];
    for (const [flags, err] of cases) {
      const r = await run(script, ['--family', 'qwen3', '--out', elsewhere, ...flags], {
        encoding: 'utf8',
        cwd: os.tmpdir(),
      });
      expect([r.status, r.stderr]).toEqual([1, err]);
      expect(fs.existsSync(elsewhere)).toBe(false);
    }
    const onFile = await run(script, ['--family', 'qwen3', '--out', path.join(out, 'config.json')], {
      encoding: 'utf8',
      cwd: os.tmpdir(),
    });
    expect([onFile.status, onFile.stderr]).toEqual([
      1,
      `error: --out ${path.join(out, 'config.json')}: is a file, expected a directory to write the model into\n`,
    ]);
  });

  it('refuses a non-empty --out without --overwrite; with it, no file of the previous model is left', async () => {
    const out = path.join(tmpDir('cli'), 'm');
    const script = new URL('../../scripts/make-tiny-model', import.meta.url).pathname;
    const small = ['--hidden', '16', '--heads', '2', '--kv-heads', '1', '--layers', '1', '--intermediate', '16'];
    const first = await run(script, ['--family', 'qwen3', '--out', out, '--tokenizer', 'qwen3', ...small]);
    expect(first.status, first.stderr).toBe(0);
    // The previous model's shards and index, and files that are not a model's (kept).
    for (const f of ['model-00001-of-00002.safetensors', 'model.safetensors.index.json', 'notes.txt'])
      fs.writeFileSync(path.join(out, f), 'x');
    fs.mkdirSync(path.join(out, 'runs'));
    fs.writeFileSync(path.join(out, 'runs', 'tokenizer.json'), 'mine');
    const before = fs.readdirSync(out).sort();
    const configBefore = fs.readFileSync(path.join(out, 'config.json'), 'utf8');
    const llama = ['--family', 'llama', '--out', out, '--tokenizer', 'none'];
    const refused = await run(script, llama);
    expect([refused.status, refused.stderr]).toEqual([
      1,
      `error: --out ${out}: not empty (config.json, model-00001-of-00002.safetensors, model.safetensors, ...); choose another --out, or pass --overwrite to replace the model in it\n`,
    ]);
    expect(fs.readdirSync(out).sort()).toEqual(before);
    expect(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).toBe(configBefore);
    const replaced = await run(script, [...llama, '--overwrite']);
    expect(replaced.status, replaced.stderr).toBe(0);
    // The Qwen3 tokenizer (ids up to 151668 against a 256-token vocabulary) and the stale shards are gone.
    expect(fs.readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', 'notes.txt', 'runs']);
    expect(fs.readFileSync(path.join(out, 'runs', 'tokenizer.json'), 'utf8')).toBe('mine');
    expect(loadModelConfig(out)).toMatchObject({ modelType: 'llama', vocabSize: 256 });
  });

  it('loading refuses a model whose weights do not match config.json', async () => {
    await ensureBackend();
    const d = tmpDir('bad');
    makeTinyModel({ family: 'llama', out: d, tie: false });
    const cfg = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 100 }));
    await expect(loadBaseModel(d)).rejects.toThrow(
      /gate_proj.weight' has shape \[128,64\], config.json implies \[100,64\]/,
    );
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...cfg, model_type: 'qwen3' }));
    await expect(loadBaseModel(d)).rejects.toThrow(/q_norm.weight' is missing/);
  });
});
