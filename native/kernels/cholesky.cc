// Cholesky factorisation (potrf, lower) and solves (trsv, trsm, potrs), row-major.
//
// The built-in factorisation is recursive (as LAPACK's potrf2): factor the leading half, solve
// for the panel below it, update the trailing half with one syrk, factor that. Almost every flop
// lands in gemm; only blocks of at most kBase rows run the textbook loops.
//
// OpenBLAS path: a row-major lower triangle is, read column-major, an upper triangle, and
// A = L L^T is then A = U^T U with U = L^T. So LAPACKE_?potrf_work(COL_MAJOR, 'U') factors the
// caller's memory as it is, with no transposed copy (LAPACKE's ROW_MAJOR mode makes one).
#include <cmath>
#include <cstdint>

#include "linalg.h"

#ifdef OPTIM_HAVE_OPENBLAS
#include <cblas.h>
#include <lapacke.h>
#endif

namespace optim {
namespace linalg {
namespace {

constexpr size_t kBase = 32;

using builtin::axpy;
using builtin::dot;
using builtin::gemm;

// Cholesky–Banachiewicz, row by row: L[i][j] = (A[i][j] - L[i,0:j]·L[j,0:j]) / L[j][j].
// Returns the first non-positive pivot (NaN counts), or -1.
template <typename T>
long potrf_base(bool avx2, size_t n, T* a, size_t lda) {
  for (size_t i = 0; i < n; i++) {
    T* ai = a + i * lda;
    for (size_t j = 0; j < i; j++) {
      const T* aj = a + j * lda;
      ai[j] = (ai[j] - dot<T>(avx2, j, ai, aj)) / aj[j];
    }
    const T d = ai[i] - dot<T>(avx2, i, ai, ai);
    if (!(d > T(0))) return long(i);
    ai[i] = std::sqrt(d);
  }
  return -1;
}

// B = B L^{-T}: solves X L^T = B for X (m×n), L n×n lower.
template <typename T>
void trsm_right_lower_trans(bool avx2, size_t m, size_t n, const T* l, size_t ldl, T* b,
                            size_t ldb) {
  if (n <= builtin::kTrsmSmall) {
    builtin::trsm_small<T>(avx2, m, n, l, ldl, b, ldb);
    return;
  }
  const size_t n1 = n / 2, n2 = n - n1;
  trsm_right_lower_trans(avx2, m, n1, l, ldl, b, ldb);
  gemm<T>(avx2, false, true, m, n2, n1, T(-1), b, ldb, l + n1 * ldl, ldl, T(1), b + n1, ldb);
  trsm_right_lower_trans(avx2, m, n2, l + n1 * ldl + n1, ldl, b + n1, ldb);
}

template <typename T>
long potrf_rec(bool avx2, size_t n, T* a, size_t lda) {
  if (n <= kBase) return potrf_base(avx2, n, a, lda);
  const size_t n1 = n / 2, n2 = n - n1;
  const long r = potrf_rec(avx2, n1, a, lda);
  if (r >= 0) return r;
  T* a21 = a + n1 * lda;
  T* a22 = a21 + n1;
  trsm_right_lower_trans(avx2, n2, n1, a, lda, a21, lda);
  builtin::syrk_lower<T>(avx2, false, n2, n1, T(-1), a21, lda, T(1), a22, lda);
  const long r2 = potrf_rec(avx2, n2, a22, lda);
  return r2 >= 0 ? r2 + long(n1) : -1;
}

// Solves L X = B (B n×nrhs) in place.
template <typename T>
void trsm_left_lower(bool avx2, size_t n, size_t nrhs, const T* l, size_t ldl, T* b,
                     size_t ldb) {
  if (n <= kBase) {
    for (size_t i = 0; i < n; i++) {
      T* bi = b + i * ldb;
      for (size_t j = 0; j < i; j++) axpy<T>(avx2, nrhs, -l[i * ldl + j], b + j * ldb, bi);
      const T d = l[i * ldl + i];
      for (size_t c = 0; c < nrhs; c++) bi[c] /= d;
    }
    return;
  }
  const size_t n1 = n / 2, n2 = n - n1;
  trsm_left_lower(avx2, n1, nrhs, l, ldl, b, ldb);
  gemm<T>(avx2, false, false, n2, nrhs, n1, T(-1), l + n1 * ldl, ldl, b, ldb, T(1), b + n1 * ldb,
          ldb);
  trsm_left_lower(avx2, n2, nrhs, l + n1 * ldl + n1, ldl, b + n1 * ldb, ldb);
}

// Solves L^T X = B (B n×nrhs) in place.
template <typename T>
void trsm_left_lower_trans(bool avx2, size_t n, size_t nrhs, const T* l, size_t ldl, T* b,
                           size_t ldb) {
  if (n <= kBase) {
    for (size_t i = n; i-- > 0;) {
      T* bi = b + i * ldb;
      const T d = l[i * ldl + i];
      for (size_t c = 0; c < nrhs; c++) bi[c] /= d;
      for (size_t j = 0; j < i; j++) axpy<T>(avx2, nrhs, -l[i * ldl + j], bi, b + j * ldb);
    }
    return;
  }
  const size_t n1 = n / 2, n2 = n - n1;
  trsm_left_lower_trans(avx2, n2, nrhs, l + n1 * ldl + n1, ldl, b + n1 * ldb, ldb);
  gemm<T>(avx2, true, false, n1, nrhs, n2, T(-1), l + n1 * ldl, ldl, b + n1 * ldb, ldb, T(1), b,
          ldb);
  trsm_left_lower_trans(avx2, n1, nrhs, l, ldl, b, ldb);
}

// L y = b, then L^T x = y, in place. The forward solve reads rows of L (dot products); the
// backward one also reads rows, as updates of the unsolved head (axpy), never a column.
template <typename T>
void trsv_pair(bool avx2, size_t n, const T* l, T* b) {
  for (size_t i = 0; i < n; i++) b[i] = (b[i] - dot<T>(avx2, i, l + i * n, b)) / l[i * n + i];
  for (size_t i = n; i-- > 0;) {
    b[i] /= l[i * n + i];
    axpy<T>(avx2, i, -b[i], l + i * n, b);
  }
}

template <typename T>
void zero_upper(size_t n, T* a) {
  for (size_t i = 0; i + 1 < n; i++) {
    T* row = a + i * n;
    for (size_t j = i + 1; j < n; j++) row[j] = T(0);
  }
}

#ifdef OPTIM_HAVE_OPENBLAS
lapack_int blas_potrf(int n, float* a) {
  return LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'U', n, a, n);
}
lapack_int blas_potrf(int n, double* a) {
  return LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', n, a, n);
}

void blas_trsv(bool trans, int n, const float* l, float* b) {
  cblas_strsv(CblasRowMajor, CblasLower, trans ? CblasTrans : CblasNoTrans, CblasNonUnit, n, l, n,
              b, 1);
}
void blas_trsv(bool trans, int n, const double* l, double* b) {
  cblas_dtrsv(CblasRowMajor, CblasLower, trans ? CblasTrans : CblasNoTrans, CblasNonUnit, n, l, n,
              b, 1);
}
void blas_trsm(bool trans, int n, int nrhs, const float* l, float* b) {
  cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, trans ? CblasTrans : CblasNoTrans,
              CblasNonUnit, n, nrhs, 1.0f, l, n, b, nrhs);
}
void blas_trsm(bool trans, int n, int nrhs, const double* l, double* b) {
  cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, trans ? CblasTrans : CblasNoTrans,
              CblasNonUnit, n, nrhs, 1.0, l, n, b, nrhs);
}
#endif

}  // namespace

