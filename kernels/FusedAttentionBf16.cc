// FusedAttentionBf16.cc: FusedAttention's bf16 variant (bf16 attribute): the score and value products on oneDNN
// (bf16 operands, fp32 accumulation, batched over heads), softmax and dS in fp32 with AVX-512. Per segment, q/k/v
// (and dO) are copied head-major as bf16 [H, Tp, D] (kv heads repeated per query head, rows past the segment zero);
// query blocks of QB rows read keys in whole QB blocks, so products have few distinct shapes (cached primitives).
// Rounded to bf16 before a product: q, k, v, P, dO, dS (the TS reference rounds at the same points).
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
// GCC 12's own AVX-512 reduce intrinsics trip -Wmaybe-uninitialized (their _mm512_undefined_* idiom).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define AVX512_HELPERS
#include "avx512.h"
#include "blas.h"
#include "dnnl.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace {
constexpr int QB = 128;

// Head-major bf16 copy of rows [0, L) of one segment: dst[h, t, :] = src[t, h / G, :] (src row stride ld, Hs
// source heads); rows [L, Lp) zero.
void packHeads(const float* src, int L, int Lp, int ld, int H, int G, int D, int Tp, uint16_t* dst) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int h = 0; h < H; h++) {
    uint16_t* d = dst + (size_t)h * Tp * D;
    for (int t = 0; t < L; t++) {
      const float* s = src + (size_t)t * ld + (size_t)(h / G) * D;
      for (int e = 0; e < D; e += 16) {
        const __mmask16 m = tail16(D - e);
        _mm256_mask_storeu_epi16(d + (size_t)t * D + e, m, bf16x16(_mm512_maskz_loadu_ps(m, s + e)));
      }
    }
    std::fill(d + (size_t)L * D, d + (size_t)Lp * D, (uint16_t)0);
  }
}

// dst [H, n, D] = rows [r0, r0 + n) of src [H, Tp, D] (oneDNN's fast kernels want dense batches).
void gatherRows(const uint16_t* src, int r0, int n, int H, int D, int Tp, uint16_t* dst) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int h = 0; h < H; h++)
    std::copy(src + ((size_t)h * Tp + r0) * D, src + ((size_t)h * Tp + r0 + n) * D, dst + (size_t)h * n * D);
}

// acc[h, r0 + j, :] += blk[h, j, :] for j < n (acc [H, Tp, D], blk [H, n, D]).
void addRows(const float* blk, int r0, int n, int H, int D, int Tp, float* acc) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int h = 0; h < H; h++) {
    float* a = acc + ((size_t)h * Tp + r0) * D;
    const float* b = blk + (size_t)h * n * D;
    for (size_t i = 0; i < (size_t)n * D; i++) a[i] += b[i];
  }
}

// One block's geometry: queries [i0, i0 + QB) of a segment of length L, keys [k0, k0 + keys).
// With a sliding window W, k0 is rounded down to a whole block (the extra keys are masked).
struct Block {
  int i0, rows, W, k0, keys;
  Block(int i0_, int L, int W_)
      : i0(i0_), rows(std::min(QB, L - i0_)), W(W_), k0(W_ > 0 ? std::max(0, i0_ - W_ + 1) / QB * QB : 0),
        keys(i0_ + QB - k0) {}
  int first(int i) const { return (W > 0 ? std::max(0, i0 + i - W + 1) : 0) - k0; }  // row i's first visible key
  int end(int i) const { return i0 + i - k0 + 1; }                                    // one past its last
};

// Dense batched views over H heads: [rows, cols] row-major, or stored [cols, rows] (denseT).
Bf16View dense(int rows, int cols) { return Bf16View{rows, cols, (int64_t)rows * cols, cols, 1}; }
Bf16View denseT(int rows, int cols) { return Bf16View{rows, cols, (int64_t)rows * cols, 1, rows}; }  // stored [cols, rows]

struct Geo { int B, T, H, Hkv, D, W, G, Tp; float scale; };

