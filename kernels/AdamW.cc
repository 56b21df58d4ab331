// AdamW.cc: the fused AdamW update (decoupled weight decay, bias-corrected moments) of all of a step's tensors in one
// call, the native path of adamwStep in src/train/optimizer.ts (which keeps the JS loop as the reference).
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
#include <string>
#include <utility>
#include <vector>

static inline double num(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().DoubleValue(); }

namespace {
// One tensor's arrays, all [n].
struct Slot { float *p, *m, *v; const float* g; int64_t n; double keep; };

// Elements [i0, i1) of one tensor.
void updateRange(const Slot& t, int64_t i0, int64_t i1, const AdamWConst& k) {
  if (hasAvx512()) {
    AdamWConst kt = k;
    kt.keep = t.keep;
    return adamWAvx512(t.p, t.g, t.m, t.v, i0, i1, kt);
  }
  float *p = t.p, *m = t.m, *v = t.v;
  const float* g = t.g;
  for (int64_t i = i0; i < i1; i++) {
    const double gi = g[i];
    m[i] = (float)(k.b1 * (double)m[i] + k.c1 * gi);
    v[i] = (float)(k.b2 * (double)v[i] + k.c2 * gi * gi);
    p[i] = (float)((double)p[i] * t.keep - (k.stepSize * (double)m[i]) / (std::sqrt((double)v[i]) / k.sqrtBc2 + k.eps));
  }
}

// Every tensor in 2048-element chunks (whole vectors: the split leaves each element's operations as they are),
// all in one parallel region: a region wakes the other threads, which costs ~20-100 us on a VM, more than the
// update of one LoRA matrix.
void updateAll(const std::vector<Slot>& ts, const AdamWConst& k) {
  constexpr int64_t CH = 2048;
  std::vector<std::pair<int, int64_t>> chunks;  // (tensor, first element)
  int64_t total = 0;
  for (int t = 0; t < (int)ts.size(); t++) {
    for (int64_t i = 0; i < ts[t].n; i += CH) chunks.push_back({t, i});
    total += ts[t].n;
  }
#pragma omp parallel for num_threads(g_threads) schedule(static) if (total >= (1 << 16))
  for (int64_t c = 0; c < (int64_t)chunks.size(); c++) {
    const Slot& t = ts[chunks[c].first];
    updateRange(t, chunks[c].second, std::min(t.n, chunks[c].second + CH), k);
  }
}

AdamWConst scalars(const Napi::CallbackInfo& info, size_t at) {  // beta1, beta2, eps, (keep), stepSize, sqrtBc2
  const double b1 = num(info, at), b2 = num(info, at + 1);
  return AdamWConst{b1, b2, 1 - b1, 1 - b2, num(info, at + 2), 1, num(info, at + 3), num(info, at + 4)};
}
}  // namespace

// adamWMany(ps, gs, ms, vs, keeps, beta1, beta2, eps, stepSize, sqrtBc2): AdamW on every tensor i (ps[i], gs[i],
// ms[i], vs[i] of one length), in one parallel region; keeps[i] = 1 - lr*wd (or 1), stepSize = lr / (1 - beta1^t),
// sqrtBc2 = sqrt(1 - beta2^t), computed by the caller in double.
static Napi::Value AdamWMany(const Napi::CallbackInfo& info) {
  const Napi::Array ps = info[0].As<Napi::Array>(), gs = info[1].As<Napi::Array>(), ms = info[2].As<Napi::Array>(),
                    vs = info[3].As<Napi::Array>(), keeps = info[4].As<Napi::Array>();
  const uint32_t T = ps.Length();
  if (gs.Length() != T || ms.Length() != T || vs.Length() != T || keeps.Length() != T)
    throw Napi::RangeError::New(info.Env(), "adamWMany: the five lists differ in length");
  std::vector<Slot> ts;
  for (uint32_t i = 0; i < T; i++) {
    size_t np, ng, nm, nv;
    float *p = f32(ps.Get(i), &np), *g = f32(gs.Get(i), &ng), *m = f32(ms.Get(i), &nm), *v = f32(vs.Get(i), &nv);
    if (ng != np || nm != np || nv != np)
      throw Napi::RangeError::New(info.Env(), "adamWMany: tensor " + std::to_string(i) + "'s arrays differ in length");
    ts.push_back(Slot{p, m, v, g, (int64_t)np, keeps.Get(i).As<Napi::Number>().DoubleValue()});
  }
  updateAll(ts, scalars(info, 5));
  return info.Env().Undefined();
}

void InitAdamW(Napi::Env env, Napi::Object exports) {
  exports.Set("adamWMany", Napi::Function::New(env, AdamWMany));
}
