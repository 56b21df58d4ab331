// LoraLinearBf16.cc: LoraLinear with bf16 W on oneDNN, the LoRA terms in AVX-512 passes fused around the product.
// Each pass reads a big operand once: forward x -> (bf16 x, u = x A^T), then y = s u B^T (+ bias) and oneDNN adds
// x W^T (sum post-op); backward, per row block: one pass over its rows, dy -> (bf16 dy, v = s dy B, dx = v A), then
// the block's dB and dA partial sums over the same rows (in L2), and oneDNN adds dy W. Sums over rows go in a fixed
// order (row blocks set by N alone), so results do not depend on the thread count. Used where the CPU has AVX-512
// (always so when oneDNN runs bf16 natively).
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
// GCC 12's own AVX-512 reduce intrinsics trip -Wmaybe-uninitialized (their _mm512_undefined_* idiom).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define AVX512_HELPERS
#include "avx512.h"
#include "blas.h"
#include "dnnl.h"
#include <algorithm>
#include <type_traits>
#include <vector>

namespace {
// f(std::integral_constant<int, KB>) with KB = min(8, n): register blocks of 1..8 accumulators for k0 < r loops.
template <typename F>
void withKB(int n, F&& f) {
  switch (std::min(8, n)) {
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 7: f(std::integral_constant<int, 7>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    default: f(std::integral_constant<int, 1>{}); break;
  }
}

// out[k] = row . M[k] for KB rows of M [*, n] (KB accumulators in registers).
template <int KB>
void dotsKB(const float* row, int n, const float* M, float* out) {
  __m512 acc[KB];
  for (int j = 0; j < KB; j++) acc[j] = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    const __m512 xv = _mm512_maskz_loadu_ps(m, row + i);
    for (int j = 0; j < KB; j++) acc[j] = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(m, M + (size_t)j * n + i), acc[j]);
  }
  for (int j = 0; j < KB; j++) out[j] = _mm512_reduce_add_ps(acc[j]);
}

// out[k] = row . M[k] for k < r (M [r, n] row-major).
void rowDots(const float* row, int n, const float* M, int r, float* out) {
  for (int k0 = 0; k0 < r; k0 += 8)
    withKB(r - k0, [&](auto kb) { dotsKB<decltype(kb)::value>(row, n, M + (size_t)k0 * n, out + k0); });
}

// dst[n] = (bias or 0) + sum_k c[k] M[k] for M [r, n]: one output row from r coefficients.
void combineRow(const float* c, int r, const float* M, int n, const float* bias, float* dst) {
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    __m512 acc = bias ? _mm512_maskz_loadu_ps(m, bias + i) : _mm512_setzero_ps();
    for (int k = 0; k < r; k++) acc = _mm512_fmadd_ps(_mm512_set1_ps(c[k]), _mm512_maskz_loadu_ps(m, M + (size_t)k * n + i), acc);
    _mm512_mask_storeu_ps(dst + i, m, acc);
  }
}

// part[k, :] = sum over rows n of the block of c[n * r + k] * M[n, :] (M [rows, n_]) for k < r: KB accumulators
// per 16 columns stay in registers while the block's rows (in L2) stream by.
template <int KB>
void blockOuterKB(const float* c, int r, int rows, const float* M, int n_, float* part) {
  for (int i = 0; i < n_; i += 16) {
    const __mmask16 m = tail16(n_ - i);
    __m512 acc[KB];
    for (int j = 0; j < KB; j++) acc[j] = _mm512_setzero_ps();
    for (int n = 0; n < rows; n++) {
      const __m512 mv = _mm512_maskz_loadu_ps(m, M + (size_t)n * n_ + i);
      for (int j = 0; j < KB; j++) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(c[(size_t)n * r + j]), mv, acc[j]);
    }
    for (int j = 0; j < KB; j++) _mm512_mask_storeu_ps(part + (size_t)j * n_ + i, m, acc[j]);
  }
}

void blockOuter(const float* c, int r, int rows, const float* M, int n_, float* part) {
  for (int k0 = 0; k0 < r; k0 += 8)
    withKB(r - k0, [&](auto kb) { blockOuterKB<decltype(kb)::value>(c + k0, r, rows, M, n_, part + (size_t)k0 * n_); });
}

// src [rows, cols] -> dst [cols, rows].
void transpose(const float* src, int rows, int cols, float* dst) {
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
}

// Row blocks for sums over rows: at most 16, their size set by N only (thread-count independent results).
int rowBlock(int N) { return std::max(64, (N + 15) / 16); }
}  // namespace

