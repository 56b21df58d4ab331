// `lorasft generate`: chat with a base model, optionally with a trained adapter, to see what training changed.
import { UserError, at } from '../errors.ts';
import { parseFlags } from '../util/args.ts';
import { readTextFile } from '../util/files.ts';
import { initBackend } from '../backend/index.ts';
import { parseRowJson } from '../data/json_row.ts';
import { readTools } from '../data/row.ts';
import { loadChatTokenizer, type ChatTokenizer } from '../data/tokenizer.ts';
import type { ChatMessage } from '../data/types.ts';
import { checkConversation } from '../data/validate.ts';
import { loadBaseModel } from '../model/model.ts';
import { modelPrecision, precisionFlag } from '../model/precision.ts';
import { loraFromTensors } from '../model/lora.ts';
import { checkAdapterBase, loadAdapter } from '../model/peft.ts';
import { generate } from '../infer/generate.ts';
import { adapterBaseModel, requireAdapterDir, requireModelDir } from '../util/paths.ts';

const HELP = `usage: lorasft generate [--base-model DIR] [--adapter OUT_DIR] (--prompt TEXT | --messages FILE) [flags]

  --base-model DIR       HF model dir (default: the adapter's base_model_name_or_path)
  --adapter DIR          PEFT adapter dir (a lorasft train OUT_DIR or checkpoint); without it: the base model alone
  --prompt TEXT          one user message
  --system TEXT          a system message before it (only with --prompt; in a --messages FILE it is the first message)
  --messages FILE        a JSON array of {role, content} messages, or a JSON object / JSONL line with "messages"
                         (and "tools"), read and checked as lorasft validate reads a row's; the tools are rendered
                         as in training; a last assistant message is dropped
  --max-new-tokens N     default 64
  --temperature T        default 0 (greedy); > 0 samples
  --top-p P              nucleus sampling mass, default 1
  --seed S               sampling seed, default 0
  --jinja-template T     chat template (file or text) instead of the model's
  --precision P          auto (default: bf16 for a bf16 checkpoint on a CPU with native bf16, as training), fp32, bf16
  --backend NAME, --threads N`;

function num(v: string | undefined, name: string, def: number, check: (n: number) => boolean, what: string): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || !check(n)) throw new UserError(`--${name}: expected ${what}, got '${v}'`);
  return n;
}

/** What `generate` renders: the messages and a row's root `tools`. */
export interface Conversation {
  messages: ChatMessage[];
  tools?: unknown[];
}

/**
 * The conversation in `file`, read as training reads a dataset row (json_row.ts: numbers in tools and arguments
 * keep their Python text) and checked by the dataset's rules for messages and root `tools`.
 */
export function readConversation(file: string): Conversation {
  const text = readTextFile(file, 'expected a JSON array of messages, or a JSON / JSONL file with "messages"').trim();
  let j: unknown;
  let line: number | undefined;
  try {
    j = parseRowJson(text);
  } catch (e) {
    try {
      j = parseRowJson(text.split('\n')[0]); // a JSONL dataset: its first example
      line = 1;
    } catch {
      throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
    }
  }
  const msgs = checkConversation(j, file, line);
  const problems: string[] = [];
  const rawTools = Array.isArray(j) ? undefined : (j as { tools?: unknown }).tools;
  const tools = rawTools === undefined || rawTools === null ? undefined : readTools(rawTools, problems);
  if (problems.length) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : '';
    throw new UserError(at(file, line, problems[0] + more));
  }
  // A trailing assistant turn would be the answer to predict: generate it instead.
  return { messages: msgs[msgs.length - 1].role === 'assistant' ? msgs.slice(0, -1) : msgs, tools };
}

/** `tok` rendering every conversation with `tools`, as training renders a row with root tools (pipeline.ts). */
export function withTools(tok: ChatTokenizer, tools: unknown[] | undefined): ChatTokenizer {
  return tools ? { ...tok, render: (messages, o) => tok.render(messages, { ...o, tools }) } : tok;
}

export async function run(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags('generate', argv, {
    'base-model': { type: 'string' },
    adapter: { type: 'string' },
    prompt: { type: 'string' },
    system: { type: 'string' },
    messages: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    'jinja-template': { type: 'string' },
    precision: { type: 'string' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length)
    throw new UserError(`lorasft generate: unexpected argument '${positionals[0]}' (did you mean --prompt?)`);
  if (!v.prompt === !v.messages)
    throw new UserError('lorasft generate: give exactly one of --prompt TEXT or --messages FILE');
  if (v.system !== undefined && v.messages)
    throw new UserError('--system: only with --prompt; with --messages FILE, make it the first message in FILE');
  const opts = {
    maxNewTokens: num(
      v['max-new-tokens'],
      'max-new-tokens',
      64,
      (n) => Number.isInteger(n) && n >= 1,
      'a positive integer',
    ),
    temperature: num(v.temperature, 'temperature', 0, (n) => n >= 0, 'a number >= 0'),
    topP: num(v['top-p'], 'top-p', 1, (n) => n > 0 && n <= 1, 'a number in (0, 1]'),
    seed: num(v.seed, 'seed', 0, (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer'),
  };
  const precision = precisionFlag(v.precision ?? 'auto');
  const threads =
    v.threads === undefined
      ? undefined
      : num(v.threads, 'threads', 0, (n) => Number.isInteger(n) && n >= 1, 'a positive integer');

  const conv: Conversation = v.messages
    ? readConversation(v.messages)
    : {
        messages: [
          ...(v.system ? [{ role: 'system' as const, content: v.system }] : []),
          { role: 'user', content: v.prompt! },
        ],
      };
  // The adapter dir is checked first: when it is missing, that is the problem, not the base model it would name.
  if (v.adapter) requireAdapterDir(v.adapter, '--adapter');
  if (!v['base-model'] && !v.adapter)
    throw new UserError('lorasft generate: give --base-model DIR, --adapter ADIR, or both');
  const baseDir = v['base-model'] ?? adapterBaseModel(v.adapter!, '--adapter');
  requireModelDir(baseDir, '--base-model');
  const adapter = v.adapter ? loadAdapter(v.adapter) : null;
  if (adapter) checkAdapterBase(v.adapter!, adapter, baseDir);
  await initBackend({ backend: v.backend, threads });
  const tok = withTools(await loadChatTokenizer(baseDir, { jinjaTemplate: v['jinja-template'] }), conv.tools);
  const base = await loadBaseModel(baseDir, { precision: modelPrecision(baseDir, precision) });
  const lora = adapter ? loraFromTensors(base, adapter.lora, adapter.cfg, v.adapter!) : null;
  const g = generate(base, lora, tok, conv.messages, { ...opts, onText: (s) => process.stdout.write(s) });
  process.stdout.write('\n');
  process.stderr.write(
    `(${g.ids.length} tokens, stopped at ${g.stop === 'eos' ? 'end of turn' : `--max-new-tokens ${opts.maxNewTokens}`}; ${lora ? `adapter ${v.adapter}` : 'base model only'}${base.precision === 'bf16' ? '; bf16 weights' : ''})\n`,
  );
  return 0;
}
