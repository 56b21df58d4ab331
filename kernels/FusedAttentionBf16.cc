// FusedAttentionBf16.cc: FusedAttention's bf16 variant (bf16 attribute): the score and value products on oneDNN
// (bf16 operands, fp32 accumulation), softmax and dS in fp32 with AVX-512. Per segment, q/k/v (and dO) are first
// copied head-major as bf16 [heads, Lp, D] (rows past the segment zero), the threads splitting the rows; then, as
// in FusedAttention.cc, threads split the heads, each running single-threaded oneDNN products on one head's
// blocks, so its working set stays in L2 (one head at T = 512: ~1.5 MB). Query blocks of QB rows read keys in
// whole QB blocks: few distinct product shapes.
// Rounded to bf16 before a product: q, k, v, P, dO, dS (the TS reference rounds at the same points). With RoPE
// tables, q and k are rotated in fp32 as they are packed, and dq, dk rotated back as they are written; with a QkNorm
// (Qwen3), each row of q and k is RMS-normalized before it is rotated, and dq, dk taken back through the norm (the
// rows of the raw q, k are read again there): the separate RmsNorm passes over q and k, and theirs over dq and dk,
// are gone, with the same bits.
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
// GCC 12's own AVX-512 reduce intrinsics trip -Wmaybe-uninitialized (their _mm512_undefined_* idiom).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define AVX512_HELPERS
#include "avx512.h"
#include "attention.h"
#include "blas.h"
#include "dnnl.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace {
// cos/sin: RoPE tables [B*T, D] (null: q and k come rotated already). q, k: the call's raw inputs; norm: the folded
// q/k RMSNorm, if any.
struct Geo {
  int B, T, H, Hkv, D, W, G, Tp;
  float scale;
  const float *cos, *sin;
  const float *q, *k;
  QkNorm norm;
  // The tables from a segment's first row on (null without RoPE).
  const float* cosAt(size_t row) const { return cos ? cos + row * D : nullptr; }
  const float* sinAt(size_t row) const { return sin ? sin + row * D : nullptr; }
};

// Rows [0, L) of a segment, [L, heads, D] fp32 (row stride heads * D), as head-major bf16 [heads, Lp, D] (rows
// [L, Lp) zero). Threads of the enclosing parallel region split the rows: each reads whole rows in order (the
// hardware prefetcher follows them; per head, rows sit 4-8 KB apart and it does not). cos/sin (the segment's rows
// of the tables, or null): each row is rotated (RoPE) in fp32 first, by ropeRow as the Rope op does; nw (null:
// none): before that, RMS-normalized with weight nw, as the RmsNorm op does.
void packHeads(const float* src, int L, int Lp, int heads, int D, uint16_t* dst, const float* cos = nullptr,
               const float* sin = nullptr, const float* nw = nullptr, float eps = 0) {
  std::vector<float> r(cos ? D : 0), n(nw ? D : 0);
#pragma omp for schedule(static) nowait
  for (int t = 0; t < Lp; t++)
    for (int h = 0; h < heads; h++) {
      uint16_t* d = dst + ((size_t)h * Lp + t) * D;
      if (t >= L) { std::fill(d, d + D, (uint16_t)0); continue; }
      const float* a = src + ((size_t)t * heads + h) * D;
      if (nw) rmsRow(a, nw, rmsRstd(a, D, eps), n.data(), D), a = n.data();
      if (cos) ropeRow(a, cos + (size_t)t * D, sin + (size_t)t * D, r.data(), D, false), a = r.data();
      for (int e = 0; e < D; e += 16) storeBf16(d + e, _mm512_maskz_loadu_ps(tail16(D - e), a + e), tail16(D - e));
    }
}

// packHeads for dO, with Di = rowsum(dO * O) of each row and head (fp32 operands, in 16 lanes) into Di [heads, Lp]
// (0 past the segment) while the row is at hand: per head, rows of O sit 4-8 KB apart.
void packOutputGrad(const float* dO, const float* o, int L, int Lp, int heads, int D, uint16_t* dst, float* Di) {
#pragma omp for schedule(static) nowait
  for (int t = 0; t < Lp; t++)
    for (int h = 0; h < heads; h++) {
      uint16_t* d = dst + ((size_t)h * Lp + t) * D;
      if (t >= L) { std::fill(d, d + D, (uint16_t)0), Di[(size_t)h * Lp + t] = 0.f; continue; }
      const float *a = dO + ((size_t)t * heads + h) * D, *b = o + ((size_t)t * heads + h) * D;
      __m512 sum = _mm512_setzero_ps();
      for (int e = 0; e < D; e += 16) {
        const __mmask16 m = tail16(D - e);
        const __m512 x = _mm512_maskz_loadu_ps(m, a + e);
        storeBf16(d + e, x, m);
        sum = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(m, b + e), sum);
      }
      Di[(size_t)h * Lp + t] = _mm512_reduce_add_ps(sum);
    }
}

