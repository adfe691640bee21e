// gemm: the built-in blocked kernels (baseline and AVX2+FMA, chosen per call) and the routing to
// OpenBLAS's cblas_?gemm when the build has it.
#include <cstdint>
#include <memory>

#include "linalg.h"
#include "kernel_abi.h"
#include "pool.h"

#ifdef OPTIM_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace optim {
namespace linalg {
namespace isa_baseline {
#if defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
#define OPTIM_FMA 1
#else
#define OPTIM_FMA 0
#endif
#define OPTIM_VEC_BYTES 16
#include "gemm_impl.inc"
#undef OPTIM_VEC_BYTES
#undef OPTIM_FMA
}  // namespace isa_baseline
}  // namespace linalg
}  // namespace optim

#if defined(__x86_64__) || defined(__i386__)
#define OPTIM_LINALG_AVX2 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace optim {
namespace linalg {
namespace isa_avx2 {
#define OPTIM_FMA 1
#define OPTIM_VEC_BYTES 32
#include "gemm_impl.inc"
#undef OPTIM_VEC_BYTES
#undef OPTIM_FMA
}  // namespace isa_avx2
}  // namespace linalg
}  // namespace optim
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
#define OPTIM_LINALG_AVX2 0
#endif

namespace optim {
namespace linalg {

bool have_openblas() {
#ifdef OPTIM_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

bool cpu_has_avx2() {
  static const bool has = OPTIM_LINALG_AVX2 && kernels_for("avx2") != nullptr;
  return has;
}

namespace builtin {

namespace {

// One thread's gemm: the blocked kernels of one instruction set.
template <typename T>
void gemm_one(bool avx2, bool ta, bool tb, size_t m, size_t n, size_t k, T alpha, const T* a,
              size_t lda, const T* b, size_t ldb, T beta, T* c, size_t ldc) {
  // Packing buffers are left uninitialised: the recursive factorisations call gemm hundreds of
  // times, and zeroing a megabyte per call cost more than the arithmetic of the small calls.
#if OPTIM_LINALG_AVX2
  if (avx2 && cpu_has_avx2()) {
    std::unique_ptr<T[]> work(new T[isa_avx2::gemm_work_size<T>(m, n, k)]);
    isa_avx2::gemm_run<T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work.get());
    return;
  }
#endif
  std::unique_ptr<T[]> work(new T[isa_baseline::gemm_work_size<T>(m, n, k)]);
  isa_baseline::gemm_run<T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work.get());
}

// A gemm large enough is split across the step kernels' pool (pool.h) by rows of C: each part
// computes its rows with the same k-blocking and the same register tiles (rows past a part's end
// are zero padding, as at the end of C), so every element gets the same bits whatever the thread
// count. Each part packs op(B) itself: k·n more work per extra thread, small beside m·n·k/threads.
// Below ~2 Mflop a part is too short to pay for waking a worker.
constexpr double kMinSplitFlops = 2.0 * 128 * 128 * 64;

template <typename T>
struct RowSplit {
  bool avx2, ta, tb;
  size_t m, n, k;
  T alpha;
  const T* a;
  size_t lda;
  const T* b;
  size_t ldb;
  T beta;
  T* c;
  size_t ldc;
  int parts;

  size_t row(int part) const { return part >= parts ? m : (m * size_t(part) / size_t(parts)) & ~size_t(3); }

  static void run(void* ctx, int part) {
    const RowSplit& s = *static_cast<const RowSplit*>(ctx);
    const size_t r0 = s.row(part), r1 = s.row(part + 1);
    if (r1 <= r0) return;
    const T* a0 = s.ta ? s.a + r0 : s.a + r0 * s.lda;
    gemm_one<T>(s.avx2, s.ta, s.tb, r1 - r0, s.n, s.k, s.alpha, a0, s.lda, s.b, s.ldb, s.beta,
                s.c + r0 * s.ldc, s.ldc);
  }
};

}  // namespace

template <typename T>
void gemm(bool avx2, bool ta, bool tb, size_t m, size_t n, size_t k, T alpha, const T* a,
          size_t lda, const T* b, size_t ldb, T beta, T* c, size_t ldc) {
  const int threads = pool_threads();
  if (threads > 1 && m >= 16 && 2.0 * double(m) * double(n) * double(k) >= kMinSplitFlops) {
    const size_t by_rows = m / 8;
    const int parts = by_rows < size_t(threads) ? int(by_rows) : threads;
    RowSplit<T> split{avx2, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, parts};
    pool_run(parts, &RowSplit<T>::run, &split);
    return;
  }
  gemm_one<T>(avx2, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename T>
T dot(bool avx2, size_t n, const T* x, const T* y) {
#if OPTIM_LINALG_AVX2
  if (avx2 && cpu_has_avx2()) return isa_avx2::dot_run<T>(n, x, y);
#endif
  return isa_baseline::dot_run<T>(n, x, y);
}

template <typename T>
void axpy(bool avx2, size_t n, T alpha, const T* x, T* y) {
#if OPTIM_LINALG_AVX2
  if (avx2 && cpu_has_avx2()) return isa_avx2::axpy_run<T>(n, alpha, x, y);
#endif
  isa_baseline::axpy_run<T>(n, alpha, x, y);
}

template <typename T>
void trsm_small(bool avx2, size_t m, size_t n, const T* l, size_t ldl, T* b, size_t ldb) {
  T lt[kTrsmSmall * kTrsmSmall];
  if (n > kTrsmSmall) n = kTrsmSmall;  // callers split wider blocks; this keeps lt in bounds
#if OPTIM_LINALG_AVX2
  if (avx2 && cpu_has_avx2()) return isa_avx2::trsm_small_run<T>(m, n, l, ldl, b, ldb, lt);
#endif
  isa_baseline::trsm_small_run<T>(m, n, l, ldl, b, ldb, lt);
}

template void gemm<float>(bool, bool, bool, size_t, size_t, size_t, float, const float*, size_t,
                          const float*, size_t, float, float*, size_t);
template void gemm<double>(bool, bool, bool, size_t, size_t, size_t, double, const double*,
                           size_t, const double*, size_t, double, double*, size_t);
template float dot<float>(bool, size_t, const float*, const float*);
template double dot<double>(bool, size_t, const double*, const double*);
template void axpy<float>(bool, size_t, float, const float*, float*);
template void axpy<double>(bool, size_t, double, const double*, double*);
template void trsm_small<float>(bool, size_t, size_t, const float*, size_t, float*, size_t);
template void trsm_small<double>(bool, size_t, size_t, const double*, size_t, double*, size_t);

}  // namespace builtin

#ifdef OPTIM_HAVE_OPENBLAS
namespace {
// cblas takes int dimensions; larger ones (possible only with a dimension of 1 or so, given
// typed-array lengths) go to the built-in kernels.
bool fits_int(size_t v) { return v <= static_cast<size_t>(INT32_MAX); }

void blas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
               const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void blas_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda,
               const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}
}  // namespace
#endif

template <typename T>
void gemm(const Ctx& ctx, bool ta, bool tb, size_t m, size_t n, size_t k, T alpha, const T* a,
          size_t lda, const T* b, size_t ldb, T beta, T* c, size_t ldc) {
  if (m == 0 || n == 0) return;
#ifdef OPTIM_HAVE_OPENBLAS
  // cblas requires leading dimensions >= 1 even for empty operands.
  const size_t lda1 = lda ? lda : 1, ldb1 = ldb ? ldb : 1;
  if (ctx.openblas && fits_int(m) && fits_int(n) && fits_int(k) && fits_int(lda1) &&
      fits_int(ldb1) && fits_int(ldc)) {
    const auto held = blas_threads_for(BlasOp::Gemm, double(m) * double(n) * double(k));
    blas_gemm(ta, tb, int(m), int(n), int(k), alpha, a, int(lda1), b, int(ldb1), beta, c,
              int(ldc));
    return;
  }
#endif
  builtin::gemm<T>(ctx.avx2, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template void gemm<float>(const Ctx&, bool, bool, size_t, size_t, size_t, float, const float*,
                          size_t, const float*, size_t, float, float*, size_t);
template void gemm<double>(const Ctx&, bool, bool, size_t, size_t, size_t, double, const double*,
                           size_t, const double*, size_t, double, double*, size_t);

}  // namespace linalg
}  // namespace optim
