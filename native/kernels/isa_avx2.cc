// The avx2 kernel set, compiled for "avx2,fma" by a target region (not a whole-file -m flag),
// so nothing outside these functions uses the wider instructions. Chosen at run time only on a
// CPU (and OS) that supports them.
#include "steps.h"

#if defined(__x86_64__) || defined(__i386__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace optim {
namespace isa_avx2 {
#define OPTIM_FMA 1
#include "steps_impl.inc"
#undef OPTIM_FMA
}  // namespace isa_avx2
}  // namespace optim
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace optim {
const KernelTable* table_avx2() {
  using namespace isa_avx2;
  static const KernelTable table = {
      "avx2",
      true,
      {sgd_run<float>, adagrad_run<float>, rmsprop_run<float>, adam_run<float>, nadam_run<float>,
       radam_run<float>, axpy_run<float>, first_nonfinite_run<float>},
      {sgd_run<double>, adagrad_run<double>, rmsprop_run<double>, adam_run<double>,
       nadam_run<double>, radam_run<double>, axpy_run<double>,
       first_nonfinite_run<double>},
  };
  return &table;
}
}  // namespace optim
#else
namespace optim {
const KernelTable* table_avx2() { return nullptr; }
}  // namespace optim
#endif
