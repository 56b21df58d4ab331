// Avx512.cc: the AVX-512 pieces called from files built for any x86-64 (the check, the lm_head's softmax row).
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
#include <omp.h>
#include <vector>

bool avx512Bf16() {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return cpu && bf16OnDnnl();
}

namespace {
// f(seg, n, b0) for each segment of a row laid out as softmaxRowAvx512's: values [b0, b0 + n) at seg.
template <typename F>
void eachSegment(float* r, int V, int bw, size_t bstride, F&& f) {
  for (int b0 = 0; b0 < V; b0 += bw) f(r + (size_t)(b0 / bw) * bstride, std::min(bw, V - b0), b0);
}
}  // namespace

double softmaxRowAvx512(float* r, int V, int bw, size_t bstride, int y, float w, bool toBf16) {
  const float ly = r[(size_t)(y / bw) * bstride + y % bw];
  __m512 mv = _mm512_set1_ps(-INFINITY);
  eachSegment(r, V, bw, bstride, [&](float* seg, int n, int) {
    for (int j = 0; j < n; j += 16) mv = _mm512_mask_max_ps(mv, tail16(n - j), mv, _mm512_maskz_loadu_ps(tail16(n - j), seg + j));
  });
  const float m = _mm512_reduce_max_ps(mv);
  const __m512 mm = _mm512_set1_ps(m);
  double sum = 0;
  eachSegment(r, V, bw, bstride, [&](float* seg, int n, int) {
    for (int j0 = 0; j0 < n; j0 += 4096) {  // float lanes per 4096 values, then double: the sum keeps ~1e-7
      __m512 s = _mm512_setzero_ps();
      for (int j = j0; j < j0 + 4096 && j < n; j += 16) {
        const __mmask16 k = tail16(n - j);
        const __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, seg + j), mm)));
        _mm512_mask_storeu_ps(seg + j, k, e);
        s = _mm512_add_ps(s, e);
      }
      sum += _mm512_reduce_add_ps(s);
    }
  });
  const __m512 inv = _mm512_set1_ps((float)(w / sum));
  eachSegment(r, V, bw, bstride, [&](float* seg, int n, int b0) {
    uint16_t* g = (uint16_t*)seg;  // bf16 values over the segment's first half
    const int yl = y - b0;
    for (int j = 0; j < n; j += 16) {
      const __mmask16 k = tail16(n - j);
      __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, seg + j), inv);
      if (yl >= j && yl < j + 16) p = _mm512_mask_sub_ps(p, (__mmask16)(1u << (yl - j)), p, _mm512_set1_ps(w));
      if (toBf16) storeBf16(g + j, p, k);
      else _mm512_mask_storeu_ps(seg + j, k, p);
    }
  });
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

namespace {
// sum_c a[c] b[c] (b null: a[c]^2) over one row, in 4 x 16 float lanes then across them.
inline float rowDot(const float* a, const float* b, int C) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int c = 0; c < C; c += 16) {
    const __mmask16 m = tail16(C - c);
    const __m512 x = _mm512_maskz_loadu_ps(m, a + c);
    acc[(c >> 4) & 3] = _mm512_fmadd_ps(x, b ? _mm512_maskz_loadu_ps(m, b + c) : x, acc[(c >> 4) & 3]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}
}  // namespace

void rmsNormAvx512(const float* x, const float* w, float* y, float* rstd, int N, int C, float eps) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int n = 0; n < N; n++) {
    const float* a = x + (size_t)n * C;
    const float r = 1.f / std::sqrt(rowDot(a, nullptr, C) / C + eps);
    rstd[n] = r;
    const __m512 rv = _mm512_set1_ps(r);
    for (int c = 0; c < C; c += 16) {
      const __mmask16 m = tail16(C - c);
      _mm512_mask_storeu_ps(y + (size_t)n * C + c, m,
                            _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + c), rv), _mm512_maskz_loadu_ps(m, w + c)));
    }
  }
}

void rmsNormGradAvx512(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* part,
                       int N, int C) {
#pragma omp parallel num_threads(g_threads)
  {
    float* pw = part + (size_t)omp_get_thread_num() * C;
    std::vector<float> gw(C);  // dy * w of the row
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      const float *g = dy + (size_t)n * C, *a = x + (size_t)n * C;
      const float r = rstd[n];
      for (int c = 0; c < C; c += 16) {
        const __mmask16 m = tail16(C - c);
        _mm512_mask_storeu_ps(gw.data() + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + c), _mm512_maskz_loadu_ps(m, w + c)));
      }
      const __m512 rv = _mm512_set1_ps(r), kv = _mm512_set1_ps(rowDot(gw.data(), a, C) * r * r / C);
      for (int c = 0; c < C; c += 16) {
        const __mmask16 m = tail16(C - c);
        const __m512 av = _mm512_maskz_loadu_ps(m, a + c);
        _mm512_mask_storeu_ps(dx + (size_t)n * C + c, m, _mm512_mul_ps(rv, _mm512_fnmadd_ps(av, kv, _mm512_maskz_loadu_ps(m, gw.data() + c))));
        _mm512_mask_storeu_ps(pw + c, m, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, g + c), av), rv, _mm512_maskz_loadu_ps(m, pw + c)));
      }
    }
  }
}
