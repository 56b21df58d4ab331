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
// f(std::integral_constant<int, K>) with K = min(MAX, n), MAX <= 8: a block size known at compile time (register
// blocks of accumulators for k0 < r loops, the rows of a group).
template <int MAX, typename F>
void withBlock(int n, F&& f) {
  switch (std::min(MAX, n)) {
    case 8: if constexpr (MAX >= 8) f(std::integral_constant<int, 8>{}); break;
    case 7: if constexpr (MAX >= 7) f(std::integral_constant<int, 7>{}); break;
    case 6: if constexpr (MAX >= 6) f(std::integral_constant<int, 6>{}); break;
    case 5: if constexpr (MAX >= 5) f(std::integral_constant<int, 5>{}); break;
    case 4: if constexpr (MAX >= 4) f(std::integral_constant<int, 4>{}); break;
    case 3: if constexpr (MAX >= 3) f(std::integral_constant<int, 3>{}); break;
    case 2: if constexpr (MAX >= 2) f(std::integral_constant<int, 2>{}); break;
    default: f(std::integral_constant<int, 1>{}); break;
  }
}

// The row passes take rows in groups of RG: each chunk of A or B^T they read from L2 serves RG rows, not one.
constexpr int RG = 4;

// out[q * r + j] = rows[q] . M[j] for R rows (stride n) and KB rows of M [*, n]: R x KB accumulators in registers.
template <int R, int KB>
void dotsRK(const float* rows, int n, const float* M, int r, float* out) {
  __m512 acc[R][KB];
  for (int q = 0; q < R; q++)
    for (int j = 0; j < KB; j++) acc[q][j] = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = tail16(n - i);
    __m512 xv[R];
    for (int q = 0; q < R; q++) xv[q] = _mm512_maskz_loadu_ps(m, rows + (size_t)q * n + i);
    for (int j = 0; j < KB; j++) {
      const __m512 mv = _mm512_maskz_loadu_ps(m, M + (size_t)j * n + i);
      for (int q = 0; q < R; q++) acc[q][j] = _mm512_fmadd_ps(xv[q], mv, acc[q][j]);
    }
  }
  for (int q = 0; q < R; q++)
    for (int j = 0; j < KB; j++) out[(size_t)q * r + j] = _mm512_reduce_add_ps(acc[q][j]);
}

// out [R, r]: out[q, k] = rows[q] . M[k] for the R <= RG rows of a group (rows [R, n], M [r, n] row-major).
void rowDots(const float* rows, int R, int n, const float* M, int r, float* out) {
  withBlock<RG>(R, [&](auto rg) {
    for (int k0 = 0; k0 < r; k0 += 4)
      withBlock<4>(r - k0, [&](auto kb) {
        dotsRK<decltype(rg)::value, decltype(kb)::value>(rows, n, M + (size_t)k0 * n, r, out + k0);
      });
  });
}

// a0[x] += c[x * cs] v0 and a1[x] += c[x * cs] v1 for x < X: X coefficients times two 16-column chunks.
template <int X>
inline void fmaPairs(const float* c, size_t cs, __m512 v0, __m512 v1, __m512* a0, __m512* a1) {
  for (int x = 0; x < X; x++) {
    const __m512 cx = _mm512_set1_ps(c[x * cs]);
    a0[x] = _mm512_fmadd_ps(cx, v0, a0[x]);
    a1[x] = _mm512_fmadd_ps(cx, v1, a1[x]);
  }
}

// Row x of dst (stride ld) gets a0[x], a1[x] for x < X (the two chunks under masks m0, m1).
template <int X>
inline void storePairs(float* dst, size_t ld, __mmask16 m0, __mmask16 m1, const __m512* a0, const __m512* a1) {
  for (int x = 0; x < X; x++) {
    _mm512_mask_storeu_ps(dst + x * ld, m0, a0[x]);
    _mm512_mask_storeu_ps(dst + x * ld + 16, m1, a1[x]);
  }
}

