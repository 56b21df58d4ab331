// FusedAttention.cc: causal, block-diagonal (packed segments), GQA attention forward + backward on sgemm.
// Per (row b, segment [s, e), head h): S = scale Q K^T over the segment only, causal softmax in place, O = P V;
// backward recomputes P from the saved logsumexp (FlashAttention-2 algebra, Dao 2023); scratch is two
// [128, L] query-block tiles per thread. Threads split the heads (single-threaded sgemm inside).
// window W > 0 (sliding-window layers, HF sliding_window_overlay): query i sees keys i-W < j <= i of its segment;
// a query block then reads only keys [i0-W+1, i1). W = 0: full causal attention.
#include "attention.h"
#include "blas.h"
#include "dnnl.h"
#include "avx512.h"
#include <cmath>
#include <algorithm>
#include <tuple>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

// Sets OpenBLAS to one thread for the lifetime of the object (our OpenMP threads split the heads instead).
struct BlasSingleThread {
  BlasSingleThread() { if (g_blas.set_threads) g_blas.set_threads(1); }
  ~BlasSingleThread() { if (g_blas.set_threads) g_blas.set_threads(g_threads); }
};

// Block rows i0..i0+rows of S (row stride ld = keys k0..i1): P[i, j] = exp(S[i, j] - lse_i) for keys in the row's
// window (k0 + j <= i0 + i, and > i0 + i - W when W > 0), else 0.
// Forward (haveLse = false) also computes lse from S (scores already scaled).
static void causalSoftmax(float* S, int rows, int ld, int i0, int k0, int W, float* lse, bool haveLse) {
  for (int i = 0; i < rows; i++) {
    float* r = S + (size_t)i * ld;
    const int last = i0 + i - k0;  // causal: local keys first..last
    const int first = firstKey(i0 + i, W) - k0;
    for (int j = 0; j < first; j++) r[j] = 0.f;
    r += first;
    const int n = last - first;  // row keys 0..n after the shift
    if (!haveLse) {
      float m = -INFINITY;
      for (int j = 0; j <= n; j++) m = r[j] > m ? r[j] : m;
      double sum = 0;
      for (int j = 0; j <= n; j++) sum += (r[j] = std::exp(r[j] - m));
      const float inv = (float)(1.0 / sum);
      for (int j = 0; j <= n; j++) r[j] *= inv;
      lse[i] = m + (float)std::log(sum);
    } else {
      const float m = lse[i];
      for (int j = 0; j <= n; j++) r[j] = std::exp(r[j] - m);
    }
    for (int j = n + 1; j < ld - first; j++) r[j] = 0.f;
  }
}

static void fusedAttentionGradFp32(const float* dO, const float* q, const float* k, const float* v, const int32_t* seg,
                                   const float* o, const float* lse, float* dq, float* dk, float* dv, int B, int T,
                                   int H, int Hkv, int D, float scale, int W);

