// dnnl_impls.cc: one bf16 matmul timed on each of two oneDNN 2.x implementations, the one oneDNN ranks first and
// its first 'gemm:' one, as kernels/Dnnl.cc calls it (libdnnl dlopened, strided plain operands, optional sum post-op).
// For docs/BENCHMARKS.md (bf16, runs g): which implementation runs the backward's dY W fastest; with f32 (runs w):
// the same product on fp32 operands (the widened products of kernels/Dnnl.cc), against bf16 on the same CPU.
//   g++ -O2 -o /tmp/dnnl_impls scripts/bench/dnnl_impls.cc -ldl
//   OMP_NUM_THREADS=2 /tmp/dnnl_impls M IN OUT [fwd|bwd] [acc] [reps] [bf16|f32]
// fwd: y[M, OUT] = x[M, IN] W^T with W [OUT, IN]; bwd: dx[M, IN] = dy[M, OUT] W (W [K = OUT, N = IN] row-major).
#include <dlfcn.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

typedef void* H;
struct alignas(16) Md { char b[2048]; };
struct alignas(16) Desc { char b[8192]; };
struct Arg { int arg; H mem; };

static int (*engineCreate)(H*, int, size_t), (*streamCreate)(H*, H, unsigned), (*streamWait)(H);
static int (*mdStrides)(Md*, int, const int64_t*, int, const int64_t*);
static int (*matmulInit)(Desc*, const Md*, const Md*, const Md*, const Md*);
static int (*pdQuery)(H, int, int, void*), (*primCreate)(H*, H), (*primExec)(H, H, int, const Arg*);
static int (*memCreate)(H*, const Md*, H, void*), (*memDestroy)(H);
static int (*iterCreate)(H*, const void*, const void*, H, const void*), (*iterNext)(H);
static H (*iterFetch)(H);
static int (*attrCreate)(H*), (*postOpsCreate)(H*), (*postOpsSum)(H, float), (*attrPostOps)(H, H);
static H engine, stream;

template <typename F> static void sym(void* lib, const char* name, F& f) {
  if (!(f = (F)dlsym(lib, name))) { std::fprintf(stderr, "libdnnl.so.2 lacks %s\n", name); std::exit(1); }
}

static const char* implName(H pd) {
  const char* s = "";
  pdQuery(pd, 8 /* impl_info_str */, 0, &s);
  return s;
}

struct Product { H prim; Md src, wei, dst; const char* impl; };

// The product's primitive: oneDNN's first implementation, or (gemm) its first 'gemm:' one.
static int dt = 2;  // operands: 2 bf16, 3 f32
static Product make(int M, int N, int K, bool transW, bool acc, bool gemm) {
  Product p;
  const int64_t xd[2] = {M, K}, xs[2] = {K, 1}, wd[2] = {K, N}, yd[2] = {M, N}, ys[2] = {N, 1};
  const int64_t ws[2] = {transW ? 1 : N, transW ? K : 1};
  mdStrides(&p.src, 2, xd, dt, xs), mdStrides(&p.wei, 2, wd, dt, ws), mdStrides(&p.dst, 2, yd, 3 /* f32 */, ys);
  Desc op;
  matmulInit(&op, &p.src, &p.wei, nullptr, &p.dst);
  H attr = nullptr;
  if (acc) {
    H ops;
    attrCreate(&attr), postOpsCreate(&ops), postOpsSum(ops, 1.f), attrPostOps(attr, ops);
  }
  H it, pd = nullptr;
  if (iterCreate(&it, &op, attr, engine, nullptr)) { std::fprintf(stderr, "no bf16 matmul\n"); std::exit(1); }
  do {
    H cand = iterFetch(it);
    if (!pd) pd = cand;
    if (gemm && !std::strncmp(implName(cand), "gemm:", 5)) { pd = cand; break; }
  } while (iterNext(it) == 0);
  p.impl = implName(pd);
  primCreate(&p.prim, pd);
  return p;
}