// Forward softmax of one block, all heads: S [H, QB, keys] (unscaled scores; overwritten) -> P bf16 (0 outside
// each row's visible keys and in rows past the segment), lse per valid row.
void softmaxForward(const Geo& g, const Block& k, float* S, uint16_t* P, float* lse, int ldLse) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int hi = 0; hi < g.H * QB; hi++) {
    const int h = hi / QB, i = hi % QB;
    float* s = S + (size_t)hi * k.keys;
    uint16_t* p = P + (size_t)hi * k.keys;
    std::fill(p, p + k.keys, (uint16_t)0);
    if (i >= k.rows) continue;
    const int a = k.first(i), z = k.end(i);
    const __m512 sc = _mm512_set1_ps(g.scale);
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (int j = a; j < z; j += 16)
      mv = _mm512_mask_max_ps(mv, tail16(z - j), mv, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail16(z - j), s + j), sc));
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
    __m512 sum = _mm512_setzero_ps();
    for (int j = a; j < z; j += 16) {
      const __mmask16 mk = tail16(z - j);
      const __m512 e = _mm512_maskz_mov_ps(mk, exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(mk, s + j), sc, m)));
      _mm512_mask_storeu_ps(s + j, mk, e);
      sum = _mm512_add_ps(sum, e);
    }
    const float tot = _mm512_reduce_add_ps(sum);
    const __m512 inv = _mm512_set1_ps(1.f / tot);
    for (int j = a; j < z; j += 16)
      _mm256_mask_storeu_epi16(p + j, tail16(z - j), bf16x16(_mm512_mul_ps(_mm512_maskz_loadu_ps(tail16(z - j), s + j), inv)));
    lse[(size_t)h * ldLse + k.i0 + i] = _mm512_reduce_max_ps(mv) + std::log(tot);
  }
}

// Backward probabilities and dS of one block, all heads, in two passes over rows:
// pass 1 (dP null): S [H, QB, keys] -> P = exp(scale S - lse) in place (0 outside), Pb = bf16(P);
// pass 2: dS = P (dP - Di) scale -> dSb bf16. Di [H, QB] = rowsum(dO * O). Rows past the segment are all 0.
void probsBackward(const Geo& g, const Block& k, float* S, uint16_t* Pb, const float* lse, int ldLse) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int hi = 0; hi < g.H * QB; hi++) {
    const int h = hi / QB, i = hi % QB;
    float* s = S + (size_t)hi * k.keys;
    uint16_t* p = Pb + (size_t)hi * k.keys;
    const int a = i < k.rows ? k.first(i) : 0, z = i < k.rows ? k.end(i) : 0;
    const __m512 sc = _mm512_set1_ps(g.scale), l = _mm512_set1_ps(i < k.rows ? lse[(size_t)h * ldLse + k.i0 + i] : 0.f);
    for (int j = 0; j < k.keys; j += 16) {
      const __mmask16 mk = tail16(k.keys - j);
      const int lo = std::max(a - j, 0), hiB = std::min(z - j, 16);  // visible lanes [lo, hiB)
      const __mmask16 vis = hiB > lo ? (__mmask16)(tail16(hiB) & ~tail16(lo)) : (__mmask16)0;
      const __m512 e = _mm512_maskz_mov_ps(vis, exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(mk, s + j), sc, l)));
      _mm512_mask_storeu_ps(s + j, mk, e);
      _mm256_mask_storeu_epi16(p + j, mk, bf16x16(e));
    }
  }
}

void dsBackward(const Geo& g, const Block& k, const float* P, const float* dP, const float* Di, uint16_t* dSb) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int hi = 0; hi < g.H * QB; hi++) {
    const float* p = P + (size_t)hi * k.keys;
    const float* dp = dP + (size_t)hi * k.keys;
    const __m512 d = _mm512_set1_ps(Di[hi]), sc = _mm512_set1_ps(g.scale);
    for (int j = 0; j < k.keys; j += 16) {
      const __mmask16 mk = tail16(k.keys - j);
      const __m512 ds = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, p + j), _mm512_sub_ps(_mm512_maskz_loadu_ps(mk, dp + j), d)), sc);
      _mm256_mask_storeu_epi16(dSb + (size_t)hi * k.keys + j, mk, bf16x16(ds));
    }
  }
}

// Copies rows [0, rows) of Y [H, QB, D] into out[(i0 + i) * H * D + h * D] (the [T, H, D] layout); add: +=.
void scatterRows(const Geo& g, const Block& k, const float* Y, float* out) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int hi = 0; hi < g.H * k.rows; hi++) {
    const int h = hi / k.rows, i = hi % k.rows;
    std::copy(Y + ((size_t)h * QB + i) * g.D, Y + ((size_t)h * QB + i + 1) * g.D, out + ((size_t)(k.i0 + i) * g.H + h) * g.D);
  }
}
}  // namespace

