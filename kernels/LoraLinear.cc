// LoraLinear.cc: PEFT LoRA linear y = x W^T (+ bias) + s (xl A^T) B^T in one kernel pair (xl = x, or x after
// LoRA dropout). Forward keeps u = xl A^T [N, r] for backward; no [N, out] temporaries beyond y itself.
#include "blas.h"
#include <vector>

// loraLinear(x [N,in], xl [N,in], W [out,in], A [r,in], B [out,r], bias [out] | null, y [N,out], u [N,r], N, in, out, r, s)
static Napi::Value LoraLinear(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *x = f32(info[0]), *xl = f32(info[1]), *W = f32(info[2]), *A = f32(info[3]), *B = f32(info[4]);
  const float* bias = info[5].IsTypedArray() ? f32(info[5]) : nullptr;
  float *y = f32(info[6]), *u = f32(info[7]);
  const int N = arg_i(info, 8), in = arg_i(info, 9), out = arg_i(info, 10), r = arg_i(info, 11);
  const char* fn = "loraLinear";
  need_len(info, fn, 0, "x", (int64_t)N * in), need_len(info, fn, 1, "xl", (int64_t)N * in), need_len(info, fn, 2, "W", (int64_t)out * in);
  need_len(info, fn, 3, "A", (int64_t)r * in), need_len(info, fn, 4, "B", (int64_t)out * r), need_len(info, fn, 5, "bias", out);
  need_len(info, fn, 6, "y", (int64_t)N * out), need_len(info, fn, 7, "u", (int64_t)N * r);
  const float s = arg_f(info, 12);
  sgemm(false, true, N, out, in, 1.f, x, W, 0.f, y);  // y = x W^T
  loraForwardTerms(N, in, out, r, s, xl, A, B, bias, y, u);
  return info.Env().Undefined();
}

// The LoRA path of the forward, after the base product y = x W^T (fp32 here, bf16 in MatMulBf16.cc):
// u = xl A^T [N, r], y += s u B^T (+ bias).
void loraForwardTerms(int N, int in, int out, int r, float s, const float* xl, const float* A, const float* B,
                      const float* bias, float* y, float* u) {
  sgemm(false, true, N, r, in, 1.f, xl, A, 0.f, u);  // u = xl A^T
  sgemm(false, true, N, out, r, s, u, B, 1.f, y);    // y += s u B^T
  if (bias)
    for (int n = 0; n < N; n++)
      for (int o = 0; o < out; o++) y[(size_t)n * out + o] += bias[o];
}

// The LoRA path of the backward, after the base product dx = dy W: dxl = s (dy B) A (or added into dx when dxl is
// null), dA = s (dy B)^T xl, dB = s dy^T u.
void loraBackwardTerms(int N, int in, int out, int r, float s, const float* dy, const float* xl, const float* A,
                       const float* B, const float* u, float* dx, float* dxl, float* dA, float* dB) {
  std::vector<float> v((size_t)N * r);
  sgemm(false, false, N, r, out, 1.f, dy, B, 0.f, v.data());         // v = dy B
  if (dxl) sgemm(false, false, N, in, r, s, v.data(), A, 0.f, dxl);  // dxl = s v A
  else sgemm(false, false, N, in, r, s, v.data(), A, 1.f, dx);       // dx += s v A
  sgemm(true, false, r, in, N, s, v.data(), xl, 0.f, dA);            // dA = s v^T xl
  sgemm(true, false, out, r, N, s, dy, u, 0.f, dB);                  // dB = s dy^T u
}

// loraLinearGrad(dy, xl, W, A, B, u, dx, dxl | null, dA, dB, N, in, out, r, s):
// dx = dy W (base path), dxl = s (dy B) A (LoRA path), dA = s (dy B)^T xl, dB = s dy^T u.
// dxl null (xl is x, no dropout): the LoRA path is accumulated into dx by the same sgemm (beta 1), which
// saves an [N, in] buffer and the tape's Add of dx + dxl.
static Napi::Value LoraLinearGrad(const Napi::CallbackInfo& info) {
  requireBlas(info.Env());
  const float *dy = f32(info[0]), *xl = f32(info[1]), *W = f32(info[2]), *A = f32(info[3]), *B = f32(info[4]);
  const float* u = f32(info[5]);
  float *dx = f32(info[6]), *dA = f32(info[8]), *dB = f32(info[9]);
  float* dxl = info[7].IsTypedArray() ? f32(info[7]) : nullptr;
  const int N = arg_i(info, 10), in = arg_i(info, 11), out = arg_i(info, 12), r = arg_i(info, 13);
  const char* fn = "loraLinearGrad";
  need_len(info, fn, 0, "dy", (int64_t)N * out), need_len(info, fn, 1, "xl", (int64_t)N * in), need_len(info, fn, 2, "W", (int64_t)out * in);
  need_len(info, fn, 3, "A", (int64_t)r * in), need_len(info, fn, 4, "B", (int64_t)out * r), need_len(info, fn, 5, "u", (int64_t)N * r);
  need_len(info, fn, 6, "dx", (int64_t)N * in), need_len(info, fn, 7, "dxl", (int64_t)N * in);
  need_len(info, fn, 8, "dA", (int64_t)r * in), need_len(info, fn, 9, "dB", (int64_t)out * r);
  const float s = arg_f(info, 14);
  sgemm(false, false, N, in, out, 1.f, dy, W, 0.f, dx);  // dx = dy W
  loraBackwardTerms(N, in, out, r, s, dy, xl, A, B, u, dx, dxl, dA, dB);
  return info.Env().Undefined();
}

void InitLoraLinear(Napi::Env env, Napi::Object exports) {
  exports.Set("loraLinear", Napi::Function::New(env, LoraLinear));
  exports.Set("loraLinearGrad", Napi::Function::New(env, LoraLinearGrad));
}
