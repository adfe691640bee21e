// Symmetric eigendecomposition (syevd), row-major.
//
// Built-in: Householder reduction to tridiagonal form, then the implicit QL iteration with
// Wilkinson-type shifts, accumulating the rotations into the Householder basis. Both steps are
// orthogonal transformations, so eigenvalues come out with an error of a few ulps of ||A||, and
// eigenvectors orthonormal to rounding (backward stable, as LAPACK's). It runs in double; float
// input is widened once and the results rounded once.
//
// Layout: the working eigenvector matrix is kept transposed (one eigenvector per row), so the
// plane rotations of the QL sweeps and the Householder updates all walk contiguous rows, which
// vectorize; the result is transposed once at the end.
//
// OpenBLAS path: LAPACKE_?syevd_work in column-major mode reads the row-major lower triangle as
// an upper one ('U') and returns eigenvectors in columns of a column-major matrix, i.e. in rows
// of ours: the same transposed form as the built-in path, finished the same way.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <new>
#include <numeric>

#include "linalg.h"

#ifdef OPTIM_HAVE_OPENBLAS
#include <lapacke.h>
#endif

namespace optim {
namespace linalg {
namespace {

using builtin::axpy;

// Reduces the symmetric n×n matrix z (both triangles) to tridiagonal form T = Q^T A Q:
// d = diag(T), e[i] = T[i][i+1] (e[n-1] = 0). Reflector k is I - tau[k] v v^T with v[k+1] = 1
// and v[k+2:] stored in z[k][k+2:]; Q = H_0 H_1 ... H_{n-3}.
void tridiagonalize(bool avx2, size_t n, double* z, double* d, double* e, double* tau,
                    double* work) {
  for (size_t k = 0; k + 2 < n; k++) {
    double* zk = z + k * n;
    const size_t m = n - k - 1;  // order of the trailing block
    double* x = zk + k + 1;      // row k right of the diagonal = column k below it
    double big = 0;
    for (size_t i = 1; i < m; i++) big = std::max(big, std::fabs(x[i]));
    double tail = 0;  // ||x[1:]||, scaled so the squares neither overflow nor underflow
    if (big > 0) {
      for (size_t i = 1; i < m; i++) tail += (x[i] / big) * (x[i] / big);
      tail = big * std::sqrt(tail);
    }
    if (tail == 0) {
      tau[k] = 0;
      e[k] = x[0];
      continue;
    }
    const double beta = -std::copysign(std::hypot(x[0], tail), x[0]);
    tau[k] = (beta - x[0]) / beta;
    const double scale = 1 / (x[0] - beta);
    for (size_t i = 1; i < m; i++) x[i] *= scale;
    x[0] = 1;
    e[k] = beta;
    const double* v = x;
    // p = tau * A22 v, summed over rows (A22 is symmetric and stored in full).
    double* p = work;
    for (size_t j = 0; j < m; j++) p[j] = 0;
    double* a22 = z + (k + 1) * n + k + 1;
    for (size_t i = 0; i < m; i++) axpy<double>(avx2, m, tau[k] * v[i], a22 + i * n, p);
    // w = p - (tau/2)(p·v) v; A22 -= v w^T + w v^T.
    double pv = 0;
    for (size_t i = 0; i < m; i++) pv += p[i] * v[i];
    axpy<double>(avx2, m, -0.5 * tau[k] * pv, v, p);
    for (size_t i = 0; i < m; i++) {
      double* row = a22 + i * n;
      axpy<double>(avx2, m, -v[i], p, row);
      axpy<double>(avx2, m, -p[i], v, row);
    }
  }
  for (size_t i = 0; i < n; i++) d[i] = z[i * n + i];
  if (n >= 2) e[n - 2] = z[(n - 2) * n + n - 1];
  e[n - 1] = 0;
}

// q = Q = H_0 ... H_{n-3}, accumulated backwards so each reflector meets the identity outside
// the block it acts on.
void form_q(bool avx2, size_t n, const double* z, const double* tau, double* q, double* work) {
  for (size_t i = 0; i < n * n; i++) q[i] = 0;
  for (size_t i = 0; i < n; i++) q[i * n + i] = 1;
  if (n < 3) return;
  for (size_t k = n - 2; k-- > 0;) {
    if (tau[k] == 0) continue;
    const size_t m = n - k - 1;
    const double* v = z + k * n + k + 1;  // v[0] = 1 stored there by tridiagonalize
    double* qs = q + (k + 1) * n + k + 1;
    double* w = work;  // w = v^T Q_sub
    for (size_t j = 0; j < m; j++) w[j] = 0;
    for (size_t i = 0; i < m; i++) axpy<double>(avx2, m, v[i], qs + i * n, w);
    for (size_t i = 0; i < m; i++) axpy<double>(avx2, m, -tau[k] * v[i], w, qs + i * n);
  }
}

void transpose_into(size_t n, const double* src, double* dst) {
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < n; j++) dst[j * n + i] = src[i * n + j];
  }
}

// Implicit QL on the tridiagonal (d, e); rows i, i+1 of zt rotate with each plane rotation.
bool tridiagonal_ql(size_t n, double* d, double* e, double* zt) {
  constexpr int kMaxSweeps = 60;
  for (size_t l = 0; l < n; l++) {
    int sweeps = 0;
    for (;;) {
      // The first negligible off-diagonal at or after l splits the problem.
      size_t m = l;
      for (; m + 1 < n; m++) {
        const double dd = std::fabs(d[m]) + std::fabs(d[m + 1]);
        if (std::fabs(e[m]) + dd == dd) break;
      }
      if (m == l) break;
      if (++sweeps > kMaxSweeps) return false;
      // Shift: the eigenvalue of the leading 2×2 block closer to d[l].
      double g = (d[l + 1] - d[l]) / (2 * e[l]);
      double r = std::hypot(g, 1.0);
      g = d[m] - d[l] + e[l] / (g + std::copysign(r, g));
      double s = 1, c = 1, p = 0;
      bool split = false;
      for (size_t i = m; i-- > l;) {
        const double f = s * e[i], b = c * e[i];
        r = std::hypot(f, g);
        e[i + 1] = r;
        if (r == 0) {
          // Underflow: e[i+1] is zero, the block splits; restart on the smaller problem.
          d[i + 1] -= p;
          e[m] = 0;
          split = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        double* zi = zt + i * n;
        double* zi1 = zi + n;
        for (size_t k = 0; k < n; k++) {
          const double t = zi1[k];
          zi1[k] = s * zi[k] + c * t;
          zi[k] = c * zi[k] - s * t;
        }
      }
      if (split) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return true;
}

// Eigenvectors in the rows of zt (values d, any order) to the output: ascending values,
// eigenvectors in columns, signs normalised.
template <typename T>
bool finish(size_t n, const double* d, const double* zt, T* values, T* vectors) {
  std::unique_ptr<size_t[]> order(new (std::nothrow) size_t[n ? n : 1]);
  if (!order) return false;
  std::iota(order.get(), order.get() + n, size_t(0));
  std::stable_sort(order.get(), order.get() + n, [d](size_t a, size_t b) { return d[a] < d[b]; });
  for (size_t j = 0; j < n; j++) {
    const double* v = zt + order[j] * n;
    size_t big = 0;
    for (size_t i = 1; i < n; i++) {
      if (std::fabs(v[i]) > std::fabs(v[big])) big = i;
    }
    const double sign = v[big] < 0 ? -1.0 : 1.0;
    values[j] = T(d[order[j]]);
    for (size_t i = 0; i < n; i++) vectors[i * n + j] = T(sign * v[i]);
  }
  return true;
}

// The build has no C++ exceptions (node-gyp's default), so a failed allocation must be seen,
// not thrown: workspace comes from nothrow new.
template <typename U>
std::unique_ptr<U[]> scratch(size_t count) {
  return std::unique_ptr<U[]>(new (std::nothrow) U[count ? count : 1]);
}

template <typename T>
EighStatus syevd_builtin(bool avx2, size_t n, const T* a, T* values, T* vectors) {
  auto z = scratch<double>(n * n), q = scratch<double>(n * n), v = scratch<double>(4 * n);
  if (!z || !q || !v) return EighStatus::OutOfMemory;
  double *d = v.get(), *e = d + n, *tau = e + n, *work = tau + n;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j <= i; j++) z[i * n + j] = z[j * n + i] = double(a[i * n + j]);
  }
  tridiagonalize(avx2, n, z.get(), d, e, tau, work);
  form_q(avx2, n, z.get(), tau, q.get(), work);
  transpose_into(n, q.get(), z.get());
  if (!tridiagonal_ql(n, d, e, z.get())) return EighStatus::NoConvergence;
  return finish(n, d, z.get(), values, vectors) ? EighStatus::Ok : EighStatus::OutOfMemory;
}

#ifdef OPTIM_HAVE_OPENBLAS
lapack_int blas_syevd(int n, float* a, float* w, float* work, lapack_int lwork, lapack_int* iwork,
                      lapack_int liwork) {
  return LAPACKE_ssyevd_work(LAPACK_COL_MAJOR, 'V', 'U', n, a, n, w, work, lwork, iwork, liwork);
}
lapack_int blas_syevd(int n, double* a, double* w, double* work, lapack_int lwork,
                      lapack_int* iwork, lapack_int liwork) {
  return LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'U', n, a, n, w, work, lwork, iwork, liwork);
}

template <typename T>
EighStatus syevd_blas(size_t n, const T* a, T* values, T* vectors) {
  for (size_t i = 0; i < n * n; i++) vectors[i] = a[i];
  T lwork_q = 0;
  lapack_int liwork_q = 0;
  if (blas_syevd(int(n), vectors, values, &lwork_q, -1, &liwork_q, -1) != 0) {
    return EighStatus::NoConvergence;
  }
  const size_t lwork = size_t(lwork_q) + 1, liwork = size_t(liwork_q) + 1;
  auto work = scratch<T>(lwork);
  auto iwork = scratch<lapack_int>(liwork);
  if (!work || !iwork) return EighStatus::OutOfMemory;
  const auto held = blas_threads_for(BlasOp::Syevd, double(n));
  if (blas_syevd(int(n), vectors, values, work.get(), lapack_int(lwork), iwork.get(),
                 lapack_int(liwork)) != 0) {
    return EighStatus::NoConvergence;
  }
  // Rows of `vectors` are eigenvectors (ascending already): normalise signs, then transpose.
  for (size_t j = 0; j < n; j++) {
    T* v = vectors + j * n;
    size_t big = 0;
    for (size_t i = 1; i < n; i++) {
      if (std::fabs(v[i]) > std::fabs(v[big])) big = i;
    }
    if (v[big] < 0) {
      for (size_t i = 0; i < n; i++) v[i] = -v[i];
    }
  }
  for (size_t i = 0; i < n; i++) {
    for (size_t j = i + 1; j < n; j++) std::swap(vectors[i * n + j], vectors[j * n + i]);
  }
  return EighStatus::Ok;
}
#endif

}  // namespace

template <typename T>
EighStatus syevd(const Ctx& ctx, size_t n, const T* a, T* values, T* vectors) {
  if (n == 0) return EighStatus::Ok;
#ifdef OPTIM_HAVE_OPENBLAS
  if (ctx.openblas && n <= INT32_MAX) return syevd_blas(n, a, values, vectors);
#endif
  return syevd_builtin(ctx.avx2, n, a, values, vectors);
}

template EighStatus syevd<float>(const Ctx&, size_t, const float*, float*, float*);
template EighStatus syevd<double>(const Ctx&, size_t, const double*, double*, double*);

}  // namespace linalg
}  // namespace optim
