// `lorasft preview --base-model DIR DATA.jsonl [--jinja-template F] [--max-context-length N] [--json]`:
// the training examples exactly as the trainer sees them (rendered, tokenized, masked, expanded, truncated).
import { UserError } from '../errors.ts';
import { numberFlag, parseFlags } from '../util/args.ts';
import { requireJsonlName } from '../util/files.ts';
import { loadDataset } from '../data/validate.ts';
import { loadChatTokenizer, type ChatTokenizer } from '../data/tokenizer.ts';
import { DEFAULT_MAX_CONTEXT_LENGTH, buildExamples } from '../data/pipeline.ts';
import type { TokenizedExample } from '../data/types.ts';

const HELP = `usage: lorasft preview --base-model DIR DATA.jsonl [--jinja-template F] [--max-context-length N] [--json]

Shows every training example after chat-template rendering, tokenization, loss masking, reasoning
expansion and truncation. DIR needs only tokenizer.json and tokenizer_config.json.

  --base-model DIR          model (or tokenizer) directory
  --jinja-template F        chat template file to use instead of the model's
  --max-context-length N    truncate examples to N tokens (default ${DEFAULT_MAX_CONTEXT_LENGTH})
  --json                    one line per example: {"line", "input_ids", "weights"}, where weights[i] is
                            the loss weight of predicting input_ids[i] (0 = not trained)

Without --json, trained spans are highlighted (colour on a terminal, ⟦...⟧ otherwise) and the
token counts go to stderr.`;

/** The example's text with trained runs marked: ANSI colour (with the weight) or ⟦...⟧ brackets. */
export function highlight(ex: TokenizedExample, tok: ChatTokenizer, color: boolean): string {
  let out = '';
  let i = 0;
  while (i < ex.inputIds.length) {
    const w = ex.weights[i];
    let j = i + 1;
    while (j < ex.inputIds.length && (ex.weights[j] !== 0) === (w !== 0)) j++;
    const text = tok.decode(ex.inputIds.slice(i, j));
    if (w === 0) out += color ? `\x1b[2m${text}\x1b[0m` : text;
    else out += color ? `\x1b[1;32m${text}\x1b[0m` : `⟦${text}⟧`;
    i = j;
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('preview', argv, {
    'base-model': { type: 'string' },
    'jinja-template': { type: 'string' },
    'max-context-length': { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values['base-model'])
    throw new UserError('lorasft preview: --base-model DIR is required (see lorasft preview --help)');
  if (positionals.length !== 1)
    throw new UserError(
      `lorasft preview: expected one dataset file, got ${positionals.length} (see lorasft preview --help)`,
    );
  const maxContextLength =
    numberFlag('max-context-length', values['max-context-length'], { integer: true, min: 2 }) ??
    DEFAULT_MAX_CONTEXT_LENGTH;
  // `lorasft preview ... | head`: a closed pipe ends the preview quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
  const file = positionals[0];
  requireJsonlName(file);
  const dataset = loadDataset(file, { checkCount: false });
  if (dataset.length === 0) throw new UserError(`${file}: no examples to preview (the file is empty)`);
  const tok = await loadChatTokenizer(values['base-model'], { jinjaTemplate: values['jinja-template'] });
  const { examples, stats } = buildExamples(dataset, tok, {
    maxContextLength,
    warn: (m) => console.error(`warning: ${m}`),
  });

  if (values.json) {
    for (const ex of examples)
      process.stdout.write(`${JSON.stringify({ line: ex.line, input_ids: ex.inputIds, weights: ex.weights })}\n`);
    return 0;
  }
  const color = !!process.stdout.isTTY && !process.env.NO_COLOR;
  examples.forEach((ex, n) => {
    const trained = ex.weights.filter((w) => w !== 0).length;
    const w = ex.weights.find((x) => x !== 0);
    const header = `── ${file}:${ex.line} · example ${n + 1}/${examples.length} · ${ex.inputIds.length} tokens · ${trained} trained${w !== undefined && w !== 1 ? ` · weight ${w}` : ''} ──`;
    console.log(`${n ? '\n' : ''}${color ? `\x1b[36m${header}\x1b[0m` : header}`);
    console.log(highlight(ex, tok, color));
  });
  console.error(
    `${dataset.length} dataset rows -> ${stats.examples} training examples; raw tokens ${stats.rawTokens}, tuned tokens ${stats.tunedTokens}, trained tokens ${stats.trainedTokens}` +
      (stats.truncated ? `; ${stats.truncated} truncated to ${maxContextLength}` : '') +
      (stats.dropped ? `; ${stats.dropped} dropped` : ''),
  );
  return 0;
}
