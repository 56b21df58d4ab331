import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelConfig, parseModelConfig } from '../../src/model/config.ts';
import { ropeInvFreq } from '../../src/model/rope.ts';
import { tmpDir } from './helpers.ts';

const QWEN3_0_6B = {
  architectures: ['Qwen3ForCausalLM'], attention_bias: false, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128,
  hidden_size: 1024, intermediate_size: 3072, max_position_embeddings: 40960, model_type: 'qwen3', num_attention_heads: 16,
  num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000,
  tie_word_embeddings: true, vocab_size: 151936,
};
const LLAMA_3_2_1B = {
  model_type: 'llama', hidden_size: 2048, intermediate_size: 8192, num_attention_heads: 32, num_hidden_layers: 16,
  num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: true, vocab_size: 128256,
  bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], attention_bias: false, mlp_bias: false, head_dim: 64,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
};
const QWEN2_0_5B = {
  model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864, num_attention_heads: 14, num_hidden_layers: 24,
  num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, vocab_size: 151936,
  eos_token_id: 151645, use_sliding_window: false,
};

describe('model config', () => {
  it('parses Qwen3: explicit head_dim (not hidden/heads), tied, q/k norm, no bias', () => {
    const c = parseModelConfig(QWEN3_0_6B, 'config.json');
    expect(c).toMatchObject({ modelType: 'qwen3', headDim: 128, numHeads: 16, numKvHeads: 8, tieWordEmbeddings: true, qkNorm: true, qkvBias: false, oBias: false, eosTokenId: [151645], bosTokenId: 151643, ropeScaling: { type: 'default' } });
  });
  it('parses Qwen2: head_dim = hidden/heads, q/k/v bias always, o_proj without bias', () => {
    const c = parseModelConfig(QWEN2_0_5B, 'config.json');
    expect(c).toMatchObject({ headDim: 64, qkvBias: true, oBias: false, attentionBias: true, qkNorm: false, mlpBias: false });
    expect(() => parseModelConfig({ ...QWEN2_0_5B, use_sliding_window: true }, 'c.json')).toThrow(/use_sliding_window/);
  });
  it('parses Llama 3.2 with llama3 rope scaling and computes inv_freq as HF does', () => {
    const c = parseModelConfig(LLAMA_3_2_1B, 'config.json');
    expect(c.ropeScaling).toEqual({ type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
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
    const c = parseModelConfig({ ...LLAMA_3_2_1B, rope_scaling: { type: 'linear', factor: 4 }, attention_bias: true, mlp_bias: true }, 'c.json');
    expect(ropeInvFreq(c)[3]).toBeCloseTo(1 / 500000 ** (6 / 64) / 4, 15);
    expect(c).toMatchObject({ qkvBias: true, oBias: true, mlpBias: true });
  });
  it('rejects unknown model types and rope scalings, and bad fields, naming the file', () => {
    expect(() => parseModelConfig({ ...QWEN3_0_6B, model_type: 'gemma3' }, 'x/config.json')).toThrow(/^x\/config.json: model_type "gemma3" is not supported \(supported: qwen3, qwen2, llama\)/);
    expect(() => parseModelConfig({ ...LLAMA_3_2_1B, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'c.json')).toThrow(/rope_scaling type 'yarn' is not supported/);
    expect(() => parseModelConfig({ ...QWEN3_0_6B, hidden_size: undefined }, 'c.json')).toThrow(/"hidden_size" is missing/);
    expect(() => parseModelConfig({ ...QWEN3_0_6B, num_key_value_heads: 3 }, 'c.json')).toThrow(/not a multiple/);
  });
  it('loads DIR/config.json with clear errors for a missing or broken file', () => {
    const dir = tmpDir('cfg');
    expect(() => loadModelConfig(dir)).toThrow(/config.json: no such file \(expected a Hugging Face model directory with config.json\)/);
    fs.writeFileSync(path.join(dir, 'config.json'), '{"model_type": ');
    expect(() => loadModelConfig(dir)).toThrow(/config.json:1:16: invalid JSON: unexpected end of file$/);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(QWEN3_0_6B));
    expect(loadModelConfig(dir).vocabSize).toBe(151936);
    expect(() => loadModelConfig(path.join(dir, 'config.json'))).toThrow(/config.json: is a file, expected a Hugging Face model directory/);
    expect(() => loadModelConfig(path.join(dir, 'nope'))).toThrow(/nope: no such directory \(expected a Hugging Face model directory/);
  });
});