// One block's geometry: queries [i0, i0 + QB) of a segment of length L, keys [k0, k0 + keys).
// With a sliding window W, k0 is rounded down to a whole block (the extra keys are masked).
struct Block {
  int i0, rows, W, k0, keys;
  Block(int i0_, int L, int W_)
      : i0(i0_), rows(std::min(QB, L - i0_)), W(W_), k0(firstKey(i0_, W_) / QB * QB), keys(i0_ + QB - k0) {}
  int first(int i) const { return i < rows ? firstKey(i0 + i, W) - k0 : 0; }  // row i's keys:
  int end(int i) const { return i < rows ? i0 + i - k0 + 1 : 0; }  // [first, end); none past the segment
};

// One head's operands in a segment: rows of q/dO (head h) and k/v (its kv head), all [Tp, D] bf16; Di [Tp] of
// head h (rowsum(dO * O)).
struct Head {
  const uint16_t *q, *k, *v, *dO;
  const float* Di;
};

// 2-D views (nb = 1): rows x cols with a row stride; T: the same matrix read transposed ([cols, rows] in memory).
Bf16View rowsOf(int rows, int cols) { return Bf16View{rows, cols, 0, cols, 1}; }
Bf16View rowsT(int rows, int cols) { return Bf16View{rows, cols, 0, 1, rows}; }

bool product(const Bf16View& x, const uint16_t* xp, const Bf16View& w, const uint16_t* wp, float* y, bool acc = false) {
  return batchedMatmulBf16(1, x, xp, w, wp, rowsOf((int)x.rows, (int)w.cols), y, acc);
}

// Forward softmax of one head's block: S [QB, keys] (unscaled scores; overwritten by exp) -> P bf16 (0 outside each
// row's keys and in rows past the segment); lse of the valid rows.
void softmaxForward(const Block& k, float scale, float* S, uint16_t* P, float* lse) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (int i = 0; i < QB; i++) {
    float* s = S + (size_t)i * k.keys;
    uint16_t* p = P + (size_t)i * k.keys;
    std::fill(p, p + k.keys, (uint16_t)0);
    const int a = k.first(i), z = k.end(i);
    if (z <= a) continue;
    __m512 mv = _mm512_set1_ps(-INFINITY);
    for (int j = a; j < z; j += 16)
      mv = _mm512_mask_max_ps(mv, tail16(z - j), mv, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail16(z - j), s + j), sc));
    const float m = _mm512_reduce_max_ps(mv);
    __m512 sum = _mm512_setzero_ps();
    for (int j = a; j < z; j += 16) {
      const __mmask16 mk = tail16(z - j);
      const __m512 e = _mm512_maskz_mov_ps(mk, exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(mk, s + j), sc, _mm512_set1_ps(m))));
      _mm512_mask_storeu_ps(s + j, mk, e);
      sum = _mm512_add_ps(sum, e);
    }
    const float tot = _mm512_reduce_add_ps(sum);
    const __m512 inv = _mm512_set1_ps(1.f / tot);
    for (int j = a; j < z; j += 16)
      storeBf16(p + j, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail16(z - j), s + j), inv), tail16(z - j));
    lse[k.i0 + i] = m + std::log(tot);
  }
}

// Backward probabilities of one head's block: S [QB, keys] -> P = exp(scale S - lse) in place (0 outside each
// row's keys), Pb = bf16(P).
void probsBackward(const Block& k, float scale, float* S, uint16_t* Pb, const float* lse) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (int i = 0; i < QB; i++) {
    float* s = S + (size_t)i * k.keys;
    uint16_t* p = Pb + (size_t)i * k.keys;
    const int a = k.first(i), z = k.end(i);
    const __m512 l = _mm512_set1_ps(i < k.rows ? lse[k.i0 + i] : 0.f);
    for (int j = 0; j < k.keys; j += 16) {
      const __mmask16 mk = tail16(k.keys - j);
      const int lo = std::max(a - j, 0), hi = std::min(z - j, 16);  // visible lanes [lo, hi)
      const __mmask16 vis = hi > lo ? (__mmask16)(tail16(hi) & ~tail16(lo)) : (__mmask16)0;
      const __m512 e = _mm512_maskz_mov_ps(vis, exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(mk, s + j), sc, l)));
      _mm512_mask_storeu_ps(s + j, mk, e);
      storeBf16(p + j, e, mk);
    }
  }
}

