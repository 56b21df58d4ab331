// WeightedCrossEntropy.cc: token-weighted cross-entropy through the lm_head, chunked over rows so only [c, V] logits
// exist at once; forward and the gradient wrt the hidden states in the same pass (dh is linear in dLoss).
#include "blas.h"
#include <cmath>
#include <algorithm>
#include <vector>

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
  std::vector<float> logits((size_t)rows * V);
  double total = 0;
  for (int s = 0; s < M; s += rows) {
    const int c = std::min(rows, M - s);
    sgemm(false, true, c, V, C, 1.f, h + (size_t)s * C, W, 0.f, logits.data());
#pragma omp parallel for reduction(+ : total) num_threads(g_threads)
    for (int i = 0; i < c; i++) {
      float* r = logits.data() + (size_t)i * V;
      const float wi = w[s + i];
      const int y = labels[s + i];
      const float ly = r[y];
      float m = -INFINITY;
      for (int j = 0; j < V; j++) m = r[j] > m ? r[j] : m;
      double sum = 0;
      for (int j = 0; j < V; j++) sum += (r[j] = std::exp(r[j] - m));
      total += wi * (m + std::log(sum) - ly);
      const float inv = (float)(wi / sum);
      for (int j = 0; j < V; j++) r[j] *= inv;
      r[y] -= wi;
    }
    if (dh) sgemm(false, false, c, C, V, 1.f, logits.data(), W, 0.f, dh + (size_t)s * C);
  }
  loss[0] = (float)total;
  return info.Env().Undefined();
}

void InitWeightedCrossEntropy(Napi::Env env, Napi::Object exports) {
  exports.Set("weightedCrossEntropy", Napi::Function::New(env, WeightedCrossEntropy));
}
