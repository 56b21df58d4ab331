// RmsNorm.cc: RMSNorm over the last axis, forward (saves 1/rms per row) and backward (dx and dw).
// y = x * r * w, r = 1 / sqrt(mean(x^2) + eps); dx = r * (dy*w - xhat * mean(dy*w*xhat)), dw = sum_rows dy*xhat.
#include "attention.h"
#include "avx512.h"
#include "blas.h"
#include <cmath>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

void rmsNormRows(const float* x, const float* w, float* y, float* rstd, int N, int C, float eps, bool vectorSums) {
  if (vectorSums && avx512Bf16()) return rmsNormAvx512(x, w, y, rstd, N, C, eps);
#pragma omp parallel for num_threads(g_threads)
  for (int n = 0; n < N; n++) {
    const float* a = x + (size_t)n * C;
    float ss = 0;
    for (int c = 0; c < C; c++) ss += a[c] * a[c];
    const float r = 1.f / std::sqrt(ss / C + eps);
    rstd[n] = r;
    float* b = y + (size_t)n * C;
    for (int c = 0; c < C; c++) b[c] = a[c] * r * w[c];
  }
}

// rmsNorm(x [N,C], w [C], y [N,C], rstd [N], N, C, eps[, vectorSums]): vectorSums (bf16 models) sums rows in
// AVX-512 lanes where the CPU has them (the scalar order keeps fp32 results as they were).
static Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  const float *x = f32(info[0]), *w = f32(info[1]);
  float *y = f32(info[2]), *rstd = f32(info[3]);
  const int N = arg_i(info, 4), C = arg_i(info, 5);
  need_len(info, "rmsNorm", 0, "x", (int64_t)N * C), need_len(info, "rmsNorm", 1, "w", C);
  need_len(info, "rmsNorm", 2, "y", (int64_t)N * C), need_len(info, "rmsNorm", 3, "rstd", N);
  rmsNormRows(x, w, y, rstd, N, C, arg_f(info, 6), info.Length() > 7 && info[7].ToBoolean());
  return info.Env().Undefined();
}

// dx and per-thread dw partials (part: g_threads rows of C zeros) of RmsNormGrad, summed in row order per thread.
static void gradRows(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* part, int N,
                     int C) {
#pragma omp parallel num_threads(g_threads)
  {
    int t = 0;
#ifdef _OPENMP
    t = omp_get_thread_num();
#endif
    float* pw = part + (size_t)t * C;
#pragma omp for
    for (int n = 0; n < N; n++) {
      const float *g = dy + (size_t)n * C, *a = x + (size_t)n * C;
      const float r = rstd[n];
      float dot = 0;
      for (int c = 0; c < C; c++) dot += g[c] * w[c] * a[c];
      const float k = dot * r * r / C;
      float* o = dx + (size_t)n * C;
      for (int c = 0; c < C; c++) {
        o[c] = r * (g[c] * w[c] - a[c] * k);
        pw[c] += g[c] * a[c] * r;
      }
    }
  }
}

void rmsNormGradRows(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw, int N,
                     int C, bool vectorSums) {
  const int nt = g_threads;
  std::vector<float> part((size_t)nt * C, 0.f);  // per-thread dw
  if (vectorSums && avx512Bf16()) rmsNormGradAvx512(dy, x, w, rstd, dx, part.data(), N, C);
  else gradRows(dy, x, w, rstd, dx, part.data(), N, C);
  for (int c = 0; c < C; c++) {
    float s = 0;
    for (int t = 0; t < nt; t++) s += part[(size_t)t * C + c];
    dw[c] = s;
  }
}

// rmsNormGrad(dy, x, w, rstd, dx [N,C], dw [C], N, C[, vectorSums])
static Napi::Value RmsNormGrad(const Napi::CallbackInfo& info) {
  const float *dy = f32(info[0]), *x = f32(info[1]), *w = f32(info[2]), *rstd = f32(info[3]);
  float *dx = f32(info[4]), *dw = f32(info[5]);
  const int N = arg_i(info, 6), C = arg_i(info, 7);
  const char* fn = "rmsNormGrad";
  need_len(info, fn, 0, "dy", (int64_t)N * C), need_len(info, fn, 1, "x", (int64_t)N * C), need_len(info, fn, 2, "w", C);
  need_len(info, fn, 3, "rstd", N), need_len(info, fn, 4, "dx", (int64_t)N * C), need_len(info, fn, 5, "dw", C);
  rmsNormGradRows(dy, x, w, rstd, dx, dw, N, C, info.Length() > 8 && info[8].ToBoolean());
  return info.Env().Undefined();
}

void InitRmsNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("rmsNormGrad", Napi::Function::New(env, RmsNormGrad));
}
