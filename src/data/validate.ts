// Dataset validation: stream a JSONL file line by line, check every row (row.ts) and the
// dataset-level rules (3 <= examples <= 3M, examples x epochs <= 3M, root weight on all rows or none).
import { UserError, at } from '../errors.ts';
import { requireFile } from '../util/files.ts';
import { parseRowJson } from './json_row.ts';
import { firstInvalidUtf8, readLines } from './jsonl.ts';
import { checkMessages, checkRow } from './row.ts';
import type { ChatMessage, DatasetExample } from './types.ts';

const MIN_EXAMPLES = 3;
const MAX_EXAMPLES = 3_000_000;
/** Cap on examples x epochs. */
export const MAX_EXAMPLE_EPOCHS = 3_000_000;

export interface ValidateOptions {
  /** When given, examples x epochs must be <= 3M. */
  epochs?: number;
  /** Problems kept (and printed) before the rest are only counted. Default 100. */
  maxProblems?: number;
  /** Apply the 3..3M example-count rule (default true; `preview` turns it off). */
  checkCount?: boolean;
  /** Lines longer than this are rejected without being buffered. Default 256 MiB. */
  maxLineBytes?: number;
  /** Keep the parsed examples in the result (default true; `validate` only needs the stats). */
  keepExamples?: boolean;
}

interface DatasetStats {
  examples: number;
  messages: number;
  assistantTurns: number;
  /** Assistant turns that are trained (message weight absent or 1). */
  trainedTurns: number;
  /** Assistant turns with weight 0 (context only). */
  contextOnlyTurns: number;
  withReasoning: number;
  withTools: number;
  toolCalls: number;
  /** Root sample weights, when the dataset uses them. */
  sampleWeights: { min: number; max: number } | null;
}

export interface ValidationResult {
  file: string;
  /** The valid examples (empty when `keepExamples` is false). */
  examples: DatasetExample[];
  /** The first `maxProblems` problems, each `FILE:LINE: message`. */
  problems: string[];
  /** All problems, including those not kept. */
  problemCount: number;
  stats: DatasetStats;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `invalid JSON` with the parser's reason, a short excerpt, and a hint for NaN / Infinity. */
function jsonProblem(text: string, e: Error): string {
  const reason = e.message
    .replace(/\s+/g, ' ')
    .replace(/, (\.\.\.)?".*" is not valid JSON$/s, '')
    .slice(0, 120);
  // NaN / Infinity outside strings: a rough check is enough for a hint.
  const hint = /[:\[,]\s*-?(NaN|Infinity)\s*[,\]}]/.test(text) ? ' (NaN and Infinity are not valid JSON numbers)' : '';
  return `invalid JSON: ${reason}${hint}`;
}

/** Validate `file`; collects every problem (keeping the first `maxProblems`) instead of stopping at one. */
export function validateDataset(file: string, opts: ValidateOptions = {}): ValidationResult {
  requireFile(file, 'expected a .jsonl dataset');
  const maxProblems = opts.maxProblems ?? 100;
  const res: ValidationResult = {
    file,
    examples: [],
    problems: [],
    problemCount: 0,
    stats: {
      examples: 0,
      messages: 0,
      assistantTurns: 0,
      trainedTurns: 0,
      contextOnlyTurns: 0,
      withReasoning: 0,
      withTools: 0,
      toolCalls: 0,
      sampleWeights: null,
    },
  };
  const problem = (line: number | undefined, msg: string) => addProblem(res, at(file, line, msg), maxProblems);
  const withWeight: number[] = [];
  const withoutWeight: number[] = [];
  let rows = 0;
  for (const raw of readLines(file, { maxLineBytes: opts.maxLineBytes })) {
    const parsed = parseLine(raw, opts.maxLineBytes);
    if (parsed.row) rows++;
    if (parsed.problem !== undefined) {
      problem(raw.line, parsed.problem);
      continue;
    }
    const value = parsed.value;
    const { example, problems } = checkRow(value, raw.line);
    for (const p of problems) problem(raw.line, p);
    if (!example) continue;
    example.file = file;
    (example.weight === undefined ? withoutWeight : withWeight).push(raw.line);
    countExample(res.stats, example);
    if (opts.keepExamples ?? true) res.examples.push(example);
  }

  // Root weight: if any row has it, every row must. Report the rows of the smaller group.
  if (withWeight.length > 0 && withoutWeight.length > 0) {
    const missing = withoutWeight.length <= withWeight.length;
    for (const line of missing ? withoutWeight : withWeight) {
      problem(
        line,
        missing
          ? `root "weight" is missing, but ${withWeight.length} other row(s) have one (if any row has a weight, every row must)`
          : `root "weight" is set here, but ${withoutWeight.length} other row(s) have none (if any row has a weight, every row must)`,
      );
    }
  }
  if (opts.checkCount ?? true) {
    if (rows < MIN_EXAMPLES) problem(undefined, `${rows} example(s); a dataset needs at least ${MIN_EXAMPLES}`);
    if (rows > MAX_EXAMPLES) problem(undefined, `${rows} examples; a dataset may hold at most ${MAX_EXAMPLES}`);
  }
  if (opts.epochs !== undefined && rows * opts.epochs > MAX_EXAMPLE_EPOCHS) {
    problem(
      undefined,
      `${rows} examples x ${opts.epochs} epochs = ${rows * opts.epochs} exceeds the limit of ${MAX_EXAMPLE_EPOCHS} (lower epochs to ${Math.floor((MAX_EXAMPLE_EPOCHS / rows) * 100) / 100} or less)`,
    );
  }
  return res;
}