// dst[q, :] = (bias or 0) + sum_k c[q * ldc + k] M[k] for R rows (dst stride n, M [r, n]): 2 chunks x R accumulators.
template <int R>
void combineRowsR(const float* c, int ldc, int r, const float* M, int n, const float* bias, float* dst) {
  for (int i = 0; i < n; i += 32) {
    const __mmask16 m0 = tail16(n - i), m1 = tail16(std::max(0, n - i - 16));
    __m512 a0[R], a1[R];
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias + i) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + i + 16) : _mm512_setzero_ps();
    for (int q = 0; q < R; q++) a0[q] = b0, a1[q] = b1;
    for (int k = 0; k < r; k++) {
      const float* mk = M + (size_t)k * n + i;
      fmaPairs<R>(c + k, ldc, _mm512_maskz_loadu_ps(m0, mk), _mm512_maskz_loadu_ps(m1, mk + 16), a0, a1);
    }
    storePairs<R>(dst + i, n, m0, m1, a0, a1);
  }
}

// The output rows of a group: dst[q, :] = (bias or 0) + sum_k c[q, k] M[k] for q < R <= RG (c [R, r], row stride ldc).
void combineRows(const float* c, int ldc, int R, int r, const float* M, int n, const float* bias, float* dst) {
  withBlock<RG>(R, [&](auto rg) { combineRowsR<decltype(rg)::value>(c, ldc, r, M, n, bias, dst); });
}

// part[k, :] = sum over the block's rows n of c[n * ldc + k] * M[n, :] (M [rows, n_]) for k < KB: KB accumulators
// for each of 2 16-column chunks stay in registers while the rows stream by (prefetched PF rows ahead: the stride
// between rows defeats the hardware prefetchers).
template <int KB>
void blockOuterKB(const float* c, int ldc, int rows, const float* M, int n_, float* part) {
  constexpr int PF = 8, SUB = 16;
  for (int s0 = 0; s0 < rows; s0 += SUB) {  // SUB rows at a time: as many streams as the L2 prefetcher follows
    const int s1 = std::min(rows, s0 + SUB);
    for (int i = 0; i < n_; i += 32) {
      const __mmask16 m0 = tail16(n_ - i), m1 = tail16(std::max(0, n_ - i - 16));
      __m512 a0[KB], a1[KB];
      for (int j = 0; j < KB; j++) {
        a0[j] = s0 ? _mm512_maskz_loadu_ps(m0, part + (size_t)j * n_ + i) : _mm512_setzero_ps();
        a1[j] = s0 ? _mm512_maskz_loadu_ps(m1, part + (size_t)j * n_ + i + 16) : _mm512_setzero_ps();
      }
      for (int n = s0; n < s1; n++) {
        const float* mr = M + (size_t)n * n_ + i;
        if (i + 32 * PF < n_) _mm_prefetch((const char*)(mr + 32 * PF), _MM_HINT_T0), _mm_prefetch((const char*)(mr + 32 * PF + 16), _MM_HINT_T0);
        fmaPairs<KB>(c + (size_t)n * ldc, 1, _mm512_maskz_loadu_ps(m0, mr), _mm512_maskz_loadu_ps(m1, mr + 16), a0, a1);
      }
      storePairs<KB>(part + i, n_, m0, m1, a0, a1);
    }
  }
}

// part [r, n_] = c^T M over the block's rows (c [rows, r], row stride ldc), 8 columns of c at a time.
void blockOuter(const float* c, int ldc, int r, int rows, const float* M, int n_, float* part) {
  for (int k0 = 0; k0 < r; k0 += 8)
    withBlock<8>(r - k0, [&](auto kb) { blockOuterKB<decltype(kb)::value>(c + k0, ldc, rows, M, n_, part + (size_t)k0 * n_); });
}

// dst = bf16(src) for R rows of n values (contiguous).
void toBf16Rows(const float* src, int R, int n, uint16_t* dst) {
  for (size_t i = 0; i < (size_t)R * n; i += 16) {
    const __mmask16 m = tail16((int)std::min<size_t>(16, (size_t)R * n - i));
    storeBf16(dst + i, _mm512_maskz_loadu_ps(m, src + i), m);
  }
}

// src [rows, cols] -> dst [cols, rows].
void transpose(const float* src, int rows, int cols, float* dst) {
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
}

