// Avx512.cc: the AVX-512 pieces called from files built for any x86-64 (the check, the lm_head's softmax blocks).
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
// GCC 12's own AVX-512 reduce intrinsics trip -Wmaybe-uninitialized (their _mm512_undefined_* idiom).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define AVX512_HELPERS
#include "avx512.h"
#include "blas.h"
#include "dnnl.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <omp.h>
#include <vector>

bool hasAvx512() {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return cpu;
}

bool avx512Bf16() { return hasAvx512() && bf16OnDnnl(); }

// The products and sums take the _round_ forms: GCC may fuse plain _mm512_mul_ps/_add_ps into an FMA (this file
// allows fma), which would change the bits.
void ropeRowAvx512(const float* a, const float* c, const float* s, float* b, int D, bool back) {
  constexpr int RN = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const int half = D / 2;
  for (int i = 0; i < half; i += 16) {
    const __mmask16 m = tail16(half - i);
    const __m512 x1 = _mm512_maskz_loadu_ps(m, a + i), x2 = _mm512_maskz_loadu_ps(m, a + half + i);
    const __m512 c1 = _mm512_maskz_loadu_ps(m, c + i), c2 = _mm512_maskz_loadu_ps(m, c + half + i);
    const __m512 s1 = _mm512_maskz_loadu_ps(m, s + i), s2 = _mm512_maskz_loadu_ps(m, s + half + i);
    const __m512 p1 = _mm512_mul_round_ps(x1, c1, RN), p2 = _mm512_mul_round_ps(x2, c2, RN);
    __m512 y1, y2;
    if (!back) {
      y1 = _mm512_sub_round_ps(p1, _mm512_mul_round_ps(x2, s1, RN), RN);
      y2 = _mm512_add_round_ps(p2, _mm512_mul_round_ps(x1, s2, RN), RN);
    } else {
      y1 = _mm512_add_round_ps(p1, _mm512_mul_round_ps(x2, s2, RN), RN);
      y2 = _mm512_sub_round_ps(p2, _mm512_mul_round_ps(x1, s1, RN), RN);
    }
    _mm512_mask_storeu_ps(b + i, m, y1);
    _mm512_mask_storeu_ps(b + half + i, m, y2);
  }
}

// AdamW's update (kernels/AdamW.cc) for 8 doubles at a time, elements [i0, i1): the same double operations in the
// same order, each correctly rounded (the _round_ forms keep GCC from fusing them), so the same bits.
void adamWAvx512(float* p, const float* g, float* m, float* v, int64_t i0, int64_t i1, const AdamWConst& k) {
  constexpr int RN = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512d b1 = _mm512_set1_pd(k.b1), b2 = _mm512_set1_pd(k.b2), c1 = _mm512_set1_pd(k.c1),
                c2 = _mm512_set1_pd(k.c2), eps = _mm512_set1_pd(k.eps), keep = _mm512_set1_pd(k.keep),
                step = _mm512_set1_pd(k.stepSize), bc2 = _mm512_set1_pd(k.sqrtBc2);
  for (int64_t i = i0; i < i1; i += 8) {
    const __mmask8 t = i1 - i >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (i1 - i)) - 1);
    const __m512d gi = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(t, g + i));
    const __m512d md = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(t, m + i));
    const __m512d vd = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(t, v + i));
    const __m512d pd = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(t, p + i));
    // m = (float)(b1 m + c1 g); v = (float)(b2 v + (c2 g) g)
    const __m256 mf = _mm512_cvt_roundpd_ps(
        _mm512_add_round_pd(_mm512_mul_round_pd(b1, md, RN), _mm512_mul_round_pd(c1, gi, RN), RN), RN);
    const __m256 vf = _mm512_cvt_roundpd_ps(
        _mm512_add_round_pd(_mm512_mul_round_pd(b2, vd, RN), _mm512_mul_round_pd(_mm512_mul_round_pd(c2, gi, RN), gi, RN), RN),
        RN);
    // p = (float)(p keep - (stepSize m) / (sqrt(v) / sqrtBc2 + eps)), m and v as stored
    const __m512d den = _mm512_add_round_pd(_mm512_div_round_pd(_mm512_sqrt_round_pd(_mm512_cvtps_pd(vf), RN), bc2, RN), eps, RN);
    const __m512d upd = _mm512_div_round_pd(_mm512_mul_round_pd(step, _mm512_cvtps_pd(mf), RN), den, RN);
    const __m256 pf = _mm512_cvt_roundpd_ps(_mm512_sub_round_pd(_mm512_mul_round_pd(pd, keep, RN), upd, RN), RN);
    _mm256_mask_storeu_ps(m + i, t, mf);
    _mm256_mask_storeu_ps(v + i, t, vf);
    _mm256_mask_storeu_ps(p + i, t, pf);
  }
}