/** One line as JSON: its value or the problem with it; `row` says whether it counts as an example (blank lines do not). */
function parseLine(
  raw: { bytes: Uint8Array | null; length: number },
  maxLineBytes?: number,
): { row: boolean; value?: unknown; problem?: string } {
  if (raw.bytes === null)
    return {
      row: true,
      problem: `line is ${raw.length} bytes, longer than the ${maxLineBytes ?? 256 * 1024 * 1024}-byte limit`,
    };
  let text: string;
  try {
    text = utf8.decode(raw.bytes);
  } catch {
    const off = firstInvalidUtf8(raw.bytes);
    return {
      row: true,
      problem: `invalid UTF-8 at byte ${off + 1} of the line (0x${raw.bytes[off]?.toString(16).padStart(2, '0')}); save the file as UTF-8`,
    };
  }
  if (text.trim() === '')
    return { row: false, problem: 'blank line (every line must hold one JSON example; remove empty lines)' };
  if (text.charCodeAt(0) === 0xfeff)
    return { row: true, problem: 'stray byte-order mark (U+FEFF) at the start of the line' };
  try {
    return { row: true, value: parseRowJson(text) };
  } catch (e) {
    return { row: true, problem: jsonProblem(text, e as Error) };
  }
}

/** Add one valid example to the dataset's statistics. */
function countExample(s: ValidationResult['stats'], example: DatasetExample): void {
  s.examples++;
  s.messages += example.messages.length;
  for (const m of example.messages) {
    if (m.role !== 'assistant') continue;
    s.assistantTurns++;
    if (m.weight === 0) s.contextOnlyTurns++;
    else s.trainedTurns++;
    s.toolCalls += m.tool_calls?.length ?? 0;
  }
  if (example.messages.some((m) => m.reasoning_content)) s.withReasoning++;
  if (example.tools?.length) s.withTools++;
  if (example.weight !== undefined) {
    const w = s.sampleWeights ?? { min: Infinity, max: -Infinity };
    s.sampleWeights = { min: Math.min(w.min, example.weight), max: Math.max(w.max, example.weight) };
  }
}

/** Record one more problem (already `FILE:LINE: msg`), keeping at most `maxProblems` of them. */
export function addProblem(res: ValidationResult, msg: string, maxProblems = 100): void {
  if (res.problems.length < maxProblems) res.problems.push(msg);
  res.problemCount++;
}

/** Problems as printed by the CLI: one per line, then `... and N more` when capped. */
export function formatProblems(res: ValidationResult): string {
  const more = res.problemCount - res.problems.length;
  return res.problems.join('\n') + (more > 0 ? `\n... and ${more} more problem(s) (${res.problemCount} in all)` : '');
}

/**
 * Validated examples of `file`, or a UserError: the one `FILE:LINE: problem` line when there is one, else the
 * count and one line per problem (capped, as validate prints them).
 */
export function loadDataset(file: string, opts: ValidateOptions = {}): DatasetExample[] {
  const res = validateDataset(file, opts);
  if (res.problemCount === 1 && res.problems.length === 1) throw new UserError(res.problems[0]);
  if (res.problemCount > 0) {
    throw new UserError(`${file}: ${res.problemCount} problems in the dataset:\n${formatProblems(res)}`);
  }
  return res.examples;
}

/**
 * The messages of one conversation given outside a dataset (`generate --messages`): a JSON array of messages or an
 * object with "messages", each checked by the dataset's rules for a row's messages (no trained turn needed).
 * A problem is one UserError line `FILE[:LINE]: messages[i]: ...`.
 */
export function checkConversation(value: unknown, file: string, line?: number): ChatMessage[] {
  const msgs = Array.isArray(value) ? value : (value as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(msgs) || msgs.length === 0)
    throw new UserError(at(file, line, 'expected a non-empty array of messages (or an object with "messages")'));
  const problems: string[] = [];
  const messages = checkMessages(msgs, problems);
  if (!messages) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : '';
    throw new UserError(at(file, line, problems[0] + more));
  }
  return messages;
}
