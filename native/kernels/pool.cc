// The step kernels' thread pool (see pool.h).
//
// Hand-off: the caller publishes a job (function, context, number of parts), then bumps a
// generation counter; each worker, spinning or asleep, sees the new generation, runs its part if
// it has one, and counts down. The caller runs part 0 meanwhile and spins until the count is 0.
// Every worker counts down for every job, so none can lag behind and read the next job's fields
// while they are written. The generation is bumped under the sleep mutex, so a worker between its
// last look and its wait cannot miss it.
#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define OPTIM_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define OPTIM_PAUSE() __asm__ __volatile__("yield")
#else
#define OPTIM_PAUSE() ((void)0)
#endif

namespace optim {
namespace {

// How long a worker spins after its last part before it sleeps.
constexpr std::chrono::microseconds kSpin(200);

int clamp_threads(long n) {
  return n < 1 ? 1 : (n > kMaxPoolThreads ? kMaxPoolThreads : int(n));
}

int default_threads() {
  const char* env = std::getenv("OPTIM_NUM_THREADS");
  if (env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (*end == '\0' && v >= 1) return clamp_threads(v);
  }
  return clamp_threads(long(std::thread::hardware_concurrency()));
}

class Pool {
 public:
  // Never destroyed: detached workers may still be spinning while statics are torn down.
  static Pool& get() {
    static Pool* pool = new Pool();
    return *pool;
  }

  int threads() const { return threads_.load(std::memory_order_relaxed); }
  void set_threads(int n) { threads_.store(clamp_threads(n), std::memory_order_relaxed); }

  void run(int parts, void (*fn)(void*, int), void* ctx) {
    if (parts > threads()) parts = threads();
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (parts <= 1 || !busy.owns_lock()) {
      for (int i = 0; i < (parts < 1 ? 1 : parts); i++) fn(ctx, i);
      return;
    }
    const uint64_t gen = gen_.load(std::memory_order_relaxed);
    while (workers_ < parts - 1) {
      workers_++;
      std::thread(&Pool::work, this, workers_, gen).detach();
    }
    fn_ = fn;
    ctx_ = ctx;
    parts_ = parts;
    remaining_.store(workers_, std::memory_order_relaxed);
    bool wake;
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      gen_.store(gen + 1, std::memory_order_release);
      wake = sleepers_ > 0;
    }
    if (wake) sleep_cv_.notify_all();
    fn(ctx, 0);
    while (remaining_.load(std::memory_order_acquire) != 0) OPTIM_PAUSE();
  }

 private:
  Pool() : threads_(default_threads()) {}

  void work(int id, uint64_t seen) {
    for (;;) {
      seen = wait_for(seen);
      if (id < parts_) fn_(ctx_, id);
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  // Spins, then sleeps, until the generation moves past `seen`; returns the new one.
  uint64_t wait_for(uint64_t seen) {
    const auto start = std::chrono::steady_clock::now();
    for (unsigned k = 1;; k++) {
      const uint64_t g = gen_.load(std::memory_order_acquire);
      if (g != seen) return g;
      if (k % 256 == 0 && std::chrono::steady_clock::now() - start > kSpin) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_++;
        sleep_cv_.wait(lock, [&] { return gen_.load(std::memory_order_acquire) != seen; });
        sleepers_--;
        return gen_.load(std::memory_order_acquire);
      }
      OPTIM_PAUSE();
    }
  }

  std::atomic<int> threads_;
  std::mutex busy_;  // held by the caller of the running job
  int workers_ = 0;  // started so far (written under busy_ only)
  // The job: written under busy_ before the generation is published, read after it.
  void (*fn_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  int parts_ = 0;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> remaining_{0};
  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;
  int sleepers_ = 0;  // under sleep_mutex_
};

}  // namespace

void pool_run(int parts, void (*fn)(void* ctx, int part), void* ctx) {
  Pool::get().run(parts, fn, ctx);
}

int pool_threads() {
  return Pool::get().threads();
}

void pool_set_threads(int n) {
  Pool::get().set_threads(n);
}

}  // namespace optim
