import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelConfig, parseModelConfig } from '../../src/model/config.ts';
import { ropeInvFreq } from '../../src/model/rope.ts';
import { tmpDir } from '../helpers/index.ts';

const QWEN3_0_6B = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_size: 1024,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  vocab_size: 151936,
};
const LLAMA_3_2_1B = {
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 8192,
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  tie_word_embeddings: true,
  vocab_size: 128256,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  attention_bias: false,
  mlp_bias: false,
  head_dim: 64,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
};
const QWEN2_0_5B = {
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  vocab_size: 151936,
  eos_token_id: 151645,
  use_sliding_window: false,
};

// google/gemma-3-270m (Gemma3ForCausalLM); layer_types: 5 local, 1 global, repeated.
const GEMMA3_270M = {
  architectures: ['Gemma3ForCausalLM'],
  attention_bias: false,
  attn_logit_softcapping: null,
  bos_token_id: 2,
  eos_token_id: 1,
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 640,
  intermediate_size: 2048,
  layer_types: Array.from({ length: 18 }, (_, i) => ((i + 1) % 6 ? 'sliding_attention' : 'full_attention')),
  max_position_embeddings: 32768,
  model_type: 'gemma3_text',
  num_attention_heads: 4,
  num_hidden_layers: 18,
  num_key_value_heads: 1,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000.0,
  rope_scaling: null,
  rope_theta: 1000000.0,
  sliding_window: 512,
  torch_dtype: 'bfloat16',
  use_bidirectional_attention: false,
  vocab_size: 262144,
};
// mistralai/Mistral-Nemo-Base-2407: head_dim 128 although hidden / heads = 160; no sliding window.
const MISTRAL_NEMO = {
  architectures: ['MistralForCausalLM'],
  model_type: 'mistral',
  hidden_size: 5120,
  intermediate_size: 14336,
  num_attention_heads: 32,
  num_hidden_layers: 40,
  num_key_value_heads: 8,
  head_dim: 128,
  rms_norm_eps: 1e-5,
  rope_theta: 1000000.0,
  sliding_window: null,
  tie_word_embeddings: false,
  vocab_size: 131072,
  bos_token_id: 1,
  eos_token_id: 2,
  max_position_embeddings: 1024000,
};

