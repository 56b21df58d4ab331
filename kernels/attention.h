// attention.h: what FusedAttention.cc (fp32) and FusedAttentionBf16.cc share: the query block size, the sliding
// window's first key, and the segments of a packed row.
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
