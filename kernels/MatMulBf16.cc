// MatMulBf16.cc: the entry points of every kernel with frozen bf16 weights (fp32 activations rounded to bf16, fp32
// accumulation): MatMulBf16, and the bf16-weight variants of LoraLinear (LoRA A/B stay fp32: AVX-512 passes in
// LoraLinearBf16.cc, else sgemm) and WeightedCrossEntropy (the lm_head), named <Kernel>Bf16. bf16 weights arrive
// packed two per element of an Int32Array.
#include "blas.h"
#include "dnnl.h"
#include "avx512.h"
#include <algorithm>
#include <cmath>
#include <vector>

// A bf16 weight: an Int32Array [rows, cols/2] (or Uint16Array) read as uint16 [rows, cols].
static const uint16_t* bf16(const Napi::Value& v) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), "expected packed bf16 weights (Int32Array or Uint16Array)");
  auto t = v.As<Napi::TypedArray>();
  if (t.TypedArrayType() != napi_int32_array && t.TypedArrayType() != napi_uint16_array)
    throw Napi::TypeError::New(v.Env(), "expected packed bf16 weights (Int32Array or Uint16Array)");
  return (const uint16_t*)((const uint8_t*)t.ArrayBuffer().Data() + t.ByteOffset());
}

// need_bf16: as need_len (kernels/blas.h), for a packed bf16 buffer of `count` values (2 bytes each).
static void need_bf16(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name, int64_t count) {
  if (count < 0) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": negative size for " + name);
  const size_t have = info[i].As<Napi::TypedArray>().ByteLength() / 2;
  if (have < (size_t)count)
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + name + " has " + std::to_string(have) +
                                                " bf16 values, the shape needs " + std::to_string(count));
}

// matMulBf16(x [M,K], W bf16 ([N,K] if transW else [K,N]), y [M,N], M, N, K, transW)
static Napi::Value MatMulBf16(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const int M = arg_i(info, 3), N = arg_i(info, 4), K = arg_i(info, 5);
  const char* fn = "matMulBf16";
  const uint16_t* W = bf16(info[1]);
  need_len(info, fn, 0, "x", (int64_t)M * K), need_bf16(info, fn, 1, "W", (int64_t)N * K), need_len(info, fn, 2, "y", (int64_t)M * N);
  matmulBf16(info[6].ToBoolean(), M, N, K, f32(info[0]), W, f32(info[2]));
  return info.Env().Undefined();
}

// loraLinearBf16: loraLinear (kernels/LoraLinear.cc) with W bf16 [out,in]: y = bf16 x W^T + s (xl A^T) B^T (+ bias).
static Napi::Value LoraLinearBf16(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *x = f32(info[0]), *xl = f32(info[1]), *A = f32(info[3]), *B = f32(info[4]);
  const uint16_t* W = bf16(info[2]);
  const float* bias = info[5].IsTypedArray() ? f32(info[5]) : nullptr;
  float *y = f32(info[6]), *u = f32(info[7]);
  const int N = arg_i(info, 8), in = arg_i(info, 9), out = arg_i(info, 10), r = arg_i(info, 11);
  const float s = arg_f(info, 12);
  const char* fn = "loraLinearBf16";
  need_len(info, fn, 0, "x", (int64_t)N * in), need_len(info, fn, 1, "xl", (int64_t)N * in), need_bf16(info, fn, 2, "W", (int64_t)out * in);
  need_len(info, fn, 3, "A", (int64_t)r * in), need_len(info, fn, 4, "B", (int64_t)out * r), need_len(info, fn, 5, "bias", out);
  need_len(info, fn, 6, "y", (int64_t)N * out), need_len(info, fn, 7, "u", (int64_t)N * r);
  if (avx512Bf16() && loraForwardBf16(N, in, out, r, s, x, xl, W, A, B, bias, y, u)) return info.Env().Undefined();
  matmulBf16(true, N, out, in, x, W, y);  // y = x W^T (bf16)
  loraForwardTerms(N, in, out, r, s, xl, A, B, bias, y, u);
  return info.Env().Undefined();
}