// Optional RoPE tables cos/sin [B*T, D] at info[i], info[i + 1] (absent or null: q and k come rotated already),
// then optionally the q/k RMSNorm folded in: q_norm, k_norm weights [D] at info[i + 2], info[i + 3], eps at i + 4
// (with the tables only). The fp32 path normalizes as the rmsNorm entry does with vectorSums = the call's bf16 flag,
// as the bf16 kernel does (rmsRow).
struct RopeTables {
  const float *cos = nullptr, *sin = nullptr;
  QkNorm norm;
  bool vectorSums = false;
  RopeTables(const Napi::CallbackInfo& info, size_t i, const char* fn, int64_t n, int D) {
    vectorSums = info.Length() > i - 1 && info[i - 1].ToBoolean();  // the bf16 flag precedes the tables
    if (info.Length() <= i + 1 || info[i].IsNull() || info[i].IsUndefined()) return;
    need_len(info, fn, i, "cos", n), need_len(info, fn, i + 1, "sin", n);
    cos = f32(info[i]), sin = f32(info[i + 1]);
    if (info.Length() <= i + 4 || info[i + 2].IsNull() || info[i + 2].IsUndefined()) return;
    need_len(info, fn, i + 2, "qNorm", D), need_len(info, fn, i + 3, "kNorm", D);
    norm = QkNorm{f32(info[i + 2]), f32(info[i + 3]), arg_f(info, i + 4)};
  }
  // The fp32 path normalizes (with the norm) and rotates q and k up front, into scratch kept across calls (calls
  // come from the one JS thread).
  void rotate(const float*& q, const float*& k, int N, int H, int Hkv, int D) const {
    static std::vector<float> qr, kr, qn, kn, rs;
    if (!cos) return;
    float *a = reuse(qr, (size_t)N * H * D), *b = reuse(kr, (size_t)N * Hkv * D);
    if (norm.qw) {
      float *c = reuse(qn, (size_t)N * H * D), *d = reuse(kn, (size_t)N * Hkv * D), *r = reuse(rs, (size_t)N * H);
      rmsNormRows(q, norm.qw, c, r, N * H, D, norm.eps, vectorSums);
      rmsNormRows(k, norm.kw, d, r, N * Hkv, D, norm.eps, vectorSums);
      q = c, k = d;
    }
    ropeRows(q, cos, sin, a, N, H, D, false), ropeRows(k, cos, sin, b, N, Hkv, D, false);
    q = a, k = b;
  }
  // After the fp32 backward: dq, dk (of the rotated q, k) -> of the raw q, k (through the rotation and the norm).
  void back(float* dq, float* dk, const float* q, const float* k, int N, int H, int Hkv, int D) const {
    if (!cos) return;
    ropeRows(dq, cos, sin, dq, N, H, D, true), ropeRows(dk, cos, sin, dk, N, Hkv, D, true);
    if (!norm.qw) return;
    static std::vector<float> g, rs;
    std::vector<float> dw(D);  // not used: the norm weights are constants
    for (auto [d, x, w, heads] : {std::tuple{dq, q, norm.qw, H}, std::tuple{dk, k, norm.kw, Hkv}}) {
      const int rows = N * heads;
      float *y = reuse(g, (size_t)rows * D), *r = reuse(rs, (size_t)rows);
      rmsNormRows(x, w, y, r, rows, D, norm.eps, vectorSums);  // r: 1/rms per row (y is scratch)
      std::copy(d, d + (size_t)rows * D, y);
      rmsNormGradRows(y, x, w, r, d, dw.data(), rows, D, vectorSums);
    }
  }
};

// fusedAttention(q [B,T,H,D], k [B,T,Hkv,D], v [B,T,Hkv,D], seg Int32 [B,T], out [B,T,H,D], lse [B,H,T], B,T,H,Hkv,D,
// scale[, W[, bf16[, cos, sin[, qNorm, kNorm, eps]]]]): with cos/sin [B*T, D], q and k are rotated (RoPE) first, and
// with qNorm/kNorm [D] RMS-normalized per head before that (Qwen3's q_norm, k_norm).
static Napi::Value FusedAttention(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *q = f32(info[0]), *k = f32(info[1]), *v = f32(info[2]);
  const int32_t* seg = i32(info[3]);
  float *o = f32(info[4]), *lse = f32(info[5]);
  const int B = arg_i(info, 6), T = arg_i(info, 7), H = arg_i(info, 8), Hkv = arg_i(info, 9), D = arg_i(info, 10);
  const char* fn = "fusedAttention";
  if (Hkv <= 0 || H % Hkv) throw Napi::RangeError::New(info.Env(), "fusedAttention: H must be a multiple of Hkv > 0");
  const int64_t nq = (int64_t)B * T * H * D, nk = (int64_t)B * T * Hkv * D;
  need_len(info, fn, 0, "q", nq), need_len(info, fn, 1, "k", nk), need_len(info, fn, 2, "v", nk);
  need_len(info, fn, 3, "seg", (int64_t)B * T), need_len(info, fn, 4, "out", nq), need_len(info, fn, 5, "lse", (int64_t)B * H * T);
  const float scale = arg_f(info, 11);
  const int W = info.Length() > 12 ? arg_i(info, 12) : 0;  // sliding window (0 = none)
  const RopeTables rope(info, 14, fn, (int64_t)B * T * D, D);
  if (info.Length() > 13 && info[13].ToBoolean() && avx512Bf16() &&  // bf16 products (kernels/FusedAttentionBf16.cc)
      fusedAttentionBf16(q, k, v, seg, rope.cos, rope.sin, o, lse, B, T, H, Hkv, D, scale, W, rope.norm))
    return info.Env().Undefined();
  rope.rotate(q, k, B * T, H, Hkv, D);
  const int G = H / Hkv, ldq = H * D, ldk = Hkv * D;
  BlasSingleThread one;  // threads split heads; each sgemm runs in its caller's thread
  for (int b = 0; b < B; b++) {
    for (auto [s, e] : segmentRuns(seg + (size_t)b * T, T)) {
      const int L = e - s;
#pragma omp parallel num_threads(g_threads)
      {
        std::vector<float> S((size_t)std::min(L, QB) * L);
#pragma omp for schedule(dynamic, 1)
        for (int h = 0; h < H; h++) {
          const size_t qo = ((size_t)b * T + s) * ldq + h * D, ko = ((size_t)b * T + s) * ldk + (h / G) * D;
          for (int i0 = 0; i0 < L; i0 += QB) {
            // The block reads keys [k0, i0 + rows) of the segment.
            const int rows = std::min(QB, L - i0), k0 = firstKey(i0, W), keys = i0 + rows - k0;
            const size_t kb = ko + (size_t)k0 * ldk;
            const float* qb = q + qo + (size_t)i0 * ldq;
            sgemm_ld(false, true, rows, keys, D, scale, qb, ldq, k + kb, ldk, 0.f, S.data(), keys);
            causalSoftmax(S.data(), rows, keys, i0, k0, W, lse + ((size_t)b * H + h) * T + s + i0, false);
            sgemm_ld(false, false, rows, D, keys, 1.f, S.data(), keys, v + kb, ldk, 0.f, o + qo + (size_t)i0 * ldq, ldq);
          }
        }
      }
    }
  }
  return info.Env().Undefined();
}

