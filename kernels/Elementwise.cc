// Elementwise.cc: float32 Add/Sub/Mul/Div with numpy broadcasting, Transpose (any permutation, rank <= 8),
// and Softmax over the last axis. These replace tfjs-cpu's generic JS loops on 'native'.
#include "blas.h"
#include <cmath>

// add|sub|multiply|realDiv(a, b, out, shape Int32 [R], aStrides Int32 [R], bStrides Int32 [R]): numpy
// broadcasting; out has `shape` (row-major), a/b strides are 0 along broadcast dims. One N-API function per
// tfjs kernel (Add, Sub, Multiply, RealDiv), one template for all four.
enum class BinaryOp { Add, Sub, Multiply, RealDiv };

template <BinaryOp OP>
static inline float apply(float x, float y) {
  if constexpr (OP == BinaryOp::Add) return x + y;
  else if constexpr (OP == BinaryOp::Sub) return x - y;
  else if constexpr (OP == BinaryOp::Multiply) return x * y;
  else return x / y;
}

template <BinaryOp OP>
static Napi::Value Binary(const Napi::CallbackInfo& info) {
  constexpr const char* fn = OP == BinaryOp::Add ? "add" : OP == BinaryOp::Sub ? "sub" : OP == BinaryOp::Multiply ? "multiply" : "realDiv";
  const float *a = f32(info[0]), *b = f32(info[1]);
  float* o = f32(info[2]);
  size_t R;
  const int32_t* shape = i32(info[3], &R);
  const int32_t *sa = i32(info[4]), *sb = i32(info[5]);
  need_len(info, fn, 4, "aStrides", R), need_len(info, fn, 5, "bStrides", R);
  int64_t n = 1, ea = 1, eb = 1;  // out size; a, b extents (1 + the largest offset read)
  for (size_t d = 0; d < R; d++) {
    if (shape[d] < 0 || sa[d] < 0 || sb[d] < 0) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": negative shape or stride");
    n *= shape[d], ea += (int64_t)(shape[d] - 1) * sa[d], eb += (int64_t)(shape[d] - 1) * sb[d];
  }
  need_len(info, fn, 0, "a", n ? ea : 0), need_len(info, fn, 1, "b", n ? eb : 0), need_len(info, fn, 2, "out", n);
  const int64_t inner = R ? shape[R - 1] : 1, ia = R ? sa[R - 1] : 0, ib = R ? sb[R - 1] : 0;
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < R; d++) rows *= shape[d];
#pragma omp parallel for num_threads(g_threads) if (rows * inner > 65536)
  for (int64_t r = 0; r < rows; r++) {
    int64_t offA = 0, offB = 0, rem = r;
    for (int d = (int)R - 2; d >= 0; d--) {
      const int64_t c = rem % shape[d];
      rem /= shape[d];
      offA += c * sa[d];
      offB += c * sb[d];
    }
    const float *x = a + offA, *y = b + offB;
    float* z = o + r * inner;
    if (ia == 1 && ib == 1) {
      for (int64_t i = 0; i < inner; i++) z[i] = apply<OP>(x[i], y[i]);
    } else {
      for (int64_t i = 0; i < inner; i++) z[i] = apply<OP>(x[i * ia], y[i * ib]);
    }
  }
  return info.Env().Undefined();
}

// transpose(x, y, inShape Int32 [R], perm Int32 [R]): y = x.transpose(perm), row-major.
static Napi::Value Transpose(const Napi::CallbackInfo& info) {
  const float* x = f32(info[0]);
  float* y = f32(info[1]);
  size_t R;
  const int32_t* in = i32(info[2], &R);
  const int32_t* perm = i32(info[3]);
  if (R < 1 || R > 8) throw Napi::RangeError::New(info.Env(), "transpose: rank must be 1 to 8");
  need_len(info, "transpose", 3, "perm", R);
  int64_t n = 1;
  for (size_t d = 0; d < R; d++) {
    if (in[d] < 0 || perm[d] < 0 || perm[d] >= (int)R) throw Napi::RangeError::New(info.Env(), "transpose: bad shape or perm");
    n *= in[d];
  }
  need_len(info, "transpose", 0, "x", n), need_len(info, "transpose", 1, "y", n);
  int64_t inStride[8], outShape[8], st[8];
  int64_t acc = 1;
  for (int d = (int)R - 1; d >= 0; d--) { inStride[d] = acc; acc *= in[d]; }
  for (size_t d = 0; d < R; d++) { outShape[d] = in[perm[d]]; st[d] = inStride[perm[d]]; }
  const int64_t inner = outShape[R - 1], si = st[R - 1];
  const int64_t rows = acc / (inner ? inner : 1);
#pragma omp parallel for num_threads(g_threads) if (acc > 65536)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off = 0, rem = r;
    for (int d = (int)R - 2; d >= 0; d--) {
      off += (rem % outShape[d]) * st[d];
      rem /= outShape[d];
    }
    float* z = y + r * inner;
    const float* a = x + off;
    for (int64_t i = 0; i < inner; i++) z[i] = a[i * si];
  }
  return info.Env().Undefined();
}

// softmax(x, y, rows, cols): row-wise softmax over the last axis.
static Napi::Value Softmax(const Napi::CallbackInfo& info) {
  const float* x = f32(info[0]);
  float* y = f32(info[1]);
  const int64_t rows = info[2].As<Napi::Number>().Int64Value();
  const int cols = arg_i(info, 3);
  need_len(info, "softmax", 0, "x", rows * cols), need_len(info, "softmax", 1, "y", rows * cols);
#pragma omp parallel for num_threads(g_threads) if (rows * cols > 65536)
  for (int64_t r = 0; r < rows; r++) {
    const float* a = x + r * cols;
    float* b = y + r * cols;
    float m = -INFINITY;
    for (int j = 0; j < cols; j++) m = a[j] > m ? a[j] : m;
    float sum = 0;
    for (int j = 0; j < cols; j++) sum += (b[j] = std::exp(a[j] - m));
    const float inv = 1.f / sum;
    for (int j = 0; j < cols; j++) b[j] *= inv;
  }
  return info.Env().Undefined();
}

void InitElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("add", Napi::Function::New(env, Binary<BinaryOp::Add>));
  exports.Set("sub", Napi::Function::New(env, Binary<BinaryOp::Sub>));
  exports.Set("multiply", Napi::Function::New(env, Binary<BinaryOp::Multiply>));
  exports.Set("realDiv", Napi::Function::New(env, Binary<BinaryOp::RealDiv>));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("transpose", Napi::Function::New(env, Transpose));
}
