// Where the native addon can be built here, the native tests must run: a missing or broken build is a failure,
// not 118 tests skipped in silence. "Can be built" = what kernels/install.mjs needs: a C++ compiler, make,
// node's headers next to this node, and OpenBLAS (libopenblas.so.0) for the kernels to load.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nativeAvailability } from '../../src/backend/native_backend.ts';

const onPath = (exe: string) => (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, exe)));
const LIB_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/usr/local/lib',
];
const openblas = () =>
  LIB_DIRS.some(
    (d) =>
      fs.existsSync(path.join(d, 'libopenblas.so.0')) ||
      fs.existsSync(path.join(d, 'openblas-pthread', 'libopenblas.so.0')),
  );
const headers = () => fs.existsSync(path.join(path.resolve(process.execPath, '../..'), 'include/node/node_api.h'));

/** Why the addon cannot be built on this machine, or '' when it can. */
function cannotBuild(): string {
  if (process.env.LORASFT_ALLOW_NO_NATIVE === '1') return 'LORASFT_ALLOW_NO_NATIVE=1';
  const missing = [
    !onPath('g++') && !onPath('c++') && 'a C++ compiler',
    !onPath('make') && 'make',
    !headers() && "node's headers",
    !openblas() && 'libopenblas.so.0',
  ].filter(Boolean);
  return missing.length ? `missing ${missing.join(', ')}` : '';
}

describe('native backend availability', () => {
  const why = cannotBuild();
  it(`the addon is built and loads with OpenBLAS wherever it can be built${why ? ` (not required here: ${why})` : ''}`, () => {
    const native = nativeAvailability();
    if (why) return; // the cpu fallback is what runs; the native tests say SKIPPED with the reason
    expect(native.ok, `${native.detail}: run \`node kernels/install.mjs\` (or bash scripts/setup.sh) to build it`).toBe(
      true,
    );
  });
});
