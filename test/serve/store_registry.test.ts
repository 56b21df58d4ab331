import { describe, expect, it } from 'vitest';
import { StoreModelRegistry, type ModelRows } from '../../src/serve/store_registry.ts';

describe('StoreModelRegistry', () => {
  it("resolves the service store's model rows to base and adapter dirs", () => {
    const rows = new Map<string, { body: Record<string, unknown>; meta: Record<string, unknown> }>([
      [
        'accounts/fireworks/models/qwen3-0p6b',
        { body: { kind: 'HF_BASE_MODEL' }, meta: { dir: '/m/qwen', imported: true } },
      ],
      [
        'accounts/me/models/ft',
        {
          body: { kind: 'HF_PEFT_ADDON', peftDetails: { baseModel: 'accounts/fireworks/models/qwen3-0p6b' } },
          meta: { dir: '/data/models/me/ft' },
        },
      ],
      [
        'accounts/me/models/orphan',
        { body: { kind: 'HF_PEFT_ADDON', peftDetails: { baseModel: 'accounts/x/models/gone' } }, meta: { dir: '/d' } },
      ],
    ]);
    const store: ModelRows = { get: (_kind, name) => rows.get(name) };
    const reg = new StoreModelRegistry(store);
    expect(reg.getModel('accounts/me/models/ft')).toEqual({
      name: 'accounts/me/models/ft',
      kind: 'HF_PEFT_ADDON',
      baseModel: 'accounts/fireworks/models/qwen3-0p6b',
      baseModelDir: '/m/qwen',
      adapterDir: '/data/models/me/ft',
    });
    expect(reg.getModel('accounts/fireworks/models/qwen3-0p6b')).toMatchObject({
      kind: 'HF_BASE_MODEL',
      baseModelDir: '/m/qwen',
      adapterDir: null,
    });
    expect(reg.getModel('accounts/me/models/orphan')).toBeUndefined();
    expect(reg.getModel('accounts/me/models/none')).toBeUndefined();
  });
});
