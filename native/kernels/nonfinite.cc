// Scans for NaN and ±Inf, which the factorisations refuse up front: LAPACK would report a NaN as
// a failed pivot, or loop on it in an eigensolver, and either message would mislead.
//
// A value is non-finite iff all its exponent bits are set. Testing the bits as integers and
// OR-ing the results vectorizes (a floating-point test would be a reduction GCC must not
// reorder), so a row costs a fraction of a nanosecond per element; only a row that has a
// non-finite value is walked again to find it.
#include <cstdint>
#include <cstring>

#include "linalg.h"

namespace optim {
namespace linalg {
namespace {

template <typename T>
struct Bits;
template <>
struct Bits<float> {
  using U = uint32_t;
  static constexpr U kExp = 0x7f800000u;
};
template <>
struct Bits<double> {
  using U = uint64_t;
  static constexpr U kExp = 0x7ff0000000000000ull;
};

template <typename T>
bool nonfinite(T x) {
  typename Bits<T>::U u;
  std::memcpy(&u, &x, sizeof u);
  return (~u & Bits<T>::kExp) == 0;
}

template <typename T>
long first_nonfinite(size_t len, const T* a) {
  unsigned bad = 0;
  for (size_t i = 0; i < len; i++) bad |= nonfinite(a[i]) ? 1u : 0u;
  if (!bad) return -1;
  for (size_t i = 0; i < len; i++) {
    if (nonfinite(a[i])) return long(i);
  }
  return -1;
}

}  // namespace

template <typename T>
long find_nonfinite_lower(size_t n, const T* a, size_t lda) {
  for (size_t i = 0; i < n; i++) {
    const long j = first_nonfinite(i + 1, a + i * lda);
    if (j >= 0) return long(i * lda) + j;
  }
  return -1;
}

template <typename T>
long find_nonfinite(size_t len, const T* a) {
  return first_nonfinite(len, a);
}

template long find_nonfinite_lower<float>(size_t, const float*, size_t);
template long find_nonfinite_lower<double>(size_t, const double*, size_t);
template long find_nonfinite<float>(size_t, const float*);
template long find_nonfinite<double>(size_t, const double*);

}  // namespace linalg
}  // namespace optim