// dS = P (dP - Di) scale -> bf16, for one head's block (P and dP [QB, keys] fp32, Di [QB]).
void dsBackward(const Block& k, float scale, const float* P, const float* dP, const float* Di, uint16_t* dSb) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (int i = 0; i < QB; i++) {
    const size_t o = (size_t)i * k.keys;
    const __m512 d = _mm512_set1_ps(Di[i]);
    for (int j = 0; j < k.keys; j += 16) {
      const __mmask16 mk = tail16(k.keys - j);
      const __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(mk, dP + o + j), d);
      storeBf16(dSb + o + j, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, P + o + j), g), sc), mk);
    }
  }
}

// dx = the RMSNorm backward of one row (dy: the gradient of the normalized row, x: the raw row, w its weight),
// its 1/rms recomputed from x as the forward computed it; gw: scratch [D].
inline void normBack(const float* dy, const float* x, const float* w, float eps, float* gw, float* dx, int D) {
  rmsRowGrad(dy, x, w, rmsRstd(x, D, eps), gw, dx, nullptr, D);
}

// Rows [0, rows) of Y [QB, D] -> out rows i0.. of head h in the [T, H, D] layout (out at the segment's first row).
// cos/sin (the segment's rows of the tables, or null): dq rows, rotated back (the transposed RoPE) on the way, and
// then (with g.norm) taken back through q's RMSNorm (xs: the raw q at the segment's first row).
void scatterRows(const Geo& g, const Block& k, int h, const float* Y, float* out, const float* cos = nullptr,
                 const float* sin = nullptr, const float* xs = nullptr) {
  thread_local std::vector<float> tmp;
  const int D = g.D;
  const bool norm = cos && g.norm.qw;
  if (norm) reuse(tmp, 2 * (size_t)D);
  for (int i = 0; i < k.rows; i++) {
    const float* y = Y + (size_t)i * D;
    float* o = out + ((size_t)(k.i0 + i) * g.H + h) * D;
    const size_t t = (size_t)(k.i0 + i) * D;
    if (!cos) { std::copy(y, y + D, o); continue; }
    ropeRow(y, cos + t, sin + t, norm ? tmp.data() : o, D, true);
    if (norm) normBack(tmp.data(), xs + ((size_t)(k.i0 + i) * g.H + h) * D, g.norm.qw, g.norm.eps, tmp.data() + D, o, D);
  }
}

// dst[t, kv, :] = 0 + the sum over the G heads of kv of acc[h, t, :], heads in order, for t < L (acc [H, Tp, D],
// dst [T, Hkv, D]); with cos/sin (the segment's rows of the tables) the sum is rotated back (transposed RoPE), and
// with g.norm then taken back through k's RMSNorm (xs: the raw k at the segment's first row).
void gatherKv(const Geo& g, int L, const float* acc, float* dst, const float* cos = nullptr,
              const float* sin = nullptr, const float* xs = nullptr) {
  const bool norm = cos && g.norm.kw;
#pragma omp parallel num_threads(g_threads)
  {
    std::vector<float> r(g.D), tmp(norm ? 2 * g.D : 0);
#pragma omp for schedule(static)
    for (int t = 0; t < L; t++)
      for (int kv = 0; kv < g.Hkv; kv++) {
        float* d = dst + ((size_t)t * g.Hkv + kv) * g.D;
        std::fill(r.begin(), r.end(), 0.f);  // 0 + a_0 + a_1 + ...: the sums as when dst was zero-filled
        for (int h = kv * g.G; h < (kv + 1) * g.G; h++) {
          const float* a = acc + ((size_t)h * g.Tp + t) * g.D;
          for (int e = 0; e < g.D; e++) r[e] += a[e];
        }
        if (!cos) { std::copy(r.begin(), r.end(), d); continue; }
        ropeRow(r.data(), cos + (size_t)t * g.D, sin + (size_t)t * g.D, norm ? tmp.data() : d, g.D, true);
        if (norm)
          normBack(tmp.data(), xs + ((size_t)t * g.Hkv + kv) * g.D, g.norm.kw, g.norm.eps, tmp.data() + g.D, d, g.D);
      }
  }
}

