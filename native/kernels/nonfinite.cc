// The linear algebra's scan for NaN and ±Inf, which the factorisations refuse up front: LAPACK
// would report a NaN as a failed pivot, or loop on it in an eigensolver, and either message would
// mislead. It is the step kernels' scan (isa_table.inc's first_nonfinite, compiled per ISA: an
// integer test of the exponent bits, OR-reduced over blocks), from the widest table this CPU runs.
#include "kernel_abi.h"
#include "linalg.h"

namespace optim {
namespace linalg {
namespace {

template <typename T>
FirstNonFiniteFn<T> scan();
template <>
FirstNonFiniteFn<float> scan<float>() {
  return kernels().f32.first_nonfinite;
}
template <>
FirstNonFiniteFn<double> scan<double>() {
  return kernels().f64.first_nonfinite;
}

}  // namespace

template <typename T>
long find_nonfinite(size_t len, const T* a) {
  const size_t i = scan<T>()(a, len);
  return i < len ? long(i) : -1;
}

template <typename T>
long find_nonfinite_lower(size_t n, const T* a, size_t lda) {
  for (size_t i = 0; i < n; i++) {
    const long j = find_nonfinite(i + 1, a + i * lda);
    if (j >= 0) return long(i * lda) + j;
  }
  return -1;
}

template long find_nonfinite_lower<float>(size_t, const float*, size_t);
template long find_nonfinite_lower<double>(size_t, const double*, size_t);
template long find_nonfinite<float>(size_t, const float*);
template long find_nonfinite<double>(size_t, const double*);

}  // namespace linalg
}  // namespace optim