// fusedAttentionGrad(dO, q, k, v, seg, o, lse, dq, dk, dv, B,T,H,Hkv,D, scale[, W[, bf16[, cos, sin[, qNorm, kNorm,
// eps]]]]); dq, dk, dv are written whole (their contents on entry do not matter). With cos/sin (and the norm), q and
// k are the unrotated (raw) inputs and dq, dk their gradients.
static Napi::Value FusedAttentionGrad(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *dO = f32(info[0]), *q = f32(info[1]), *k = f32(info[2]), *v = f32(info[3]);
  const int32_t* seg = i32(info[4]);
  const float *o = f32(info[5]), *lse = f32(info[6]);
  float *dq = f32(info[7]), *dk = f32(info[8]), *dv = f32(info[9]);
  const int B = arg_i(info, 10), T = arg_i(info, 11), H = arg_i(info, 12), Hkv = arg_i(info, 13), D = arg_i(info, 14);
  const char* fn = "fusedAttentionGrad";
  if (Hkv <= 0 || H % Hkv) throw Napi::RangeError::New(info.Env(), "fusedAttentionGrad: H must be a multiple of Hkv > 0");
  const int64_t nq = (int64_t)B * T * H * D, nk = (int64_t)B * T * Hkv * D;
  need_len(info, fn, 0, "dO", nq), need_len(info, fn, 1, "q", nq), need_len(info, fn, 2, "k", nk), need_len(info, fn, 3, "v", nk);
  need_len(info, fn, 4, "seg", (int64_t)B * T), need_len(info, fn, 5, "o", nq), need_len(info, fn, 6, "lse", (int64_t)B * H * T);
  need_len(info, fn, 7, "dq", nq), need_len(info, fn, 8, "dk", nk), need_len(info, fn, 9, "dv", nk);
  const float scale = arg_f(info, 15);
  const int W = info.Length() > 16 ? arg_i(info, 16) : 0;
  const RopeTables rope(info, 18, fn, (int64_t)B * T * D, D);
  if (info.Length() > 17 && info[17].ToBoolean() && avx512Bf16()) {
    if (fusedAttentionGradBf16(dO, q, k, v, seg, rope.cos, rope.sin, o, lse, dq, dk, dv, B, T, H, Hkv, D, scale, W, rope.norm))
      return info.Env().Undefined();  // dk, dv written
  }
  std::fill(dk, dk + nk, 0.f), std::fill(dv, dv + nk, 0.f);  // the fp32 path adds into them (also after a failed bf16 try)
  const float *q0 = q, *k0 = k;  // the raw inputs
  rope.rotate(q, k, B * T, H, Hkv, D);
  fusedAttentionGradFp32(dO, q, k, v, seg, o, lse, dq, dk, dv, B, T, H, Hkv, D, scale, W);
  rope.back(dq, dk, q0, k0, B * T, H, Hkv, D);  // the gradients of the raw q, k
  return info.Env().Undefined();
}

