// Where a deployment finds a model's files: the service resolves a model resource name
// (`accounts/{account}/models/{id}`) to a base model dir and, for a fine-tuned LoRA model, its adapter dir.
// The REST service implements ModelRegistry over its store; InMemoryRegistry serves a fixed set (tests, the
// standalone inference server).
import * as path from 'node:path';

export interface ModelFiles {
  /** Resource name, `accounts/{account}/models/{id}`. */
  name: string;
  /** HF_BASE_MODEL: full weights; HF_PEFT_ADDON: a LoRA adapter on `baseModel`. */
  kind: 'HF_BASE_MODEL' | 'HF_PEFT_ADDON';
  /** The base model's resource name (an addon's base; a base model's own name). */
  baseModel: string;
  /** Local HF model dir of the base weights (config.json, safetensors, tokenizer). */
  baseModelDir: string;
  /** Local PEFT adapter dir (adapter_config.json + adapter_model.safetensors); null for a base model. */
  adapterDir: string | null;
}

export interface ModelRegistry {
  /** The model's files, or undefined when no model has this name. */
  getModel(name: string): ModelFiles | undefined | Promise<ModelFiles | undefined>;
}

export class InMemoryRegistry implements ModelRegistry {
  private readonly models = new Map<string, ModelFiles>();

  /** Registers a base model dir under `name`. */
  addBase(name: string, dir: string): ModelFiles {
    const m: ModelFiles = {
      name,
      kind: 'HF_BASE_MODEL',
      baseModel: name,
      baseModelDir: path.resolve(dir),
      adapterDir: null,
    };
    this.models.set(name, m);
    return m;
  }

  /** Registers an adapter dir under `name`, as a LoRA on the registered base model `baseName`. */
  addAdapter(name: string, baseName: string, adapterDir: string): ModelFiles {
    const base = this.models.get(baseName);
    if (!base || base.kind !== 'HF_BASE_MODEL') throw new Error(`base model ${baseName} is not registered`);
    const m: ModelFiles = {
      name,
      kind: 'HF_PEFT_ADDON',
      baseModel: baseName,
      baseModelDir: base.baseModelDir,
      adapterDir: path.resolve(adapterDir),
    };
    this.models.set(name, m);
    return m;
  }

  getModel(name: string): ModelFiles | undefined {
    return this.models.get(name);
  }

  list(): ModelFiles[] {
    return [...this.models.values()];
  }
}