// loraLinearGradBf16: loraLinearGrad with W bf16: dx = bf16 dy W; the LoRA terms as in LoraLinear.cc (fp32).
static Napi::Value LoraLinearGradBf16(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *dy = f32(info[0]), *xl = f32(info[1]), *A = f32(info[3]), *B = f32(info[4]), *u = f32(info[5]);
  const uint16_t* W = bf16(info[2]);
  float *dx = f32(info[6]), *dA = f32(info[8]), *dB = f32(info[9]);
  float* dxl = info[7].IsTypedArray() ? f32(info[7]) : nullptr;
  const int N = arg_i(info, 10), in = arg_i(info, 11), out = arg_i(info, 12), r = arg_i(info, 13);
  const float s = arg_f(info, 14);
  const char* fn = "loraLinearGradBf16";
  need_len(info, fn, 0, "dy", (int64_t)N * out), need_len(info, fn, 1, "xl", (int64_t)N * in), need_bf16(info, fn, 2, "W", (int64_t)out * in);
  need_len(info, fn, 3, "A", (int64_t)r * in), need_len(info, fn, 4, "B", (int64_t)out * r), need_len(info, fn, 5, "u", (int64_t)N * r);
  need_len(info, fn, 6, "dx", (int64_t)N * in), need_len(info, fn, 7, "dxl", (int64_t)N * in);
  need_len(info, fn, 8, "dA", (int64_t)r * in), need_len(info, fn, 9, "dB", (int64_t)out * r);
  if (avx512Bf16() && loraBackwardBf16(N, in, out, r, s, dy, xl, W, A, B, u, dx, dxl, dA, dB))
    return info.Env().Undefined();
  matmulBf16(false, N, in, out, dy, W, dx);  // dx = dy W (bf16)
  loraBackwardTerms(N, in, out, r, s, dy, xl, A, B, u, dx, dxl, dA, dB);
  return info.Env().Undefined();
}

// One member of a loraLinearGroup call: a JS object {out, W, A, B, bias?, y?, dy?, dA?, dB?} read into the kernel's
// LoraMember and its per-member buffers, each checked against the shape (N rows of `in` inputs, rank r).
struct GroupMember {
  LoraMember m;
  float *y = nullptr, *dA = nullptr, *dB = nullptr;
  const float* dy = nullptr;
};

static std::vector<GroupMember> groupMembers(const Napi::CallbackInfo& info, size_t at, const char* fn, int N, int in,
                                             int r, bool grad) {
  const Napi::Env env = info.Env();
  if (!info[at].IsArray()) throw Napi::TypeError::New(env, std::string(fn) + ": members must be an array");
  const Napi::Array list = info[at].As<Napi::Array>();
  std::vector<GroupMember> out;
  for (uint32_t i = 0; i < list.Length(); i++) {
    const Napi::Object o = list.Get(i).As<Napi::Object>();
    const std::string at_ = std::string(fn) + ": member " + std::to_string(i) + " ";
    const int n = o.Get("out").As<Napi::Number>().Int32Value();
    auto buf = [&](const char* key, int64_t need, bool optional = false) -> float* {
      const Napi::Value v = o.Get(key);
      if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
      size_t have = 0;
      float* p = f32(v, &have);
      if (have < (size_t)need)
        throw Napi::RangeError::New(env, at_ + key + " has " + std::to_string(have) + " elements, the shape needs " +
                                             std::to_string(need));
      return p;
    };
    const Napi::Value w = o.Get("W");
    const uint16_t* W = bf16(w);
    if (n < 1 || w.As<Napi::TypedArray>().ByteLength() / 2 < (size_t)n * in)
      throw Napi::RangeError::New(env, at_ + "W holds fewer than out x in = " + std::to_string(n) + " x " + std::to_string(in) + " bf16 values");
    GroupMember g;
    g.m = LoraMember{n, W, buf("A", (int64_t)r * in), buf("B", (int64_t)n * r), grad ? nullptr : buf("bias", n, true)};
    if (grad) g.dy = buf("dy", (int64_t)N * n), g.dA = buf("dA", (int64_t)r * in), g.dB = buf("dB", (int64_t)n * r);
    else g.y = buf("y", (int64_t)N * n);
    out.push_back(g);
  }
  if (out.empty()) throw Napi::RangeError::New(env, std::string(fn) + ": no members");
  return out;
}

// The arguments both group entry points share: x [N,in] (info[0]), the members (info[1]), U [N, n r] (info[2]), and
// N, in, r, s from info[at] on.
struct GroupCall {
  int N, in, r, n;
  float s;
  std::vector<GroupMember> g;
  float *x, *U;
};

