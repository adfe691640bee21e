// Runtime choice of the kernel set: CPU features read once, widest supported set first.
// The tables are immutable; the choice is a function-local static (thread-safe init), so the
// module holds no mutable global state and loads in any number of worker threads.
#include <cstdlib>
#include <cstring>

#include "kernel_abi.h"

namespace optim {

const KernelTable* table_baseline();
const KernelTable* table_avx2();
const KernelTable* table_avx512();

namespace {

bool cpu_has_avx2_fma() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#else
  return false;
#endif
}

const KernelTable* choose() {
  // OPTIM_ISA caps the choice (e.g. to compare paths); it can only narrow, never widen.
  const char* cap = std::getenv("OPTIM_ISA");
  if (cap && *cap) {
    const KernelTable* t = kernels_for(cap);
    if (t) return t;
  }
  if (const KernelTable* t = kernels_for("avx512")) return t;
  if (const KernelTable* t = kernels_for("avx2")) return t;
  return table_baseline();
}

}  // namespace

const KernelTable* kernels_for(const char* isa) {
  if (!isa) return nullptr;
  if (std::strcmp(isa, "avx512") == 0) return cpu_has_avx512() ? table_avx512() : nullptr;
  if (std::strcmp(isa, "avx2") == 0) return cpu_has_avx2_fma() ? table_avx2() : nullptr;
  if (std::strcmp(isa, "baseline") == 0 || std::strcmp(isa, table_baseline()->isa) == 0)
    return table_baseline();
  return nullptr;
}

const KernelTable& kernels() {
  static const KernelTable* chosen = choose();
  return *chosen;
}

}  // namespace optim