// The fp32 backward (sgemm per head block); q, k rotated already.
static void fusedAttentionGradFp32(const float* dO, const float* q, const float* k, const float* v, const int32_t* seg,
                                   const float* o, const float* lse, float* dq, float* dk, float* dv, int B, int T,
                                   int H, int Hkv, int D, float scale, int W) {
  const int G = H / Hkv, ldq = H * D, ldk = Hkv * D;
  BlasSingleThread one;
  const int nt = g_threads;
  for (int b = 0; b < B; b++) {
    for (auto [s, e] : segmentRuns(seg + (size_t)b * T, T)) {
      const int L = e - s;
      const size_t kvOff = ((size_t)b * T + s) * ldk, seglen = (size_t)L * ldk;
      // Heads sharing a kv head add into the same dK/dV rows: one private [L, Hkv*D] pair per thread, summed after;
      // kept across calls (fresh pages cost ~3 ms per call at 0.6B). Calls come from the one JS thread.
      static std::vector<float> dkps, dvps;
      float *dkp = reuse(dkps, nt * seglen), *dvp = reuse(dvps, nt * seglen);
      std::fill(dkp, dkp + nt * seglen, 0.f), std::fill(dvp, dvp + nt * seglen, 0.f);
#pragma omp parallel num_threads(nt)
      {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        std::vector<float> P((size_t)std::min(L, QB) * L), dP(P.size());
        float *dkt = dkp + t * seglen, *dvt = dvp + t * seglen;
        // Static: a head's dK/dV go into the partial of the thread that runs it, so the assignment must not depend on
        // timing (with dynamic scheduling the partials' sums rounded differently from call to call).
#pragma omp for schedule(static)
        for (int h = 0; h < H; h++) {
          const size_t qo = ((size_t)b * T + s) * ldq + h * D, ko = kvOff + (h / G) * D, kt = (h / G) * D;
          for (int i0 = 0; i0 < L; i0 += QB) {
            const int rows = std::min(QB, L - i0), k0 = firstKey(i0, W), keys = i0 + rows - k0;
            const size_t qb = qo + (size_t)i0 * ldq, kb = ko + (size_t)k0 * ldk, kbt = kt + (size_t)k0 * ldk;
            float* lseRow = const_cast<float*>(lse) + ((size_t)b * H + h) * T + s + i0;
            sgemm_ld(false, true, rows, keys, D, scale, q + qb, ldq, k + kb, ldk, 0.f, P.data(), keys);
            causalSoftmax(P.data(), rows, keys, i0, k0, W, lseRow, true);
            sgemm_ld(true, false, keys, D, rows, 1.f, P.data(), keys, dO + qb, ldq, 1.f, dvt + kbt, ldk);  // dV += P^T dO
            sgemm_ld(false, true, rows, keys, D, 1.f, dO + qb, ldq, v + kb, ldk, 0.f, dP.data(), keys);  // dP = dO V^T
            for (int i = 0; i < rows; i++) {
              const float *a = dO + qb + (size_t)i * ldq, *c = o + qb + (size_t)i * ldq;
              float di = 0;  // rowsum(dO * O)
              for (int d = 0; d < D; d++) di += a[d] * c[d];
              float *p = P.data() + (size_t)i * keys, *g = dP.data() + (size_t)i * keys;
              // dS (scaled), stored in P; outside the row's window P is 0 already.
              for (int j = firstKey(i0 + i, W) - k0; j <= i0 + i - k0; j++) p[j] = p[j] * (g[j] - di) * scale;
            }
            sgemm_ld(false, false, rows, D, keys, 1.f, P.data(), keys, k + kb, ldk, 0.f, dq + qb, ldq);  // dQ = dS K
            sgemm_ld(true, false, keys, D, rows, 1.f, P.data(), keys, q + qb, ldq, 1.f, dkt + kbt, ldk);   // dK += dS^T Q
          }
        }
      }
      for (int t = 0; t < nt; t++) {
        const float *a = dkp + t * seglen, *c = dvp + t * seglen;
        for (size_t i = 0; i < seglen; i++) { dk[kvOff + i] += a[i]; dv[kvOff + i] += c[i]; }
      }
    }
  }
}

void InitFusedAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("fusedAttention", Napi::Function::New(env, FusedAttention));
  exports.Set("fusedAttentionGrad", Napi::Function::New(env, FusedAttentionGrad));
}
