import { describe, expect, it } from 'vitest';
import { expandConversation } from '../../src/data/expand.ts';
import type { ChatMessage } from '../../src/data/types.ts';

const U = (content: string): ChatMessage => ({ role: 'user', content });
const A = (content: string, more: Partial<ChatMessage> = {}): ChatMessage => ({ role: 'assistant', content, ...more });

describe('expandConversation', () => {
  it('without reasoning: the whole conversation, every trained turn, marked when messages follow the last', () => {
    const msgs = [
      { role: 'system', content: 's' } as ChatMessage,
      U('a'),
      A('b'),
      U('c'),
      A('d', { weight: 0 }),
      U('e'),
      A('f'),
      U('trailing'),
    ];
    expect(expandConversation(msgs)).toEqual([{ messages: msgs, trainTurns: [2, 6], tail: true }]);
    expect(expandConversation(msgs.slice(0, 7))).toEqual([{ messages: msgs.slice(0, 7), trainTurns: [2, 6] }]);
  });

  it('with reasoning: one conversation per trained turn, earlier reasoning removed, the tuned turn keeps its own', () => {
    const msgs = [
      U('a'),
      A('b', { reasoning_content: 'r1' }),
      U('c'),
      A('d', { reasoning_content: 'r2', weight: 0 }),
      U('e'),
      A('f', { reasoning_content: 'r3' }),
    ];
    const out = expandConversation(msgs);
    expect(out.map((c) => c.trainTurns)).toEqual([[1], [5]]);
    expect(out[0].messages).toEqual([U('a'), A('b', { reasoning_content: 'r1' })]);
    expect(out[1].messages).toEqual([
      U('a'),
      A('b'),
      U('c'),
      A('d', { weight: 0 }),
      U('e'),
      A('f', { reasoning_content: 'r3' }),
    ]);
    expect(msgs[1].reasoning_content).toBe('r1'); // input untouched
  });

  it('one turn with reasoning is enough to expand; no trained turn gives nothing', () => {
    expect(expandConversation([U('a'), A('b'), U('c'), A('d', { reasoning_content: 'r' })]).length).toBe(2);
    expect(expandConversation([U('a'), A('b', { weight: 0 })])).toEqual([]);
  });
});
