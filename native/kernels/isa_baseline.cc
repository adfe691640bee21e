// The baseline kernel set: whatever the build's minimum target has (SSE2 on x86-64, NEON with
// fused multiply-add on arm64). Every CPU the binary loads on runs these.
#include "steps.h"

namespace optim {
namespace isa_baseline {
#if defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
#define OPTIM_FMA 1
#else
#define OPTIM_FMA 0
#endif
#include "steps_impl.inc"
}  // namespace isa_baseline

const KernelTable* table_baseline() {
  using namespace isa_baseline;
  static const KernelTable table = {
#if defined(__aarch64__)
      "neon",
#elif defined(__x86_64__) || defined(__SSE2__)
      "sse2",
#else
      "scalar",
#endif
      OPTIM_FMA != 0,
      {sgd_run<float>, adagrad_run<float>, rmsprop_run<float>, adam_run<float>, nadam_run<float>,
       radam_run<float>, axpy_run<float>, first_nonfinite_run<float>},
      {sgd_run<double>, adagrad_run<double>, rmsprop_run<double>, adam_run<double>,
       nadam_run<double>, radam_run<double>, axpy_run<double>,
       first_nonfinite_run<double>},
  };
  return &table;
}
#undef OPTIM_FMA
}  // namespace optim