float softmaxBlockAvx512(float* r, int n, float& m, double& s, bool toBf16) {
  __m512 mv = _mm512_set1_ps(-INFINITY);
  for (int j = 0; j < n; j += 16) mv = _mm512_mask_max_ps(mv, tail16(n - j), mv, _mm512_maskz_loadu_ps(tail16(n - j), r + j));
  const float mn = std::max(m, _mm512_reduce_max_ps(mv));
  const float scale = m == mn ? 1.f : std::exp(m - mn);  // m = -inf at the first block: 0
  const __m512 mm = _mm512_set1_ps(mn);
  uint16_t* g = (uint16_t*)r;  // bf16 value j over bytes [2j, 2j + 2): floats already read
  double sum = 0;
  for (int j0 = 0; j0 < n; j0 += 4096) {  // float lanes per 4096 values, then double: the sum keeps ~1e-7
    __m512 acc = _mm512_setzero_ps();
    for (int j = j0; j < j0 + 4096 && j < n; j += 16) {
      const __mmask16 k = tail16(n - j);
      const __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + j), mm)));
      if (toBf16) storeBf16(g + j, e, k);
      acc = _mm512_add_ps(acc, e);
    }
    sum += _mm512_reduce_add_ps(acc);
  }
  m = mn;
  s = s * scale + sum;
  return scale;
}

namespace {
// libm's expf in 16 lanes with its bits: glibc 2.27+ (its FMA variant, the one x86-64 CPUs with AVX-512 run) takes
// e^x = 2^(k/32) 2^(r/32) with k = round(32 x / ln 2), 2^(k/32) from a 32-entry table and a degree-3 polynomial in
// double; these are its steps and constants. Lanes in [-103.97, -103.28), above 88.72 or NaN take std::exp itself
// (libm's slow paths there).
constexpr int RND = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
const uint64_t kExp2Tab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};

inline __m512d bitsPd(uint64_t b) { return _mm512_castsi512_pd(_mm512_set1_epi64((long long)b)); }

// 8 lanes of the main path, x as doubles.
inline __m256 expfLibm8(__m512d xd) {
  const __m512d invLn2N = bitsPd(0x40471547652b82fe), shift = bitsPd(0x4338000000000000);
  const __m512d kd0 = _mm512_fmadd_pd(invLn2N, xd, shift);
  const __m512i ki = _mm512_castpd_si512(kd0);
  const __m512d kd = _mm512_sub_round_pd(kd0, shift, RND);
  const __m512d r = _mm512_fmsub_pd(invLn2N, xd, kd);
  const __m512i lo = _mm512_permutex2var_epi64(_mm512_loadu_si512(kExp2Tab), ki, _mm512_loadu_si512(kExp2Tab + 8));
  const __m512i hi = _mm512_permutex2var_epi64(_mm512_loadu_si512(kExp2Tab + 16), ki, _mm512_loadu_si512(kExp2Tab + 24));
  const __m512i tab = _mm512_mask_mov_epi64(lo, _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16)), hi);
  const __m512d s = _mm512_castsi512_pd(_mm512_add_epi64(tab, _mm512_slli_epi64(ki, 47)));
  const __m512d z = _mm512_fmadd_pd(r, bitsPd(0x3ebc6af84b912394), bitsPd(0x3f2ebfce50fac4f3));
  const __m512d r2 = _mm512_mul_round_pd(r, r, RND);
  const __m512d y = _mm512_fmadd_pd(z, r2, _mm512_fmadd_pd(r, bitsPd(0x3f962e42ff0c52d6), _mm512_set1_pd(1.0)));
  return _mm512_cvt_roundpd_ps(_mm512_mul_round_pd(y, s, RND), RND);
}

inline __m512 expfLibm16(__m512 x) {
  const __m256 lo = expfLibm8(_mm512_cvtps_pd(_mm512_castps512_ps256(x)));
  const __m256 hi = expfLibm8(_mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)));
  // Below libm's underflow bound (and -inf): +0, as libm gives. Lanes libm takes elsewhere: up to its
  // may-underflow bound, above its overflow bound, or NaN.
  const __mmask16 zero = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-0x1.9fe368p6f), _CMP_LT_OQ);
  __m512 e = _mm512_maskz_mov_ps(~zero, _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1));
  const __mmask16 odd = (_mm512_cmp_ps_mask(x, _mm512_set1_ps(-0x1.9d1d9ep6f), _CMP_NGE_UQ) & ~zero) |
                        _mm512_cmp_ps_mask(x, _mm512_set1_ps(0x1.62e42ep6f), _CMP_GT_OQ);
  if (odd) {
    alignas(64) float xs[16], es[16];
    _mm512_store_ps(xs, x), _mm512_store_ps(es, e);
    for (int k = 0; k < 16; k++)
      if (odd >> k & 1) es[k] = std::exp(xs[k]);
    e = _mm512_load_ps(es);
  }
  return e;
}

