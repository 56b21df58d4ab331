import { loadAddon } from './src/backend/addon.ts';
const A: any = loadAddon().addon;
A.setThreads(2);
const [M, N, K] = [2048, 1024, 1024];
function mk(kind: string) {
  const x = new Float32Array(M * K), W = new Int32Array((N * K) / 2);
  if (kind.includes('xc')) x.fill(0.5); else for (let i = 0; i < x.length; i++) x[i] = Math.random();
  if (kind.includes('wc')) W.fill(0x3c003c00); else for (let i = 0; i < W.length; i++) W[i] = ((0x3c00 + (Math.random() * 255)) | 0) * 65537;
  return { x, W };
}
const y = new Float32Array(M * N);
for (const kind of process.argv.slice(2)) {
  const { x, W } = mk(kind);
  const ts: number[] = [];
  for (let i = 0; i < 25; i++) { const t0 = performance.now(); A.matMulBf16(x, W, y, M, N, K, !kind.includes("nt")); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b);
  console.log(kind, 'best', (2 * M * N * K / ts[0] / 1e6).toFixed(0), 'median', (2 * M * N * K / ts[12] / 1e6).toFixed(0));
}
