// Typed stages of the data pipeline: validate -> render -> tokenize/mask -> expand -> truncate -> pack.

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface ToolCall {
  id?: string;
  type: 'function';
  function: { name: string; arguments: string | Record<string, unknown> };
}

/** One message after validation: content normalised to a string (text parts concatenated). */
export interface ChatMessage {
  role: Role;
  content: string;
  /** 0 = context only (not trained); 1 or absent = trained (assistant turns only). */
  weight?: 0 | 1;
  reasoning_content?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  name?: string;
}

/** One validated dataset row. `line` is the 1-based source line in the JSONL file. */
export interface DatasetExample {
  line: number;
  /** Source file, for `FILE:LINE:` messages in later stages (set by loadDataset). */
  file?: string;
  messages: ChatMessage[];
  tools?: unknown[];
  /** Root sample weight: multiplies the loss of every trained token (any finite float). */
  weight?: number;
}

/**
 * One training example after render + tokenize + mask (+ expansion, truncation).
 * weights[i] is the loss weight of predicting inputIds[i] from the prefix inputIds[0..i-1]
 * (0 = not trained), i.e. HF "unshifted labels" with a per-label weight. Same length as inputIds.
 */
export interface TokenizedExample {
  line: number;
  /** Source file (copied from the DatasetExample when known). */
  file?: string;
  inputIds: number[];
  weights: number[];
}

/**
 * One packed row of at most batchSize tokens holding one or more examples back to back.
 * positionIds restart at 0 in each segment; segmentIds number the examples in the row (0, 1, ...).
 * weights follow the TokenizedExample convention (weight of predicting inputIds[i]); the first
 * token of every segment has weight 0 since nothing in its own segment predicts it.
 */
export interface PackedRow {
  inputIds: Int32Array;
  weights: Float32Array;
  positionIds: Int32Array;
  segmentIds: Int32Array;
  /** Indices into the TokenizedExample[] that was packed, in row order. */
  examples: number[];
}
