// How many threads OpenBLAS gets for a call, by kind and size.
//
// OpenBLAS's default (every core, for every call) loses on small problems: waking and joining a
// second thread costs more than it saves until a call does enough work, and when the other core
// is busy (the Node main thread running JavaScript beside an async call, another process) the
// second thread mostly waits. Measured on the 2-core machine of issue 3 (AMD EPYC, OpenBLAS
// 0.3.21 pthreads, f64), ms with 1 thread / 2 threads:
//   other core idle (median of 41 alternating runs):
//     dpotrf  n=100 0.026/0.027  n=200 0.128/0.103  n=300 0.355/0.260  n=500 1.38/0.95
//             n=1000 8.1/5.1  n=1500 25.2/15.4
//     dgemm   n=100 0.042/0.029  n=200 0.31/0.18  n=300 1.05/0.59  n=500 5.1/2.7  n=1000 37.9/19.7
//     dtrsv×2 n=500 0.044/0.041  n=1000 0.30/0.20  n=1500 0.55/0.68
//   other core busy (another build running; best of repeats):
//     dpotrf  n=300 0.34/0.43  n=500 1.36/1.54  n=1000 9.0/14.4  n=1500 27.4/16.7
//     dgemm   n=300 1.05/1.19  n=500 5.1/5.5  n=700 14.3/15.2  n=1000 41.5/33.5
// So a second thread pays off early on an idle machine and late (or not at all) on a busy one.
// The thresholds take the middle road, two threads only where the idle gain is large (≥ 1.4×)
// and the busy loss bounded:
//   potrf, syevd: n >= 500;  gemm, syrk, trsm: m*n*k >= 300^3;  trsv: always one thread (the
//   solve is memory-bound, the gain inconsistent, and it is ~1/30 of the factorisation).
// The count is set before each call under a process-wide lock held until the call returns:
// openblas_set_num_threads is a process-wide setting, and dpotrf's result differs in the last
// bits between 1 and 2 threads (measured, docs/determinism.md), so without the lock an async call
// or a worker running at the same time could change another call's bits. The lock serialises
// OpenBLAS calls across threads; each already uses the cores it is given.
#include <cmath>

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

std::unique_lock<std::mutex> blas_threads_for(BlasOp op, double size) {
#ifdef OPTIM_HAVE_OPENBLAS
  static std::mutex blas_mutex;  // synchronisation only: it guards OpenBLAS's global count
  std::unique_lock<std::mutex> held(blas_mutex);
  const int max = blas_max_threads();
  double threshold = 0;
  switch (op) {
    case BlasOp::Gemm: threshold = 300.0 * 300.0 * 300.0; break;
    case BlasOp::Trsm: threshold = 300.0 * 300.0 * 300.0; break;
    case BlasOp::Potrf: threshold = 500; break;
    case BlasOp::Syevd: threshold = 500; break;
    case BlasOp::Trsv: threshold = INFINITY; break;
  }
  const int want = size >= threshold ? max : 1;
  if (openblas_get_num_threads() != want) openblas_set_num_threads(want);
  return held;
#else
  (void)op;
  (void)size;
  return {};
#endif
}

}  // namespace linalg
}  // namespace optim