static GroupCall groupCall(const Napi::CallbackInfo& info, const char* fn, size_t at, bool grad) {
  requireBlas(info.Env());
  GroupCall c;
  c.N = arg_i(info, at), c.in = arg_i(info, at + 1), c.r = arg_i(info, at + 2), c.s = arg_f(info, at + 3);
  c.g = groupMembers(info, 1, fn, c.N, c.in, c.r, grad);
  c.n = (int)c.g.size();
  need_len(info, fn, 0, "x", (int64_t)c.N * c.in), need_len(info, fn, 2, "U", (int64_t)c.N * c.n * c.r);
  c.x = f32(info[0]), c.U = f32(info[2]);
  return c;
}

// loraLinearGroupBf16(x [N,in], members [{out, W, A, B, bias?, y}], U [N, n r], N, in, r, s): loraLinearBf16 for
// linears that read the same x (xl = x): y_i = bf16 x W_i^T + s (x A_i^T) B_i^T (+ bias_i); U holds the u_i side by
// side. Fallback (no oneDNN or AVX-512): each member as loraLinearBf16 does it.
static Napi::Value LoraLinearGroupBf16(const Napi::CallbackInfo& info) {
  const GroupCall c = groupCall(info, "loraLinearGroupBf16", 3, false);
  const int N = c.N, in = c.in, r = c.r, n = c.n;
  const float s = c.s, *x = c.x;
  float* U = c.U;
  std::vector<LoraMember> m;
  std::vector<float*> y;
  for (const auto& e : c.g) m.push_back(e.m), y.push_back(e.y);
  if (avx512Bf16() && loraGroupForwardBf16(n, m.data(), N, in, r, s, x, x, y.data(), U)) return info.Env().Undefined();
  std::vector<float> u((size_t)N * r);
  for (int i = 0; i < n; i++) {
    matmulBf16(true, N, m[i].out, in, x, m[i].W, y[i]);
    loraForwardTerms(N, in, m[i].out, r, s, x, m[i].A, m[i].B, m[i].bias, y[i], u.data());
    for (int t = 0; t < N; t++) std::copy(&u[(size_t)t * r], &u[(size_t)t * r] + r, U + ((size_t)t * n + i) * r);
  }
  return info.Env().Undefined();
}

// loraLinearGroupGradBf16(x [N,in], members [{out, W, A, B, dy, dA, dB}], U, dx [N,in], N, in, r, s): the backward
// of loraLinearGroupBf16: dx = sum_i (bf16 dy_i W_i + s (dy_i B_i) A_i), dA_i, dB_i as loraLinearGradBf16's.
static Napi::Value LoraLinearGroupGradBf16(const Napi::CallbackInfo& info) {
  const GroupCall c = groupCall(info, "loraLinearGroupGradBf16", 4, true);
  const int N = c.N, in = c.in, r = c.r, n = c.n;
  const float s = c.s, *x = c.x, *U = c.U;
  need_len(info, "loraLinearGroupGradBf16", 3, "dx", (int64_t)N * in);
  float* dx = f32(info[3]);
  std::vector<LoraMember> m;
  std::vector<const float*> dy;
  std::vector<float*> dA, dB;
  for (const auto& e : c.g) m.push_back(e.m), dy.push_back(e.dy), dA.push_back(e.dA), dB.push_back(e.dB);
  if (avx512Bf16() && loraGroupBackwardBf16(n, m.data(), N, in, r, s, dy.data(), x, U, dx, nullptr, dA.data(), dB.data()))
    return info.Env().Undefined();
  std::vector<float> u((size_t)N * r), dxi((size_t)N * in);
  for (int i = 0; i < n; i++) {
    for (int t = 0; t < N; t++) std::copy(U + ((size_t)t * n + i) * r, U + ((size_t)t * n + i + 1) * r, &u[(size_t)t * r]);
    float* d = i ? dxi.data() : dx;
    matmulBf16(false, N, in, m[i].out, dy[i], m[i].W, d);
    loraBackwardTerms(N, in, m[i].out, r, s, dy[i], x, m[i].A, m[i].B, u.data(), d, nullptr, dA[i], dB[i]);
    if (i) for (size_t j = 0; j < dxi.size(); j++) dx[j] += dxi[j];
  }
  return info.Env().Undefined();
}

