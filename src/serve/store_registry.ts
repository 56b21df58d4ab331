// ModelRegistry over the service's store (issue 11's `model` rows): a base model row holds its HF dir in
// meta.dir; a LoRA model row (kind HF_PEFT_ADDON) holds its adapter dir in meta.dir and names its base model in
// body.peftDetails.baseModel. Typed structurally, so any store with get('model', name) fits.
import type { ModelFiles, ModelRegistry } from '../infer/registry.ts';

export interface ModelRows {
  get(kind: 'model', name: string): { body: Record<string, unknown>; meta: Record<string, unknown> } | undefined;
}

export class StoreModelRegistry implements ModelRegistry {
  constructor(private readonly store: ModelRows) {}

  getModel(name: string): ModelFiles | undefined {
    const r = this.store.get('model', name);
    if (!r || typeof r.meta.dir !== 'string') return undefined;
    if (r.body.kind !== 'HF_PEFT_ADDON')
      return { name, kind: 'HF_BASE_MODEL', baseModel: name, baseModelDir: r.meta.dir, adapterDir: null };
    const baseName = (r.body.peftDetails as { baseModel?: unknown } | undefined)?.baseModel;
    const base = typeof baseName === 'string' ? this.store.get('model', baseName) : undefined;
    // An addon whose base model is no longer registered cannot be deployed: reported as not found.
    if (!base || typeof base.meta.dir !== 'string') return undefined;
    return {
      name,
      kind: 'HF_PEFT_ADDON',
      baseModel: baseName as string,
      baseModelDir: base.meta.dir,
      adapterDir: r.meta.dir,
    };
  }
}
