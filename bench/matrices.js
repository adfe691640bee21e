'use strict';
// Matrices the linear algebra benchmarks share.

/**
 * A diagonally dominant symmetric n×n matrix (positive definite), float64, row-major: the one
 * bench/blas-direct.c's potrf mode factors (the same generator), so our Cholesky and LAPACK's
 * dpotrf work on the same numbers.
 */
function spd(n) {
  const a = new Float64Array(n * n);
  let s = 7;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const v = ((s >>> 8) / 8388608 - 1) / n;
      a[i * n + j] = a[j * n + i] = i === j ? 2 : v;
    }
  }
  return a;
}

module.exports = { spd };
