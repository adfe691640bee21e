// Dense linear algebra kernels: plain C++ on raw pointers, no Node-API types.
//
// Every matrix is row-major with a leading dimension (elements between the starts of two rows).
// Each call takes a Ctx saying which implementation runs it: OpenBLAS/LAPACKE (only in builds
// that define OPTIM_HAVE_OPENBLAS) or the built-in kernels, and for the built-in kernels whether
// to use the AVX2+FMA micro-kernels. The built-in kernels are always compiled, so both paths can
// be tested in one build.
#pragma once

#include <mutex>

#include <cstddef>

namespace optim {
namespace linalg {

struct Ctx {
  bool openblas;  // ignored (treated as false) when the build has no OpenBLAS
  bool avx2;      // built-in kernels: AVX2+FMA micro-kernels; ignored if the CPU lacks them
};

// Whether this build links OpenBLAS and LAPACKE.
bool have_openblas();
// Whether the CPU (and OS) run the AVX2+FMA built-in kernels.
bool cpu_has_avx2();
// Threads OpenBLAS may use at most (its setting when first asked: OPENBLAS_NUM_THREADS or cores).
int blas_max_threads();

// C = alpha * op(A) * op(B) + beta * C, with op(A) m×k and op(B) k×n. As in BLAS, A and B are
// not read when alpha == 0 or k == 0, and C is not read when beta == 0.
template <typename T>
void gemm(const Ctx& ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, T alpha,
          const T* a, size_t lda, const T* b, size_t ldb, T beta, T* c, size_t ldc);

// C = op(A) * op(A)^T, n×n and full (both triangles), with op(A) = A (rows×cols, n = rows) or,
// when trans, A^T (n = cols).
template <typename T>
void gram(const Ctx& ctx, bool trans, size_t rows, size_t cols, const T* a, T* c);

// Factors the n×n symmetric positive definite matrix whose lower triangle is in `a` (row-major,
// leading dimension n) in place: on success `a` holds the lower factor L (A = L L^T) with its
// strictly upper triangle zeroed, and the result is -1. Otherwise the result is the 0-based index
// of the first pivot that was not positive (leading minor of order pivot+1 not positive definite)
// and `a` holds a partial factorisation. The upper triangle is never read.
template <typename T>
long potrf(const Ctx& ctx, size_t n, T* a);

// Solves (L L^T) X = B in place: B is n×nrhs (row-major, leading dimension nrhs), L the lower
// factor from potrf. One right-hand side takes two triangular solves (trsv), several take trsm.
template <typename T>
void potrs(const Ctx& ctx, size_t n, size_t nrhs, const T* l, T* b);

enum class EighStatus { Ok, NoConvergence, OutOfMemory };

// Symmetric eigendecomposition of the matrix whose lower triangle is in `a` (n×n, not modified):
// `values` ascending, `vectors` n×n row-major with eigenvector j in column j, each scaled to unit
// length with its largest-magnitude component positive (the first such, on ties). On failure
// (no convergence, or no memory for the 2n² doubles of workspace) the outputs are unspecified.
template <typename T>
EighStatus syevd(const Ctx& ctx, size_t n, const T* a, T* values, T* vectors);

// The first non-finite element of an n×n matrix's lower triangle (row-major, leading dimension
// lda), as a row-major index i*lda + j, or -1 if every element is finite.
template <typename T>
long find_nonfinite_lower(size_t n, const T* a, size_t lda);
// The first non-finite element of a contiguous array, or -1.
template <typename T>
long find_nonfinite(size_t len, const T* a);

namespace builtin {
// The built-in gemm (ISA chosen by `avx2`); the built-in potrf, potrs and gram build on it.
template <typename T>
void gemm(bool avx2, bool trans_a, bool trans_b, size_t m, size_t n, size_t k, T alpha,
          const T* a, size_t lda, const T* b, size_t ldb, T beta, T* c, size_t ldc);
// The lower triangle of C = alpha * op(A) op(A)^T + beta * C, op(A) n×k; entries of C above the
// diagonal may be overwritten (with values of no meaning) but never influence the lower ones.
template <typename T>
void syrk_lower(bool avx2, bool trans, size_t n, size_t k, T alpha, const T* a, size_t lda,
                T beta, T* c, size_t ldc);
// x·y, summed in four vectors of interleaved partial sums (so it vectorizes without a
// reassociated loop; the order differs from a sequential sum).
template <typename T>
T dot(bool avx2, size_t n, const T* x, const T* y);
// y += alpha * x.
template <typename T>
void axpy(bool avx2, size_t n, T alpha, const T* x, T* y);
// B = B·L^{-T} in place (solves X·Lᵀ = B): B m×n, L n×n lower, n <= kTrsmSmall.
constexpr size_t kTrsmSmall = 32;
template <typename T>
void trsm_small(bool avx2, size_t m, size_t n, const T* l, size_t ldl, T* b, size_t ldb);
}  // namespace builtin

// OpenBLAS: sets the thread count a call of the given kind and size should use (see threads.cc
// for the measured thresholds) and holds the process-wide BLAS lock until the returned guard goes
// out of scope, so the count cannot change under a running call (results of potrf differ in the
// last bits between thread counts) and no two threads are inside OpenBLAS at once. Keep the guard
// alive across the BLAS calls it covers. No lock and no-op without OpenBLAS.
enum class BlasOp { Gemm, Potrf, Trsv, Trsm, Syevd };
[[nodiscard]] std::unique_lock<std::mutex> blas_threads_for(BlasOp op, double size);

}  // namespace linalg
}  // namespace optim
