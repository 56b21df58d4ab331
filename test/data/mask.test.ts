import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderWithSpans, tokenizeWithSpans } from '../../src/data/mask.ts';
import { templateOmissions } from '../../src/data/pipeline.ts';
import { createChatTemplate } from '../../src/data/template.ts';
import type { ChatTokenizer } from '../../src/data/tokenizer.ts';
import type { ChatMessage } from '../../src/data/types.ts';

/** A character tokenizer with one special token `<E>` (id 1000) and one merge, "ab" (id 2000). */
function fakeTokenizer(template: string): ChatTokenizer {
  const tpl = createChatTemplate(template, {}, 'fake');
  return {
    dir: '/fake',
    encode(text) {
      const ids: number[] = [];
      for (let i = 0; i < text.length;) {
        if (text.startsWith('<E>', i)) {
          ids.push(1000);
          i += 3;
        } else if (text.startsWith('ab', i)) {
          ids.push(2000);
          i += 2;
        } else ids.push(text.charCodeAt(i++));
      }
      return ids;
    },
    decode: (ids) => ids.map((id) => (id === 1000 ? '<E>' : id === 2000 ? 'ab' : String.fromCharCode(id))).join(''),
    render: (m, o) => tpl.render(m, o),
    eosTokenIds: [1000],
    endOfTurnTokens: ['<E>'],
    vocabSize: 2001,
    templateSource: 'fake',
  };
}

const CHAT =
  '{% for m in messages %}{{ m.role }}:{{ m.content }}<E>\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';
const msgs: ChatMessage[] = [
  { role: 'user', content: 'hi' },
  { role: 'assistant', content: 'yo' },
  { role: 'user', content: 'x' },
  { role: 'assistant', content: 'zz' },
];

