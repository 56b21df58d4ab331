// KeepAwake.cc: while training runs, one SCHED_IDLE thread pinned to each CPU of the process, so a CPU whose
// OpenMP worker sleeps between kernels (OMP_WAIT_POLICY=PASSIVE, src/backend/addon.ts) stays busy instead of
// idle. On a shared VM host the bf16 products ran at about half speed while lorasft's vCPUs kept going idle (the
// 0.6B step's median 3.98 -> 3.43 s with these threads, docs/BENCHMARKS.md runs p); spinning workers avoid that
// too but take a core from any other process. An idle-class thread runs only when nothing else wants its CPU, and
// a waking worker preempts it at once.
#include <napi.h>
#include <pthread.h>
#include <sched.h>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

namespace {
std::atomic<uint64_t> g_generation{0};  // spinners of an older generation stop
std::atomic<int> g_running{0};          // spinner threads alive (those told to stop included, until they exit)
std::mutex g_mutex;                     // keepAwake may be called from several JS threads (worker_threads)
bool g_on = false;

// Spins until keepAwake(false) (or a newer keepAwake(true)); never at normal priority: if the thread cannot be
// made SCHED_IDLE and pinned, it exits at once.
void spin(int cpu, uint64_t generation) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  sched_param p{};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &p) == 0 &&
      pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0) {
    uint64_t x = (uint64_t)cpu + 1;
    while (g_generation.load(std::memory_order_relaxed) == generation) {
      // A chain of dependent multiplies: no loads or stores, and no PAUSE (in a VM, PAUSE loops exit to the
      // host, which is what this thread is here to prevent); an SMT sibling keeps most of its core.
      for (int i = 0; i < 4096; i++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      asm volatile("" : "+r"(x));
    }
  }
  g_running.fetch_sub(1);
}

// keepAwake(on): on starts one spinner per CPU of the process's affinity mask (a second on changes nothing), off
// tells them to stop (each exits within microseconds). keepAwake() only asks. Returns the spinner threads alive.
Napi::Value KeepAwake(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const bool ask = info.Length() == 0 || info[0].IsUndefined();
  const bool on = !ask && info[0].ToBoolean();
  cpu_set_t mask;
  if (!ask && !on && g_on) {
    g_on = false;
    g_generation.fetch_add(1);
  } else if (on && !g_on && sched_getaffinity(0, sizeof mask, &mask) == 0) {
    g_on = true;
    const uint64_t generation = g_generation.fetch_add(1) + 1;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
      if (CPU_ISSET(cpu, &mask)) {
        g_running.fetch_add(1);
        std::thread(spin, cpu, generation).detach();
      }
  }
  return Napi::Number::New(info.Env(), g_running.load());
}
}  // namespace

void InitKeepAwake(Napi::Env env, Napi::Object exports) {
  exports.Set("keepAwake", Napi::Function::New(env, KeepAwake));
}