describe('Gemma 3 and Mistral configs', () => {
  it('Gemma 3 text: (1+w) norms, sqrt(C) rounded to bf16, GeLU-tanh, sandwich norms, q/k norm, windows per layer_types, local rope base', () => {
    const c = parseModelConfig(GEMMA3_270M, 'config.json');
    expect(c).toMatchObject({
      modelType: 'gemma3_text',
      headDim: 256,
      qkNorm: true,
      tieWordEmbeddings: true,
      normPlusOne: true,
      sandwichNorm: true,
      hiddenAct: 'gelu_tanh',
      ropeTheta: 1e6,
      ropeLocalTheta: 10000,
      finalLogitSoftcap: null,
      qkvBias: false,
      oBias: false,
    });
    expect(c.attnScale).toBe(1 / 16);
    expect(c.layerWindows).toEqual(Array.from({ length: 18 }, (_, i) => ((i + 1) % 6 ? 512 : 0)));
    expect(c.embedScale).toBe(25.25); // sqrt(640) = 25.298 in bfloat16
    expect(parseModelConfig({ ...GEMMA3_270M, torch_dtype: 'float32' }, 'c').embedScale).toBe(
      Math.fround(Math.sqrt(640)),
    );
    // HF's own example: sqrt(3072) = 55.4256 becomes 55.5 in bfloat16; gemma-3-1b's sqrt(1152) becomes 34.
    expect(parseModelConfig({ ...GEMMA3_270M, hidden_size: 3072 }, 'c').embedScale).toBe(55.5);
    expect(parseModelConfig({ ...GEMMA3_270M, hidden_size: 1152 }, 'c').embedScale).toBe(34);
    // torch.tensor(C ** 0.5).to(dtype).item() for the other Gemma 3 widths (checked once with torch 1.13).
    const scale = (C: number, torch_dtype: string) =>
      parseModelConfig({ ...GEMMA3_270M, hidden_size: C, torch_dtype }, 'c').embedScale;
    expect([2560, 3840, 5376].map((C) => scale(C, 'bfloat16'))).toEqual([50.5, 62, 73.5]);
    expect([640, 1152, 3072].map((C) => scale(C, 'float16'))).toEqual([25.296875, 33.9375, 55.4375]);
    // Gemma3TextConfig defaults: head_dim 256, query_pre_attn_scalar 256, window 4096 on 5 of every 6 layers, tied.
    const {
      head_dim: _h,
      layer_types: _l,
      sliding_window: _s,
      tie_word_embeddings: _t,
      query_pre_attn_scalar: _q,
      ...bare
    } = { ...GEMMA3_270M, tie_word_embeddings: true };
    const d = parseModelConfig({ ...bare, num_hidden_layers: 7 }, 'c');
    expect(d).toMatchObject({
      headDim: 256,
      tieWordEmbeddings: true,
      layerWindows: [4096, 4096, 4096, 4096, 4096, 0, 4096],
    });
    expect(parseModelConfig({ ...GEMMA3_270M, final_logit_softcapping: 30 }, 'c').finalLogitSoftcap).toBe(30);
    expect(parseModelConfig({ ...GEMMA3_270M, hidden_activation: undefined, hidden_act: 'silu' }, 'c').hiddenAct).toBe(
      'gelu_tanh',
    );
    // transformers v5: rope settings per layer type.
    const v5 = parseModelConfig(
      {
        ...GEMMA3_270M,
        rope_theta: undefined,
        rope_local_base_freq: undefined,
        rope_parameters: {
          full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 },
          sliding_attention: { rope_type: 'default', rope_theta: 10000 },
        },
      },
      'c',
    );
    expect(v5).toMatchObject({ ropeTheta: 1e6, ropeLocalTheta: 10000, ropeScaling: { type: 'linear', factor: 8 } });
  });
  it('Gemma 3: refuses what it cannot run, in one line naming the file', () => {
    expect(() =>
      parseModelConfig({ model_type: 'gemma3', text_config: GEMMA3_270M, vision_config: {} }, 'g/config.json'),
    ).toThrow(
      /^g\/config.json: model_type "gemma3" \(Gemma3ForConditionalGeneration, vision \+ language\) is not supported; use a text-only Gemma 3 checkpoint \(model_type "gemma3_text"/,
    );
    expect(() => parseModelConfig({ ...GEMMA3_270M, attn_logit_softcapping: 50 }, 'c.json')).toThrow(
      /^c.json: "attn_logit_softcapping" 50 is not supported/,
    );
    expect(() => parseModelConfig({ ...GEMMA3_270M, hidden_activation: 'relu' }, 'c.json')).toThrow(
      /^c.json: hidden_activation "relu" is not supported/,
    );
    expect(() => parseModelConfig({ ...GEMMA3_270M, layer_types: ['sliding_attention'] }, 'c.json')).toThrow(
      /^c.json: "layer_types" must be a list of 18 entries/,
    );
    expect(() => parseModelConfig({ ...GEMMA3_270M, sliding_window: null }, 'c.json')).toThrow(
      /^c.json: "sliding_window" is null/,
    );
    expect(() => parseModelConfig({ ...GEMMA3_270M, use_bidirectional_attention: true }, 'c.json')).toThrow(
      /use_bidirectional_attention/,
    );
  });
  it('Mistral: Llama layer, head_dim when set, sliding window on every layer or none, never biases', () => {
    const c = parseModelConfig(MISTRAL_NEMO, 'config.json');
    expect(c).toMatchObject({
      modelType: 'mistral',
      headDim: 128,
      qkNorm: false,
      normPlusOne: false,
      embedScale: 1,
      hiddenAct: 'silu',
      attnScale: null,
      sandwichNorm: false,
    });
    expect(c.layerWindows).toEqual(new Array(40).fill(0));
    const v01 = parseModelConfig(
      {
        ...MISTRAL_NEMO,
        head_dim: undefined,
        hidden_size: 4096,
        num_hidden_layers: 2,
        sliding_window: 4096,
        attention_bias: true,
      },
      'c',
    );
    expect(v01).toMatchObject({ headDim: 128, layerWindows: [4096, 4096], qkvBias: false, oBias: false });
    expect(() => parseModelConfig({ ...MISTRAL_NEMO, sliding_window: 0 }, 'c.json')).toThrow(
      /^c.json: "sliding_window" is 0; expected a positive number or null/,
    );
  });
});

