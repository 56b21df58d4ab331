// ChatTokenizer: the model dir's tokenizer (@huggingface/tokenizers, the tokenizer library transformers.js builds
// on, without its ONNX runtime) plus its chat template. Needs only tokenizer.json + tokenizer_config.json in the dir.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../errors.ts';
import { readJsonObject, requireDir } from '../util/files.ts';
import { createChatTemplate, readTemplateOverride, type RenderOptions } from './template.ts';
import type { ChatMessage } from './types.ts';

export interface ChatTokenizer {
  dir: string;
  /** Token ids of `text`; special tokens written in the text (`<|im_start|>`) become their ids; no BOS/EOS added. */
  encode(text: string): number[];
  /** Text of `ids`, special tokens included, no clean-up of spaces (so decode(encode(s)) == s). */
  decode(ids: number[]): string;
  /** The chat template rendered for `messages` (throws UserError('chat template error: ...')). */
  render(messages: ChatMessage[], opts?: RenderOptions): string;
  /** Ids that end an assistant turn or the text: eos_token, generation_config / config eos ids, known end-of-turn tokens. */
  eosTokenIds: number[];
  /** The same tokens as text (`<|im_end|>`, `<|eot_id|>`, ...). */
  endOfTurnTokens: string[];
  vocabSize: number;
  bosTokenId?: number;
  padTokenId?: number;
  /** Where the chat template came from: the tokenizer_config.json path, chat_template.jinja, or the override. */
  templateSource: string;
}

/** Special tokens that end a chat turn in common templates (used when present in the vocab). */
const END_OF_TURN = [
  '<|im_end|>',
  '<|eot_id|>',
  '<|eom_id|>',
  '<end_of_turn>',
  '<|end|>',
  '<|endoftext|>',
  '<|end_of_text|>',
  '</s>',
  '<|return|>',
  '<|call|>',
];

const tokenText = (v: unknown): string | undefined =>
  typeof v === 'string'
    ? v
    : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string'
      ? (v as { content: string }).content
      : undefined;

/** An optional JSON object file of the model dir (undefined when absent). */
function readJson(file: string): Record<string, unknown> | undefined {
  return fs.existsSync(file) ? readJsonObject(file) : undefined;
}

const idList = (v: unknown): number[] =>
  typeof v === 'number' ? [v] : Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];

/** Load the tokenizer of `modelDir` and its chat template (or `opts.jinjaTemplate`: a file path or template text). */
export async function loadChatTokenizer(
  modelDir: string,
  opts: { jinjaTemplate?: string } = {},
): Promise<ChatTokenizer> {
  const dir = path.resolve(modelDir);
  requireDir(modelDir, 'a model or tokenizer directory with tokenizer.json and tokenizer_config.json');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    if (!fs.existsSync(path.join(dir, f)))
      throw new UserError(
        `${path.join(dir, f)}: not found (the model dir needs tokenizer.json and tokenizer_config.json)`,
      );
  }
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const cfg = readJson(cfgFile)!;
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(
      readJsonObject(path.join(dir, 'tokenizer.json'), 'expected a Hugging Face tokenizers file'),
      cfg,
    );
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(
      `${path.join(dir, 'tokenizer.json')}: cannot load this tokenizer (${(e as Error).message}); expected a Hugging Face tokenizers file`,
    );
  }

  const special: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    const t = tokenText(cfg[key]);
    if (t) special[key] = t;
  }
  const { chatTemplate, templateSource, isFile } = findChatTemplate(
    dir,
    cfgFile,
    cfg.chat_template,
    opts.jinjaTemplate,
  );
  const template = createChatTemplate(chatTemplate, special, templateSource, { sourceIsFile: isFile });

  const vocab = tok.get_vocab(true);
  const idOf = (t: string): number | undefined => vocab.get(t);
  let maxId = -1;
  for (const id of vocab.values()) maxId = Math.max(maxId, id);
  const added = tok.get_added_tokens_decoder();
  const addedSpecial = new Set([...added.values()].filter((t) => t.special).map((t) => t.content));

  const eos = new Set<number>();
  const eosText = special.eos_token;
  if (eosText !== undefined && idOf(eosText) !== undefined) eos.add(idOf(eosText)!);
  for (const f of ['generation_config.json', 'config.json'])
    for (const id of idList(readJson(path.join(dir, f))?.eos_token_id)) eos.add(id);
  for (const t of END_OF_TURN) if (addedSpecial.has(t) && idOf(t) !== undefined) eos.add(idOf(t)!);
  const eosTokenIds = [...eos].sort((a, b) => a - b);

  return {
    dir,
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }),
    render: (messages, o) => template.render(messages, o),
    eosTokenIds,
    endOfTurnTokens: eosTokenIds
      .map((id) => tok.decode([id], { skip_special_tokens: false }))
      .filter((s) => s.length > 0),
    vocabSize: maxId + 1,
    bosTokenId: special.bos_token !== undefined ? idOf(special.bos_token) : undefined,
    padTokenId: special.pad_token !== undefined ? idOf(special.pad_token) : undefined,
    templateSource,
  };
}

/** The chat template: --jinja-template, else tokenizer_config.json's chat_template, else chat_template.jinja. */
function findChatTemplate(
  dir: string,
  cfgFile: string,
  fromConfig: unknown,
  override: string | undefined,
): { chatTemplate: unknown; templateSource: string; isFile: boolean } {
  if (override !== undefined) {
    const o = readTemplateOverride(override);
    return { chatTemplate: o.text, templateSource: o.source, isFile: o.isFile };
  }
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  if (fromConfig === undefined && fs.existsSync(jinjaFile))
    return { chatTemplate: fs.readFileSync(jinjaFile, 'utf8'), templateSource: jinjaFile, isFile: true };
  if (fromConfig === undefined || fromConfig === null) {
    throw new UserError(
      `${cfgFile}: no chat_template (and no chat_template.jinja next to it); pass one with --jinja-template FILE`,
    );
  }
  return { chatTemplate: fromConfig, templateSource: cfgFile, isFile: false };
}
