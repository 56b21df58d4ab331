import { describe, expect, it, beforeAll } from 'vitest';
import { lorasft } from '../helpers/run.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadChatTokenizer } from '../../src/data/tokenizer.ts';
import { loadBaseModel } from '../../src/model/model.ts';
import { generate, pickToken } from '../../src/infer/generate.ts';
import { greedyNoCache } from '../helpers/index.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { makeFixture, randomAdapter, type Fixture } from '../train/fixture.ts';
import { readConversation, withTools } from '../../src/commands/generate.ts';

// A tool row whose numbers JSON.parse would print differently from Python's json.loads + json.dumps (1.0, a
// 20-digit id, 1.5e-07); its first assistant turn is context only, so training trains only the last one.
const TOOL_ROW =
  '{"tools":[{"type":"function","function":{"name":"set_temp","description":"Set the temperature",' +
  '"parameters":{"type":"object","properties":{"t":{"type":"number","default":1.0,"minimum":1.5e-07}}}}}],' +
  '"messages":[{"role":"user","content":"Set it to 21."},{"role":"assistant","weight":0,"tool_calls":' +
  '[{"type":"function","function":{"name":"set_temp","arguments":{"t":21.0,"id":12345678901234567890}}}]},' +
  '{"role":"tool","content":"ok"},{"role":"assistant","content":"Done."}]}';

let fx: Fixture;
let adapterDir: string;
beforeAll(async () => {
  fx = makeFixture(4, 3);
  adapterDir = await randomAdapter(fx, 'adapter', 2);
});

