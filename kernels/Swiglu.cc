// Swiglu.cc: SwiGLU activation y = silu(g) * u = g * sigmoid(g) * u, forward and backward.
// dg = dy * u * s * (1 + g (1 - s)), du = dy * g * s, with s = sigmoid(g).
#include "blas.h"
#include "dnnl.h"
#include "avx512.h"
#include <cmath>

// swiglu(g, u, y, n[, fastExp]): fastExp (bf16 models) takes the AVX-512 vector exp where the CPU has it.
static Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  const float *g = f32(info[0]), *u = f32(info[1]);
  float* y = f32(info[2]);
  const int64_t n = info[3].As<Napi::Number>().Int64Value();
  need_len(info, "swiglu", 0, "g", n), need_len(info, "swiglu", 1, "u", n), need_len(info, "swiglu", 2, "y", n);
  if (info.Length() > 4 && info[4].ToBoolean() && avx512Bf16()) {
    swigluAvx512(g, u, y, n);
    return info.Env().Undefined();
  }
#pragma omp parallel for num_threads(g_threads)
  for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
  return info.Env().Undefined();
}

// swigluGrad(dy, g, u, dg, du, n[, fastExp])
static Napi::Value SwigluGrad(const Napi::CallbackInfo& info) {
  const float *dy = f32(info[0]), *g = f32(info[1]), *u = f32(info[2]);
  float *dg = f32(info[3]), *du = f32(info[4]);
  const int64_t n = info[5].As<Napi::Number>().Int64Value();
  need_len(info, "swigluGrad", 0, "dy", n), need_len(info, "swigluGrad", 1, "g", n), need_len(info, "swigluGrad", 2, "u", n);
  need_len(info, "swigluGrad", 3, "dg", n), need_len(info, "swigluGrad", 4, "du", n);
  if (info.Length() > 6 && info[6].ToBoolean() && avx512Bf16()) {
    swigluGradAvx512(dy, g, u, dg, du, n);
    return info.Env().Undefined();
  }
#pragma omp parallel for num_threads(g_threads)
  for (int64_t i = 0; i < n; i++) {
    const float s = 1.f / (1.f + std::exp(-g[i]));
    du[i] = dy[i] * g[i] * s;
    dg[i] = dy[i] * u[i] * s * (1.f + g[i] * (1.f - s));
  }
  return info.Env().Undefined();
}

void InitSwiglu(Napi::Env env, Napi::Object exports) {
  exports.Set("swiglu", Napi::Function::New(env, Swiglu));
  exports.Set("swigluGrad", Napi::Function::New(env, SwigluGrad));
}
