// `lorasft validate FILE.jsonl [--epochs N] [--max-problems N] [--base-model DIR ...]`: check a dataset against
// the managed-job rules and, with a model, that its chat template renders and masks every example.
import { UserError } from '../errors.ts';
import { numberFlag, parseFlags } from '../util/args.ts';
import { requireJsonlName } from '../util/files.ts';
import { addProblem, formatProblems, validateDataset } from '../data/validate.ts';
import { loadChatTokenizer } from '../data/tokenizer.ts';
import { DEFAULT_MAX_CONTEXT_LENGTH, buildExamples, type BuildStats } from '../data/pipeline.ts';

const HELP = `usage: lorasft validate FILE.jsonl [--epochs N] [--max-problems N]
                        [--base-model DIR [--jinja-template F] [--max-context-length N]]

Checks every line of a JSONL chat dataset against the managed-job rules (messages, roles, content,
message weight 0/1, root weight on all rows or none, tools/tool_calls, reasoning_content,
3 <= examples <= 3,000,000, examples x epochs <= 3,000,000). Prints every problem as FILE:LINE: message
and exits 1, or prints a summary and exits 0.

  --epochs N              also check examples x N <= 3,000,000
  --max-problems N        problems to print before only counting the rest (default 100)
  --base-model DIR        also render, tokenize and mask every example with this model's tokenizer and
                          chat template (DIR needs tokenizer.json + tokenizer_config.json) and count tokens
  --jinja-template F      chat template to use instead of the model's (with --base-model)
  --max-context-length N  truncation length for the token counts (default ${DEFAULT_MAX_CONTEXT_LENGTH})`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('validate', argv, {
    epochs: { type: 'string' },
    'max-problems': { type: 'string' },
    'base-model': { type: 'string' },
    'jinja-template': { type: 'string' },
    'max-context-length': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UserError(
      `lorasft validate: expected one dataset file, got ${positionals.length} (see lorasft validate --help)`,
    );
  const epochs = numberFlag('epochs', values.epochs, { above: 0 });
  const maxProblems = numberFlag('max-problems', values['max-problems'], { integer: true, min: 1 });
  const maxContextLength =
    numberFlag('max-context-length', values['max-context-length'], { integer: true, min: 2 }) ??
    DEFAULT_MAX_CONTEXT_LENGTH;
  const baseModel = values['base-model'];
  for (const flag of ['jinja-template', 'max-context-length'] as const)
    if (!baseModel && values[flag] !== undefined) throw new UserError(`--${flag}: needs --base-model DIR`);
  const file = positionals[0];
  requireJsonlName(file);
  const res = validateDataset(file, { epochs, maxProblems, keepExamples: !!baseModel });

  let tokens: BuildStats | undefined;
  if (baseModel) {
    const tok = await loadChatTokenizer(baseModel, { jinjaTemplate: values['jinja-template'] });
    tokens = buildExamples(res.examples, tok, {
      maxContextLength,
      warn: (m) => console.error(`warning: ${m}`),
      onError: (m) => addProblem(res, m, maxProblems),
    }).stats;
  }
  if (res.problemCount > 0) {
    console.error(formatProblems(res));
    console.error(`${file}: INVALID: ${res.problemCount} problem(s)`);
    return 1;
  }
  const s = res.stats;
  const lines = [
    `${file}: OK`,
    `  examples:               ${s.examples}`,
    `  messages:               ${s.messages}`,
    `  assistant turns:        ${s.assistantTurns} (${s.trainedTurns} trained, ${s.contextOnlyTurns} context only with weight 0)`,
    `  with reasoning_content: ${s.withReasoning} examples (expanded to one training example per trained turn)`,
    `  with tools:             ${s.withTools} examples, ${s.toolCalls} tool calls`,
    `  sample weights:         ${s.sampleWeights ? `on every row, ${s.sampleWeights.min} .. ${s.sampleWeights.max}` : 'not used'}`,
  ];
  if (epochs !== undefined) lines.push(`  examples x epochs:      ${s.examples * epochs} (limit 3000000)`);
  if (tokens) {
    lines.push(
      `  training examples:      ${tokens.examples} (after reasoning expansion${tokens.dropped ? `; ${tokens.dropped} dropped by truncation` : ''})`,
      `  tokens:                 raw ${tokens.rawTokens}, tuned ${tokens.tunedTokens}, trained ${tokens.trainedTokens}${tokens.truncated ? ` (${tokens.truncated} examples truncated to ${maxContextLength})` : ''}`,
    );
  }
  console.log(lines.join('\n'));
  return 0;
}
