// The step kernels' thread pool: one per process, started on first use, never stopped.
//
// A large step is split into parts (the caller runs part 0, the pool's workers the others), each
// starting on its own run of the call's elements and then taking what the slower ones have left
// (Split in bindings/addon.cc). The updates are elementwise, so the bits are the
// same whatever the number of parts. One job runs at a time: a call that finds the pool busy
// (another worker_thread or an async call stepping at the same moment) runs all its parts itself.
//
// Waiting: a worker spins (with the CPU's pause hint) for kSpinMicros after its last part, so
// steps that follow each other closely are handed over in well under a microsecond, then sleeps
// on a condition variable (waking one costs tens of microseconds: the threshold for splitting a
// step is set with that in mind, see parts_for in addon.cc).
#pragma once

#include <cstddef>

namespace optim {

// Runs fn(ctx, part) for part in [0, parts), part 0 on the calling thread. Returns when all are
// done. parts is capped at threads(); a busy pool runs every part on the caller.
void pool_run(int parts, void (*fn)(void* ctx, int part), void* ctx);

// The number of threads a step may use, the caller included (>= 1). Default: OPTIM_NUM_THREADS
// if set to a positive integer, else the number of hardware threads.
int pool_threads();

// Sets it (1 to kMaxPoolThreads); takes effect at the next step.
void pool_set_threads(int n);

constexpr int kMaxPoolThreads = 64;

}  // namespace optim
