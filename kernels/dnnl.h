// dnnl.h: oneDNN (Debian libdnnl2) bf16 matmul resolved with dlopen at addon load (no headers needed), with a
// float32 fallback (bf16 -> fp32 per call + OpenBLAS sgemm) where the library or the CPU's bf16 support is missing.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

// Scratch that keeps its memory between calls (grown, never shrunk or zeroed), for kernels called from the JS
// thread: reused pages instead of fresh ones per call (first touch of new memory runs at ~2.5 GB/s here).
template <typename T>
T* reuse(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

struct Bf16Path {
  bool dnnl = false;     // oneDNN loaded and usable (matmul bf16 x bf16 -> f32 primitive created)
  bool native = false;   // CPU has AVX512_BF16 (oneDNN's effective ISA is avx512_core_bf16 or above)
  bool forceFallback = false;  // setBf16Path('fallback') (tests, benchmarks)
  bool wideByCpu = false;  // the CPU's choice of wide (kept for setBf16Path('onednn'))
  bool wide = false;     // products as fp32 on oneDNN, W widened per block (Intel without AMX: Dnnl.cc widerIsFaster)
  std::string error;     // why oneDNN is not used
  std::string version;   // "oneDNN 2.6.3 (libdnnl.so.2)"
  std::string isa;       // "avx512_core_amx", ...
  std::string impl;      // implementation of the last primitive created, e.g. "brg:avx512_core_amx"
  double productSeconds = 0;  // wall time in oneDNN products called outside parallel regions (linears, lm_head)
};
extern Bf16Path g_bf16;

void loadDnnl();

// y[M,N] = bf16(x)[M,K] op(W), fp32 accumulation and output; W bf16 is [N,K] when transW (y = x W^T) else [K,N]
// (y = x W). x is rounded to bf16 (round to nearest even) on both paths, so they differ only in summation order.
void matmulBf16(bool transW, int M, int N, int K, const float* x, const uint16_t* W, float* y);

// bf16 round trip of n floats (round to nearest even; NaN stays NaN), into dst (may equal src).
void roundBf16(const float* src, float* dst, size_t n);

// n floats -> bf16 bits (round to nearest even; NaN stays NaN); toBf16One: one value (for fused loops).
void toBf16(const float* src, uint16_t* dst, size_t n);
inline uint16_t toBf16One(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40);
  return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1)) >> 16);
}
// bf16 bits -> float (exact).
inline float fromBf16One(uint16_t h) {
  const uint32_t b = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// True when matmuls run on oneDNN (library loaded, CPU bf16, not forced to the fallback).
bool bf16OnDnnl();

// y[M,N] (row stride ldc) = xb[M,K] (bf16, row stride lda) op(W) on oneDNN, for callers that block a product
// (the lm_head, LoraLinear's bf16 passes); acc: y += instead of y =. False when oneDNN is not in use or failed (then
// it is off for the run: use matmulBf16).
bool matmulBf16Dnnl(bool transW, int M, int N, int K, const uint16_t* xb, int lda, const uint16_t* W, float* y, int ldc,
                    bool acc = false);

// A strided [rows, cols] operand of a batched product; strides in elements (batch ignored when nb = 1).
struct Bf16View { int64_t rows, cols, batch, row, col; };

// y[b] (+)= x[b] w[b] for b < nb on oneDNN: x [M, K] and w [K, N] bf16, y [M, N] fp32, any strides (a transposed
// operand is a view with col > 1); acc: y += (sum post-op). False: oneDNN is not in use or failed (then off).
bool batchedMatmulBf16(int nb, const Bf16View& x, const uint16_t* xp, const Bf16View& w, const uint16_t* wp,
                       const Bf16View& y, float* yp, bool acc);

// LoraLinear's bf16 variant with fused AVX-512 passes (kernels/LoraLinearBf16.cc): usable when avx512Bf16()
// (kernels/avx512.h); false from either call means oneDNN failed and is now off (redo with matmulBf16 + fp32 terms).
bool loraForwardBf16(int N, int in, int out, int r, float s, const float* x, const float* xl, const uint16_t* W,
                     const float* A, const float* B, const float* bias, float* y, float* u);
bool loraBackwardBf16(int N, int in, int out, int r, float s, const float* dy, const float* xl, const uint16_t* W,
                      const float* A, const float* B, const float* u, float* dx, float* dxl, float* dA, float* dB);

// A group of LoRA linears that read one input (q/k/v, gate/up): member i is W_i bf16 [out_i, in], A_i [r, in],
// B_i [out_i, r], bias_i [out_i] or null. The group calls read x once and give one summed dx (U [N, n r]: the u_i
// side by side); with one member they are the calls above.
struct LoraMember {
  int out;
  const uint16_t* W;
  const float *A, *B, *bias;
};
bool loraGroupForwardBf16(int n, const LoraMember* m, int N, int in, int r, float s, const float* x, const float* xl,
                          float* const* y, float* U);
bool loraGroupBackwardBf16(int n, const LoraMember* m, int N, int in, int r, float s, const float* const* dy,
                           const float* xl, const float* U, float* dx, float* dxl, float* const* dA, float* const* dB);

// The q/k RMSNorm a FusedAttentionRope call may fold in (Qwen3's q_norm, k_norm over each head's D values): null
// weights = none.
struct QkNorm {
  const float *qw = nullptr, *kw = nullptr;  // [D] each
  float eps = 0;
};

// FusedAttention's bf16 variant (kernels/FusedAttentionBf16.cc; arguments as fusedAttention / fusedAttentionGrad):
// usable when avx512Bf16(); false means oneDNN failed (now off): redo the call in fp32. cos/sin [B*T, D] or null:
// with them q and k are rotated (RoPE) as they are packed, and dq, dk rotated back. norm (with cos/sin only): q and k
// are normalized (as rmsNormAvx512) before the rotation, and dq, dk taken back through it (of the raw q, k).
bool fusedAttentionBf16(const float* q, const float* k, const float* v, const int32_t* seg, const float* cos,
                        const float* sin, float* out, float* lse, int B, int T, int H, int Hkv, int D, float scale, int W,
                        const QkNorm& norm = {});
bool fusedAttentionGradBf16(const float* dO, const float* q, const float* k, const float* v, const int32_t* seg,
                            const float* cos, const float* sin, const float* o, const float* lse, float* dq, float* dk,
                            float* dv, int B, int T, int H, int Hkv, int D, float scale, int W, const QkNorm& norm = {});