describe('model config', () => {
  it('parses Qwen3: explicit head_dim (not hidden/heads), tied, q/k norm, no bias', () => {
    const c = parseModelConfig(QWEN3_0_6B, 'config.json');
    expect(c).toMatchObject({
      modelType: 'qwen3',
      headDim: 128,
      numHeads: 16,
      numKvHeads: 8,
      tieWordEmbeddings: true,
      qkNorm: true,
      qkvBias: false,
      oBias: false,
      eosTokenId: [151645],
      bosTokenId: 151643,
      ropeScaling: { type: 'default' },
    });
  });
  it('parses Qwen2: head_dim = hidden/heads, q/k/v bias always, o_proj without bias', () => {
    const c = parseModelConfig(QWEN2_0_5B, 'config.json');
    expect(c).toMatchObject({ headDim: 64, qkvBias: true, oBias: false, qkNorm: false, mlpBias: false });
    expect(() => parseModelConfig({ ...QWEN2_0_5B, use_sliding_window: true }, 'c.json')).toThrow(/use_sliding_window/);
  });
  it('parses Llama 3.2 with llama3 rope scaling and computes inv_freq as HF does', () => {
    const c = parseModelConfig(LLAMA_3_2_1B, 'config.json');
    expect(c.ropeScaling).toEqual({
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(c.eosTokenId).toEqual([128001, 128008, 128009]);
    const inv = ropeInvFreq(c);
    const base = (i: number) => 1 / 500000 ** ((2 * i) / 64);
    // High frequencies (wavelength < 8192/4) unchanged, low ones (wavelength > 8192) divided by 32, the band between smoothed.
    expect(inv[0]).toBeCloseTo(1, 12);
    expect(inv[10] / base(10)).toBeCloseTo(1, 12);
    expect(inv[31] / base(31)).toBeCloseTo(1 / 32, 12);
    expect(inv[18] / base(18)).toBeCloseTo(1 / 32, 12);
    const i = 16; // wavelength 2*pi/base(16) ~ 4.4k: medium band
    const wl = (2 * Math.PI) / base(i);
    expect(wl > 2048 && wl < 8192).toBe(true);
    const smooth = (8192 / wl - 1) / (4 - 1);
    expect(inv[i]).toBeCloseTo((1 - smooth) * (base(i) / 32) + smooth * base(i), 15);
    expect(inv[i] < base(i) && inv[i] > base(i) / 32).toBe(true);
  });
  it('linear rope scaling divides every frequency; attention_bias / mlp_bias on llama', () => {
    const c = parseModelConfig(
      { ...LLAMA_3_2_1B, rope_scaling: { type: 'linear', factor: 4 }, attention_bias: true, mlp_bias: true },
      'c.json',
    );
    expect(ropeInvFreq(c)[3]).toBeCloseTo(1 / 500000 ** (6 / 64) / 4, 15);
    expect(c).toMatchObject({ qkvBias: true, oBias: true, mlpBias: true });
  });
  it('rejects unknown model types and rope scalings, and bad fields, naming the file', () => {
    expect(() => parseModelConfig({ ...QWEN3_0_6B, model_type: 'gpt2' }, 'x/config.json')).toThrow(
      /^x\/config.json: model_type "gpt2" is not supported \(supported: qwen3, qwen2, llama, mistral, gemma3_text\)/,
    );
    expect(() =>
      parseModelConfig({ ...LLAMA_3_2_1B, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'c.json'),
    ).toThrow(/rope_scaling type 'yarn' is not supported/);
    expect(() => parseModelConfig({ ...QWEN3_0_6B, hidden_size: undefined }, 'c.json')).toThrow(
      /"hidden_size" is missing/,
    );
    expect(() => parseModelConfig({ ...QWEN3_0_6B, num_key_value_heads: 3 }, 'c.json')).toThrow(/not a multiple/);
  });
  it('hidden_act: silu and swish run SiLU; any other activation is refused naming config.json and the value', () => {
    for (const base of [QWEN3_0_6B, QWEN2_0_5B, LLAMA_3_2_1B, MISTRAL_NEMO]) {
      for (const act of [undefined, 'silu', 'swish'])
        expect(parseModelConfig({ ...base, hidden_act: act }, 'c.json').hiddenAct).toBe('silu');
      expect(() => parseModelConfig({ ...base, hidden_act: 'gelu' }, 'm/config.json')).toThrow(
        new RegExp(
          `^m/config.json: hidden_act "gelu" is not supported for ${base.model_type} \\(expected "silu" or "swish"\\)$`,
        ),
      );
    }
  });
  it('loads DIR/config.json with clear errors for a missing or broken file', () => {
    const dir = tmpDir('cfg');
    expect(() => loadModelConfig(dir)).toThrow(
      /config.json: no such file \(expected a Hugging Face model directory with config.json\)/,
    );
    fs.writeFileSync(path.join(dir, 'config.json'), '{"model_type": ');
    expect(() => loadModelConfig(dir)).toThrow(/config.json:1:16: invalid JSON: unexpected end of file$/);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(QWEN3_0_6B));
    expect(loadModelConfig(dir).vocabSize).toBe(151936);
    expect(() => loadModelConfig(path.join(dir, 'config.json'))).toThrow(
      /config.json: is a file, expected a Hugging Face model directory/,
    );
    expect(() => loadModelConfig(path.join(dir, 'nope'))).toThrow(
      /nope: no such directory \(expected a Hugging Face model directory/,
    );
  });
});
