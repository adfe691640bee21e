/**
 * Errors thrown by optim. Each names the argument at fault and what was expected, and each is a
 * subclass of the built-in error a caller would test for (`instanceof TypeError` still works).
 */

/** A value of the wrong type (not a typed array, wrong dtype, not a number, missing field). */
export class OptimTypeError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'OptimTypeError';
  }
}

/** A value of the right type outside its allowed range (negative lr, NaN, length mismatch). */
export class OptimRangeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'OptimRangeError';
  }
}

/** A state that cannot be used: a checkpoint that does not match, a backend that cannot load. */
export class OptimStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptimStateError';
  }
}

/**
 * A matrix given to `cholesky` (or `solveSPD`) is not positive definite. `pivot` is the 0-based
 * index of the first pivot that was not positive: the leading (pivot+1)×(pivot+1) block of the
 * matrix is not positive definite (for a symmetric matrix, it has an eigenvalue <= 0). LAPACK
 * reports the same as `info = pivot + 1`.
 */
export class CholeskyError extends OptimRangeError {
  constructor(message: string, readonly pivot: number) {
    super(message);
    this.name = 'CholeskyError';
  }
}

/**
 * A gradient held a NaN or an infinity and the optimizer's policy is `nonFinite: 'error'`.
 * Nothing was changed: no parameter, no state, no step count. `param` names the parameter,
 * `index` the first non-finite element of its grad, `value` what was found there.
 */
export class NonFiniteError extends OptimRangeError {
  constructor(message: string, readonly param: string, readonly index: number, readonly value: number) {
    super(message);
    this.name = 'NonFiniteError';
  }
}

/**
 * A checkpoint file that cannot be used: truncated, corrupted (checksum mismatch), not a
 * safetensors file, or not matching what it is loaded into. `path` names the file.
 */
export class CheckpointError extends OptimStateError {
  constructor(message: string, readonly path: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/**
 * A collective or a process group of optim/distributed failed or cannot be used: Gloo is not
 * built into the addon, a rank was lost or timed out, the ranks' calls do not match, or the group
 * was destroyed. `code` says which ('unavailable' | 'lost' | 'timeout' | 'mismatch' |
 * 'destroyed' | 'broken' | 'rendezvous'); `lostRank` names the rank that disappeared
 * when one did (the others learn it from the rendezvous store), else it is undefined.
 */
export class DistributedError extends OptimStateError {
  constructor(message: string, readonly code: string, readonly lostRank?: number) {
    super(message);
    this.name = 'DistributedError';
  }
}