// Forward of one head over a segment of length L: out rows (segment-relative) and lse [L] of head h.
bool headForward(const Geo& g, int L, const Head& hd, int h, float* S, uint16_t* P, float* Y, float* out, float* lse) {
  const int D = g.D;
  for (int i0 = 0; i0 < L; i0 += QB) {
    const Block k(i0, L, g.W);
    if (!product(rowsOf(QB, D), hd.q + (size_t)i0 * D, rowsT(D, k.keys), hd.k + (size_t)k.k0 * D, S)) return false;
    softmaxForward(k, g.scale, S, P, lse);
    if (!product(rowsOf(QB, k.keys), P, rowsOf(k.keys, D), hd.v + (size_t)k.k0 * D, Y)) return false;  // O = P v
    scatterRows(g, k, h, Y, out);
  }
  return true;
}

// Per-thread scratch of one head's blocks, kept across calls (grown, never zeroed: every use writes it first).
struct Scratch {
  std::vector<float> S, dP, Y;
  std::vector<uint16_t> P, dS;
  static Scratch& of(const Geo& g) {
    thread_local Scratch w;
    const size_t n = (size_t)QB * g.Tp;
    for (auto* v : {&w.S, &w.dP}) reuse(*v, n);
    for (auto* v : {&w.P, &w.dS}) reuse(*v, n);
    reuse(w.Y, (size_t)QB * g.D);
    return w;
  }
};

// A segment's q, k, v (and dO) as head-major bf16 [heads, Lp, D], packed once per segment by all threads. Kept
// across calls; calls come from the one JS thread.
struct Packed {
  uint16_t *q, *k, *v, *dO;
  float* Di;  // [H, Lp] (the backward)
  int Lp, D, G;
  static Packed of(const Geo& g, int L, bool grad) {
    static std::vector<uint16_t> q, k, v, dO;
    static std::vector<float> Di;
    const int Lp = (L + QB - 1) / QB * QB;
    const size_t n = (size_t)Lp * g.D;
    return Packed{reuse(q, n * g.H), reuse(k, n * g.Hkv), reuse(v, n * g.Hkv), grad ? reuse(dO, n * g.H) : nullptr,
                  grad ? reuse(Di, (size_t)Lp * g.H) : nullptr, Lp, g.D, g.G};
  }
  // Inside a parallel region: packs the segment starting at row `row` (dO_ and o_ null in the forward), then waits.
  void pack(const Geo& g, int L, size_t row, const float* q_, const float* k_, const float* v_, const float* dO_ = nullptr,
            const float* o_ = nullptr) const {
    packHeads(q_ + row * g.H * D, L, Lp, g.H, D, q, g.cosAt(row), g.sinAt(row), g.cos ? g.norm.qw : nullptr, g.norm.eps);
    packHeads(k_ + row * g.Hkv * D, L, Lp, g.Hkv, D, k, g.cosAt(row), g.sinAt(row), g.cos ? g.norm.kw : nullptr, g.norm.eps);
    packHeads(v_ + row * g.Hkv * D, L, Lp, g.Hkv, D, v);
    if (dO_) packOutputGrad(dO_ + row * g.H * D, o_ + row * g.H * D, L, Lp, g.H, D, dO, Di);
#pragma omp barrier
  }
  Head head(int h) const {
    const size_t n = (size_t)Lp * D;
    return Head{q + h * n, k + (h / G) * n, v + (h / G) * n, dO ? dO + h * n : nullptr, Di ? Di + (size_t)h * Lp : nullptr};
  }
};

// Backward of one head over a segment starting at row `row`: dq rows of head h, and this head's own dK, dV
// accumulators [Tp, D]. dO, o, dq: at the segment's first row.
bool headBackward(const Geo& g, size_t row, int L, const Head& hd, int h, const float* lse, Scratch& w, float* dq,
                  float* dK, float* dV) {
  const int D = g.D;
  for (int i0 = 0; i0 < L; i0 += QB) {
    const Block k(i0, L, g.W);
    const int n = k.keys;
    const uint16_t *q = hd.q + (size_t)i0 * D, *dOb = hd.dO + (size_t)i0 * D;
    const uint16_t *kk = hd.k + (size_t)k.k0 * D, *v = hd.v + (size_t)k.k0 * D;
    if (!product(rowsOf(QB, D), q, rowsT(D, n), kk, w.S.data())) return false;  // S = q k^T
    probsBackward(k, g.scale, w.S.data(), w.P.data(), lse);
    if (!product(rowsT(n, QB), w.P.data(), rowsOf(QB, D), dOb, dV + (size_t)k.k0 * D, true) ||  // dV += P^T dO
        !product(rowsOf(QB, D), dOb, rowsT(D, n), v, w.dP.data()))                             // dP = dO v^T
      return false;
    dsBackward(k, g.scale, w.S.data(), w.dP.data(), hd.Di + i0, w.dS.data());
    if (!product(rowsOf(QB, n), w.dS.data(), rowsOf(n, D), kk, w.Y.data()) ||               // dq = dS k
        !product(rowsT(n, QB), w.dS.data(), rowsOf(QB, D), q, dK + (size_t)k.k0 * D, true))  // dK += dS^T q
      return false;
    scatterRows(g, k, h, w.Y.data(), dq, g.cosAt(row), g.sinAt(row), g.q + row * g.H * D);
  }
  return true;
}

}  // namespace

