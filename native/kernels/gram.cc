// gram (op(A) op(A)^T, BLAS syrk) and the built-in lower syrk that Cholesky's updates use.
#include <cstdint>

#include "linalg.h"

#ifdef OPTIM_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace optim {
namespace linalg {

namespace builtin {

// Splits the rows of op(A) in two until the diagonal blocks are small: the off-diagonal block
// is one gemm, so only the small diagonal blocks are computed in full (half the flops of gemm).
template <typename T>
void syrk_lower(bool avx2, bool trans, size_t n, size_t k, T alpha, const T* a, size_t lda,
                T beta, T* c, size_t ldc) {
  constexpr size_t kBase = 64;
  if (n <= kBase) {
    gemm<T>(avx2, trans, !trans, n, n, k, alpha, a, lda, a, lda, beta, c, ldc);
    return;
  }
  const size_t n1 = n / 2, n2 = n - n1;
  const T* a2 = trans ? a + n1 : a + n1 * lda;
  syrk_lower<T>(avx2, trans, n1, k, alpha, a, lda, beta, c, ldc);
  gemm<T>(avx2, trans, !trans, n2, n1, k, alpha, a2, lda, a, lda, beta, c + n1 * ldc, ldc);
  syrk_lower<T>(avx2, trans, n2, k, alpha, a2, lda, beta, c + n1 * ldc + n1, ldc);
}

template void syrk_lower<float>(bool, bool, size_t, size_t, float, const float*, size_t, float,
                                float*, size_t);
template void syrk_lower<double>(bool, bool, size_t, size_t, double, const double*, size_t,
                                 double, double*, size_t);

}  // namespace builtin

namespace {

// Upper triangle = lower, in 32×32 tiles so the column walk stays in cache.
template <typename T>
void mirror_lower(size_t n, T* c) {
  constexpr size_t kTile = 32;
  for (size_t i0 = 0; i0 < n; i0 += kTile) {
    for (size_t j0 = 0; j0 <= i0; j0 += kTile) {
      const size_t i1 = i0 + kTile < n ? i0 + kTile : n;
      for (size_t i = i0; i < i1; i++) {
        const size_t j1 = j0 + kTile < i ? j0 + kTile : i;
        for (size_t j = j0; j < j1; j++) c[j * n + i] = c[i * n + j];
      }
    }
  }
}

#ifdef OPTIM_HAVE_OPENBLAS
void blas_syrk(bool trans, int n, int k, const float* a, int lda, float* c) {
  cblas_ssyrk(CblasRowMajor, CblasLower, trans ? CblasTrans : CblasNoTrans, n, k, 1.0f, a, lda,
              0.0f, c, n);
}
void blas_syrk(bool trans, int n, int k, const double* a, int lda, double* c) {
  cblas_dsyrk(CblasRowMajor, CblasLower, trans ? CblasTrans : CblasNoTrans, n, k, 1.0, a, lda,
              0.0, c, n);
}
#endif

}  // namespace

template <typename T>
void gram(const Ctx& ctx, bool trans, size_t rows, size_t cols, const T* a, T* c) {
  const size_t n = trans ? cols : rows, k = trans ? rows : cols;
  if (n == 0) return;
#ifdef OPTIM_HAVE_OPENBLAS
  const size_t lda = cols ? cols : 1;
  if (ctx.openblas && n <= INT32_MAX && k <= INT32_MAX && lda <= INT32_MAX) {
    const auto held = blas_threads_for(BlasOp::Gemm, 0.5 * double(n) * double(n) * double(k));
    blas_syrk(trans, int(n), int(k), a, int(lda), c);
    mirror_lower(n, c);
    return;
  }
#endif
  builtin::syrk_lower<T>(ctx.avx2, trans, n, k, T(1), a, cols, T(0), c, n);
  mirror_lower(n, c);
}

template void gram<float>(const Ctx&, bool, size_t, size_t, const float*, float*);
template void gram<double>(const Ctx&, bool, size_t, size_t, const double*, double*);

}  // namespace linalg
}  // namespace optim
