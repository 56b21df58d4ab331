// AdamW.cc: one fused AdamW update per tensor (decoupled weight decay, bias-corrected moments), the native path
// of adamwStep in src/train/optimizer.ts (which keeps the JS loop as the reference).
// In place on p, m, v: these are the optimizer's own Float32Arrays (parameters and moments it owns), never tfjs
// tensor inputs, so writing into them is allowed here (unlike kernels, which must not write into inputs).
// Same operation order as the JS loop, in double, rounded to float on each store, so results are bit-identical:
// binding.gyp builds with -std=c++17 (ISO mode: GCC does not contract a*b+c into FMA) and no -ffast-math, and
// -march=x86-64-v2 has no FMA instructions at all. Where the CPU has AVX-512, 8 elements go at a time through the
// same operations (adamWAvx512 in kernels/Avx512.cc, its _round_ forms cannot be fused).
#include "avx512.h"
#include "blas.h"
#include <algorithm>
#include <cmath>

static inline double num(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }

// adamW(p, g, m, v, n, beta1, beta2, eps, keep, stepSize, sqrtBc2), all [n]; keep = 1 - lr*wd (or 1),
// stepSize = lr / (1 - beta1^t), sqrtBc2 = sqrt(1 - beta2^t), computed by the caller in double.
static Napi::Value AdamW(const Napi::CallbackInfo& info) {
  size_t np, ng, nm, nv;
  float *p = f32(info[0], &np), *g = f32(info[1], &ng), *m = f32(info[2], &nm), *v = f32(info[3], &nv);
  const int64_t n = info[4].As<Napi::Number>().Int64Value();
  if (n < 0 || (size_t)n > np || (size_t)n > ng || (size_t)n > nm || (size_t)n > nv)
    throw Napi::RangeError::New(info.Env(), "adamW: n exceeds an array's length");
  const double b1 = num(info, 5), b2 = num(info, 6), eps = num(info, 7), keep = num(info, 8);
  const double stepSize = num(info, 9), sqrtBc2 = num(info, 10);
  const double c1 = 1 - b1, c2 = 1 - b2;
  // Threads from 8k elements on (a LoRA matrix of rank 8 at hidden 1024 has 8k); 2k-element chunks, whole
  // vectors each, so the split leaves every element's operations as they are.
  const int64_t chunks = (n + 2047) / 2048;
#pragma omp parallel for num_threads(g_threads) schedule(static) if (n >= (1 << 13))
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t i0 = c * 2048, i1 = std::min<int64_t>(n, i0 + 2048);
    if (hasAvx512()) {
      adamWAvx512(p, g, m, v, i0, i1, AdamWConst{b1, b2, c1, c2, eps, keep, stepSize, sqrtBc2});
      continue;
    }
    for (int64_t i = i0; i < i1; i++) {
      const double gi = g[i];
      m[i] = (float)(b1 * (double)m[i] + c1 * gi);
      v[i] = (float)(b2 * (double)v[i] + c2 * gi * gi);
      p[i] = (float)((double)p[i] * keep - (stepSize * (double)m[i]) / (std::sqrt((double)v[i]) / sqrtBc2 + eps));
    }
  }
  return info.Env().Undefined();
}

void InitAdamW(Napi::Env env, Napi::Object exports) { exports.Set("adamW", Napi::Function::New(env, AdamW)); }
