// GatherV2.cc: row gather, the 'native' GatherV2 for 32-bit params (float32, or int32 such as packed bf16
// embeddings: rows are copied as bits), axis 0, batchDims 0, int32 indices (embedding lookup x[ids] and row
// selection). x [R, S], idx int32 [N] -> out [N, S], one memcpy per row. Its gradient, UnsortedSegmentSum, too.
#include "blas.h"
#include <cstring>

// gatherV2(x, idx, out, R, S): returns -1, or the position of the first index outside [0, R) (nothing written
// then; the caller reports it like the cpu kernel does).
static Napi::Value GatherV2(const Napi::CallbackInfo& info) {
  size_t nx, nidx, nout;
  const float* x = f32(info[0], &nx);
  const int32_t* idx = i32(info[1], &nidx);
  float* out = f32(info[2], &nout);
  const int64_t R = info[3].As<Napi::Number>().Int64Value(), S = info[4].As<Napi::Number>().Int64Value();
  const int64_t N = (int64_t)nidx;
  if (R < 0 || S < 0 || (size_t)(R * S) > nx || (size_t)(N * S) > nout)
    throw Napi::RangeError::New(info.Env(), "gatherV2: shapes exceed the arrays");
  for (int64_t n = 0; n < N; n++)
    if (idx[n] < 0 || idx[n] >= R) return Napi::Number::New(info.Env(), (double)n);
  const size_t bytes = (size_t)S * sizeof(float);
  // Threads only pay off for large outputs (a 512 x 576 embedding lookup is ~1 MB: one thread).
#pragma omp parallel for num_threads(g_threads) if (N * S > (1 << 20))
  for (int64_t n = 0; n < N; n++) std::memcpy(out + n * S, x + (int64_t)idx[n] * S, bytes);
  return Napi::Number::New(info.Env(), -1);
}

// unsortedSegmentSum(x, ids, out, numSegments, S): out[ids[n], :] += x[n, :] (x [N, S], out [numSegments, S] zeroed
// by the caller); ids outside [0, numSegments) are dropped (TF semantics). Rows in order, as the TS loop did:
// repeated ids sum in the same order. One thread: an [N, S] pass is well under a millisecond.
static Napi::Value UnsortedSegmentSum(const Napi::CallbackInfo& info) {
  size_t nx, nids, nout;
  const float* x = f32(info[0], &nx);
  const int32_t* ids = i32(info[1], &nids);
  float* out = f32(info[2], &nout);
  const int64_t segs = info[3].As<Napi::Number>().Int64Value(), S = info[4].As<Napi::Number>().Int64Value();
  if (segs < 0 || S < 0 || nids * (size_t)S > nx || (size_t)(segs * S) > nout)
    throw Napi::RangeError::New(info.Env(), "unsortedSegmentSum: shapes exceed the arrays");
  for (size_t n = 0; n < nids; n++) {
    if (ids[n] < 0 || ids[n] >= segs) continue;
    const float* a = x + n * S;
    float* o = out + (int64_t)ids[n] * S;
    for (int64_t i = 0; i < S; i++) o[i] += a[i];
  }
  return info.Env().Undefined();
}

void InitGatherV2(Napi::Env env, Napi::Object exports) {
  exports.Set("gatherV2", Napi::Function::New(env, GatherV2));
  exports.Set("unsortedSegmentSum", Napi::Function::New(env, UnsortedSegmentSum));
}