// q [B,T,H,D], k/v [B,T,Hkv,D] fp32, seg [B,T]; out [B,T,H,D], lse [B,H,T]. False: oneDNN failed (off; redo).
bool fusedAttentionBf16(const float* q, const float* k, const float* v, const int32_t* seg, float* out, float* lse,
                        int B, int T, int H, int Hkv, int D, float scale, int W) {
  const Geo g{B, T, H, Hkv, D, W, H / Hkv, (T + QB - 1) / QB * QB, scale};
  std::vector<uint16_t> qb((size_t)H * g.Tp * D), kb(qb.size()), vb(qb.size()), P((size_t)H * QB * g.Tp);
  std::vector<float> S((size_t)H * QB * g.Tp), Y((size_t)H * QB * D);
  std::vector<uint16_t> Qd((size_t)H * QB * D), Kd((size_t)H * g.Tp * D), Vd(Kd.size());
  for (int b = 0; b < B; b++) {
    for (int s = 0, e; s < T; s = e) {
      for (e = s + 1; e < T && seg[(size_t)b * T + e] == seg[(size_t)b * T + s]; e++) {}
      const int L = e - s, Lp = (L + QB - 1) / QB * QB;
      const size_t row = (size_t)b * T + s;
      packHeads(q + row * H * D, L, Lp, H * D, H, 1, D, g.Tp, qb.data());
      packHeads(k + row * Hkv * D, L, Lp, Hkv * D, H, g.G, D, g.Tp, kb.data());
      packHeads(v + row * Hkv * D, L, Lp, Hkv * D, H, g.G, D, g.Tp, vb.data());
      for (int i0 = 0; i0 < L; i0 += QB) {
        const Block blk(i0, L, W);
        gatherRows(qb.data(), i0, QB, H, D, g.Tp, Qd.data());
        gatherRows(kb.data(), blk.k0, blk.keys, H, D, g.Tp, Kd.data());
        gatherRows(vb.data(), blk.k0, blk.keys, H, D, g.Tp, Vd.data());
        if (!batchedMatmulBf16(H, dense(QB, D), Qd.data(), denseT(D, blk.keys), Kd.data(), dense(QB, blk.keys), S.data(),
                               false))  // S = q k^T
          return false;
        softmaxForward(g, blk, S.data(), P.data(), lse + (size_t)b * H * T + s, T);
        if (!batchedMatmulBf16(H, dense(QB, blk.keys), P.data(), dense(blk.keys, D), Vd.data(), dense(QB, D), Y.data(),
                               false))  // O = P v
          return false;
        scatterRows(g, blk, Y.data(), out + row * H * D);
      }
    }
  }
  return true;
}

namespace {
// Di [H, QB] = rowsum(dO * O) per head and valid row (fp32 operands as given), 0 past the segment.
void rowDots(const Geo& g, const Block& k, const float* dO, const float* o, float* Di) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int hi = 0; hi < g.H * QB; hi++) {
    const int h = hi / QB, i = hi % QB;
    if (i >= k.rows) { Di[hi] = 0.f; continue; }
    const size_t at = ((size_t)(k.i0 + i) * g.H + h) * g.D;
    float t = 0;
    for (int e = 0; e < g.D; e++) t += dO[at + e] * o[at + e];
    Di[hi] = t;
  }
}

// dst[t, kv, :] += sum over the G heads of kv of acc[h, t, :] for t < L (acc [H, Tp, D], dst [T, Hkv, D]).
void gatherKv(const Geo& g, int L, const float* acc, float* dst) {
#pragma omp parallel for num_threads(g_threads) schedule(static)
  for (int t = 0; t < L; t++)
    for (int kv = 0; kv < g.Hkv; kv++) {
      float* d = dst + ((size_t)t * g.Hkv + kv) * g.D;
      for (int h = kv * g.G; h < (kv + 1) * g.G; h++) {
        const float* a = acc + ((size_t)h * g.Tp + t) * g.D;
        for (int e = 0; e < g.D; e++) d[e] += a[e];
      }
    }
}
}  // namespace

