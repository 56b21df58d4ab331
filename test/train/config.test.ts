import { describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  configFlagOptions,
  configFromBody,
  configFromFlags,
  configHelp,
  defaultConfig,
  readConfigFile,
  resolveConfig,
} from '../../src/train/config.ts';
import { FIELDS } from '../../src/train/config_fields.ts';
import { parseFlags } from '../../src/util/args.ts';
import { UserError } from '../../src/errors.ts';

function tmpFile(content: string): string {
  const dir = tmpDir('cfg');
  const f = path.join(dir, 'job.json');
  fs.writeFileSync(f, content);
  return f;
}
const flags = (argv: string[]) => configFromFlags(parseFlags('train', argv, configFlagOptions()).values as never);
/** resolveConfig's problems, one per line ([] when the layers resolve). */
function problems(...layers: Parameters<typeof resolveConfig>): string[] {
  try {
    resolveConfig(...layers);
    return [];
  } catch (e) {
    return (e as Error).message.split('\n');
  }
}

describe('training config', () => {
  it('has a help string and a default for every field', () => {
    for (const [k, f] of Object.entries(FIELDS)) {
      expect(f.help.length, k).toBeGreaterThan(10);
      expect(f.default, k).not.toBeUndefined();
    }
    const d = resolveConfig();
    expect(d).toMatchObject({
      epochs: 1,
      learningRate: 1e-4,
      loraRank: 8,
      loraAlpha: 16,
      optimizerWeightDecay: 0.01,
      gradientAccumulationSteps: 1,
      lrScheduler: 'constant',
      evalAutoCarveout: true,
    });
    expect(d).toMatchObject({ maxContextLength: 32768, batchSize: 4096 });
  });

  it('--help states each default once (help strings never repeat it)', () => {
    const lines = configHelp().split('\n');
    expect(lines).toHaveLength(Object.keys(FIELDS).length);
    for (const [i, [k, f]] of Object.entries(FIELDS).entries()) {
      expect(f.help, k).not.toMatch(/default/i);
      expect(lines[i].match(/default/gi)?.length ?? 0, lines[i]).toBe(f.default === '' && !f.defaultText ? 0 : 1);
    }
    expect(lines.find((l) => l.includes('[maxContextLength]'))).toMatch(
      /with a warning naming the example \(default 32768, as the managed job\)/,
    );
  });

  it('takes CLI over file over defaults', () => {
    const f = tmpFile(
      JSON.stringify({ dataset: 'a.jsonl', epochs: 3, learningRate: 0.001, loraRank: 16, earlyStop: true }),
    );
    const notices: string[] = [];
    const file = readConfigFile(f, (m) => notices.push(m));
    const cli = flags(['--epochs', '2.5', '--lora-rank', '4', '--no-early-stop']);
    const c = resolveConfig(file, cli);
    expect(c.epochs).toBe(2.5);
    expect(c.loraRank).toBe(4);
    expect(c.loraAlpha).toBe(8);
    expect(c.learningRate).toBe(0.001);
    expect(c.dataset).toBe('a.jsonl');
    expect(c.earlyStop).toBe(false);
    expect(c.optimizerWeightDecay).toBe(defaultConfig().optimizerWeightDecay);
    expect(notices).toEqual([]);
  });

  it('rejects unknown keys by name', () => {
    const f = tmpFile(JSON.stringify({ dataset: 'a.jsonl', learning_rate: 0.1 }));
    expect(() => readConfigFile(f, () => {})).toThrow(`${f}:1: unknown field 'learning_rate'`);
    const g = tmpFile('{\n  "dataset": "a.jsonl",\n  "learning_rate": 0.1\n}\n');
    expect(() => readConfigFile(g, () => {})).toThrow(`${g}:3: unknown field 'learning_rate'`);
  });

  it('accepts fields without local meaning with a one-line notice each', () => {
    const f = tmpFile(
      `// lorasft train --config ${'x'}\n` +
        JSON.stringify({
          wandbConfig: { enabled: true },
          nodes: 2,
          isTurbo: true,
          purpose: 'PURPOSE_PILOT',
          epochs: 2,
        }),
    );
    const notices: string[] = [];
    const c = readConfigFile(f, (m) => notices.push(m));
    expect(c).toEqual({ epochs: 2 });
    expect(notices).toHaveLength(4);
    expect(notices[0]).toMatch(/'wandbConfig' has no local meaning/);
    // Still checked against the managed API's types: a wrong value is named, not ignored.
    const bad = tmpFile('{\n  "epochs": 2,\n  "purpose": "XYZ"\n}\n');
    expect(() => readConfigFile(bad, () => {})).toThrow(
      `${bad}:3: purpose must be one of PURPOSE_UNSPECIFIED, PURPOSE_PILOT, got "XYZ"`,
    );
    for (const [body, msg] of [
      [{ wandbConfig: 5 }, 'wandbConfig must be an object, got 5'],
      [{ nodes: -1 }, 'nodes must be a non-negative int32, got -1'],
      [{ isTurbo: 'yes' }, 'isTurbo must be true or false, got "yes"'],
      [{ metricsFileSignedUrl: 3 }, 'metricsFileSignedUrl must be a string, got 3'],
    ] as const)
      expect(() => configFromBody(body, 'request', () => {})).toThrow(`request: ${msg}`);
  });

  it('reports bad values clearly', () => {
    expect(() => resolveConfig({ loraRank: 12 })).toThrow(/loraRank must be a power of 2 up to 32/);
    expect(() => resolveConfig({ loraRank: 64 })).toThrow(/loraRank must be a power of 2 up to 32/);
    expect(() => resolveConfig({ learningRate: 0 })).toThrow(/learningRate must be > 0/);
    // One problem: one line. Several: one self-contained line each.
    expect(() => resolveConfig({ epochs: -1 })).toThrow(/^invalid training config: epochs must be > 0, got -1$/);
    let msg = '';
    try {
      resolveConfig({ epochs: -1, learningRate: 0 });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg.split('\n')).toEqual([
      'invalid training config: epochs must be > 0, got -1',
      'invalid training config: learningRate must be > 0, got 0',
    ]);
    expect(() => flags(['--epochs', 'abc'])).toThrow('--epochs: epochs must be a number, got "abc"');
    expect(() => flags(['--gradient-accumulation-steps', '1.5'])).toThrow(/must be an integer/);
    expect(() => flags(['--bogus'])).toThrow(/Unknown option '--bogus'/);
    expect(() => flags(['--backend', 'gpu'])).toThrow(
      `--backend: backend must be one of native, cpu, tensorflow (or '': the fastest present), got "gpu"`,
    );
    // The managed API's integers are int32: a larger one is named before any data is read.
    expect(() => resolveConfig(flags(['--batch-size', '3000000000']))).toThrow(
      '--batch-size: batchSize must be at most 2147483647 (an int32, as in the managed API), got 3000000000',
    );
    expect(resolveConfig(flags(['--batch-size', '2147483647', '--seed', '4294967295'])).batchSize).toBe(2147483647);
    const f = tmpFile(JSON.stringify({ epochs: 'two' }));
    expect(() => readConfigFile(f, () => {})).toThrow(`${f}:1: epochs must be a number, got "two"`);
    const g = tmpFile('{ not json');
    expect(() => readConfigFile(g, () => {})).toThrow(new UserError(`${g}:1:3: invalid JSON: unexpected 'not'`));
    // NaN: one line with line:column (was V8's message quoting the whole file, three lines).
    const n = tmpFile('// lorasft train --config x.json\n{\n  "epochs": 2,\n  "learningRate": NaN\n}\n');
    expect(() => readConfigFile(n, () => {})).toThrow(
      new UserError(`${n}:4:19: invalid JSON: unexpected 'NaN' (NaN and Infinity are not JSON numbers)`),
    );
    const cut = tmpFile('{"epochs": 2,\n');
    expect(() => readConfigFile(cut, () => {})).toThrow(
      new UserError(`${cut}:2:1: invalid JSON: unexpected end of file`),
    );
  });

  it('names a bad value by the line or flag that set it', () => {
    // A value out of range is found after the layers merge: the message names the layer that set it (the last).
    const file = '// lorasft train --config job.json\n{\n  "epochs": 2,\n  "loraRank": 12,\n  "learningRate": 0\n}\n';
    const f = tmpFile(file);
    expect(problems(readConfigFile(f, () => {}))).toEqual([
      `${f}:5: learningRate must be > 0, got 0`,
      `${f}:4: loraRank must be a power of 2 up to 32 (1, 2, 4, 8, 16, 32), got 12`,
    ]);
    // A flag over the file: the flag's value is checked, and named by the flag.
    expect(
      problems(
        readConfigFile(f, () => {}),
        flags(['--lora-rank', '16', '--epochs=-1']),
      ),
    ).toEqual(['--epochs: epochs must be > 0, got -1', `${f}:5: learningRate must be > 0, got 0`]);
    expect(
      problems(
        readConfigFile(f, () => {}),
        flags(['--lora-rank', '16', '--learning-rate', '1e-4']),
      ),
    ).toEqual([]);
    // A key given twice: JSON.parse keeps the last, and so does the line.
    const twice = tmpFile('{"epochs": 1,\n "epochs": 0}');
    expect(problems(readConfigFile(twice, () => {}))).toEqual([`${twice}:2: epochs must be > 0, got 0`]);
    // Keys of nested objects do not count: the notice, or a nested member's problem, names the top-level key's line.
    const notices: string[] = [];
    const n = tmpFile('{\n  "wandbConfig": {\n    "project": "p",\n    "epochs": 0\n  },\n  "epochs": 3\n}');
    expect(() => readConfigFile(n, () => {})).toThrow(
      `${n}:2: unknown field 'wandbConfig.epochs' (known: enabled, apiKey, project, entity, runId)`,
    );
    fs.writeFileSync(n, '{\n  "wandbConfig": {\n    "project": "epochs"\n  },\n  "epochs": 3\n}');
    expect(readConfigFile(n, (m) => notices.push(m))).toEqual({ epochs: 3 });
    expect(notices).toEqual([expect.stringMatching(new RegExp(`^${n}:2: 'wandbConfig' has no local meaning`))]);
  });

  it('loraAlpha: unset is 2 * loraRank; a given 0 is an error like any bad value; a bad rank is named alone', () => {
    expect(resolveConfig(flags(['--lora-rank', '4'])).loraAlpha).toBe(8);
    expect(resolveConfig({ loraRank: 16 }, flags(['--lora-alpha', '3'])).loraAlpha).toBe(3);
    expect(problems(flags(['--lora-alpha', '0']))).toEqual(['--lora-alpha: loraAlpha must be > 0, got 0']);
    expect(problems(flags(['--lora-alpha=-2']))).toEqual(['--lora-alpha: loraAlpha must be > 0, got -2']);
    expect(problems(configFromBody({ loraAlpha: 0 }, 'request', () => {}))).toEqual([
      'request: loraAlpha must be > 0, got 0',
    ]);
    const f = tmpFile('{\n  "loraAlpha": 0\n}\n');
    expect(problems(readConfigFile(f, () => {}))).toEqual([`${f}:2: loraAlpha must be > 0, got 0`]);
    expect(problems(flags(['--lora-rank', '0']))).toEqual([
      '--lora-rank: loraRank must be a power of 2 up to 32 (1, 2, 4, 8, 16, 32), got 0',
    ]);
    // null in a request body leaves it unset; a resolved config (resume, a serve job's config.json) keeps its alpha.
    expect(resolveConfig(configFromBody({ loraAlpha: null }, 'request', () => {})).loraAlpha).toBe(16);
    expect(resolveConfig(resolveConfig({ loraRank: 4 }), { threads: 2 }).loraAlpha).toBe(8);
  });

  it('bounds threads (libgomp crashes with tens of thousands)', () => {
    expect(resolveConfig(flags(['--threads', '1024'])).threads).toBe(1024);
    expect(() => resolveConfig(flags(['--threads', '100000']))).toThrow(
      new UserError('--threads: threads must be in [0, 1024] (0: every CPU; more only slow the kernels), got 100000'),
    );
  });

  it('keeps the context independent of the batch size (longer examples get their own row)', () => {
    expect(resolveConfig({ batchSize: 512 }).maxContextLength).toBe(32768);
    expect(resolveConfig({ batchSize: 512, maxContextLength: 1024 })).toMatchObject({
      batchSize: 512,
      maxContextLength: 1024,
    });
    expect(() => resolveConfig({ batchSize: 1 })).toThrow(/batchSize must be >= 2 tokens, got 1/);
  });

  it('takes --checkpoint-activations auto|on|off', () => {
    expect(resolveConfig().checkpointActivations).toBe('auto');
    expect(resolveConfig(configFromFlags({ 'checkpoint-activations': 'on' })).checkpointActivations).toBe('on');
    expect(() => configFromFlags({ 'checkpoint-activations': 'maybe' })).toThrow(/checkpoint-activations/);
  });

  it('names flags as firectl does', () => {
    const names = Object.keys(configFlagOptions());
    for (const f of [
      'epochs',
      'learning-rate',
      'learning-rate-warmup-steps',
      'gradient-accumulation-steps',
      'batch-size',
      'batch-size-samples',
      'lora-rank',
      'lora-alpha',
      'max-context-length',
      'evaluation-dataset',
      'eval-auto-carveout',
      'early-stop',
      'optimizer-weight-decay',
      'jinja-template',
      'warm-start-from',
      'display-name',
      'job-id',
      'seed',
      'backend',
      'threads',
      'base-model',
      'dataset',
      'output-model',
    ]) {
      expect(names).toContain(f);
    }
  });
});

describe('configs/ worked examples', () => {
  const dir = new URL('../../configs/', import.meta.url).pathname;
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    it(`${f} opens with its command and resolves`, () => {
      const first = fs.readFileSync(path.join(dir, f), 'utf8').split('\n')[0];
      expect(first).toMatch(new RegExp(`^// npx lorasft train --config configs/${f.replace('.', '\\.')}`));
      const notices: string[] = [];
      const c = resolveConfig(readConfigFile(path.join(dir, f), (m) => notices.push(m)));
      expect(c.epochs).toBeGreaterThan(0);
      if (f === 'rest-request-body.json') expect(notices).toHaveLength(4);
      else expect(notices).toEqual([]);
    });
  }
});