// The lm_head in blocks of LM_BLOCK vocabulary rows: oneDNN's bf16 product slows down 2-2.5x when one call spans
// all of V = 151936 (measured at 441 x 1024: logits 292 -> 642 GFLOP/s, dh = dlogits W 188 -> 428 at K <= 8192).
constexpr int LM_BLOCK = 8192;

// Rows per oneDNN chunk: only one [rows, LM_BLOCK] tile of logits exists (64 MB at 2048 rows).
constexpr int LM_ROWS = 2048;

// One chunk of c rows on oneDNN in vocabulary blocks of LM_BLOCK, with an online softmax (as flash attention's):
// per block b, the tile = h W_b^T; each row's running max m and sum s move to the block, its e^(l - m) go to bf16
// over the tile, its dh row is rescaled to the new max, and dh += e W_b while W_b is still in cache. At the end
// dh = w (dh / s - W_y) and the loss w (m + log s - l_y). So the lm_head streams from memory once per chunk (not
// twice) and no [c, V] logits exist. dh null: the loss only. False if oneDNN failed (the caller redoes the call on
// the fallback path, which overwrites dh).
static bool lmHeadDnnl(int c, int C, int V, const float* h, const uint16_t* W, const int32_t* labels, const float* w,
                       float* dh, double& total) {
  static std::vector<uint16_t> hbs;  // calls come from the one JS thread
  static std::vector<float> tiles;
  uint16_t* hb = reuse(hbs, (size_t)c * C);
  float* tile = reuse(tiles, (size_t)c * LM_BLOCK);
  toBf16(h, hb, (size_t)c * C);
  std::vector<float> m(c, -INFINITY), ly(c, 0.f);
  std::vector<double> s(c, 0.0);
  for (int v0 = 0; v0 < V; v0 += LM_BLOCK) {
    const int nb = std::min(LM_BLOCK, V - v0);
    if (!matmulBf16Dnnl(true, c, nb, C, hb, C, W + (size_t)v0 * C, tile, LM_BLOCK)) return false;
#pragma omp parallel for num_threads(g_threads) schedule(static)
    for (int i = 0; i < c; i++) {
      float* row = tile + (size_t)i * LM_BLOCK;
      const int y = labels[i] - v0;
      if (y >= 0 && y < nb) ly[i] = row[y];
      const float scale = softmaxBlockAvx512(row, nb, m[i], s[i], dh != nullptr);
      if (dh && v0 > 0 && scale != 1.f)
        for (int k = 0; k < C; k++) dh[(size_t)i * C + k] *= scale;
    }
    // dh (+)= e W_b: the bf16 rows lie over the tile's fp32 rows (row stride 2 LM_BLOCK in bf16 values).
    if (dh && !matmulBf16Dnnl(false, c, C, nb, (const uint16_t*)tile, 2 * LM_BLOCK, W + (size_t)v0 * C, dh, C, v0 > 0))
      return false;
  }
  double t = 0;
#pragma omp parallel for reduction(+ : t) num_threads(g_threads) schedule(static)
  for (int i = 0; i < c; i++) {
    float* d = dh ? dh + (size_t)i * C : nullptr;
    if (w[i] == 0) {  // a masked token: no loss, no gradient (its label need not name a row of W)
      if (d) std::fill(d, d + C, 0.f);
      continue;
    }
    t += w[i] * (m[i] + std::log(s[i]) - ly[i]);
    if (!d) continue;
    const float f = (float)(w[i] / s[i]);
    const uint16_t* wy = W + (size_t)labels[i] * C;
    for (int k = 0; k < C; k++) d[k] = f * d[k] - w[i] * fromBf16One(wy[k]);
  }
  total += t;
  return true;
}

