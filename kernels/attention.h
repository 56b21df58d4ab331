// attention.h: what FusedAttention.cc (fp32) and FusedAttentionBf16.cc share: the query block size, the sliding
// window's first key, the segments of a packed row, and RoPE (kernels/Rope.cc) for attention with its rotation.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

// Causal rows are processed in blocks of QB queries: block [i0, i1) only needs keys [0, i1), which skips
// ~40% of the score FLOPs at L = 512 compared with the full [L, L] square.
constexpr int QB = 128;

// First key of query i (or of a block starting at i): 0, or i - W + 1 with a sliding window W.
inline int firstKey(int i, int W) { return W > 0 ? std::max(0, i - W + 1) : 0; }

// Runs [s, e) of equal segment ids in one row of T (ids must be non-decreasing; checked by the TS op).
inline std::vector<std::pair<int, int>> segmentRuns(const int32_t* seg, int T) {
  std::vector<std::pair<int, int>> r;
  for (int s = 0, e; s < T; s = e) {
    for (e = s + 1; e < T && seg[e] == seg[s]; e++) {}
    r.push_back({s, e});
  }
  return r;
}

// kernels/Rope.cc: HF rotate-half RoPE of one row of D (back: the transposed rotation; b may be a), and of x [N, h, D]
// with cos/sin [N, D]. The attention kernels rotate q and k with these, so results match the Rope op's bit for bit.
void ropeRow(const float* a, const float* c, const float* s, float* b, int D, bool back);
void ropeRows(const float* x, const float* cs, const float* sn, float* y, int N, int h, int D, bool back);

// kernels/RmsNorm.cc: RMSNorm of N rows of C (y, rstd = 1/rms per row) and its backward (dx, dw [C]), as the rmsNorm /
// rmsNormGrad entries compute them (vectorSums: row sums in AVX-512 lanes where avx512Bf16()). The attention kernels'
// fp32 path normalizes q and k with these when it folds the q/k norm in.
void rmsNormRows(const float* x, const float* w, float* y, float* rstd, int N, int C, float eps, bool vectorSums);
void rmsNormGradRows(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw, int N,
                     int C, bool vectorSums);
