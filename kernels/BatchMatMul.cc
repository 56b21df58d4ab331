// BatchMatMul.cc: BatchMatMul and _FusedMatMul (bias + activation epilogue) on OpenBLAS sgemm, with batch broadcasting.
#include "blas.h"
#include <cmath>
#include <algorithm>

// Activation codes shared with src/kernels/BatchMatMul.ts.
enum Act { LINEAR = 0, RELU = 1, RELU6 = 2, SIGMOID = 3, LEAKYRELU = 4, ELU = 5 };

static void epilogue(float* c, size_t rows, int N, const float* bias, size_t biasLen, int act, float alpha) {
  for (size_t i = 0; i < rows; i++) {
    float* r = c + i * N;
    if (bias) {
      if (biasLen == 1) for (int j = 0; j < N; j++) r[j] += bias[0];
      else for (int j = 0; j < N; j++) r[j] += bias[j];
    }
    switch (act) {
      case RELU: for (int j = 0; j < N; j++) r[j] = r[j] > 0 ? r[j] : 0; break;
      case RELU6: for (int j = 0; j < N; j++) r[j] = std::min(std::max(r[j], 0.f), 6.f); break;
      case SIGMOID: for (int j = 0; j < N; j++) r[j] = 1.f / (1.f + std::exp(-r[j])); break;
      case LEAKYRELU: for (int j = 0; j < N; j++) r[j] = r[j] < 0 ? alpha * r[j] : r[j]; break;
      case ELU: for (int j = 0; j < N; j++) r[j] = r[j] < 0 ? std::expm1(r[j]) : r[j]; break;
      default: break;
    }
  }
}

// batchMatMul(a, b, out, batchA, batchB, M, N, K, transA, transB[, bias, act, alpha, idxA, idxB])
// a: [batchA, M, K] (or [batchA, K, M] if transA), b: [batchB, K, N] (or [batchB, N, K] if transB),
// out: [batch, M, N]; batch entry i reads a[idxA[i]], b[idxB[i]] when the maps are given, else a[i % batchA],
// b[i % batchB] (exact when the batch shapes are equal or one of them is 1).
// bias (optional): length N or 1, added per row; act: Act code.
static Napi::Value BatchMatMul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireBlas(env);
  size_t la, lb, lc, lbias = 0;
  const float* a = f32(info[0], &la);
  const float* b = f32(info[1], &lb);
  float* c = f32(info[2], &lc);
  const int64_t bA = info[3].As<Napi::Number>().Int64Value(), bB = info[4].As<Napi::Number>().Int64Value();
  const int M = info[5].As<Napi::Number>().Int32Value(), N = info[6].As<Napi::Number>().Int32Value();
  const int K = info[7].As<Napi::Number>().Int32Value();
  const bool tA = info[8].ToBoolean(), tB = info[9].ToBoolean();
  const float* bias = info.Length() > 10 && info[10].IsTypedArray() ? f32(info[10], &lbias) : nullptr;
  const int act = info.Length() > 11 ? info[11].As<Napi::Number>().Int32Value() : LINEAR;
  const float alpha = info.Length() > 12 ? info[12].As<Napi::Number>().FloatValue() : 0.f;
  // Optional batch index maps (general broadcasting such as [2,1] x [1,3]); else i % batchA, i % batchB.
  const int32_t* idxA = info.Length() > 13 && info[13].IsTypedArray() ? i32(info[13]) : nullptr;
  const int32_t* idxB = info.Length() > 14 && info[14].IsTypedArray() ? i32(info[14]) : nullptr;
  const int64_t batch = idxA ? (int64_t)info[13].As<Napi::Int32Array>().ElementLength() : std::max(bA, bB);
  if ((size_t)(bA * M * K) > la || (size_t)(bB * K * N) > lb || (size_t)(batch * M * N) > lc)
    throw Napi::RangeError::New(env, "batchMatMul: buffer smaller than the given shape");
  if (bias && lbias != 1 && lbias != (size_t)N) throw Napi::RangeError::New(env, "batchMatMul: bias must have N or 1 values");
  if (M == 0 || N == 0) return env.Undefined();
  if (K == 0) {
    std::fill(c, c + batch * M * N, 0.f);
  } else if (bB == 1 && !tA && !idxA) {
    // Shared right operand: one tall sgemm [batch*M, K] x [K, N] keeps all threads busy.
    sgemm(false, tB, (int)(batch * M), N, K, 1.f, a, b, 0.f, c);
  } else {
    for (int64_t i = 0; i < batch; i++)
      sgemm(tA, tB, M, N, K, 1.f, a + (int64_t)(idxA ? idxA[i] : i % bA) * M * K,
            b + (int64_t)(idxB ? idxB[i] : i % bB) * K * N, 0.f, c + i * M * N);
  }
  if (bias || act != LINEAR) epilogue(c, (size_t)(batch * M), N, bias, lbias, act, alpha);
  return env.Undefined();
}

void InitBatchMatMul(Napi::Env env, Napi::Object exports) {
  exports.Set("batchMatMul", Napi::Function::New(env, BatchMatMul));
}
