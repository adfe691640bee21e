// How many threads OpenBLAS gets for a call, by kind and size.
//
// OpenBLAS's default (every core, for every call) loses on small problems: waking and joining a
// second thread costs more than it saves until a call does enough work. Thresholds measured on
// the 2-core AVX2/AVX-512 machine of issue 3 (OpenBLAS 0.3.21, pthreads build), best of repeats,
// 1 thread vs 2, f64:
//   dpotrf: 2 threads slower up to n = 1000 (n=500: 1.36 vs 1.54 ms; n=1000: 9.0 vs 14.4 ms) and
//           faster from n = 1500 on (27.4 vs 16.7 ms): threshold n >= 1200.
//   dgemm (square): slower up to n = 700 (14.3 vs 15.2 ms), faster at n = 1000 (41.5 vs 33.5):
//           threshold m*n*k >= 800^3.
//   dtrsv: memory-bound; 2 threads only help once L no longer fits in cache, n >= 1500.
//   trsm (several right-hand sides) follows gemm by flops (n*n*nrhs), syevd follows potrf by n.
// The count is set before each call (openblas_set_num_threads is a process-wide setting, so an
// async call running at the same time may see the other's choice: a matter of speed only).
#include "linalg.h"

#ifdef OPTIM_HAVE_OPENBLAS
extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}
#endif

namespace optim {
namespace linalg {

int blas_max_threads() {
#ifdef OPTIM_HAVE_OPENBLAS
  // Read before the first blas_threads_for changes it: OPENBLAS_NUM_THREADS, else every core.
  static const int max = openblas_get_num_threads() > 0 ? openblas_get_num_threads() : 1;
  return max;
#else
  return 1;
#endif
}

void blas_threads_for(BlasOp op, double size) {
#ifdef OPTIM_HAVE_OPENBLAS
  const int max = blas_max_threads();
  double threshold = 0;
  switch (op) {
    case BlasOp::Gemm: threshold = 800.0 * 800.0 * 800.0; break;
    case BlasOp::Trsm: threshold = 800.0 * 800.0 * 800.0; break;
    case BlasOp::Potrf: threshold = 1200; break;
    case BlasOp::Syevd: threshold = 1200; break;
    case BlasOp::Trsv: threshold = 1500; break;
  }
  const int want = size >= threshold ? max : 1;
  if (openblas_get_num_threads() != want) openblas_set_num_threads(want);
#else
  (void)op;
  (void)size;
#endif
}

}  // namespace linalg
}  // namespace optim
