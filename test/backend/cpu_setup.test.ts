// The CPU set-up around the kernels: OpenBLAS's kernel family chosen from the CPU's instruction sets (a model newer
// than the library would get its generic SSE3 kernels), and the idle-class spinners that keep the CPUs busy while
// a training loop runs (kernels/KeepAwake.cc).
import fs from 'node:fs';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadAddon, openblasCoreType } from '../../src/backend/addon.ts';
import { keepCpusAwake } from '../../src/backend/keep_awake.ts';

const cpu = (vendor: string, flags: string) =>
  `processor\t: 0\nvendor_id\t: ${vendor}\ncpu family\t: 6\nmodel\t\t: 207\nflags\t\t: fpu sse sse2 ${flags}\n\nprocessor\t: 1\n`;

describe('OpenBLAS kernel family', () => {
  it('follows the instruction sets on Intel, whatever the model number', () => {
    const avx512 = 'avx avx2 fma avx512f avx512dq avx512bw avx512vl';
    expect(openblasCoreType(cpu('GenuineIntel', `${avx512} avx512_bf16 amx_bf16`))).toBe('SkylakeX');
    expect(openblasCoreType(cpu('GenuineIntel', avx512))).toBe('SkylakeX');
    expect(openblasCoreType(cpu('GenuineIntel', 'avx avx2 fma avx512f'))).toBe('Haswell'); // no BW/DQ/VL
    expect(openblasCoreType(cpu('GenuineIntel', 'avx avx2 fma'))).toBe('Haswell');
  });
  it('leaves the choice to OpenBLAS on older CPUs, on AMD (chosen by family there) and off Linux', () => {
    expect(openblasCoreType(cpu('GenuineIntel', 'avx'))).toBeUndefined();
    expect(openblasCoreType(cpu('AuthenticAMD', 'avx avx2 fma avx512f avx512dq avx512bw avx512vl'))).toBeUndefined();
    expect(openblasCoreType('')).toBeUndefined();
  });
  it('is the one the loaded OpenBLAS runs here', () => {
    const info = loadAddon().addon?.info();
    const want = process.env.OPENBLAS_CORETYPE ?? openblasCoreType(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (!info?.available || !want || !info.core) return; // nothing to compare: no OpenBLAS, or no choice made
    expect(info.core).toBe(want);
  });
});

/** Threads of this process in the SCHED_IDLE class (policy 5 in /proc/self/task/TID/sched). */
function idleThreads(): number {
  return fs.readdirSync('/proc/self/task').filter((tid) => {
    const sched = fs.readFileSync(`/proc/self/task/${tid}/sched`, 'utf8');
    return /^policy\s*:\s*5$/m.test(sched);
  }).length;
}

async function until(f: () => boolean, ms = 5000): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 10))) if (f()) return true;
  return f();
}

describe('keepCpusAwake', () => {
  const addon = loadAddon().addon;
  it.runIf(addon && fs.existsSync('/proc/self/task'))(
    'runs one idle-class spinner per CPU until stopped, and none when turned off or sharing the CPUs',
    async () => {
      const n = os.availableParallelism();
      const saved = process.env.LORASFT_KEEP_AWAKE;
      try {
        delete process.env.LORASFT_KEEP_AWAKE;
        const stop = keepCpusAwake({ name: 'native', threads: n });
        expect(addon!.keepAwake()).toBe(n);
        expect(await until(() => idleThreads() === n)).toBe(true);
        keepCpusAwake({ name: 'native', threads: n })(); // a second start changes nothing (its stop does stop)
        expect(await until(() => addon!.keepAwake() === 0 && idleThreads() === 0)).toBe(true);
        stop();

        // Fewer threads than CPUs, another backend, or LORASFT_KEEP_AWAKE=0: no spinners; =1 forces them.
        keepCpusAwake({ name: 'native', threads: n - 1 });
        keepCpusAwake({ name: 'cpu', threads: 1 });
        process.env.LORASFT_KEEP_AWAKE = '0';
        keepCpusAwake({ name: 'native', threads: n });
        expect(addon!.keepAwake()).toBe(0);
        process.env.LORASFT_KEEP_AWAKE = '1';
        const forced = keepCpusAwake({ name: 'native', threads: 1 });
        expect(addon!.keepAwake()).toBe(n);
        forced();
        expect(await until(() => addon!.keepAwake() === 0)).toBe(true);
      } finally {
        if (saved === undefined) delete process.env.LORASFT_KEEP_AWAKE;
        else process.env.LORASFT_KEEP_AWAKE = saved;
        addon!.keepAwake(false);
      }
    },
  );
});
