// WeightedCrossEntropy.cc: token-weighted cross-entropy through the lm_head, chunked over rows so only [c, V] logits
// exist at once; forward and the gradient wrt the hidden states in the same pass (dh is linear in dLoss).
#include "avx512.h"
#include "blas.h"
#include "dnnl.h"
#include <cmath>
#include <algorithm>
#include <vector>

static bool g_scalarSoftmax = false;  // setSoftmaxPath('scalar'): tests compare the two paths' bits

double softmaxRow(float* r, int V, int y, float w) {
  if (!g_scalarSoftmax && softmaxRowExact()) return softmaxRowAvx512(r, V, y, w);  // ~4x faster, the same bits
  const float ly = r[y];
  float m = -INFINITY;
  for (int j = 0; j < V; j++) m = r[j] > m ? r[j] : m;
  double sum = 0;
  for (int j = 0; j < V; j++) sum += (r[j] = std::exp(r[j] - m));
  const float inv = (float)(w / sum);
  for (int j = 0; j < V; j++) r[j] *= inv;
  r[y] -= w;
  return w * (m + std::log(sum) - ly);
}

// weightedCrossEntropy(h [M,C], W [V,C], labels Int32 [M], w [M], loss [1], dh [M,C], M, C, V, rows)
// loss = sum_m w_m (logsumexp(h_m W^T) - (h_m W^T)[label_m]); dh = ((softmax - onehot) * w) W for dLoss = 1.
// dh null (an evaluation): the loss only, without the second sgemm.
static Napi::Value WeightedCrossEntropy(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *h = f32(info[0]), *W = f32(info[1]);
  const int32_t* labels = i32(info[2]);
  const float* w = f32(info[3]);
  float *loss = f32(info[4]), *dh = info[5].IsNull() ? nullptr : f32(info[5]);
  const int M = arg_i(info, 6), C = arg_i(info, 7), V = arg_i(info, 8), rows = arg_i(info, 9);
  const char* fn = "weightedCrossEntropy";
  need_len(info, fn, 0, "h", (int64_t)M * C), need_len(info, fn, 1, "W", (int64_t)V * C);
  need_len(info, fn, 2, "labels", M), need_len(info, fn, 3, "w", M);
  need_len(info, fn, 4, "loss", 1), need_len(info, fn, 5, "dh", (int64_t)M * C);
  if (rows <= 0 || V <= 0) throw Napi::RangeError::New(info.Env(), "weightedCrossEntropy: rows and V must be > 0");
  for (int m = 0; m < M; m++)
    if (labels[m] < 0 || labels[m] >= V) throw Napi::RangeError::New(info.Env(), "weightedCrossEntropy: a label is outside [0, V)");
  // Kept across calls, uninitialized (sgemm writes it first): fresh, zeroed pages took 62 of a 270 ms call at the
  // demo model's shape (200 rows, V = 151669). Calls come from the one JS thread.
  static std::vector<float> logitsStore;
  float* logits = reuse(logitsStore, (size_t)std::min(rows, M) * V);
  double total = 0;
  for (int s = 0; s < M; s += rows) {
    const int c = std::min(rows, M - s);
    sgemm(false, true, c, V, C, 1.f, h + (size_t)s * C, W, 0.f, logits);
#pragma omp parallel for reduction(+ : total) num_threads(g_threads)
    for (int i = 0; i < c; i++) total += softmaxRow(logits + (size_t)i * V, V, labels[s + i], w[s + i]);
    if (dh) sgemm(false, false, c, C, V, 1.f, logits, W, 0.f, dh + (size_t)s * C);
  }
  loss[0] = (float)total;
  return info.Env().Undefined();
}

// setSoftmaxPath('vector' | 'scalar'): the lm_head softmax's vector path (where softmaxRowExact()) or the scalar loop.
static Napi::Value SetSoftmaxPath(const Napi::CallbackInfo& info) {
  g_scalarSoftmax = info[0].As<Napi::String>().Utf8Value() == "scalar";
  return Napi::Boolean::New(info.Env(), softmaxRowExact());
}

void InitWeightedCrossEntropy(Napi::Env env, Napi::Object exports) {
  exports.Set("weightedCrossEntropy", Napi::Function::New(env, WeightedCrossEntropy));
  exports.Set("setSoftmaxPath", Napi::Function::New(env, SetSoftmaxPath));
}
