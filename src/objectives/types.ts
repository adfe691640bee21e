import type { FloatArray } from '../backend/types.js';

/** How the per-row losses combine: their mean (torch's default) or their sum (scikit-learn's). */
export type Reduction = 'mean' | 'sum';

/** Row indices into the data, for a minibatch. */
export type RowIndices = Uint32Array | Int32Array | readonly number[];

/** Options every objective takes. The data X is rows×cols, row-major; give rows or cols. */
export interface ObjectiveOptions {
  rows?: number;
  cols?: number;
  /** Add an intercept (a bias per output), stored after the weights. Default true. */
  fitIntercept?: boolean;
  /** Include the intercept in the L1/L2 penalty. Default false. */
  penalizeIntercept?: boolean;
  /** λ1 of the penalty λ1 Σ|w| (default 0). */
  l1?: number;
  /** λ2 of the penalty λ2 Σw² (default 0); ½‖w‖² is l2 = 0.5. */
  l2?: number;
  /** Default 'mean'. */
  reduction?: Reduction;
}

/** What `evaluate` returns: the shape `minimize` and `Newton` take. */
export interface Evaluated<T extends FloatArray> {
  loss: number;
  grad: T;
  hessian: T;
}

/**
 * A twice-differentiable loss L(w) over a parameter vector w of `size` entries in the dtype of
 * the data. Each method checks its arguments before writing anything, and writes into `out`
 * when given (else into a new array it returns). `w` is never modified.
 *
 * The L1 term contributes its subgradient λ1·sign(w) (0 at w = 0) and nothing to the Hessian.
 */
export interface Objective<T extends FloatArray = FloatArray> {
  /** Entries of w. */
  readonly size: number;
  readonly dtype: 'float32' | 'float64';
  /** Rows the data term runs over (the batch's size for a batch). */
  readonly rows: number;
  loss(w: T): number;
  grad(w: T, out?: T): T;
  /** Loss and gradient from one pass over the data; usable as `minimize`'s `fun` for first-order methods. */
  lossAndGrad(w: T, out?: T): { loss: number; grad: T };
  /** size×size, row-major. */
  hessian(w: T, out?: T): T;
  /** H(w)·v without forming H. */
  hvp(w: T, v: T, out?: T): T;
  /** Loss, gradient and Hessian from one pass; usable as `minimize`'s `fun` for method 'newton'. */
  evaluate(w: T): Evaluated<T>;
  /**
   * The same objective over a subset of the rows (a minibatch): the data term runs over
   * `indices` (reduced by their count under 'mean'), the penalty is unchanged. The indices are
   * copied; the data is shared.
   */
  batch(indices: RowIndices): Objective<T>;
}

/** A classifier's objective: predictions are class labels. */
export interface ClassifierObjective<T extends FloatArray = FloatArray> extends Objective<T> {
  /** The most probable class of each row. */
  predict(w: T): Int32Array;
  /** The fraction of rows whose predicted class is their label. */
  accuracy(w: T): number;
  batch(indices: RowIndices): ClassifierObjective<T>;
}

/** A regression objective: predictions are values. */
export interface RegressorObjective<T extends FloatArray = FloatArray> extends Objective<T> {
  /** x·w (+ b) for each row. */
  predict(w: T, out?: T): T;
  batch(indices: RowIndices): RegressorObjective<T>;
}
