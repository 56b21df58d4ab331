// FusedAttention.cc: causal, block-diagonal (packed segments), GQA attention forward + backward on sgemm.
// Per (row b, segment [s, e), head h): S = scale Q K^T over the segment only, causal softmax in place, O = P V;
// backward recomputes P from the saved logsumexp (FlashAttention-2 algebra, Dao 2023), one [L, L] scratch pair.
#include "blas.h"
#include <cmath>
#include <vector>

// Runs of equal segment ids in one row of T (ids must be non-decreasing; checked by the TS op).
static std::vector<std::pair<int, int>> runs(const int32_t* seg, int T) {
  std::vector<std::pair<int, int>> r;
  for (int s = 0, e; s < T; s = e) {
    for (e = s + 1; e < T && seg[e] == seg[s]; e++) {}
    r.push_back({s, e});
  }
  return r;
}

// P[i, j] = exp(S[i, j] - lse_i) for j <= i else 0. Forward also computes lse from S (scores already scaled).
static void causalSoftmax(float* S, int L, float* lse, bool haveLse) {
#pragma omp parallel for schedule(dynamic, 16) num_threads(g_threads)
  for (int i = 0; i < L; i++) {
    float* r = S + (size_t)i * L;
    float m;
    if (!haveLse) {
      m = -INFINITY;
      for (int j = 0; j <= i; j++) m = r[j] > m ? r[j] : m;
      double sum = 0;
      for (int j = 0; j <= i; j++) sum += (r[j] = std::exp(r[j] - m));
      const float inv = (float)(1.0 / sum);
      for (int j = 0; j <= i; j++) r[j] *= inv;
      lse[i] = m + (float)std::log(sum);
    } else {
      m = lse[i];
      for (int j = 0; j <= i; j++) r[j] = std::exp(r[j] - m);
    }
    for (int j = i + 1; j < L; j++) r[j] = 0.f;
  }
}

// fusedAttention(q [B,T,H,D], k [B,T,Hkv,D], v [B,T,Hkv,D], seg Int32 [B,T], out [B,T,H,D], lse [B,H,T], B,T,H,Hkv,D, scale)
static Napi::Value Forward(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *q = f32(info[0]), *k = f32(info[1]), *v = f32(info[2]);
  const int32_t* seg = i32(info[3]);
  float *o = f32(info[4]), *lse = f32(info[5]);
  const int B = arg_i(info, 6), T = arg_i(info, 7), H = arg_i(info, 8), Hkv = arg_i(info, 9), D = arg_i(info, 10);
  const float scale = arg_f(info, 11);
  const int G = H / Hkv, ldq = H * D, ldk = Hkv * D;
  std::vector<float> S;
  for (int b = 0; b < B; b++) {
    for (auto [s, e] : runs(seg + (size_t)b * T, T)) {
      const int L = e - s;
      S.resize((size_t)L * L);
      for (int h = 0; h < H; h++) {
        const size_t qo = ((size_t)b * T + s) * ldq + h * D, ko = ((size_t)b * T + s) * ldk + (h / G) * D;
        sgemm_ld(false, true, L, L, D, scale, q + qo, ldq, k + ko, ldk, 0.f, S.data(), L);
        causalSoftmax(S.data(), L, lse + ((size_t)b * H + h) * T + s, false);
        sgemm_ld(false, false, L, D, L, 1.f, S.data(), L, v + ko, ldk, 0.f, o + qo, ldq);
      }
    }
  }
  return info.Env().Undefined();
}

// fusedAttentionGrad(dO, q, k, v, seg, o, lse, dq, dk, dv, B,T,H,Hkv,D, scale); dk, dv must be zero-filled.
static Napi::Value Backward(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *dO = f32(info[0]), *q = f32(info[1]), *k = f32(info[2]), *v = f32(info[3]);
  const int32_t* seg = i32(info[4]);
  const float *o = f32(info[5]), *lse = f32(info[6]);
  float *dq = f32(info[7]), *dk = f32(info[8]), *dv = f32(info[9]);
  const int B = arg_i(info, 10), T = arg_i(info, 11), H = arg_i(info, 12), Hkv = arg_i(info, 13), D = arg_i(info, 14);
  const float scale = arg_f(info, 15);
  const int G = H / Hkv, ldq = H * D, ldk = Hkv * D;
  std::vector<float> P, dP, Di;
  for (int b = 0; b < B; b++) {
    for (auto [s, e] : runs(seg + (size_t)b * T, T)) {
      const int L = e - s;
      P.resize((size_t)L * L);
      dP.resize((size_t)L * L);
      Di.resize(L);
      for (int h = 0; h < H; h++) {
        const size_t qo = ((size_t)b * T + s) * ldq + h * D, ko = ((size_t)b * T + s) * ldk + (h / G) * D;
        float* lseRow = const_cast<float*>(lse) + ((size_t)b * H + h) * T + s;
        sgemm_ld(false, true, L, L, D, scale, q + qo, ldq, k + ko, ldk, 0.f, P.data(), L);
        causalSoftmax(P.data(), L, lseRow, true);
        sgemm_ld(true, false, L, D, L, 1.f, P.data(), L, dO + qo, ldq, 1.f, dv + ko, ldk);  // dV += P^T dO
        sgemm_ld(false, true, L, L, D, 1.f, dO + qo, ldq, v + ko, ldk, 0.f, dP.data(), L);  // dP = dO V^T
#pragma omp parallel for schedule(dynamic, 16) num_threads(g_threads)
        for (int i = 0; i < L; i++) {
          const float *a = dO + qo + (size_t)i * ldq, *c = o + qo + (size_t)i * ldq;
          float di = 0;
          for (int d = 0; d < D; d++) di += a[d] * c[d];
          float *p = P.data() + (size_t)i * L, *g = dP.data() + (size_t)i * L;
          for (int j = 0; j <= i; j++) p[j] = p[j] * (g[j] - di) * scale;  // dS (scaled), stored in P
        }
        sgemm_ld(false, false, L, D, L, 1.f, P.data(), L, k + ko, ldk, 0.f, dq + qo, ldq);  // dQ = dS K
        sgemm_ld(true, false, L, D, L, 1.f, P.data(), L, q + qo, ldq, 1.f, dk + ko, ldk);   // dK += dS^T Q
      }
    }
  }
  return info.Env().Undefined();
}

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("fusedAttention", Napi::Function::New(env, Forward));
  exports.Set("fusedAttentionGrad", Napi::Function::New(env, Backward));
}