bool expfLibmChecked() {  // the lanes agree with std::exp on a sweep over [-110, 90] and at the bounds
  static const bool same = [] {
    alignas(64) float x[16], e[16];
    for (int i = 0; i < (1 << 16); i += 16) {
      for (int k = 0; k < 16; k++) x[k] = -110.f + 200.f * (float)(i + k) / (1 << 16) + (float)k * 1e-3f;
      if (i == 0) x[0] = -0x1.9d1d9ep6f, x[1] = 0x1.62e42ep6f, x[2] = -0.f, x[3] = -INFINITY;
      _mm512_store_ps(e, expfLibm16(_mm512_load_ps(x)));
      for (int k = 0; k < 16; k++) {
        const float ref = std::exp(x[k]);
        if (std::memcmp(&e[k], &ref, 4) != 0) return false;
      }
    }
    return true;
  }();
  return same;
}
}  // namespace

bool softmaxRowExact() { return hasAvx512() && expfLibmChecked(); }

// The max in 16 lanes (NaNs skipped, as the scalar compare skips them; max is exact in any order), the exps in 16
// lanes, their sum in double in index order, the scaling in 16 lanes: each the scalar loop's operation.
double softmaxRowAvx512(float* r, int V, int y, float w) {
  const float ly = r[y];
  __m512 mv = _mm512_set1_ps(-INFINITY);
  for (int j = 0; j < V; j += 16) {
    const __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail16(V - j), r + j);
    mv = _mm512_mask_mov_ps(mv, _mm512_cmp_ps_mask(x, mv, _CMP_GT_OQ), x);
  }
  alignas(64) float lane[16];
  _mm512_store_ps(lane, mv);
  float m = -INFINITY;
  for (int k = 0; k < 16; k++) m = lane[k] > m ? lane[k] : m;
  const __m512 mm = _mm512_set1_ps(m);
  double sum = 0;
  for (int j = 0; j < V; j += 16) {
    const int n = std::min(16, V - j);
    const __m512 e = expfLibm16(_mm512_sub_round_ps(_mm512_maskz_loadu_ps(tail16(n), r + j), mm, RND));
    _mm512_mask_storeu_ps(r + j, tail16(n), e);
    _mm512_store_ps(lane, e);
    for (int k = 0; k < n; k++) sum += lane[k];
  }
  const float inv = (float)(w / sum);
  const __m512 iv = _mm512_set1_ps(inv);
  for (int j = 0; j < V; j += 16)
    _mm512_mask_storeu_ps(r + j, tail16(V - j), _mm512_mul_round_ps(_mm512_maskz_loadu_ps(tail16(V - j), r + j), iv, RND));
  r[y] -= w;
  return w * (m + std::log(sum) - ly);
}

namespace {
inline __m512 sigmoid16(__m512 g) {  // 1 / (1 + e^-g)
  const __m512 one = _mm512_set1_ps(1.f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}
}  // namespace

void swigluAvx512(const float* g, const float* u, float* y, int64_t n) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16((int)std::min<int64_t>(16, n - i));
    const __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(gv, sigmoid16(gv)), _mm512_maskz_loadu_ps(m, u + i)));
  }
}

void swigluGradAvx512(const float* dy, const float* g, const float* u, float* dg, float* du, int64_t n) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail16((int)std::min<int64_t>(16, n - i));
    const __m512 gv = _mm512_maskz_loadu_ps(m, g + i), d = _mm512_maskz_loadu_ps(m, dy + i), s = sigmoid16(gv);
    const __m512 one = _mm512_set1_ps(1.f);
    _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(_mm512_mul_ps(d, gv), s));
    const __m512 t = _mm512_fmadd_ps(gv, _mm512_sub_ps(one, s), one);  // 1 + g (1 - s)
    _mm512_mask_storeu_ps(dg + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, u + i)), s), t));
  }
}

void rmsNormAvx512(const float* x, const float* w, float* y, float* rstd, int N, int C, float eps) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int n = 0; n < N; n++) {
    const float* a = x + (size_t)n * C;
    rmsRow(a, w, rstd[n] = rmsRstd(a, C, eps), y + (size_t)n * C, C);
  }
}

void rmsNormGradAvx512(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* part,
                       int N, int C) {
#pragma omp parallel num_threads(g_threads)
  {
    float* pw = part + (size_t)omp_get_thread_num() * C;
    std::vector<float> gw(C);  // dy * w of the row
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++)
      rmsRowGrad(dy + (size_t)n * C, x + (size_t)n * C, w, rstd[n], gw.data(), dx + (size_t)n * C, pw, C);
  }
}