// y [N,out] = x W^T + s (xl A^T) B^T (+ bias), u [N,r] = xl A^T. False: oneDNN failed (nothing usable written).
bool loraForwardBf16(int N, int in, int out, int r, float s, const float* x, const float* xl, const uint16_t* W,
                     const float* A, const float* B, const float* bias, float* y, float* u) {
  static std::vector<uint16_t> xbs;  // calls come from the one JS thread
  static std::vector<float> Bts;
  uint16_t* xb = reuse(xbs, (size_t)N * in);
  float* Bt = reuse(Bts, (size_t)r * out);
  transpose(B, out, r, Bt);
#pragma omp parallel num_threads(g_threads)
  {
    std::vector<float> su(r);
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      const float* xr = x + (size_t)n * in;
      for (int i = 0; i < in; i += 16) {
        const __mmask16 m = tail16(in - i);
        storeBf16(xb + (size_t)n * in + i, _mm512_maskz_loadu_ps(m, xr + i), m);
      }
      float* ur = u + (size_t)n * r;
      rowDots(xl + (size_t)n * in, in, A, r, ur);  // xl = x (no dropout): the row is still in L1
      for (int k = 0; k < r; k++) su[k] = s * ur[k];
      combineRow(su.data(), r, Bt, out, bias, y + (size_t)n * out);  // y = s u B^T (+ bias)
    }
  }
  return matmulBf16Dnnl(true, N, out, in, xb, in, W, y, out, true);  // y += x W^T
}

// dx = dy W + s (dy B) A (dxl null) or dx = dy W, dxl = s (dy B) A; dA = s (dy B)^T xl; dB = s dy^T u.
// False: oneDNN failed (the caller redoes the call on the fallback path).
bool loraBackwardBf16(int N, int in, int out, int r, float s, const float* dy, const float* xl, const uint16_t* W,
                      const float* A, const float* B, const float* u, float* dx, float* dxl, float* dA, float* dB) {
  static std::vector<uint16_t> dybs;  // calls come from the one JS thread
  static std::vector<float> Bts, vs, partsB, partsA;
  const int RB = rowBlock(N), nb = (N + RB - 1) / RB;
  uint16_t* dyb = reuse(dybs, (size_t)N * out);
  float *Bt = reuse(Bts, (size_t)r * out), *v = reuse(vs, (size_t)N * r);
  float* partB = reuse(partsB, (size_t)nb * r * out);  // per row block: sum_n u[n,k] dy[n,:] as [r, out]
  float* partA = reuse(partsA, (size_t)nb * r * in);   // per row block: sum_n s v[n,k] xl[n,:] as [r, in]
  float* dst = dxl ? dxl : dx;
  transpose(B, out, r, Bt);
  // Per row block: one pass over its rows (dy -> bf16, v = s dy B, dst = v A), then the block's dB and dA partial
  // sums over the same rows, now in L2.
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int b = 0; b < nb; b++) {
    const int n0 = b * RB, rows = std::min(N, n0 + RB) - n0;
    for (int n = n0; n < n0 + rows; n++) {
      const float* dr = dy + (size_t)n * out;
      float* vr = v + (size_t)n * r;
      for (int o = 0; o < out; o += 16) {
        const __mmask16 m = tail16(out - o);
        storeBf16(dyb + (size_t)n * out + o, _mm512_maskz_loadu_ps(m, dr + o), m);
      }
      rowDots(dr, out, Bt, r, vr);  // v = dy B
      for (int k = 0; k < r; k++) vr[k] *= s;
      combineRow(vr, r, A, in, nullptr, dst + (size_t)n * in);  // the LoRA path of dx: s (dy B) A
    }
    blockOuter(u + (size_t)n0 * r, r, rows, dy + (size_t)n0 * out, out, partB + (size_t)b * r * out);
    blockOuter(v + (size_t)n0 * r, r, rows, xl + (size_t)n0 * in, in, partA + (size_t)b * r * in);
  }
#pragma omp parallel num_threads(g_threads)
  {
#pragma omp for schedule(static) nowait
    for (int i = 0; i < r * out; i++) {  // dB [out, r] = s * sum over blocks, in block order
      float t = 0;
      for (int b = 0; b < nb; b++) t += partB[(size_t)b * r * out + i];
      dB[(size_t)(i % out) * r + i / out] = s * t;
    }
#pragma omp for schedule(static)
    for (int i = 0; i < r * in; i++) {  // dA [r, in] = sum over blocks (v carries s), in block order
      float t = 0;
      for (int b = 0; b < nb; b++) t += partA[(size_t)b * r * in + i];
      dA[i] = t;
    }
  }
  return matmulBf16Dnnl(false, N, in, out, dyb, out, W, dx, in, dxl == nullptr);  // dx (+)= dy W
}
