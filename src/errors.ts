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
