// Backend choice: native when the addon + OpenBLAS load, else a one-line warning and 'cpu' (never a crash).
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/run.ts';
import * as fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/backend/index.ts';
import { nativeAvailability } from '../../src/backend/native_backend.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const native = nativeAvailability();

/** Runs initBackend in a fresh process (env decides what the addon can load) and returns its JSON + stderr. */
async function initIn(env: Record<string, string>, opts = '{}') {
  const code = `import { initBackend } from './src/backend/index.ts';
    const r = await initBackend(${opts}); const tf = await import('@tensorflow/tfjs-core');
    const y = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync();
    console.log(JSON.stringify({ ...r, y: Array.from(y) }));`;
  const p = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { status: p.status, out: p.stdout.trim().split('\n').pop() ?? '', err: p.stderr };
}

describe('initBackend', () => {
  it('rejects an unknown backend name with a user error', async () => {
    await expect(initBackend({ backend: 'gpu9000' })).rejects.toThrow(/unknown backend 'gpu9000'/);
  });

  it('--backend cpu gives cpu', async () => {
    const r = await initBackend({ backend: 'cpu' });
    expect(r.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('falls back to cpu with one warning line when OpenBLAS is missing', async () => {
    const r = await initIn({ LORASFT_OPENBLAS: '/nonexistent/libopenblas.so.0' });
    expect(r.status).toBe(0);
    const res = JSON.parse(r.out);
    expect(res.name).toBe('cpu');
    expect(res.y).toEqual([3, 3, 3, 3]);
    const warnings = r.err.split('\n').filter((l) => l.startsWith('warning:'));
    expect(warnings.length).toBe(1);
    // Without the addon the message says so instead of naming OpenBLAS.
    expect(warnings[0]).toMatch(native.ok ? /OpenBLAS|nonexistent/ : /addon/);
    console.log(warnings[0]);
  });

  it('falls back to cpu with one warning line when the addon is missing', async () => {
    const r = await initIn({ LORASFT_ADDON: '/nonexistent/lorasft_native.node' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.out).name).toBe('cpu');
    const warnings = r.err.split('\n').filter((l) => l.startsWith('warning:'));
    expect(warnings).toEqual([expect.stringMatching(/native addon not built.*using 'cpu'/)]);
    // The build command it prints runs from any directory: npm runs kernels/install.mjs there with its node-gyp
    // (`node kernels/install.mjs` needs the repo as cwd and node-gyp on PATH).
    expect(warnings[0]).toContain(`build it with: cd ${ROOT} && npm run install)`);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: { install: string };
    };
    expect(pkg.scripts.install).toBe('node kernels/install.mjs');
  });

  it.skipIf(!native.ok)(
    `picks native by default (${native.ok ? 'addon present' : 'SKIPPED: ' + native.detail})`,
    async () => {
      const r = await initBackend({ threads: 2 });
      expect(r.name).toBe('native');
      expect(r.reason).toMatch(/OpenBLAS .*, 2 threads/);
      expect(tf.getBackend()).toBe('native');
      console.log(`backend: ${r.name} (${r.reason})`);
    },
  );

  it.skipIf(!native.ok)('re-registers every cpu kernel for native', async () => {
    await initBackend({});
    const cpu = new Set(tf.getKernelsForBackend('cpu').map((k) => k.kernelName));
    const nat = new Set(tf.getKernelsForBackend('native').map((k) => k.kernelName));
    for (const k of cpu) expect(nat.has(k), k).toBe(true);
  });
});