// Row blocks for sums over rows: at most 16, their size set by N only (thread-count independent results).
int rowBlock(int N) { return std::max(64, (N + 15) / 16); }

// The members' A stacked as [n r, in] (one member: A itself) and each B transposed to [r, out] (Bt[i]).
struct Stacked {
  const float* A;
  std::vector<const float*> Bt;
  static Stacked of(int n, const LoraMember* m, int in, int r) {
    static std::vector<float> As, Bts;  // calls come from the one JS thread
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)r * m[i].out;
    float* Bt = reuse(Bts, total);
    Stacked st{m[0].A, {}};
    for (int i = 0; i < n; i++) {
      transpose(m[i].B, m[i].out, r, Bt);
      st.Bt.push_back(Bt);
      Bt += (size_t)r * m[i].out;
    }
    if (n > 1) {
      float* A = reuse(As, (size_t)n * r * in);
      for (int i = 0; i < n; i++) std::copy(m[i].A, m[i].A + (size_t)r * in, A + (size_t)i * r * in);
      st.A = A;
    }
    return st;
  }
};
}  // namespace

// y_i [N, out_i] = x W_i^T + s (xl A_i^T) B_i^T (+ bias_i); U [N, n r] = xl [A_0; A_1; ...]^T. Per group of rows:
// x -> bf16 once, U by one pass over xl, then each y_i = s u_i B_i^T (+ bias_i); oneDNN adds each x W_i^T.
// False: oneDNN failed (nothing usable written).
bool loraGroupForwardBf16(int n, const LoraMember* m, int N, int in, int r, float s, const float* x, const float* xl,
                          float* const* y, float* U) {
  static std::vector<uint16_t> xbs;  // calls come from the one JS thread
  uint16_t* xb = reuse(xbs, (size_t)N * in);
  const int R2 = n * r;
  const Stacked st = Stacked::of(n, m, in, r);
#pragma omp parallel num_threads(g_threads)
  {
    std::vector<float> su((size_t)RG * R2);
#pragma omp for schedule(static)
    for (int g = 0; g < (N + RG - 1) / RG; g++) {
      const int n0 = g * RG, R = std::min(RG, N - n0);
      toBf16Rows(x + (size_t)n0 * in, R, in, xb + (size_t)n0 * in);
      float* ur = U + (size_t)n0 * R2;
      rowDots(xl + (size_t)n0 * in, R, in, st.A, R2, ur);  // xl = x (no dropout): the rows are still in L1/L2
      for (int k = 0; k < R * R2; k++) su[k] = s * ur[k];
      for (int i = 0; i < n; i++)  // y_i = s u_i B_i^T (+ bias_i)
        combineRows(su.data() + i * r, R2, R, r, st.Bt[i], m[i].out, m[i].bias, y[i] + (size_t)n0 * m[i].out);
    }
  }
  for (int i = 0; i < n; i++)  // y_i += x W_i^T
    if (!matmulBf16Dnnl(true, N, m[i].out, in, xb, in, m[i].W, y[i], m[i].out, true)) return false;
  return true;
}

bool loraForwardBf16(int N, int in, int out, int r, float s, const float* x, const float* xl, const uint16_t* W,
                     const float* A, const float* B, const float* bias, float* y, float* u) {
  const LoraMember m{out, W, A, B, bias};
  return loraGroupForwardBf16(1, &m, N, in, r, s, x, xl, &y, u);
}

