// blas.h: OpenBLAS entry points resolved with dlopen at addon load (no headers needed), plus shared helpers.
#pragma once
#include <napi.h>
#include <string>

// CBLAS enums (values fixed by the CBLAS standard).
enum { CblasRowMajor = 101 };
enum { CblasNoTrans = 111, CblasTrans = 112 };

typedef void (*sgemm_fn)(int order, int transA, int transB, int M, int N, int K, float alpha, const float* A,
                         int lda, const float* B, int ldb, float beta, float* C, int ldc);

struct Blas {
  bool ok = false;
  std::string error;    // why OpenBLAS is unavailable
  std::string path;     // library name that was loaded
  std::string config;   // openblas_get_config(), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64"
  std::string core;     // openblas_get_corename(): the kernel family in use, e.g. "Haswell" (empty if not exported)
  sgemm_fn sgemm = nullptr;
  void (*set_threads)(int) = nullptr;
  int (*get_threads)() = nullptr;
};
extern Blas g_blas;
extern int g_threads;  // threads for our own loops (OpenMP), same as OpenBLAS

// Row-major C[M,N] = alpha * op(A) op(B) + beta * C, with op(A) [M,K], op(B) [K,N], dense leading dims.
inline void sgemm(bool tA, bool tB, int M, int N, int K, float alpha, const float* A, const float* B, float beta,
                  float* C) {
  g_blas.sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
               tA ? M : K, B, tB ? K : N, beta, C, N);
}

// Same with explicit leading dimensions (strided head views such as q[:, h, :] in [T, H, D]).
inline void sgemm_ld(bool tA, bool tB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                     int ldb, float beta, float* C, int ldc) {
  g_blas.sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
               lda, B, ldb, beta, C, ldc);
}

inline int arg_i(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }
inline float arg_f(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().FloatValue(); }

// Argument helpers: a Float32Array's data and length; throws a JS TypeError otherwise.
float* f32(const Napi::Value& v, size_t* len = nullptr);
int32_t* i32(const Napi::Value& v, size_t* len = nullptr);
void requireBlas(Napi::Env env);

// Every entry point checks each buffer against the shape it is given, one line per buffer: info[i] (named
// `name`) must hold at least `need` elements, else a RangeError ('rmsNorm: y has 11 elements, the shape needs 12').
// A negative need (a negative dimension) throws too; a non-array at i is left to f32 / i32 (optional buffers).
void need_len(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name, int64_t need);

// The LoRA terms of LoraLinear's forward and backward (kernels/LoraLinear.cc), shared by the bf16 variants.
void loraForwardTerms(int N, int in, int out, int r, float s, const float* xl, const float* A, const float* B,
                      const float* bias, float* y, float* u);
void loraBackwardTerms(int N, int in, int out, int r, float s, const float* dy, const float* xl, const float* A,
                       const float* B, const float* u, float* dx, float* dxl, float* dA, float* dB);

// One row of the lm_head's softmax in place (kernels/WeightedCrossEntropy.cc): r[V] logits -> w (softmax - onehot(y));
// returns w * loss. The fp32 kernel's and the bf16 fallback's.
double softmaxRow(float* r, int V, int y, float w);

// Per-file registration functions (Init + the file's name), all called from addon.cc's Init.
void InitBatchMatMul(Napi::Env env, Napi::Object exports);
void InitFusedAttention(Napi::Env env, Napi::Object exports);
void InitWeightedCrossEntropy(Napi::Env env, Napi::Object exports);
void InitRmsNorm(Napi::Env env, Napi::Object exports);
void InitSwiglu(Napi::Env env, Napi::Object exports);
void InitGeluTanhMul(Napi::Env env, Napi::Object exports);
void InitRope(Napi::Env env, Napi::Object exports);
void InitElementwise(Napi::Env env, Napi::Object exports);
void InitLoraLinear(Napi::Env env, Napi::Object exports);
void InitAdamW(Napi::Env env, Napi::Object exports);
void InitGatherV2(Napi::Env env, Napi::Object exports);
void InitMatMulBf16(Napi::Env env, Napi::Object exports);  // the bf16 entry points (oneDNN: kernels/Dnnl.cc)
void InitKeepAwake(Napi::Env env, Napi::Object exports);   // idle-class spinners while training (KeepAwake.cc)
