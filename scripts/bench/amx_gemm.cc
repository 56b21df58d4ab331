// amx_gemm.cc: would hand-written AMX tile products beat oneDNN on the bf16 attention kernel's block products?
// For docs/BENCHMARKS.md (bf16, "attention's products on AMX tiles, measured and left out"). Times a plain 2 x 2
// tile-block GEMM (C [M, N] fp32 = A [M, K] bf16 . B, B in pairs of rows, C tiles stored after each K sweep) at the
// kernel's shapes, in thread CPU time (so other load on the host does not count), after checking it against a
// float64 product. Compare with oneDNN at the same shapes: `OMP_NUM_THREADS=1 /tmp/dnnl_impls M K N fwd 0 200`.
//   g++ -O3 -std=c++17 -o /tmp/amx_gemm scripts/bench/amx_gemm.cc && /tmp/amx_gemm
#include <immintrin.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "amx_tiles.h"

// C [M, N] (+)= A [M, K] . B, B's pair row p, column n at the word Bp[p * ldb + n]; M, N, K multiples of 32.
void gemm(int M, int N, int K, const uint16_t* A, int lda, const uint32_t* Bp, int ldb, float* C, int ldc, bool acc) {
  _tile_loadconfig(&kTiles);
  const size_t sa = (size_t)lda * 2, sb = (size_t)ldb * 4, sc = (size_t)ldc * 4;
  for (int m = 0; m < M; m += 32)
    for (int n = 0; n < N; n += 32) {
      float* c = C + (size_t)m * ldc + n;
      if (acc) {
        _tile_loadd(0, c, sc);
        _tile_loadd(1, c + 16, sc);
        _tile_loadd(2, c + 16 * (size_t)ldc, sc);
        _tile_loadd(3, c + 16 * (size_t)ldc + 16, sc);
      } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
      }
      for (int k = 0; k < K; k += 32) {
        const uint32_t* b = Bp + (size_t)(k / 2) * ldb + n;
        const uint16_t* a = A + (size_t)m * lda + k;
        _tile_loadd(4, a, sa);
        _tile_loadd(6, b, sb);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(7, b + 16, sb);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a + 16 * (size_t)lda, sa);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, c, sc);
      _tile_stored(1, c + 16, sc);
      _tile_stored(2, c + 16 * (size_t)ldc, sc);
      _tile_stored(3, c + 16 * (size_t)ldc + 16, sc);
    }
  _tile_release();
}

static double cpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static uint16_t bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return (u + 0x7fff + ((u >> 16) & 1)) >> 16;
}
static float f32(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

int main() {
  if (!grantTiles()) {
    std::printf("no AMX tile state granted (CPU without AMX, or an old kernel)\n");
    return 1;
  }
  const int shapes[][3] = {{128, 128, 128}, {128, 512, 128}, {128, 128, 512}, {128, 512, 512}};  // M, N, K
  for (const auto& s : shapes) {
    const int M = s[0], N = s[1], K = s[2];
    std::vector<uint16_t> A((size_t)M * K), B((size_t)K * N);
    std::vector<uint32_t> Bp((size_t)K / 2 * N);
    std::vector<float> C((size_t)M * N);
    for (size_t i = 0; i < A.size(); i++) A[i] = bf16(std::sin(i * 0.37f));
    for (size_t i = 0; i < B.size(); i++) B[i] = bf16(std::cos(i * 0.71f));
    for (int p = 0; p < K / 2; p++)
      for (int n = 0; n < N; n++) Bp[(size_t)p * N + n] = B[(size_t)2 * p * N + n] | (uint32_t)B[(size_t)(2 * p + 1) * N + n] << 16;
    gemm(M, N, K, A.data(), K, Bp.data(), N, C.data(), N, false);
    double err = 0;
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++) {
        double r = 0;
        for (int k = 0; k < K; k++) r += (double)f32(A[(size_t)m * K + k]) * f32(B[(size_t)k * N + n]);
        err = std::fmax(err, std::fabs(r - C[(size_t)m * N + n]));
      }
    const int reps = 2000;
    const double t0 = cpuSeconds();
    for (int i = 0; i < reps; i++) gemm(M, N, K, A.data(), K, Bp.data(), N, C.data(), N, i & 1);
    const double t = cpuSeconds() - t0;
    std::printf("%d x %d x %d (M x N x K): %.1f us, %.0f GFLOP/s (max error vs float64 %.1e)\n", M, N, K,
                t / reps * 1e6, 2.0 * M * N * K * reps / t / 1e9, err);
  }
}