// dx = sum_i dy_i W_i + s sum_i (dy_i B_i) A_i (dxl null), or dx = sum_i dy_i W_i and dxl the LoRA sum;
// dA_i = s (dy_i B_i)^T xl; dB_i = s dy_i^T u_i (u_i: U's columns [i r, (i+1) r)). Per row block: one pass over
// its rows (dy_i -> bf16, V = s [dy_0 B_0, dy_1 B_1, ...], dst = V [A_0; A_1; ...]), then the block's dB_i and dA
// partial sums over the same rows (in L2); oneDNN adds each dy_i W_i. False: oneDNN failed (the caller redoes the
// call on the fallback path).
bool loraGroupBackwardBf16(int n, const LoraMember* m, int N, int in, int r, float s, const float* const* dy,
                           const float* xl, const float* U, float* dx, float* dxl, float* const* dA, float* const* dB) {
  static std::vector<std::vector<uint16_t>> dybs;  // calls come from the one JS thread
  static std::vector<std::vector<float>> partsB;   // per member and row block: sum_n u_i[n,k] dy_i[n,:] as [r, out_i]
  static std::vector<float> vs, partsA;
  const int RB = rowBlock(N), nb = (N + RB - 1) / RB, R2 = n * r;
  if ((int)dybs.size() < n) dybs.resize(n), partsB.resize(n);
  std::vector<uint16_t*> dyb(n);
  std::vector<float*> partB(n);
  for (int i = 0; i < n; i++)
    dyb[i] = reuse(dybs[i], (size_t)N * m[i].out), partB[i] = reuse(partsB[i], (size_t)nb * r * m[i].out);
  float* v = reuse(vs, (size_t)N * R2);
  float* partA = reuse(partsA, (size_t)nb * R2 * in);  // per row block: sum_n V[n,k] xl[n,:] as [n r, in]
  float* dst = dxl ? dxl : dx;
  const Stacked st = Stacked::of(n, m, in, r);
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int b = 0; b < nb; b++) {
    const int n0 = b * RB, rows = std::min(N, n0 + RB) - n0;
    std::vector<float> vr((size_t)RG * r);  // one member's dy_i B_i for a group
    for (int g0 = n0; g0 < n0 + rows; g0 += RG) {
      const int R = std::min(RG, n0 + rows - g0);
      for (int i = 0; i < n; i++) {
        const float* d = dy[i] + (size_t)g0 * m[i].out;
        toBf16Rows(d, R, m[i].out, dyb[i] + (size_t)g0 * m[i].out);
        rowDots(d, R, m[i].out, st.Bt[i], r, vr.data());  // dy_i B_i
        for (int q = 0; q < R; q++)
          for (int k = 0; k < r; k++) v[(size_t)(g0 + q) * R2 + i * r + k] = s * vr[q * r + k];
      }
      combineRows(v + (size_t)g0 * R2, R2, R, R2, st.A, in, nullptr, dst + (size_t)g0 * in);  // the LoRA path of dx
    }
    for (int i = 0; i < n; i++)
      blockOuter(U + (size_t)n0 * R2 + i * r, R2, r, rows, dy[i] + (size_t)n0 * m[i].out, m[i].out,
                 partB[i] + (size_t)b * r * m[i].out);
    blockOuter(v + (size_t)n0 * R2, R2, R2, rows, xl + (size_t)n0 * in, in, partA + (size_t)b * R2 * in);
  }
#pragma omp parallel num_threads(g_threads)
  {
    for (int i = 0; i < n; i++) {
      const int out = m[i].out;
#pragma omp for schedule(static) nowait
      for (int j = 0; j < r * out; j++) {  // dB_i [out, r] = s * sum over blocks, in block order
        float t = 0;
        for (int b = 0; b < nb; b++) t += partB[i][(size_t)b * r * out + j];
        dB[i][(size_t)(j % out) * r + j / out] = s * t;
      }
    }
#pragma omp for schedule(static)
    for (int j = 0; j < R2 * in; j++) {  // dA_i [r, in] = sum over blocks (V carries s), in block order
      float t = 0;
      for (int b = 0; b < nb; b++) t += partA[(size_t)b * R2 * in + j];
      dA[j / (r * in)][j % (r * in)] = t;
    }
  }
  for (int i = 0; i < n; i++)  // dx (+)= dy_i W_i
    if (!matmulBf16Dnnl(false, N, in, m[i].out, dyb[i], m[i].out, m[i].W, dx, in, dxl == nullptr || i > 0)) return false;
  return true;
}

bool loraBackwardBf16(int N, int in, int out, int r, float s, const float* dy, const float* xl, const uint16_t* W,
                      const float* A, const float* B, const float* u, float* dx, float* dxl, float* dA, float* dB) {
  const LoraMember m{out, W, A, B, nullptr};
  return loraGroupBackwardBf16(1, &m, N, in, r, s, &dy, xl, u, dx, dxl, &dA, &dB);
}
