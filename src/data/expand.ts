// Reasoning expansion: which conversations a dataset row becomes, and which assistant turns each trains.
import type { ChatMessage } from './types.ts';

/** One conversation to render, and which of its assistant messages (indices) are trained. */
export interface Conversation {
  messages: ChatMessage[];
  trainTurns: number[];
  /** Messages follow the last trained turn: rendered (a template may render earlier turns differently when more
   * follows, as Qwen3 does), their tokens then cut (they train nothing and cannot change an earlier prediction). */
  tail?: boolean;
}

const trainedTurns = (messages: ChatMessage[]): number[] =>
  messages.flatMap((m, i) => (m.role === 'assistant' && m.weight !== 0 ? [i] : []));

/**
 * Reasoning expansion (seed guide): a conversation whose assistant turns carry reasoning_content becomes
 * one conversation per trained assistant turn k: messages[0..k] with reasoning_content removed from the
 * earlier assistant turns (at inference the model never sees its past thinking), tuning only turn k.
 * Without reasoning: the whole conversation, tuning every trained turn (as apply_chat_template renders it).
 */
export function expandConversation(messages: ChatMessage[]): Conversation[] {
  const turns = trainedTurns(messages);
  if (turns.length === 0) return [];
  if (!messages.some((m) => m.role === 'assistant' && m.reasoning_content)) {
    const tail = turns[turns.length - 1] < messages.length - 1;
    return [tail ? { messages, trainTurns: turns, tail } : { messages, trainTurns: turns }];
  }
  return turns.map((k) => ({
    messages: messages.slice(0, k + 1).map((m, i) => {
      if (i === k || m.reasoning_content === undefined) return m;
      const { reasoning_content: _drop, ...rest } = m;
      return rest;
    }),
    trainTurns: [k],
  }));
}
