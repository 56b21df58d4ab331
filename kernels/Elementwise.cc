// Elementwise.cc: float32 Add/Sub/Mul/Div with "suffix" broadcasting (b repeats every `inner` values of a, or
// the reverse), and Softmax over the last axis. These replace tfjs-cpu's generic JS loops on 'native'.
#include "blas.h"
#include <cmath>

// binary(op, a, b, out, n, na, nb): out[i] = a[i % na] (op) b[i % nb], n = max(na, nb), one of na/nb divides n.
// op: 0 add, 1 sub, 2 mul, 3 div.
static Napi::Value Binary(const Napi::CallbackInfo& info) {
  const int op = arg_i(info, 0);
  const float *a = f32(info[1]), *b = f32(info[2]);
  float* o = f32(info[3]);
  const int64_t n = info[4].As<Napi::Number>().Int64Value(), na = info[5].As<Napi::Number>().Int64Value(),
                nb = info[6].As<Napi::Number>().Int64Value();
  const int64_t inner = na < nb ? na : nb, rows = n / inner;
  const bool aSmall = na < nb;
#pragma omp parallel for num_threads(g_threads) if (n > 65536)
  for (int64_t r = 0; r < rows; r++) {
    const float* x = aSmall ? a : a + r * inner;
    const float* y = aSmall ? b + r * inner : (na == nb ? b + r * inner : b);
    float* z = o + r * inner;
    switch (op) {
      case 0: for (int64_t i = 0; i < inner; i++) z[i] = x[i] + y[i]; break;
      case 1: for (int64_t i = 0; i < inner; i++) z[i] = x[i] - y[i]; break;
      case 2: for (int64_t i = 0; i < inner; i++) z[i] = x[i] * y[i]; break;
      default: for (int64_t i = 0; i < inner; i++) z[i] = x[i] / y[i]; break;
    }
  }
  return info.Env().Undefined();
}

// softmax(x, y, rows, cols): row-wise softmax over the last axis.
static Napi::Value Softmax(const Napi::CallbackInfo& info) {
  const float* x = f32(info[0]);
  float* y = f32(info[1]);
  const int64_t rows = info[2].As<Napi::Number>().Int64Value();
  const int cols = arg_i(info, 3);
#pragma omp parallel for num_threads(g_threads) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; r++) {
    const float* a = x + r * cols;
    float* b = y + r * cols;
    float m = -INFINITY;
    for (int j = 0; j < cols; j++) m = a[j] > m ? a[j] : m;
    float sum = 0;
    for (int j = 0; j < cols; j++) sum += (b[j] = std::exp(a[j] - m));
    const float inv = 1.f / sum;
    for (int j = 0; j < cols; j++) b[j] *= inv;
  }
  return info.Env().Undefined();
}

void InitElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
}