describe('generate', () => {
  it('greedy decoding with the KV cache equals recomputing the whole sequence', async () => {
    const base = await loadBaseModel(fx.model);
    const tok = await loadChatTokenizer(fx.model);
    const messages = [{ role: 'user' as const, content: 'What is 2 plus 3?' }];
    const g = generate(base, null, tok, messages, { maxNewTokens: 6, temperature: 0, topP: 1, seed: 0 });
    const prompt = tok.encode(tok.render(messages, { addGenerationPrompt: true }));
    expect(g.promptTokens).toBe(prompt.length);
    const ref = greedyNoCache(base, null, prompt, g.ids.length);
    expect(g.ids).toEqual(ref);
    expect(g.ids.length).toBeGreaterThan(0);
  });

  it('an end of turn as the first token is an empty completion (the tokenizer throws on no ids)', async () => {
    const dir = path.join(fx.root, 'eos-first');
    fs.cpSync(fx.model, dir, { recursive: true });
    // Every id ends the turn, so the first greedy token does.
    const vocab = (await loadChatTokenizer(fx.model)).vocabSize;
    const all = Array.from({ length: vocab }, (_, i) => i);
    fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: all }));
    const base = await loadBaseModel(dir);
    const tok = await loadChatTokenizer(dir);
    const g = generate(base, null, tok, [{ role: 'user', content: 'Hi' }], {
      maxNewTokens: 4,
      temperature: 0,
      topP: 1,
      seed: 0,
    });
    expect(g).toMatchObject({ ids: [], text: '', stop: 'eos' });
  });

  it('samples reproducibly from the seed, and top-p keeps only the nucleus', async () => {
    const logits = Float32Array.from([0, 3, 2.5, -1, 1]);
    const draw = (seed: number, t: number, p: number) =>
      Array.from(
        { length: 200 },
        (
          (r) => () =>
            pickToken(logits, t, p, r)
        )(mulberry32(seed)),
      );
    expect(draw(1, 1, 1)).toEqual(draw(1, 1, 1));
    expect(new Set(draw(1, 1, 1)).size).toBeGreaterThan(2);
    // p(1) = 0.52, p(2) = 0.31: top-p 0.6 keeps exactly {1, 2}.
    expect([...new Set(draw(2, 1, 0.6))].sort()).toEqual([1, 2]);
    expect(new Set(draw(3, 1, 0.1))).toEqual(new Set([1]));
    expect(pickToken(logits, 0, 1, Math.random)).toBe(1);
  });

  it('lorasft generate prints a completion, with and without an adapter', async () => {
    const r = await lorasft(['generate', '--adapter', adapterDir, '--prompt', 'Hello', '--max-new-tokens', '3']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/tokens, stopped at .*adapter/);
    const bad = await lorasft(['generate', '--base-model', fx.model]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('give exactly one of --prompt TEXT or --messages FILE');
    // --precision bf16 narrows the F32 checkpoint's linear weights to bf16 (as training would); a bad value: one line.
    const b16 = await lorasft([
      'generate',
      '--adapter',
      adapterDir,
      '--prompt',
      'Hello',
      '--max-new-tokens',
      '3',
      '--precision',
      'bf16',
    ]);
    expect(b16.status, b16.stderr).toBe(0);
    expect(b16.stderr).toMatch(/adapter .*; bf16 weights\)\n$/);
    const fp16 = await lorasft(['generate', '--base-model', fx.model, '--prompt', 'hi', '--precision', 'fp16']);
    expect([fp16.status, fp16.stderr]).toEqual([
      1,
      "error: --precision: must be one of auto, fp32, bf16, got 'fp16'\n",
    ]);
    const nodir = path.join(fx.root, 'nodir');
    const missing = await lorasft(['generate', '--adapter', nodir, '--prompt', 'hi']);
    expect(missing.stderr).toBe(
      `error: ${nodir}: no such directory (expected a PEFT adapter directory with adapter_config.json and adapter_model.safetensors for --adapter)\n`,
    );
  });

  it('--messages: checked by the dataset rules for messages, one line naming the file; --system only with --prompt', async () => {
    const file = path.join(fx.root, 'm.json');
    const cases: [unknown, string][] = [
      [[{ role: 'bot', content: 'hi' }], "messages[0]: unknown role 'bot' (expected system, user, assistant or tool)"],
      [
        {
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'system', content: 'be brief' },
          ],
        },
        'messages[1]: a system message is only allowed as the first message',
      ],
      [
        [{ role: 'tool', content: '{}' }],
        'messages[0]: a tool message must follow an assistant message with tool_calls (or another tool message)',
      ],
      [[{ role: 'user' }], 'messages[0].content is missing (only an assistant message with tool_calls may omit it)'],
      [
        [
          { role: 'user', content: 5 },
          { role: 'robot', content: 'x' },
        ],
        'messages[0].content must be a string or a list of text parts, got a number (and 1 more problem(s))',
      ],
      [[], 'expected a non-empty array of messages (or an object with "messages")'],
    ];
    for (const [value, msg] of cases) {
      fs.writeFileSync(file, JSON.stringify(value));
      const r = await lorasft(['generate', '--adapter', adapterDir, '--messages', file]);
      expect([r.status, r.stderr]).toEqual([1, `error: ${file}: ${msg}\n`]);
    }
    // A JSONL dataset: its first line, named by its line number.
    const jsonl = path.join(fx.root, 'm.jsonl');
    fs.writeFileSync(jsonl, JSON.stringify({ messages: [{ role: 'bot', content: 'hi' }] }) + '\n{}\n');
    const l = await lorasft(['generate', '--adapter', adapterDir, '--messages', jsonl]);
    expect(l.stderr).toBe(
      `error: ${jsonl}:1: messages[0]: unknown role 'bot' (expected system, user, assistant or tool)\n`,
    );
    // --system is not silently dropped next to --messages.
    fs.writeFileSync(file, JSON.stringify([{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]));
    const sys = await lorasft(['generate', '--adapter', adapterDir, '--messages', file, '--system', 'be brief']);
    expect([sys.status, sys.stderr]).toEqual([
      1,
      'error: --system: only with --prompt; with --messages FILE, make it the first message in FILE\n',
    ]);
    // A valid conversation (a system message first, content as text parts) is generated from.
    fs.writeFileSync(
      file,
      JSON.stringify([
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      ]),
    );
    const ok = await lorasft(['generate', '--adapter', adapterDir, '--messages', file, '--max-new-tokens', '2']);
    expect(ok.status, ok.stderr).toBe(0);
  });

  it('--messages: renders the prompt training renders for the same row (root tools, numbers as json.loads reads them)', async () => {
    const tok = await loadChatTokenizer(fx.model);
    const file = path.join(fx.root, 'tools.jsonl');
    fs.writeFileSync(file, TOOL_ROW + '\n');
    const pv = await lorasft(['preview', '--base-model', fx.model, file, '--json']);
    expect(pv.status, pv.stderr).toBe(0);
    const ex = JSON.parse(pv.stdout) as { input_ids: number[]; weights: number[] };
    // Training's context before its trained (last) turn: what generate must prompt with.
    const context = ex.input_ids.slice(
      0,
      ex.weights.findIndex((w) => w !== 0),
    );
    const conv = readConversation(file);
    const prompt = withTools(tok, conv.tools).render(conv.messages, { addGenerationPrompt: true });
    expect(prompt).toContain('"default": 1.0, "minimum": 1.5e-07');
    expect(prompt).toContain('{"t": 21.0, "id": 12345678901234567890}');
    expect(tok.encode(prompt)).toEqual(context);
    const base = await loadBaseModel(fx.model);
    const g = generate(base, null, withTools(tok, conv.tools), conv.messages, {
      maxNewTokens: 1,
      temperature: 0,
      topP: 1,
      seed: 0,
    });
    expect(g.promptTokens).toBe(context.length);
    // Bad tools: one line naming the file, as validate words it.
    fs.writeFileSync(
      file,
      TOOL_ROW.replace(
        '"type":"function","function":{"name":"set_temp","desc',
        '"type":"fn","function":{"name":"set_temp","desc',
      ),
    );
    const bad = await lorasft(['generate', '--adapter', adapterDir, '--messages', file]);
    expect([bad.status, bad.stderr]).toEqual([1, `error: ${file}: tools[0].type must be "function", got "fn"\n`]);
    // The same messages as a bare array (no tools): the arguments keep their numbers too.
    fs.writeFileSync(file, TOOL_ROW.slice(TOOL_ROW.indexOf('[{"role"'), -1));
    const bare = readConversation(file);
    expect(bare.tools).toBeUndefined();
    expect(tok.render(bare.messages)).toContain('{"t": 21.0, "id": 12345678901234567890}');
  });
});