describe('renderWithSpans', () => {
  it('spans run from after the generation prompt through the end-of-turn token, not the newline after it', () => {
    const tok = fakeTokenizer(CHAT);
    const { text, spans } = renderWithSpans(msgs, [1, 3], tok);
    expect(text).toBe('user:hi<E>\nassistant:yo<E>\nuser:x<E>\nassistant:zz<E>\n');
    expect(spans.map(([a, b]) => text.slice(a, b))).toEqual(['yo<E>', 'zz<E>']);
  });

  it('without an end-of-turn token the whole added text is trained', () => {
    const tok = fakeTokenizer(
      '{% for m in messages %}{{ m.role }}:{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}',
    );
    const { text, spans } = renderWithSpans(msgs.slice(0, 2), [1], tok);
    expect(spans.map(([a, b]) => text.slice(a, b))).toEqual(['yo\n']);
  });

  it('a turn rendered differently once later messages follow is taken from the full render up to its end-of-turn token', () => {
    // Like Qwen3: only the last assistant turn gets a "<think></think>" block.
    const tok = fakeTokenizer(
      "{% for m in messages %}{{ m.role }}:{% if m.role == 'assistant' and loop.last %}<think></think>{% endif %}{{ m.content }}<E>\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
    );
    const { text, spans } = renderWithSpans(msgs, [1, 3], tok);
    expect(spans.map(([a, b]) => text.slice(a, b))).toEqual(['yo<E>', '<think></think>zz<E>']);
  });

  it('a template whose prefix renders are not prefixes of the whole: the turns are found by their content', () => {
    const tok = fakeTokenizer('{{ messages|length }}' + CHAT);
    const r = renderWithSpans(msgs, [1, 3], tok);
    expect(r.spans.map(([a, b]) => r.text.slice(a, b))).toEqual(['yo<E>', 'zz<E>']);
    expect(r.byContent).toMatch(/^chat template breaks the prefix property: messages\[0\.\.1\) rendered/);
    // Content that appears in an earlier message first is looked for after that message only.
    const echo: ChatMessage[] = [
      { role: 'user', content: 'say yo' },
      { role: 'assistant', content: 'yo' },
    ];
    const e = renderWithSpans(echo, [1], tok);
    expect(e.text.slice(...e.spans[0])).toBe('yo<E>');
    expect(e.spans[0][0]).toBe(e.text.indexOf('assistant:') + 'assistant:'.length);
  });

  it('rejects a template whose prefix renders are not prefixes of the whole when a turn is not found by content', () => {
    const tok = fakeTokenizer(
      '{{ messages|length }}{% for m in messages %}{{ m.role }}:{{ m.content|upper }}<E>\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}',
    );
    expect(() => renderWithSpans(msgs, [1], tok)).toThrowError(
      /^chat template breaks the prefix property: messages\[0\.\.1\) rendered with the generation prompt is not a prefix of the whole conversation \(they differ at character 0: "1user:HI<E>\\nassistant:" vs "4user:HI/,
    );
  });

  it("Mistral-Nemo's template (the system message only before a final user message): turns by content, the system message reported", () => {
    const fx = JSON.parse(
      fs.readFileSync(path.join(import.meta.dirname, '../fixtures/templates/mistral_nemo.json'), 'utf8'),
    );
    const tpl = createChatTemplate(fx.chat_template, fx.special_tokens, 'mistral_nemo');
    const tok = { render: tpl.render, endOfTurnTokens: ['</s>'] } as unknown as ChatTokenizer;
    const conv: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Capital of France?' },
      { role: 'assistant', content: 'Paris.' },
      { role: 'user', content: 'And Spain?' },
      { role: 'assistant', content: 'Madrid.' },
    ];
    const r = renderWithSpans(conv, [2, 4], tok);
    expect(r.text).toBe('<s>[INST]Capital of France?[/INST]Paris.</s>[INST]And Spain?[/INST]Madrid.</s>');
    expect(r.spans.map(([a, b]) => r.text.slice(a, b))).toEqual(['Paris.</s>', 'Madrid.</s>']);
    expect(templateOmissions({ messages: conv, trainTurns: [2, 4] }, r.text, r.spans)).toEqual([
      'the system message 0',
    ]);
    // The system message's words inside the user message, and the answer's too: the turn is the occurrence that
    // ends its turn (followed by </s>), not the one inside the user message.
    const echo: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Be brief. Say Paris.' },
      { role: 'assistant', content: 'Paris.' },
    ];
    const e = renderWithSpans(echo, [2], tok);
    expect(e.text).toBe('<s>[INST]Be brief. Say Paris.[/INST]Paris.</s>');
    expect(e.spans).toEqual([[e.text.length - 'Paris.</s>'.length, e.text.length]]);
    // Without a system message the prefixes hold: the usual path, the same spans.
    const plain = renderWithSpans(conv.slice(1), [1, 3], tok);
    expect(plain.byContent).toBeUndefined();
    expect(plain.spans.map(([a, b]) => plain.text.slice(a, b))).toEqual(['Paris.</s>', 'Madrid.</s>']);
  });
});

describe('tokenizeWithSpans', () => {
  it('uses per-segment tokenization when it matches the full tokenization', () => {
    const tok = fakeTokenizer(CHAT);
    const { text, spans } = renderWithSpans(msgs, [1, 3], tok);
    const m = tokenizeWithSpans(text, spans, tok);
    expect(m.method).toBe('segments');
    expect(tok.decode(m.ids.filter((_, i) => m.trained[i]))).toBe('yo<E>zz<E>');
  });

  it('falls back to decode offsets when a token crosses a boundary, training the straddling token', () => {
    const tok = fakeTokenizer(
      "{% for m in messages %}{{ m.role }}:{% if m.role == 'assistant' %}a{% endif %}{{ m.content }}<E>\n{% endfor %}{% if add_generation_prompt %}assistant:a{% endif %}",
    );
    const conv: ChatMessage[] = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'bc' },
    ];
    const { text, spans } = renderWithSpans(conv, [1], tok);
    expect(text.slice(...spans[0])).toBe('bc<E>');
    const m = tokenizeWithSpans(text, spans, tok);
    expect(m.method).toBe('decode');
    expect(m.ids).toEqual(tok.encode(text));
    expect(tok.decode(m.ids.filter((_, i) => m.trained[i]))).toBe('abc<E>'); // "ab" straddles the boundary
    expect(tokenizeWithSpans(text, [[0, 3]], tok, { forceDecode: true }).trained.slice(0, 4)).toEqual(
      Uint8Array.from([1, 1, 1, 0]),
    );
  });
});
