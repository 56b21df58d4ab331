// addon.cc: N-API module entry; dlopens OpenBLAS (LORASFT_OPENBLAS overrides the name), thread control, info().
#include "blas.h"
#include <dlfcn.h>
#include <cstdlib>
#ifdef _OPENMP
#include <omp.h>
#endif

Blas g_blas;
int g_threads = 1;


static void loadBlas() {
  const char* forced = std::getenv("LORASFT_OPENBLAS");
  const char* names[] = {"libopenblas.so.0", "libopenblasp.so.0", "libopenblas.so", "libopenblas.so.3",
                         "/usr/lib/x86_64-linux-gnu/libopenblas.so.0", "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
                         "libopenblas.dylib"};
  std::string tried;
  void* h = nullptr;
  if (forced && *forced) {
    h = dlopen(forced, RTLD_NOW | RTLD_LOCAL);
    tried = forced;
    if (!h) { g_blas.error = std::string("cannot load OpenBLAS from LORASFT_OPENBLAS=") + forced + ": " + dlerror(); return; }
    g_blas.path = forced;
  } else {
    for (const char* n : names) {
      h = dlopen(n, RTLD_NOW | RTLD_LOCAL);
      if (h) { g_blas.path = n; break; }
      tried += tried.empty() ? n : std::string(", ") + n;
    }
    if (!h) { g_blas.error = "OpenBLAS not found (tried " + tried + "); install libopenblas0-pthread"; return; }
  }
  g_blas.sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
  if (!g_blas.sgemm) { g_blas.error = g_blas.path + " has no cblas_sgemm"; return; }
  g_blas.set_threads = (void (*)(int))dlsym(h, "openblas_set_num_threads");
  g_blas.get_threads = (int (*)())dlsym(h, "openblas_get_num_threads");
  auto cfg = (char* (*)())dlsym(h, "openblas_get_config");
  g_blas.config = cfg ? cfg() : "BLAS";
  auto core = (char* (*)())dlsym(h, "openblas_get_corename");
  g_blas.core = core ? core() : "";
  g_blas.ok = true;
}

float* f32(const Napi::Value& v, size_t* len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(v.Env(), "expected a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  if (len) *len = a.ElementLength();
  return a.Data();
}

int32_t* i32(const Napi::Value& v, size_t* len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(v.Env(), "expected an Int32Array");
  auto a = v.As<Napi::Int32Array>();
  if (len) *len = a.ElementLength();
  return a.Data();
}

void need_len(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name, int64_t need) {
  if (need < 0) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": negative size for " + name);
  if (i >= info.Length() || !info[i].IsTypedArray()) return;
  const size_t have = info[i].As<Napi::TypedArray>().ElementLength();
  if (have < (size_t)need)
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + name + " has " + std::to_string(have) +
                                                " elements, the shape needs " + std::to_string(need));
}

void requireBlas(Napi::Env env) {
  if (!g_blas.ok) throw Napi::Error::New(env, "lorasft native: " + g_blas.error);
}

// setThreads(n): OpenBLAS and our OpenMP loops.
static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) n = 1;
  g_threads = n;
  if (g_blas.set_threads) g_blas.set_threads(n);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  return info.Env().Undefined();
}

// info(): { available, error, path, config, core, threads }
static Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", g_blas.ok);
  o.Set("error", g_blas.error);
  o.Set("path", g_blas.path);
  o.Set("config", g_blas.config);
  o.Set("core", g_blas.core);
  o.Set("threads", g_blas.get_threads ? g_blas.get_threads() : g_threads);
  return o;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  loadBlas();
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("info", Napi::Function::New(env, Info));
  InitBatchMatMul(env, exports);
  InitFusedAttention(env, exports);
  InitWeightedCrossEntropy(env, exports);
  InitRmsNorm(env, exports);
  InitSwiglu(env, exports);
  InitGeluTanhMul(env, exports);
  InitRope(env, exports);
  InitElementwise(env, exports);
  InitLoraLinear(env, exports);
  InitAdamW(env, exports);
  InitGatherV2(env, exports);
  InitMatMulBf16(env, exports);
  InitKeepAwake(env, exports);
  return exports;
}

NODE_API_MODULE(lorasft_native, Init)