template <typename T>
long potrf(const Ctx& ctx, size_t n, T* a) {
  if (n == 0) return -1;
  long r = -1;
#ifdef OPTIM_HAVE_OPENBLAS
  if (ctx.openblas && n <= INT32_MAX) {
    const auto held = blas_threads_for(BlasOp::Potrf, double(n));
    const lapack_int info = blas_potrf(int(n), a);
    // info < 0 (an illegal argument) cannot happen for n >= 1, lda = n.
    r = info > 0 ? long(info) - 1 : -1;
  } else {
    r = potrf_rec(ctx.avx2, n, a, n);
  }
#else
  r = potrf_rec(ctx.avx2, n, a, n);
#endif
  if (r < 0) zero_upper(n, a);
  return r;
}

template <typename T>
void potrs(const Ctx& ctx, size_t n, size_t nrhs, const T* l, T* b) {
  if (n == 0 || nrhs == 0) return;
#ifdef OPTIM_HAVE_OPENBLAS
  if (ctx.openblas && n <= INT32_MAX && nrhs <= INT32_MAX) {
    if (nrhs == 1) {
      const auto held = blas_threads_for(BlasOp::Trsv, double(n));
      blas_trsv(false, int(n), l, b);
      blas_trsv(true, int(n), l, b);
    } else {
      const auto held = blas_threads_for(BlasOp::Trsm, double(n) * double(n) * double(nrhs));
      blas_trsm(false, int(n), int(nrhs), l, b);
      blas_trsm(true, int(n), int(nrhs), l, b);
    }
    return;
  }
#endif
  if (nrhs == 1) {
    trsv_pair(ctx.avx2, n, l, b);
  } else {
    trsm_left_lower(ctx.avx2, n, nrhs, l, n, b, nrhs);
    trsm_left_lower_trans(ctx.avx2, n, nrhs, l, n, b, nrhs);
  }
}

template long potrf<float>(const Ctx&, size_t, float*);
template long potrf<double>(const Ctx&, size_t, double*);
template void potrs<float>(const Ctx&, size_t, size_t, const float*, float*);
template void potrs<double>(const Ctx&, size_t, size_t, const double*, double*);

}  // namespace linalg
}  // namespace optim
