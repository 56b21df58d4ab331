// Dnnl.cc: oneDNN bf16 matmul through dlopen (the C API entry points and structs declared below, from oneDNN 2.x
// dnnl.h/dnnl_types.h), primitives cached per shape; on Intel CPUs without AMX the same products widened to fp32
// (runWide below); fallback: W -> fp32 in blocks + OpenBLAS sgemm.
#include "blas.h"
#include "dnnl.h"
#include <dlfcn.h>
#include <array>
#include <chrono>
#include <cpuid.h>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <omp.h>
#include <vector>

Bf16Path g_bf16;

namespace {
// oneDNN 2.x C types: opaque handles; memory/op descriptors are plain structs (696 and 2800 bytes in 2.6) that
// the library fills, so generous aligned byte arrays stand in for them.
typedef void* handle_t;
struct alignas(16) md_t { char bytes[2048]; };
struct alignas(16) matmul_desc_t { char bytes[8192]; };
struct exec_arg_t { int arg; handle_t memory; };
struct version_t { int major, minor, patch; const char* hash; unsigned cpu_runtime, gpu_runtime; };
enum { ENGINE_CPU = 1, DT_BF16 = 2, DT_F32 = 3, STREAM_DEFAULT = 1, QUERY_IMPL_INFO_STR = 8, QUERY_SCRATCHPAD_MD = 136 };
enum { SCRATCHPAD_USER = 1 };
enum { ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33, ARG_SCRATCHPAD = 80 };
enum { ISA_AVX512_CORE_BF16 = 0xe7, ISA_AVX512_CORE_AMX = 0x3e7 };

struct Api {
  int (*engine_create)(handle_t*, int, size_t);
  int (*stream_create)(handle_t*, handle_t, unsigned);
  int (*stream_wait)(handle_t);
  int (*md_init_by_strides)(md_t*, int, const int64_t*, int, const int64_t*);
  int (*matmul_desc_init)(matmul_desc_t*, const md_t*, const md_t*, const md_t*, const md_t*);
  int (*pd_create)(handle_t*, const void*, const void*, handle_t, const void*);
  int (*pd_query)(handle_t, int, int, void*);
  int (*pd_destroy)(handle_t);
  int (*prim_create)(handle_t*, handle_t);
  int (*prim_execute)(handle_t, handle_t, int, const exec_arg_t*);
  int (*prim_destroy)(handle_t);
  int (*mem_create)(handle_t*, const md_t*, handle_t, void*);
  int (*mem_destroy)(handle_t);
  int (*mem_set_handle)(handle_t, void*);
  const version_t* (*version)();
  unsigned (*effective_isa)();
  int (*attr_create)(handle_t*);
  int (*attr_destroy)(handle_t);
  int (*post_ops_create)(handle_t*);
  int (*post_ops_destroy)(handle_t);
  int (*post_ops_append_sum)(handle_t, float);
  int (*attr_set_post_ops)(handle_t, handle_t);
  int (*attr_set_scratchpad_mode)(handle_t, int);
  const md_t* (*pd_query_md)(handle_t, int, int);
  size_t (*md_get_size)(const md_t*);
  int (*iter_create)(handle_t*, const void*, const void*, handle_t, const void*);
  int (*iter_next)(handle_t);
  handle_t (*iter_fetch)(handle_t);
  int (*iter_destroy)(handle_t);
} api;
handle_t engine = nullptr, stream = nullptr;

template <typename F> bool sym(void* h, const char* name, F& f) { return (f = (F)dlsym(h, name)) != nullptr; }

// Every primitive takes its scratchpad from the caller (user mode): each thread passes its own, so threads may run
// primitives concurrently (FusedAttentionBf16.cc splits heads over threads).
struct Prim { handle_t pd, prim; md_t src, wei, dst, scratch; size_t scratchBytes; uint64_t id; };
// Layouts of y[M,N] = x[M,K] op(W): XWT (W [N,K]), XW (W [K,N]). (Swapping roles for the lm_head, y^T = W x^T
// with a transposed dst, was tried: oneDNN 2.6 has no fast kernel for a transposed dst.)
enum Mode { XWT = 0, XW = 1 };
using Key = std::array<int64_t, 19>;
std::map<Key, Prim> cache;
uint64_t lastId = 0;  // Prim ids: never reused, so a thread's memory objects (execute) never outlive theirs
std::mutex cacheLock;  // prim() may be called from several OpenMP threads

// The primitive attribute: user scratchpad, plus a sum post-op when acc (y += x op(W): oneDNN reads y as it
// writes each output tile). Made once each.
handle_t makeAttr(bool acc) {
  handle_t ops = nullptr, a = nullptr;
  bool ok = !api.attr_create(&a) && !api.attr_set_scratchpad_mode(a, SCRATCHPAD_USER);
  if (ok && acc) {
    ok = !api.post_ops_create(&ops) && !api.post_ops_append_sum(ops, 1.f) && !api.attr_set_post_ops(a, ops);
    if (ops) api.post_ops_destroy(ops);  // the attribute holds its own copy
  }
  if (!ok && a) api.attr_destroy(a), a = nullptr;
  return a;
}
handle_t attr(bool acc) {
  static handle_t plain = makeAttr(false), sum = makeAttr(true);
  return acc ? sum : plain;
}

// The implementation oneDNN chose for `pd`, e.g. "brg:avx512_core_amx_bf16" or "gemm:jit".
const char* implName(handle_t pd) {
  const char* impl = nullptr;
  return !api.pd_query(pd, QUERY_IMPL_INFO_STR, 0, &impl) && impl ? impl : "";
}

// The primitive descriptor for `op`: oneDNN's first choice, or with preferGemm its first 'gemm:' implementation
// where it has one. For y = x W with W [K, N] row-major (the backward's dy W), oneDNN 2.6 ranks its brgemm first,
// but brgemm's copy of a row-major W into its blocked layout is slow for long K: from K = 2048 on gemm:jit is
// faster (512x6144 . 6144x2048: 13.0 vs 18.1 ms alone in scripts/bench/dnnl_impls.cc, 11.6 vs 16.4 in the 1.7B
// step; the 8B step's 2048x14336 . 14336x4096: 183 vs 350 ms); at K = 1024 brgemm is as fast or faster.
// For y = x W^T (W [N, K], the forward's) the same holds from K = 6144 on: gemm:jit / brgemm GFLOP/s, geometric
// mean of 10-12 interleaved runs each (scripts/bench/dnnl_impls.cc, 2 threads, runs q in docs/BENCHMARKS.md):
// 512x6144 . 6144x2048 1.21-1.40, 2048x14336 . 14336x4096 1.34; K = 2048-4096 mixed (0.95-1.12), K = 1024 1.00.
handle_t choosePd(const matmul_desc_t& op, handle_t attr, bool preferGemm) {
  handle_t pd = nullptr;
  if (!preferGemm) return api.pd_create(&pd, &op, attr, engine, nullptr) ? nullptr : pd;
  handle_t it = nullptr;
  if (api.iter_create(&it, &op, attr, engine, nullptr)) return nullptr;
  handle_t first = nullptr;
  do {
    handle_t p = api.iter_fetch(it);
    if (!p) continue;
    if (!std::strncmp(implName(p), "gemm:", 5)) { pd = p; break; }
    if (!first) first = p;
    else api.pd_destroy(p);
  } while (api.iter_next(it) == 0);
  api.iter_destroy(it);
  if (pd && first) api.pd_destroy(first);
  return pd ? pd : first;
}

// The matmul primitive for one batched product y[b] (+)= x[b] w[b] over nb batches (nb 1: a plain 2-D product),
// each operand a strided view; created on first use (oneDNN picks the ISA, AMX/AVX512_BF16 here); acc: a sum
// post-op (y +=); preferGemm: see choosePd.
// dt: the operands' type, DT_BF16 (x, w bf16) or DT_F32 (the widened products).
const Prim* prim(int64_t nb, const Bf16View& x, const Bf16View& w, const Bf16View& y, bool acc, bool preferGemm = false,
                 int dt = DT_BF16) {
  const Key key = {nb, x.rows, x.cols, x.batch, x.row, x.col, w.rows, w.cols, w.batch,
                   w.row, w.col, y.rows, y.cols, y.batch, y.row, y.col, acc, preferGemm, dt};
  std::lock_guard<std::mutex> hold(cacheLock);
  auto it = cache.find(key);
  if (it != cache.end()) return &it->second;
  if (cache.size() >= 256 && !omp_in_parallel()) {  // many distinct M (loss rows vary per batch): start over
    for (auto& [k, p] : cache) { api.prim_destroy(p.prim); api.pd_destroy(p.pd); }
    cache.clear();
  }
  Prim p{};
  const int nd = nb > 1 ? 3 : 2, o = 3 - nd;  // 2-D: skip the batch entries
  const int64_t xd[3] = {nb, x.rows, x.cols}, xs[3] = {x.batch, x.row, x.col}, wd[3] = {nb, w.rows, w.cols},
                ws[3] = {w.batch, w.row, w.col}, yd[3] = {nb, y.rows, y.cols}, ys[3] = {y.batch, y.row, y.col};
  matmul_desc_t op;
  if (api.md_init_by_strides(&p.src, nd, xd + o, dt, xs + o) || api.md_init_by_strides(&p.wei, nd, wd + o, dt, ws + o) ||
      api.md_init_by_strides(&p.dst, nd, yd + o, DT_F32, ys + o) || api.matmul_desc_init(&op, &p.src, &p.wei, nullptr, &p.dst) ||
      !attr(acc) || !(p.pd = choosePd(op, attr(acc), preferGemm)))
    return nullptr;
  const md_t* sp = api.pd_query_md(p.pd, QUERY_SCRATCHPAD_MD, 0);
  if (!sp || api.prim_create(&p.prim, p.pd)) { api.pd_destroy(p.pd); return nullptr; }
  p.scratch = *sp;
  p.scratchBytes = api.md_get_size(sp);
  if (dt == DT_BF16 || g_bf16.wide) g_bf16.impl = implName(p.pd);
  p.id = ++lastId;
  return &(cache[key] = p);
}

// The 2-D views of y[M,N] = x[M,K] op(W): XWT (W [N,K]), XW (W [K,N]); lda, ldc: row strides of x and y.
// f32: fp32 operands (the widened products); for x W (W [K, N]) oneDNN 2.6's f32 brgemm is slow at N = 3072
// (136 GFLOP/s at 512x1024 . 1024x3072 on 2 threads, gemm:jit 324: scripts/bench/dnnl_impls.cc ... bwd x 20 f32),
// so f32 takes gemm:jit there at any K.
const Prim* prim(Mode mode, int M, int N, int K, int lda = 0, int ldc = 0, bool acc = false, bool f32 = false) {
  const Bf16View x{M, K, 0, lda > 0 ? lda : K, 1}, y{M, N, 0, ldc > 0 ? ldc : N, 1};
  const Bf16View w = mode == XW ? Bf16View{K, N, 0, N, 1} : Bf16View{K, N, 0, 1, K};
  const bool gemm = mode == XW ? f32 || K >= 2048 : !f32 && K >= 6144;
  return prim(1, x, w, y, acc, gemm, f32 ? DT_F32 : DT_BF16);
}

// One thread's memory objects for one primitive's four arguments, made once: each call only points them at its
// buffers (creating and destroying four per call cost ~2 us, and the attention makes ~12k small products a step).
// Never destroyed at exit (oneDNN may be torn down first); let go of with the rest when a thread holds too many.
struct Args { handle_t m[4] = {}; };

bool execute(const Prim* p, const void* xb, const void* W, float* y, bool clock = true) {
  if (!p) return false;
  thread_local std::vector<uint64_t> scratch;  // this thread's scratchpad, grown as needed (64-bit aligned)
  thread_local std::map<uint64_t, Args> argsOf;  // by Prim id
  if (scratch.size() * 8 < p->scratchBytes) scratch.resize((p->scratchBytes + 7) / 8 + 8);
  if (argsOf.size() > 512) {  // ids of primitives the cache let go of (it holds at most 256)
    for (auto& [id, a] : argsOf) for (handle_t h : a.m) if (h) api.mem_destroy(h);
    argsOf.clear();
  }
  Args& a = argsOf[p->id];
  const md_t* mds[4] = {&p->src, &p->wei, &p->dst, &p->scratch};
  void* data[4] = {(void*)xb, (void*)W, y, scratch.data()};
  for (int i = 0; i < 4; i++)
    if (a.m[i] ? api.mem_set_handle(a.m[i], data[i]) : api.mem_create(&a.m[i], mds[i], engine, data[i])) {
      for (handle_t h : a.m) if (h) api.mem_destroy(h);
      argsOf.erase(p->id);
      return false;
    }
  const exec_arg_t args[4] = {{ARG_SRC, a.m[0]}, {ARG_WEIGHTS, a.m[1]}, {ARG_DST, a.m[2]}, {ARG_SCRATCHPAD, a.m[3]}};
  // Products on all threads (called outside a parallel region: the JS thread's) are timed for the bench's split
  // of a step into products and the rest; the attention's per-thread ones are not, nor runWide's (it times its
  // whole region: at 1 thread its products run outside an active parallel region too).
  const bool timed = clock && !omp_in_parallel();
  const auto t0 = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  const bool ok = !api.prim_execute(p->prim, stream, 4, args) && !api.stream_wait(stream);
  if (timed) g_bf16.productSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ok;
}

// The widened products (g_bf16.wide): y[M,N] (ldc) (+)= x[M,K] (lda, fp32 holding bf16 values) op(W), W bf16, on
// oneDNN's f32 matmul. The products of bf16 values are exact in fp32, so this computes what the bf16 products do, in
// another summation order. Each thread takes whole blocks of y's columns: it widens its block of W (about 1 MB of
// fp32, so it stays in the core's L2) and multiplies it single-threaded; no full fp32 copy of W exists and the
// threads never wait for each other between blocks. Timed as products (the widening included).
bool runWide(Mode mode, int M, int N, int K, const float* x, int lda, const uint16_t* W, float* y, int ldc, bool acc) {
  const auto t0 = std::chrono::steady_clock::now();
  const int B = std::min(N, std::max(32, (int)((1 << 18) / std::max(1, K)) / 16 * 16));  // columns of y per block
  const int blocks = (N + B - 1) / B;
  bool ok = true;
#pragma omp parallel num_threads(g_threads) reduction(&& : ok)
  {
    thread_local std::vector<float> wide;
    float* wf = reuse(wide, (size_t)B * K);
#pragma omp for schedule(static)
    for (int b = 0; b < blocks; b++) {
      const int n0 = b * B, nb = std::min(B, N - n0);
      if (mode == XWT)  // W rows n0.. (each K long) as they are: [nb, K]
        for (size_t i = 0; i < (size_t)nb * K; i++) wf[i] = fromBf16One(W[(size_t)n0 * K + i]);
      else  // W [K, N]: columns n0.. of each row, packed [K, nb]
        for (int k = 0; k < K; k++)
          for (int j = 0; j < nb; j++) wf[(size_t)k * nb + j] = fromBf16One(W[(size_t)k * N + n0 + j]);
      ok = ok && execute(prim(mode, M, nb, K, lda, ldc, acc, true), x, wf, y + n0, false);
    }
  }
  g_bf16.productSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ok;
}

// Fewer rows than this stay bf16 products on the wide path: with few rows a product only streams W, and widening
// it costs more than f32 saves (a generated token's products have M = the sequences decoded at once). Measured by
// scripts/bench/wide_rows.ts (docs/BENCHMARKS.md, runs w), which sets LORASFT_WIDE_MIN_ROWS=1 to time both paths.
int wideMinRows = 32;
bool wideFor(int M) { return g_bf16.wide && M >= wideMinRows; }

// The bf16 rows xb [M, K] (row stride lda) as fp32 values, packed [M, K].
const float* widenRows(const uint16_t* xb, int M, int K, int lda) {
  static std::vector<float> xs;  // calls come from the one JS thread
  float* x = reuse(xs, (size_t)M * K);
#pragma omp parallel for num_threads(g_threads) schedule(static) if ((int64_t)M * K > (1 << 16))
  for (int i = 0; i < M; i++)
    for (int k = 0; k < K; k++) x[(size_t)i * K + k] = fromBf16One(xb[(size_t)i * lda + k]);
  return x;
}

bool runDnnl(Mode mode, int M, int N, int K, const uint16_t* xb, const uint16_t* W, float* y, int lda = 0, int ldc = 0,
             bool acc = false) {
  if (wideFor(M)) return runWide(mode, M, N, K, widenRows(xb, M, K, lda > 0 ? lda : K), K, W, y, ldc > 0 ? ldc : N, acc);
  return execute(prim(mode, M, N, K, lda, ldc, acc), xb, W, y);
}

// Turns oneDNN off for the run with the reason; the attention's threads may fail at once (products per thread).
void dnnlFailed(const std::string& why) {
#pragma omp critical(lorasft_dnnl_error)
  {
    g_bf16.dnnl = false;
    g_bf16.error = why;
  }
}

void matmulFailed(int M, int N, int K) {
  dnnlFailed("oneDNN bf16 matmul failed at M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K));
}

inline uint16_t toBf16(float f) { return toBf16One(f); }

// Fallback: W -> fp32 in blocks of about 4M values (never the whole lm_head at once), sgemm on bf16-rounded x.
void runFallback(bool transW, int M, int N, int K, const float* x, const uint16_t* W, float* y) {
  std::vector<float> xr((size_t)M * K);
  roundBf16(x, xr.data(), xr.size());
  const int rows = std::max(1, (int)((1 << 22) / std::max(1, transW ? K : N)));
  const int total = transW ? N : K;  // W's rows: output columns (transW) or the summed index
  std::vector<float> wf((size_t)std::min(rows, total) * (transW ? K : N));
  for (int r0 = 0; r0 < total; r0 += rows) {
    const int nr = std::min(rows, total - r0), width = transW ? K : N;
    const uint16_t* src = W + (size_t)r0 * width;
#pragma omp parallel for num_threads(g_threads)
    for (int64_t i = 0; i < (int64_t)nr * width; i++) wf[i] = fromBf16One(src[i]);
    if (transW) sgemm_ld(false, true, M, nr, K, 1.f, xr.data(), K, wf.data(), K, 0.f, y + r0, N);  // y[:, r0:r0+nr]
    else sgemm_ld(false, false, M, N, nr, 1.f, xr.data() + r0, K, wf.data(), N, r0 ? 1.f : 0.f, y, N);
  }
}
}  // namespace

void toBf16(const float* src, uint16_t* dst, size_t n) {
#pragma omp parallel for num_threads(g_threads) if (n > (1 << 16))
  for (int64_t i = 0; i < (int64_t)n; i++) dst[i] = toBf16(src[i]);
}

bool batchedMatmulBf16(int nb, const Bf16View& x, const uint16_t* xp, const Bf16View& w, const uint16_t* wp,
                       const Bf16View& y, float* yp, bool acc) {
  if (!bf16OnDnnl()) return false;
  if (execute(prim(nb, x, w, y, acc), xp, wp, yp)) return true;
  dnnlFailed("oneDNN batched bf16 matmul failed at " + std::to_string(nb) + " x [" + std::to_string(x.rows) + ", " +
             std::to_string(x.cols) + "] x [" + std::to_string(w.rows) + ", " + std::to_string(w.cols) + "]");
  return false;
}

bool bf16OnDnnl() { return g_bf16.dnnl && !g_bf16.forceFallback; }

bool matmulBf16Dnnl(bool transW, int M, int N, int K, const uint16_t* xb, int lda, const uint16_t* W, float* y, int ldc,
                    bool acc) {
  if (M == 0 || N == 0 || K == 0 || !bf16OnDnnl()) return false;
  if (runDnnl(transW ? XWT : XW, M, N, K, xb, W, y, lda, ldc, acc)) return true;
  matmulFailed(M, N, K);
  return false;
}

void roundBf16(const float* src, float* dst, size_t n) {
#pragma omp parallel for num_threads(g_threads) if (n > (1 << 16))
  for (int64_t i = 0; i < (int64_t)n; i++) dst[i] = fromBf16One(toBf16(src[i]));
}

void matmulBf16(bool transW, int M, int N, int K, const float* x, const uint16_t* W, float* y) {
  if (M == 0 || N == 0) return;
  if (g_bf16.dnnl && !g_bf16.forceFallback && K > 0 && wideFor(M)) {
    static std::vector<float> rounded;  // bf16-rounded x in fp32; calls come from the one JS thread
    float* xr = reuse(rounded, (size_t)M * K);
    roundBf16(x, xr, (size_t)M * K);
    if (runWide(transW ? XWT : XW, M, N, K, xr, K, W, y, N, false)) return;
    matmulFailed(M, N, K);
  }
  if (g_bf16.dnnl && !g_bf16.forceFallback && K > 0) {
    static std::vector<uint16_t> scratch;  // bf16 x; calls come from the one JS thread
    uint16_t* xb = reuse(scratch, (size_t)M * K);
    toBf16(x, xb, (size_t)M * K);
    if (runDnnl(transW ? XWT : XW, M, N, K, xb, W, y)) return;
    matmulFailed(M, N, K);
  }
  if (K == 0) { std::memset(y, 0, (size_t)M * N * sizeof(float)); return; }
  runFallback(transW, M, N, K, x, W, y);
}

static std::string isaName(unsigned isa) {
  if ((isa & ISA_AVX512_CORE_AMX) == ISA_AVX512_CORE_AMX) return "avx512_core_amx";
  if ((isa & ISA_AVX512_CORE_BF16) == ISA_AVX512_CORE_BF16) return "avx512_core_bf16";
  char b[32];
  std::snprintf(b, sizeof b, "isa 0x%x", isa);
  return b;
}

// Whether the products run faster widened to fp32 (runWide) than as bf16 dot products, by CPU. On Intel cores
// without AMX (absent, or not enabled by the OS or hypervisor) oneDNN's bf16 products run at about half the rate of
// its f32 products on the same values (scripts/bench/dnnl_impls.cc on such a host: 512x1024 . 1024x3072 at 177
// GFLOP/s in bf16, 309 in f32, 2 threads; docs/BENCHMARKS.md, runs w). AMX, and AMD's Zen 4 (the bf16 issue's
// EPYC: 422 GFLOP/s in bf16 against 196 in fp32), run bf16 faster. The rule is the CPU's, not a timing, so a job
// and its resume take the same path. LORASFT_BF16_PRODUCTS=bf16|f32 overrides it.
static bool widerIsFaster(bool amx) {
  const char* forced = std::getenv("LORASFT_BF16_PRODUCTS");
  if (forced && !std::strcmp(forced, "f32")) return true;
  if (forced && !std::strcmp(forced, "bf16")) return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (amx || !__get_cpuid(0, &a, &b, &c, &d)) return false;
  return b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;  // "GenuineIntel"
}

// LORASFT_DNNL names the library (or 'none' to skip it).
void loadDnnl() {
  const char* forced = std::getenv("LORASFT_DNNL");
  if (forced && !std::strcmp(forced, "none")) { g_bf16.error = "oneDNN disabled by LORASFT_DNNL=none"; return; }
  const char* names[] = {"libdnnl.so.2", "libdnnl.so.3", "libdnnl.so", "/usr/lib/x86_64-linux-gnu/libdnnl.so.2"};
  void* h = nullptr;
  std::string path;
  if (forced && *forced) { h = dlopen(forced, RTLD_NOW | RTLD_LOCAL); path = forced; }
  else for (const char* n : names) if ((h = dlopen(n, RTLD_NOW | RTLD_LOCAL))) { path = n; break; }
  if (!h) { g_bf16.error = "oneDNN not found (install libdnnl2)"; return; }
  bool ok = sym(h, "dnnl_engine_create", api.engine_create) && sym(h, "dnnl_stream_create", api.stream_create) &&
            sym(h, "dnnl_stream_wait", api.stream_wait) && sym(h, "dnnl_memory_desc_init_by_strides", api.md_init_by_strides) &&
            sym(h, "dnnl_matmul_desc_init", api.matmul_desc_init) && sym(h, "dnnl_primitive_desc_create", api.pd_create) &&
            sym(h, "dnnl_primitive_desc_query", api.pd_query) && sym(h, "dnnl_primitive_desc_destroy", api.pd_destroy) &&
            sym(h, "dnnl_primitive_create", api.prim_create) && sym(h, "dnnl_primitive_execute", api.prim_execute) &&
            sym(h, "dnnl_primitive_destroy", api.prim_destroy) && sym(h, "dnnl_memory_create", api.mem_create) &&
            sym(h, "dnnl_memory_destroy", api.mem_destroy) &&
            sym(h, "dnnl_memory_set_data_handle", api.mem_set_handle) && sym(h, "dnnl_version", api.version) &&
            sym(h, "dnnl_get_effective_cpu_isa", api.effective_isa) && sym(h, "dnnl_primitive_attr_create", api.attr_create) &&
            sym(h, "dnnl_primitive_attr_destroy", api.attr_destroy) && sym(h, "dnnl_post_ops_create", api.post_ops_create) &&
            sym(h, "dnnl_post_ops_destroy", api.post_ops_destroy) && sym(h, "dnnl_post_ops_append_sum", api.post_ops_append_sum) &&
            sym(h, "dnnl_primitive_attr_set_post_ops", api.attr_set_post_ops) &&
            sym(h, "dnnl_primitive_attr_set_scratchpad_mode", api.attr_set_scratchpad_mode) &&
            sym(h, "dnnl_primitive_desc_query_md", api.pd_query_md) && sym(h, "dnnl_memory_desc_get_size", api.md_get_size) &&
            sym(h, "dnnl_primitive_desc_iterator_create", api.iter_create) &&
            sym(h, "dnnl_primitive_desc_iterator_next", api.iter_next) &&
            sym(h, "dnnl_primitive_desc_iterator_fetch", api.iter_fetch) &&
            sym(h, "dnnl_primitive_desc_iterator_destroy", api.iter_destroy);
  if (!ok) { g_bf16.error = path + " lacks the oneDNN 2.x matmul C API (matmul_desc_init)"; return; }
  const version_t* v = api.version();
  if (v->major != 2) { g_bf16.error = path + ": oneDNN " + std::to_string(v->major) + ".x, need 2.x"; return; }
  g_bf16.version = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) + " (" + path + ")";
  const unsigned isa = api.effective_isa();
  g_bf16.isa = isaName(isa);
  g_bf16.native = (isa & ISA_AVX512_CORE_BF16) == ISA_AVX512_CORE_BF16;
  if (!g_bf16.native) { g_bf16.error = "CPU lacks AVX512_BF16 (oneDNN ISA " + g_bf16.isa + ")"; return; }
  if (api.engine_create(&engine, ENGINE_CPU, 0) || api.stream_create(&stream, engine, STREAM_DEFAULT)) {
    g_bf16.error = "oneDNN: cannot create a CPU engine/stream";
    return;
  }
  g_bf16.dnnl = prim(XWT, 16, 64, 64) != nullptr;  // one small bf16 matmul proves the path
  if (!g_bf16.dnnl) g_bf16.error = "oneDNN has no bf16 matmul for this CPU";
  if (const char* m = std::getenv("LORASFT_WIDE_MIN_ROWS")) wideMinRows = std::max(1, std::atoi(m));
  g_bf16.wide = g_bf16.wideByCpu = g_bf16.dnnl && widerIsFaster((isa & ISA_AVX512_CORE_AMX) == ISA_AVX512_CORE_AMX) &&
                                   prim(XWT, 16, 64, 64, 0, 0, false, true) != nullptr;
}