// The backward of fusedAttentionBf16: dq written, dk and dv added into (zero-filled by the caller).
bool fusedAttentionGradBf16(const float* dO, const float* q, const float* k, const float* v, const int32_t* seg,
                            const float* o, const float* lse, float* dq, float* dk, float* dv, int B, int T, int H,
                            int Hkv, int D, float scale, int W) {
  const Geo g{B, T, H, Hkv, D, W, H / Hkv, (T + QB - 1) / QB * QB, scale};
  const size_t hx = (size_t)H * g.Tp * D, hs = (size_t)H * QB * g.Tp;
  std::vector<uint16_t> qb(hx), kb(hx), vb(hx), ob(hx), Pb(hs), dSb(hs);
  std::vector<float> S(hs), dP(hs), Y((size_t)H * QB * D), dK(hx), dV(hx), Di((size_t)H * QB), Z(hx);
  std::vector<uint16_t> Qd((size_t)H * QB * D), Od(Qd.size()), Kd(hx), Vd(hx);
  for (int b = 0; b < B; b++) {
    for (int s = 0, e; s < T; s = e) {
      for (e = s + 1; e < T && seg[(size_t)b * T + e] == seg[(size_t)b * T + s]; e++) {}
      const int L = e - s, Lp = (L + QB - 1) / QB * QB;
      const size_t row = (size_t)b * T + s;
      packHeads(q + row * H * D, L, Lp, H * D, H, 1, D, g.Tp, qb.data());
      packHeads(k + row * Hkv * D, L, Lp, Hkv * D, H, g.G, D, g.Tp, kb.data());
      packHeads(v + row * Hkv * D, L, Lp, Hkv * D, H, g.G, D, g.Tp, vb.data());
      packHeads(dO + row * H * D, L, Lp, H * D, H, 1, D, g.Tp, ob.data());
      for (int h = 0; h < H; h++) {
        std::fill(dK.begin() + (size_t)h * g.Tp * D, dK.begin() + ((size_t)h * g.Tp + Lp) * D, 0.f);
        std::fill(dV.begin() + (size_t)h * g.Tp * D, dV.begin() + ((size_t)h * g.Tp + Lp) * D, 0.f);
      }
      for (int i0 = 0; i0 < L; i0 += QB) {
        const Block blk(i0, L, W);
        const int n = blk.keys;
        gatherRows(qb.data(), i0, QB, H, D, g.Tp, Qd.data());
        gatherRows(ob.data(), i0, QB, H, D, g.Tp, Od.data());
        gatherRows(kb.data(), blk.k0, n, H, D, g.Tp, Kd.data());
        gatherRows(vb.data(), blk.k0, n, H, D, g.Tp, Vd.data());
        const Bf16View Q = dense(QB, D), Kt = denseT(D, n), Kr = dense(n, D), sq = dense(QB, n), sqT = denseT(n, QB);
        if (!batchedMatmulBf16(H, Q, Qd.data(), Kt, Kd.data(), sq, S.data(), false)) return false;  // S = q k^T
        probsBackward(g, blk, S.data(), Pb.data(), lse + (size_t)b * H * T + s, T);
        rowDots(g, blk, dO + row * H * D, o + row * H * D, Di.data());
        if (!batchedMatmulBf16(H, sqT, Pb.data(), Q, Od.data(), Kr, Z.data(), false)) return false;  // P^T dO
        addRows(Z.data(), blk.k0, n, H, D, g.Tp, dV.data());
        if (!batchedMatmulBf16(H, Q, Od.data(), Kt, Vd.data(), sq, dP.data(), false)) return false;  // dP = dO v^T
        dsBackward(g, blk, S.data(), dP.data(), Di.data(), dSb.data());
        if (!batchedMatmulBf16(H, sq, dSb.data(), Kr, Kd.data(), Q, Y.data(), false) ||  // dq = dS k
            !batchedMatmulBf16(H, sqT, dSb.data(), Q, Qd.data(), Kr, Z.data(), false))   // dS^T q
          return false;
        addRows(Z.data(), blk.k0, n, H, D, g.Tp, dK.data());
        scatterRows(g, blk, Y.data(), dq + row * H * D);
      }
      gatherKv(g, L, dK.data(), dk + row * Hkv * D);
      gatherKv(g, L, dV.data(), dv + row * Hkv * D);
    }
  }
  return true;
}
