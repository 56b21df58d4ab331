// GeluTanhMul.cc: Gemma's MLP activation y = gelu_tanh(g) * u, forward and backward (HF gelu_pytorch_tanh).
// gelu_tanh(g) = 0.5 g (1 + t), t = tanh(c (g + a g^3)), c = sqrt(2/pi), a = 0.044715;
// d/dg = 0.5 (1 + t) + 0.5 g (1 - t^2) c (1 + 3 a g^2).
#include "blas.h"
#include <cmath>

static const float kC = 0.7978845608028654f, kA = 0.044715f;

// geluTanhMul(g, u, y, n)
static Napi::Value GeluTanhMul(const Napi::CallbackInfo& info) {
  const float *g = f32(info[0]), *u = f32(info[1]);
  float* y = f32(info[2]);
  const int64_t n = info[3].As<Napi::Number>().Int64Value();
  need_len(info, "geluTanhMul", 0, "g", n), need_len(info, "geluTanhMul", 1, "u", n), need_len(info, "geluTanhMul", 2, "y", n);
#pragma omp parallel for num_threads(g_threads)
  for (int64_t i = 0; i < n; i++) {
    const float x = g[i], t = std::tanh(kC * (x + kA * x * x * x));
    y[i] = 0.5f * x * (1.f + t) * u[i];
  }
  return info.Env().Undefined();
}

// geluTanhMulGrad(dy, g, u, dg, du, n)
static Napi::Value GeluTanhMulGrad(const Napi::CallbackInfo& info) {
  const float *dy = f32(info[0]), *g = f32(info[1]), *u = f32(info[2]);
  float *dg = f32(info[3]), *du = f32(info[4]);
  const int64_t n = info[5].As<Napi::Number>().Int64Value();
  need_len(info, "geluTanhMulGrad", 0, "dy", n), need_len(info, "geluTanhMulGrad", 1, "g", n), need_len(info, "geluTanhMulGrad", 2, "u", n);
  need_len(info, "geluTanhMulGrad", 3, "dg", n), need_len(info, "geluTanhMulGrad", 4, "du", n);
#pragma omp parallel for num_threads(g_threads)
  for (int64_t i = 0; i < n; i++) {
    const float x = g[i], t = std::tanh(kC * (x + kA * x * x * x));
    du[i] = dy[i] * 0.5f * x * (1.f + t);
    dg[i] = dy[i] * u[i] * (0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * kC * (1.f + 3.f * kA * x * x));
  }
  return info.Env().Undefined();
}

void InitGeluTanhMul(Napi::Env env, Napi::Object exports) {
  exports.Set("geluTanhMul", Napi::Function::New(env, GeluTanhMul));
  exports.Set("geluTanhMulGrad", Napi::Function::New(env, GeluTanhMulGrad));
}
