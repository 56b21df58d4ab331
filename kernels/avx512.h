// avx512.h: AVX-512 building blocks of the bf16 kernels (LoraLinearBf16.cc, FusedAttentionBf16.cc, Avx512.cc).
// The inline helpers are defined for files that say `#define AVX512_HELPERS` after
// `#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")`; other files call the functions declared here,
// after checking avx512Bf16().
#pragma once
#include <cstddef>
#include <cstdint>

// True when the CPU has AVX-512 (F/BW/DQ/VL).
bool hasAvx512();
// True when the AVX-512 passes can run: the CPU has AVX-512 and oneDNN's bf16 path is in use.
bool avx512Bf16();

// ropeRow (kernels/Rope.cc) in 16 lanes: the same products and sums, so the same bits.
void ropeRowAvx512(const float* a, const float* c, const float* s, float* b, int D, bool back);

// AdamW (kernels/AdamW.cc) over elements [i0, i1) in 8 double lanes: the same operations, so the same bits.
struct AdamWConst { double b1, b2, c1, c2, eps, keep, stepSize, sqrtBc2; };
void adamWAvx512(float* p, const float* g, float* m, float* v, int64_t i0, int64_t i1, const AdamWConst& k);

// One vocabulary block of an lm_head row in an online softmax: r[n] logits; m (the row's running max) and s (its
// running sum of e^(l - m)) move to the block's values, and the factor e^(m_old - m_new) that rescaled s (1 if the
// max held) is returned. With toBf16 the block's e^(l - m_new) are written as bf16 over its first half (value j over
// bytes of value j/2, already read). A vector exp (relative error ~2e-7); float partial sums per 4096 values.
float softmaxBlockAvx512(float* r, int n, float& m, double& s, bool toBf16);

// softmaxRow (kernels/WeightedCrossEntropy.cc) in 16 lanes with the same bits: libm's expf (glibc 2.27+) replicated;
// use it only where softmaxRowExact() (the CPU has AVX-512 and a sweep found the lanes equal to std::exp).
bool softmaxRowExact();
double softmaxRowAvx512(float* r, int V, int y, float w);

// Swiglu / SwigluGrad (kernels/Swiglu.cc) with the vector exp: y = g sigmoid(g) u; dg, du as there.
void swigluAvx512(const float* g, const float* u, float* y, int64_t n);
void swigluGradAvx512(const float* dy, const float* g, const float* u, float* dg, float* du, int64_t n);

// RmsNorm / RmsNormGrad (kernels/RmsNorm.cc) with the row sums in 64 float lanes (vectorSums, bf16 models): the
// same values up to summation order. part: g_threads rows of C zeros, each thread's partial dw.
void rmsNormAvx512(const float* x, const float* w, float* y, float* rstd, int N, int C, float eps);
void rmsNormGradAvx512(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* part,
                       int N, int C);

#ifdef AVX512_HELPERS
#include <cmath>
#include <immintrin.h>

inline __mmask16 tail16(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

// e^x for 16 lanes: 2^n e^f with n = round(x log2 e), f = x - n ln 2 (ln 2 in two parts), e^f by a degree-6
// polynomial on |f| <= ln2/2 (relative error ~2e-7); very negative x (and -inf) give 0 through scalef.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 f = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  f = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), f);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(f, f), _mm512_add_ps(f, _mm512_set1_ps(1.f)));
  return _mm512_scalef_ps(p, n);
}

// 16 floats -> 16 bf16 bits exactly as toBf16One (kernels/dnnl.h): round to nearest even, NaN stays a quiet NaN.
inline __m256i bf16x16(__m512 v) {
  const __m512i b = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  const __m512i rne = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  const __m512i q = _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(rne, nan, q));
}

inline void storeBf16(uint16_t* dst, __m512 v, __mmask16 m) { _mm256_mask_storeu_epi16(dst, m, bf16x16(v)); }

// sum_c a[c] b[c] (b null: a[c]^2) in 4 x 16 float lanes, then across them.
inline float rowDot(const float* a, const float* b, int C) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int c = 0; c < C; c += 16) {
    const __mmask16 m = tail16(C - c);
    const __m512 x = _mm512_maskz_loadu_ps(m, a + c);
    acc[(c >> 4) & 3] = _mm512_fmadd_ps(x, b ? _mm512_maskz_loadu_ps(m, b + c) : x, acc[(c >> 4) & 3]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

// One row of RMSNorm as rmsNormAvx512 computes it (the attention's folded q/k norms give the same bits):
// r = 1 / sqrt(mean(a^2) + eps); y = (a r) w.
inline float rmsRstd(const float* a, int C, float eps) { return 1.f / std::sqrt(rowDot(a, nullptr, C) / C + eps); }
inline void rmsRow(const float* a, const float* w, float r, float* y, int C) {
  const __m512 rv = _mm512_set1_ps(r);
  for (int c = 0; c < C; c += 16) {
    const __mmask16 m = tail16(C - c);
    _mm512_mask_storeu_ps(y + c, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + c), rv), _mm512_maskz_loadu_ps(m, w + c)));
  }
}

// Its backward for one row (dy g, input a, 1/rms r): gw = g w (scratch [C]); dx = r (gw - a k) with
// k = (gw . a) r r / C; pw (null: skipped) += (g a) r, the row's part of dw. dx must not alias g or a.
inline void rmsRowGrad(const float* g, const float* a, const float* w, float r, float* gw, float* dx, float* pw, int C) {
  for (int c = 0; c < C; c += 16) {
    const __mmask16 m = tail16(C - c);
    _mm512_mask_storeu_ps(gw + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + c), _mm512_maskz_loadu_ps(m, w + c)));
  }
  const __m512 rv = _mm512_set1_ps(r), kv = _mm512_set1_ps(rowDot(gw, a, C) * r * r / C);
  for (int c = 0; c < C; c += 16) {
    const __mmask16 m = tail16(C - c);
    const __m512 av = _mm512_maskz_loadu_ps(m, a + c);
    _mm512_mask_storeu_ps(dx + c, m, _mm512_mul_ps(rv, _mm512_fnmadd_ps(av, kv, _mm512_maskz_loadu_ps(m, gw + c))));
    if (pw) _mm512_mask_storeu_ps(pw + c, m, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + c), av), rv, _mm512_maskz_loadu_ps(m, pw + c)));
  }
}
#endif
