// A deployment: one base model loaded once (weights, tokenizer, chat template) with any number of LoRA adapters
// loaded on it by name. Requests name their adapter (or none); all of them share one Engine, so requests for
// different adapters are decoded in the same batch. Unloading an adapter in use frees it when its last request ends.
import { loadChatTokenizer, type ChatTokenizer } from '../data/tokenizer.ts';
import type { ChatMessage } from '../data/types.ts';
import { UserError } from '../errors.ts';
import { disposeBaseModel, loadBaseModel, type BaseModel } from '../model/model.ts';
import { loraFromTensors, type LoraWeights } from '../model/lora.ts';
import { modelPrecision, type Precision } from '../model/precision.ts';
import { loadAdapter } from '../model/peft.ts';
import { Engine, type EngineOptions, type SubmitOptions } from './engine.ts';
import type { Completion, SamplingParams } from './sequence.ts';

/** Chat messages, raw text, or token ids taken as they are (the completions API's token-array prompt). */
export type Prompt = { messages: ChatMessage[] } | { text: string } | { ids: number[] };

export class Deployment {
  private readonly adapters = new Map<string, LoraWeights>();
  /** Unloaded adapters still used by requests in flight. */
  private readonly retired = new Set<LoraWeights>();
  readonly engine: Engine;
  /** Longest prompt + completion, in tokens (the model's max_position_embeddings). */
  readonly maxContext: number;

  private constructor(
    readonly base: BaseModel,
    readonly tokenizer: ChatTokenizer,
    opts: EngineOptions,
  ) {
    this.engine = new Engine(
      base,
      { decode: (ids) => tokenizer.decode(ids), eos: new Set(tokenizer.eosTokenIds) },
      opts,
    );
    this.maxContext = base.config.maxPositionEmbeddings;
  }

  /**
   * Loads the base model dir (HF format with tokenizer) once, in `precision` (default: auto, as a training run
   * resolves it: bf16 weights for a bf16 checkpoint on a CPU with native bf16). The backend must be initialised.
   */
  static async load(baseDir: string, opts: EngineOptions = {}, precision?: Precision): Promise<Deployment> {
    const tokenizer = await loadChatTokenizer(baseDir);
    const base = await loadBaseModel(baseDir, { precision: precision ?? modelPrecision(baseDir) });
    return new Deployment(base, tokenizer, opts);
  }

  get baseDir(): string {
    return this.base.dir;
  }

  adapterNames(): string[] {
    return [...this.adapters.keys()];
  }

  hasAdapter(name: string): boolean {
    return this.adapters.has(name);
  }

  /** Loads a PEFT adapter dir under `name` (replacing one of that name); its shapes must fit the base model. */
  loadLora(name: string, adapterDir: string): void {
    // The adapter's base_model_name_or_path is not compared: dirs move; the shapes decide (loraFromTensors).
    const a = loadAdapter(adapterDir);
    const lora = loraFromTensors(this.base, a.lora, a.cfg, adapterDir);
    this.unloadLora(name);
    this.adapters.set(name, lora);
  }

  /** Removes an adapter; returns false when none of that name is loaded. */
  unloadLora(name: string): boolean {
    const lora = this.adapters.get(name);
    if (!lora) return false;
    this.adapters.delete(name);
    if (this.engine.uses(lora)) this.retired.add(lora);
    else lora.dispose();
    return true;
  }

  /**
   * Token ids of a prompt: chat messages through the chat template with the generation prompt, raw text, or
   * ids (no BOS added: the caller chose them); checked here as complete() checks them, so a server can refuse a
   * prompt before it starts a stream.
   */
  encode(prompt: Prompt): number[] {
    const ids =
      'messages' in prompt
        ? this.encodeChat(prompt.messages)
        : 'text' in prompt
          ? this.encodeText(prompt.text)
          : this.checkVocab(prompt.ids);
    this.checkPrompt(ids);
    return ids;
  }

  /** Ids from the caller must index the embedding [V, C]: refused here, before a stream starts, not at prefill. */
  private checkVocab(ids: number[]): number[] {
    const V = this.base.config.vocabSize;
    const i = ids.findIndex((id) => !Number.isSafeInteger(id) || id < 0 || id >= V);
    if (i >= 0) throw new UserError(`token id ${ids[i]} at index ${i} is not in the model's vocabulary [0, ${V})`);
    return ids;
  }

  /** Text of token ids, special tokens included (what the completions API's `echo` shows of a token prompt). */
  decode(ids: number[]): string {
    return this.tokenizer.decode(this.checkVocab(ids));
  }

  private encodeChat(messages: ChatMessage[]): number[] {
    return this.tokenizer.encode(this.tokenizer.render(messages, { addGenerationPrompt: true }));
  }

  private encodeText(text: string): number[] {
    const ids = this.tokenizer.encode(text);
    const bos = this.tokenizer.bosTokenId;
    return bos !== undefined && ids[0] !== bos && this.base.config.bosTokenId === bos ? [bos, ...ids] : ids;
  }

  /** A prompt that is empty, or leaves no room in the context for one token, is the caller's error. */
  private checkPrompt(promptIds: number[]): void {
    if (promptIds.length === 0) throw new UserError('the prompt is empty');
    if (this.maxContext - promptIds.length < 1)
      throw new UserError(`the prompt has ${promptIds.length} tokens; the model's context is ${this.maxContext}`);
  }

  /**
   * Runs one completion with adapter `adapter` (null: the base model). max_tokens is capped so prompt +
   * completion fit the context; a prompt that alone does not fit is a UserError.
   */
  async complete(
    promptIds: number[],
    adapter: string | null,
    params: SamplingParams,
    opts: SubmitOptions = {},
  ): Promise<Completion> {
    const lora = adapter === null ? null : this.adapters.get(adapter);
    if (lora === undefined) throw new UserError(`adapter '${adapter}' is not loaded on this deployment`);
    this.checkPrompt(promptIds);
    const room = this.maxContext - promptIds.length;
    try {
      return await this.engine.submit(
        promptIds,
        lora,
        { ...params, maxTokens: Math.min(params.maxTokens, room) },
        opts,
      );
    } finally {
      for (const l of this.retired) {
        if (!this.engine.uses(l)) {
          l.dispose();
          this.retired.delete(l);
        }
      }
    }
  }

  /** Cancels the requests in flight, waits for the engine to settle them, then frees the weights. */
  async close(): Promise<void> {
    await this.engine.cancelAll();
    this.dispose();
  }

  private dispose(): void {
    for (const l of [...this.adapters.values(), ...this.retired]) l.dispose();
    this.adapters.clear();
    this.retired.clear();
    disposeBaseModel(this.base);
  }
}
