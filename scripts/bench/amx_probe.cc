// amx_probe.cc: what this CPU's AMX tile unit does with bf16 operands, from registers and from each cache level.
// For docs/BENCHMARKS.md (bf16, runs h): the linear layers' products run at oneDNN's ~1.1-1.3 TFLOP/s while the
// tile multiply itself does ~3.4 TFLOP/s per core; this shows where the rest goes.
//   g++ -O2 -fopenmp -o /tmp/amx_probe scripts/bench/amx_probe.cc && /tmp/amx_probe
// Each line: GFLOP/s of the 2 x 2 tile block every bf16 GEMM on AMX is built from (C tiles 0-3 accumulate,
// per 32-wide step of K two A tiles and two B tiles are loaded, four multiplies), with A and B streamed from
// buffers of the given sizes (a 16 KB buffer stays in L1, 256 KB in L2, 4 MB goes to L3), on 1 and 2 threads.
#include <immintrin.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "amx_tiles.h"
constexpr double kStepFlops = 4.0 * 16 * 16 * 32 * 2;  // four 16 x 16 x 32 multiply-adds

// Seconds for `steps` block steps, A and B cycling through buffers of aBytes and bBytes (0: no loads at all).
double run(long steps, size_t aBytes, size_t bBytes) {
  std::vector<uint16_t> A(aBytes / 2 + 1024, 0x3f80), B(bBytes / 2 + 1024, 0x3f80);  // bf16 1.0
  const size_t na = aBytes / 2048, nb = bBytes / 2048;  // 2 KB: two tiles per step
  _tile_loadconfig(&kTiles);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, A.data(), 64);
  _tile_loadd(5, A.data() + 512, 64);
  _tile_loadd(6, B.data(), 64);
  _tile_loadd(7, B.data() + 512, 64);
  const auto t0 = std::chrono::steady_clock::now();
  for (long s = 0, ia = 0, ib = 0; s < steps; s++) {
    if (na) {
      const uint16_t *a = A.data() + ia * 1024, *b = B.data() + ib * 1024;
      _tile_loadd(4, a, 64);
      _tile_loadd(6, b, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_loadd(7, b + 512, 64);
      _tile_dpbf16ps(1, 4, 7);
      _tile_loadd(5, a + 512, 64);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
      ia = ia + 1 == (long)na ? 0 : ia + 1;
      ib = ib + 1 == (long)nb ? 0 : ib + 1;
    } else {
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  _tile_release();
  return t;
}

int main() {
  if (!grantTiles()) {
    std::printf("no AMX tile state granted (CPU without AMX, or an old kernel)\n");
    return 1;
  }
  const struct { const char* what; size_t a, b; } cases[] = {
      {"no loads (tile registers only)", 0, 0},
      {"A and B from L1 (16 KB each)", 16 << 10, 16 << 10},
      {"A from L1, B from L2 (256 KB)", 16 << 10, 256 << 10},
      {"A and B from L2 (256 KB each)", 256 << 10, 256 << 10},
      {"A and B from L3 (4 MB each)", 4 << 20, 4 << 20},
  };
  const long steps = 4000000;
  for (const auto& c : cases)
    for (int threads = 1; threads <= 2; threads++) {
      double slowest = 0;
#pragma omp parallel num_threads(threads) reduction(max : slowest)
      {
        syscall(SYS_arch_prctl, 0x1023, 18);
        slowest = run(steps, c.a, c.b);
      }
      std::printf("%-34s %d thread%s: %6.0f GFLOP/s\n", c.what, threads, threads > 1 ? "s" : " ",
                  steps * kStepFlops * threads / slowest / 1e9);
    }
}
