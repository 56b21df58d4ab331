// Rope.cc: HF rotate-half rotary embedding y = x cos + rotate_half(x) sin, rotate_half(x) = [-x2, x1],
// forward and backward (dx1 = dy1 c1 + dy2 s2, dx2 = dy2 c2 - dy1 s1). x [N, h, D], cos/sin [N, D].
#include "attention.h"
#include "avx512.h"
#include "blas.h"

// One row of D: y = rope(x) with the row's cos/sin c, s (back: the transposed rotation). y may be x.
void ropeRow(const float* a, const float* c, const float* s, float* b, int D, bool back) {
  if (hasAvx512()) return ropeRowAvx512(a, c, s, b, D, back);  // same bits, 16 lanes
  const int half = D / 2;
  for (int i = 0; i < half; i++) {
    const float x1 = a[i], x2 = a[i + half];
    if (!back) {
      b[i] = x1 * c[i] - x2 * s[i];
      b[i + half] = x2 * c[i + half] + x1 * s[i + half];
    } else {
      b[i] = x1 * c[i] + x2 * s[i + half];
      b[i + half] = x2 * c[i + half] - x1 * s[i];
    }
  }
}

// x [N, h, D] -> y (may be x); cos/sin [N, D].
void ropeRows(const float* x, const float* cs, const float* sn, float* y, int N, int h, int D, bool back) {
#pragma omp parallel for num_threads(g_threads)
  for (int n = 0; n < N; n++)
    for (int j = 0; j < h; j++)
      ropeRow(x + ((size_t)n * h + j) * D, cs + (size_t)n * D, sn + (size_t)n * D, y + ((size_t)n * h + j) * D, D, back);
}

// rope(x, cos, sin, y, N, h, D, backward): backward=true applies the transposed rotation to dy.
static Napi::Value Rope(const Napi::CallbackInfo& info) {
  const float *x = f32(info[0]), *cs = f32(info[1]), *sn = f32(info[2]);
  float* y = f32(info[3]);
  const int N = arg_i(info, 4), h = arg_i(info, 5), D = arg_i(info, 6);
  need_len(info, "rope", 0, "x", (int64_t)N * h * D), need_len(info, "rope", 1, "cos", (int64_t)N * D);
  need_len(info, "rope", 2, "sin", (int64_t)N * D), need_len(info, "rope", 3, "y", (int64_t)N * h * D);
  ropeRows(x, cs, sn, y, N, h, D, info[7].ToBoolean());
  return info.Env().Undefined();
}

void InitRope(Napi::Env env, Napi::Object exports) {
  exports.Set("rope", Napi::Function::New(env, Rope));
}
