import { describe, expect, it, beforeAll } from 'vitest';
import { lorasft } from '../helpers/run.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBaseModel, forwardLogits } from '../../src/model/model.ts';
import { mergeAdapter } from '../../src/infer/merge.ts';
import { makeTinyModel } from '../../src/model/tiny.ts';
import { makeFixture, randomAdapter, type Fixture } from '../train/fixture.ts';

let fx: Fixture;
let adapterDir: string;
beforeAll(async () => {
  fx = makeFixture(4, 3);
  adapterDir = await randomAdapter(fx, 'adapter', 2);
});

describe('merge', () => {
  it('merged-model logits equal base + adapter logits', async () => {
    const out = path.join(fx.root, 'merged');
    const r = await lorasft(['merge', '--adapter', adapterDir, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'])
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    const base = await loadBaseModel(fx.model);
    const { loadAdapter } = await import('../../src/model/peft.ts');
    const { loraFromTensors } = await import('../../src/model/lora.ts');
    const a = loadAdapter(adapterDir);
    const lora = loraFromTensors(base, a.lora, a.cfg, adapterDir);
    const merged = await loadBaseModel(out);
    const ids = Int32Array.from([151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198]);
    const want = forwardLogits(base, lora, ids).dataSync();
    const got = forwardLogits(merged, null, ids).dataSync();
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
    expect(effect).toBeGreaterThan(0.1);
    expect(maxdiff).toBeLessThan(1e-3);
    expect(() => mergeAdapter(fx.model, adapterDir, fx.model)).toThrow(/must differ/);
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
    const cfgFile = path.join(remote, 'adapter_config.json');
    fs.writeFileSync(
      cfgFile,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), base_model_name_or_path: 'Qwen/Qwen3-0.6B' }),
    );
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
    for (const cmd of [
      ['merge', '--out', out],
      ['generate', '--prompt', 'hi'],
    ]) {
      const r = await lorasft([...cmd, '--base-model', other, '--adapter', adapterDir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toBe(want);
    }
    expect(fs.existsSync(out)).toBe(false);
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