// weightedCrossEntropyBf16(h [M,C], W bf16 [V,C], labels [M], w [M], loss [1], dh [M,C], M, C, V, rows): as
// weightedCrossEntropy (kernels/WeightedCrossEntropy.cc) with bf16 lm_head matmuls; softmax and the loss in fp32/double.
// On oneDNN the rows go in chunks of up to LM_ROWS; the fallback path takes `rows` at a time ([rows, V] logits).
static Napi::Value WeightedCrossEntropyBf16(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *h = f32(info[0]), *w = f32(info[3]);
  const uint16_t* W = bf16(info[1]);
  const int32_t* labels = i32(info[2]);
  float *loss = f32(info[4]), *dh = info[5].IsNull() ? nullptr : f32(info[5]);  // null: the loss only
  const int M = arg_i(info, 6), C = arg_i(info, 7), V = arg_i(info, 8), rows = arg_i(info, 9);
  const char* fn = "weightedCrossEntropyBf16";
  need_len(info, fn, 0, "h", (int64_t)M * C), need_bf16(info, fn, 1, "W", (int64_t)V * C);
  need_len(info, fn, 2, "labels", M), need_len(info, fn, 3, "w", M);
  need_len(info, fn, 4, "loss", 1), need_len(info, fn, 5, "dh", (int64_t)M * C);
  if (rows < 1) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": rows must be >= 1");
  double total = 0;
  if (bf16OnDnnl() && avx512Bf16() && M > 0 && V > 0 && C > 0) {
    const int chunks = (M + LM_ROWS - 1) / LM_ROWS, c = (M + chunks - 1) / chunks;  // of equal size
    bool ok = true;
    for (int s = 0; ok && s < M; s += c)
      ok = lmHeadDnnl(std::min(c, M - s), C, V, h + (size_t)s * C, W, labels + s, w + s, dh ? dh + (size_t)s * C : nullptr, total);
    if (ok) {
      loss[0] = (float)total;
      return info.Env().Undefined();
    }
    total = 0;  // oneDNN failed (and is off now): all chunks again on the fallback path
  }
  static std::vector<float> logitsStore;  // kept across calls, uninitialized: fresh pages cost more than filling them
  float* logits = reuse(logitsStore, (size_t)std::min(rows, M) * V);
  for (int s = 0; s < M; s += rows) {
    const int c = std::min(rows, M - s);
    const float* hs = h + (size_t)s * C;
    matmulBf16(true, c, V, C, hs, W, logits);  // logits = h W^T
    double t = 0;
#pragma omp parallel for reduction(+ : t) num_threads(g_threads)
    for (int i = 0; i < c; i++) t += softmaxRow(logits + (size_t)i * V, V, labels[s + i], w[s + i]);
    total += t;
    if (dh) matmulBf16(false, c, C, V, logits, W, dh + (size_t)s * C);  // dh = dlogits W
  }
  loss[0] = (float)total;
  return info.Env().Undefined();
}

// bf16Info(): { dnnl, native, path: 'onednn' | 'fallback', error, version, isa, impl, productSeconds }
static Napi::Value Bf16Info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("dnnl", g_bf16.dnnl);
  o.Set("native", g_bf16.native);
  o.Set("path", g_bf16.dnnl && !g_bf16.forceFallback ? "onednn" : "fallback");
  o.Set("products", g_bf16.wide ? "f32" : "bf16");
  o.Set("error", g_bf16.error);
  o.Set("version", g_bf16.version);
  o.Set("isa", g_bf16.isa);
  o.Set("impl", g_bf16.impl);
  o.Set("productSeconds", g_bf16.productSeconds);
  return o;
}

// setBf16Path('onednn' | 'onednn-bf16' | 'onednn-f32' | 'fallback'): pick the path at run time (parity tests and
// benchmarks compare them). 'onednn': oneDNN with the products this CPU runs fastest (Dnnl.cc widerIsFaster);
// -bf16 / -f32 force bf16 or widened products.
static Napi::Value SetBf16Path(const Napi::CallbackInfo& info) {
  const std::string p = info[0].As<Napi::String>().Utf8Value();
  g_bf16.forceFallback = p == "fallback";
  g_bf16.wide = g_bf16.dnnl && (p == "onednn-f32" || (p == "onednn" && g_bf16.wideByCpu));
  return info.Env().Undefined();
}

void InitMatMulBf16(Napi::Env env, Napi::Object exports) {
  loadDnnl();
  exports.Set("matMulBf16", Napi::Function::New(env, MatMulBf16));
  exports.Set("loraLinearBf16", Napi::Function::New(env, LoraLinearBf16));
  exports.Set("loraLinearGradBf16", Napi::Function::New(env, LoraLinearGradBf16));
  exports.Set("loraLinearGroupBf16", Napi::Function::New(env, LoraLinearGroupBf16));
  exports.Set("loraLinearGroupGradBf16", Napi::Function::New(env, LoraLinearGroupGradBf16));
  exports.Set("weightedCrossEntropyBf16", Napi::Function::New(env, WeightedCrossEntropyBf16));
  exports.Set("bf16Info", Napi::Function::New(env, Bf16Info));
  exports.Set("setBf16Path", Napi::Function::New(env, SetBf16Path));
}