// q [B,T,H,D], k/v [B,T,Hkv,D] fp32, seg [B,T]; out [B,T,H,D], lse [B,H,T]. False: oneDNN failed (off; redo).
bool fusedAttentionBf16(const float* q, const float* k, const float* v, const int32_t* seg, const float* cos,
                        const float* sin, float* out, float* lse, int B, int T, int H, int Hkv, int D, float scale,
                        int W, const QkNorm& norm) {
  const Geo g{B, T, H, Hkv, D, W, H / Hkv, (T + QB - 1) / QB * QB, scale, cos, sin, q, k, norm};
  for (int b = 0; b < B; b++)
    for (auto [s, e] : segmentRuns(seg + (size_t)b * T, T)) {
      const int L = e - s;
      const size_t row = (size_t)b * T + s;
      bool good = true;
      const Packed pk = Packed::of(g, L, false);
#pragma omp parallel num_threads(g_threads) reduction(&& : good)
      {
        Scratch& w = Scratch::of(g);
        pk.pack(g, L, row, q, k, v);
#pragma omp for schedule(dynamic, 1)
        for (int h = 0; h < H; h++) {
          const Head hd = pk.head(h);
          good = good && headForward(g, L, hd, h, w.S.data(), w.P.data(), w.Y.data(), out + row * H * D,
                                     lse + ((size_t)b * H + h) * T + s);
        }
      }
      if (!good) return false;
    }
  return true;
}

// The backward of fusedAttentionBf16: dq, dk and dv written (every row of a segment, segments cover all rows).
bool fusedAttentionGradBf16(const float* dO, const float* q, const float* k, const float* v, const int32_t* seg,
                            const float* cos, const float* sin, const float* o, const float* lse, float* dq, float* dk,
                            float* dv, int B, int T, int H, int Hkv, int D, float scale, int W, const QkNorm& norm) {
  const Geo g{B, T, H, Hkv, D, W, H / Hkv, (T + QB - 1) / QB * QB, scale, cos, sin, q, k, norm};
  const size_t hx = (size_t)H * g.Tp * D;
  // Per query head, summed over each kv head's G heads at the segment's end; kept across calls (fresh pages cost
  // ~3 ms per call at 0.6B). Calls come from the one JS thread.
  static std::vector<float> dKs, dVs;
  float *dK = reuse(dKs, hx), *dV = reuse(dVs, hx);
  for (int b = 0; b < B; b++)
    for (auto [s, e] : segmentRuns(seg + (size_t)b * T, T)) {
      const int L = e - s;
      const size_t row = (size_t)b * T + s, Lp = (L + QB - 1) / QB * QB;
      bool good = true;
      const Packed pk = Packed::of(g, L, true);
#pragma omp parallel num_threads(g_threads) reduction(&& : good)
      {
        Scratch& w = Scratch::of(g);
        pk.pack(g, L, row, q, k, v, dO, o);
#pragma omp for schedule(dynamic, 1)
        for (int h = 0; h < H; h++) {
          const size_t ho = (size_t)h * g.Tp * D;
          std::fill(dK + ho, dK + ho + Lp * D, 0.f);
          std::fill(dV + ho, dV + ho + Lp * D, 0.f);
          const Head hd = pk.head(h);
          good = good && headBackward(g, row, L, hd, h, lse + ((size_t)b * H + h) * T + s, w, dq + row * H * D,
                                      dK + ho, dV + ho);
        }
      }
      if (!good) return false;
      gatherKv(g, L, dK, dk + row * Hkv * D, g.cosAt(row), g.sinAt(row), k + row * Hkv * D);
      gatherKv(g, L, dV, dv + row * Hkv * D);
    }
  return true;
}