static void run(const Product& p, const void* x, const void* w, void* y) {
  H a, b, c;
  memCreate(&a, &p.src, engine, (void*)x), memCreate(&b, &p.wei, engine, (void*)w), memCreate(&c, &p.dst, engine, y);
  const Arg args[3] = {{1 /* src */, a}, {33 /* weights */, b}, {17 /* dst */, c}};
  primExec(p.prim, stream, 3, args), streamWait(stream);
  memDestroy(a), memDestroy(b), memDestroy(c);
}

int main(int argc, char** argv) {
  if (argc < 4) { std::fprintf(stderr, "usage: dnnl_impls M IN OUT [fwd|bwd] [acc] [reps]\n"); return 1; }
  const int M = std::atoi(argv[1]), in = std::atoi(argv[2]), out = std::atoi(argv[3]);
  const bool bwd = argc > 4 && !std::strcmp(argv[4], "bwd"), acc = argc > 5 && !std::strcmp(argv[5], "acc");
  const int reps = argc > 6 ? std::atoi(argv[6]) : 20;
  if (argc > 7 && !std::strcmp(argv[7], "f32")) dt = 3;
  void* lib = dlopen("libdnnl.so.2", RTLD_NOW);
  if (!lib) { std::fprintf(stderr, "libdnnl.so.2 not found (apt-get install libdnnl2)\n"); return 1; }
  sym(lib, "dnnl_engine_create", engineCreate), sym(lib, "dnnl_stream_create", streamCreate);
  sym(lib, "dnnl_stream_wait", streamWait), sym(lib, "dnnl_memory_desc_init_by_strides", mdStrides);
  sym(lib, "dnnl_matmul_desc_init", matmulInit), sym(lib, "dnnl_primitive_desc_query", pdQuery);
  sym(lib, "dnnl_primitive_create", primCreate), sym(lib, "dnnl_primitive_execute", primExec);
  sym(lib, "dnnl_memory_create", memCreate), sym(lib, "dnnl_memory_destroy", memDestroy);
  sym(lib, "dnnl_primitive_desc_iterator_create", iterCreate), sym(lib, "dnnl_primitive_desc_iterator_next", iterNext);
  sym(lib, "dnnl_primitive_desc_iterator_fetch", iterFetch), sym(lib, "dnnl_primitive_attr_create", attrCreate);
  sym(lib, "dnnl_post_ops_create", postOpsCreate), sym(lib, "dnnl_post_ops_append_sum", postOpsSum);
  sym(lib, "dnnl_primitive_attr_set_post_ops", attrPostOps);
  engineCreate(&engine, 1 /* cpu */, 0), streamCreate(&stream, engine, 1);
  const int N = bwd ? in : out, K = bwd ? out : in;
  // x = 1; W: small varied bf16 values, or (f32) the same values widened: the bf16 bits in each float's upper half.
  const size_t e = dt == 3 ? 2 : 1;  // uint16_t per element
  std::vector<uint16_t> x((size_t)M * K * e, 0), W((size_t)in * out * e, 0);
  for (size_t i = 0; i < (size_t)M * K; i++) x[i * e + e - 1] = 0x3f80;
  for (size_t i = 0; i < (size_t)in * out; i++) W[i * e + e - 1] = (uint16_t)(0x3c00 + i * 7919 % 512);
  std::vector<float> y((size_t)M * N);
  for (bool gemm : {false, true}) {
    const Product p = make(M, N, K, !bwd, acc, gemm);
    run(p, x.data(), W.data(), y.data());  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; r++) run(p, x.data(), W.data(), y.data());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    std::printf("%s %s %dx%d . %dx%d%s: %-26s %8.2f ms %6.0f GFLOP/s\n", dt == 3 ? "f32" : "bf16", bwd ? "bwd" : "fwd", M, K, K, N,
                acc ? " (sum post-op)" : "", p.impl, s * 1e3, 2.0 * M * N * K / s / 1e9);
  }
}
