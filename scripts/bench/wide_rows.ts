// Where the widened products (kernels/Dnnl.cc runWide, Intel CPUs without AMX) start to pay: y = x W^T with W bf16
// [N, K] through the addon's matMulBf16 on each product path, for row counts M from a generated token's (1) to a
// training step's, 16 weights in turn (so W comes from memory, as in a step). Microseconds per product, the two
// paths alternated twice. On a CPU whose path is not chosen by the rule, both still run (the override).
//   LORASFT_WIDE_MIN_ROWS=1 npx tsx scripts/bench/wide_rows.ts [--threads 2]   (1: widen at any M; the default 32)
import { loadAddon } from '../../src/backend/addon.ts';
import { flag } from '../bench-shapes.ts';

const { addon, error } = loadAddon();
if (!addon) throw new Error(error);
if (!addon.bf16Info().dnnl) throw new Error(`oneDNN is not in use: ${addon.bf16Info().error}`);
addon.setThreads(Number(flag('--threads', '2')));
const shapes = [1, 4, 16, 32, 64, 512].map((M) => [M, 3072, 1024]).concat([[1, 1024, 3072]]);
for (const [M, N, K] of shapes) {
  const x = new Float32Array(M * K).fill(0.5),
    y = new Float32Array(M * N);
  const Ws = Array.from({ length: 16 }, () => new Int32Array((N * K) / 2).fill(0x3c003c00));
  const res: string[] = [];
  for (const p of ['onednn-bf16', 'onednn-f32', 'onednn-bf16', 'onednn-f32'] as const) {
    addon.setBf16Path(p);
    addon.matMulBf16(x, Ws[0], y, M, N, K, true);
    const reps = Math.max(16, Math.round(20000 / M));
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) addon.matMulBf16(x, Ws[r % 16], y, M, N, K, true);
    res.push(`${p.slice(7)} ${(((performance.now() - t0) / reps) * 1000).toFixed(0)}`);
  }
  addon.setBf16Path('onednn');
  console.log(`${M}x${K} . ${K}x${N}: ${res.join(', ')} us`);
}
