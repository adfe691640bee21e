// Fused optimizer step kernels: plain C++ on raw pointers, no Node-API types.
//
// One call updates one tensor in place in a single pass over p, g and the state buffers.
// Hyperparameters arrive folded into scalars (layouts in src/backend/types.ts, mirrored below);
// float kernels round each scalar to float once, as ATen does for float32 tensors.
#pragma once

#include <cstddef>
#include <cstdint>

namespace optim {

// Scalar slots and flag bits; must match src/backend/types.ts.
namespace sgd {
enum { WD, MOMENTUM, ONE_MINUS_DAMPENING, NEG_LR, SIGN, N_SCALARS };
enum { F_WD = 1, F_MOMENTUM = 2, F_NESTEROV = 4, F_FIRST = 8, F_ALL = 15 };
}  // namespace sgd
namespace adagrad {
enum { WD, NEG_CLR, EPS, SIGN, N_SCALARS };
enum { F_WD = 1, F_ALL = 1 };
}  // namespace adagrad
namespace rmsprop {
enum { WD, ALPHA, ONE_MINUS_ALPHA, EPS, MOMENTUM, NEG_LR, SIGN, N_SCALARS };
enum { F_WD = 1, F_CENTERED = 2, F_MOMENTUM = 4, F_EPS_INSIDE = 8, F_ALL = 15 };
}  // namespace rmsprop
namespace adam {
enum { WD, BETA1, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, NEG_STEP_SIZE, BC2_SQRT, EPS, SIGN,
       DECAY_MUL, N_SCALARS };
enum { F_WD = 1, F_AMSGRAD = 2, F_DECOUPLED = 4, F_ALL = 7 };
}  // namespace adam
namespace nadam {
enum { WD, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, BC2, EPS, COEF_GRAD, COEF_AVG, SIGN,
       DECAY_MUL, N_SCALARS };
enum { F_WD = 1, F_DECOUPLED = 2, F_ALL = 3 };
}  // namespace nadam
namespace radam {
enum { WD, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, BC1, LR, BC2_SQRT, EPS, RECT, SIGN,
       DECAY_MUL, N_SCALARS };
enum { F_WD = 1, F_RECTIFIED = 2, F_DECOUPLED = 4, F_ALL = 7 };
}  // namespace radam

// One tensor's buffers: p, g, then up to three state buffers (kernel-specific order).
template <typename T>
struct TensorRef {
  T* p;
  const T* g;
  T* s[3];
  size_t n;
};

template <typename T>
using StepFn = void (*)(const TensorRef<T>& t, const double* scalars, uint32_t flags);

// `in-place triad` used by the benchmark to measure the memory-bandwidth limit: y = y + a*x.
template <typename T>
using AxpyFn = void (*)(T* y, const T* x, T a, size_t n);

// Index of the first NaN or infinity in x[0, n), or n when every value is finite.
template <typename T>
using FirstNonFiniteFn = size_t (*)(const T* x, size_t n);

template <typename T>
struct KernelSet {
  StepFn<T> sgd, adagrad, rmsprop, adam, nadam, radam;
  AxpyFn<T> axpy;
  FirstNonFiniteFn<T> first_nonfinite;
};

// Flag bits every step kernel accepts (above each kernel's own bits); must match types.ts.
// CHECK_FINITE: before writing anything, scan every gradient of the call; if one holds a NaN or
// an infinity, update nothing and report which tensor. CHECK_ONLY (with CHECK_FINITE): scan, never
// update (a multi-call step checks all its calls before the first writes).
enum : uint32_t { F_CHECK_FINITE = 256, F_CHECK_ONLY = 512 };

struct KernelTable {
  const char* isa;  // "avx512" | "avx2" | "sse2" | "neon" | "scalar"
  bool fma;         // multiply-adds fused as ATen fuses them
  KernelSet<float> f32;
  KernelSet<double> f64;
};

// The widest kernel set this CPU runs, chosen once (cpuid) and immutable afterwards.
const KernelTable& kernels();
// Force a narrower set (for tests and benchmarks): "avx512", "avx2", "baseline". Null if the CPU
// lacks it or the build did not include it.
const KernelTable* kernels_for(const char* isa);

}  // namespace optim
