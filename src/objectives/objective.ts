/**
 * What the three objectives share: argument checks, the output arrays, the penalty, the
 * reduction and minibatches. Each model supplies only its data term.
 */
import type { FloatArray } from '../backend/types.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { noOverlap } from '../linalg/validate.js';
import { checkLength, checkSameType, describe } from '../validate.js';
import type { Design } from './design.js';
import type { Setup } from './options.js';
import type { ClassifierObjective, Objective, RowIndices } from './types.js';

/** A model's data term Σᵢ ℓᵢ(w) over the rows of a view, and its derivatives. */
export interface Model<T extends FloatArray> {
  /**
   * scale·Σᵢ ℓᵢ over the n rows of `X` (row i of the view is row `rowOf[i]` of the data, or i).
   * When given, `grad` is overwritten with scale·∇ and `hessian` with scale·∇².
   */
  data(X: T, n: number, rowOf: Uint32Array | null, w: T, scale: number, grad: T | null, hessian: T | null): number;
  /** out = scale·∇²(Σᵢ ℓᵢ)·v, overwritten. */
  hvp(X: T, n: number, rowOf: Uint32Array | null, w: T, v: T, scale: number, out: T): void;
}

/**
 * Adds the model-specific methods (predictions) to the common ones; `checkW(method, w)` checks
 * a parameter vector as the common methods do.
 */
export type Extend<T extends FloatArray, O> = (
  base: Objective<T>,
  rowOf: Uint32Array | null,
  checkW: (method: string, w: unknown) => T,
) => O;

/** Batch indices checked against the current view's rows and mapped to rows of the data. */
function rowIndices(fn: string, indices: unknown, n: number, parent: Uint32Array | null): Uint32Array {
  const ok = Array.isArray(indices) || indices instanceof Uint32Array || indices instanceof Int32Array;
  if (!ok) throw new OptimTypeError(`${fn}: indices must be a Uint32Array, Int32Array or array of row numbers, got ${describe(indices)}`);
  const idx = indices as ArrayLike<unknown>;
  if (idx.length === 0) throw new OptimRangeError(`${fn}: indices is empty; a batch needs at least one row`);
  const out = new Uint32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= n) {
      throw new OptimRangeError(`${fn}: indices[${i}] = ${String(r)} is not a row in 0..${n - 1}`);
    }
    out[i] = parent === null ? r : parent[r];
  }
  return out;
}

export function buildObjective<T extends FloatArray, O extends Objective<T>>(
  name: string,
  s: Setup<T>,
  model: Model<T>,
  extend: Extend<T, O>,
  rowOf: Uint32Array | null = null,
): O {
  const { design, penalty, reduction } = s;
  const n = rowOf === null ? design.rows : rowOf.length;
  const scale = reduction === 'mean' ? 1 / n : 1;
  const size = design.size;
  const X = design.X;

  const vector = (method: string, arg: string, v: unknown): T => {
    const at = `${name}.${method}: `;
    checkSameType(v, arg, at, X, 'X');
    checkLength(v as T, arg, at, size, 'size');
    return v as T;
  };
  const output = (method: string, out: unknown, length: number, formula: string, inputs: Array<[string, T]>): T => {
    if (out === undefined) return design.alloc(length);
    const at = `${name}.${method}: `;
    checkSameType(out, 'out', at, X, 'X');
    checkLength(out as T, 'out', at, length, formula);
    for (const [argName, arr] of inputs) noOverlap(out as T, 'out', at, arr, argName);
    noOverlap(out as T, 'out', at, X, 'X');
    return out as T;
  };

  const base: Objective<T> = {
    size,
    dtype: X instanceof Float32Array ? 'float32' : 'float64',
    rows: n,
    loss(w) {
      vector('loss', 'w', w);
      return model.data(design.view(rowOf), n, rowOf, w, scale, null, null) + penalty.value(w);
    },
    grad(w, out) {
      vector('grad', 'w', w);
      const g = output('grad', out, size, 'size', [['w', w]]);
      model.data(design.view(rowOf), n, rowOf, w, scale, g, null);
      penalty.addGrad(w, g);
      return g;
    },
    lossAndGrad(w, out) {
      vector('lossAndGrad', 'w', w);
      const g = output('lossAndGrad', out, size, 'size', [['w', w]]);
      const loss = model.data(design.view(rowOf), n, rowOf, w, scale, g, null) + penalty.value(w);
      penalty.addGrad(w, g);
      return { loss, grad: g };
    },
    hessian(w, out) {
      vector('hessian', 'w', w);
      const H = output('hessian', out, size * size, 'size*size', [['w', w]]);
      model.data(design.view(rowOf), n, rowOf, w, scale, null, H);
      penalty.addHessian(H, size);
      return H;
    },
    hvp(w, v, out) {
      vector('hvp', 'w', w);
      vector('hvp', 'v', v);
      const o = output('hvp', out, size, 'size', [['w', w], ['v', v]]);
      model.hvp(design.view(rowOf), n, rowOf, w, v, scale, o);
      penalty.addHvp(v, o);
      return o;
    },
    evaluate(w) {
      vector('evaluate', 'w', w);
      const grad = design.alloc(size);
      const hessian = design.alloc(size * size);
      const loss = model.data(design.view(rowOf), n, rowOf, w, scale, grad, hessian) + penalty.value(w);
      penalty.addGrad(w, grad);
      penalty.addHessian(hessian, size);
      return { loss, grad, hessian };
    },
    batch(indices) {
      return buildObjective(name, s, model, extend, rowIndices(`${name}.batch`, indices, n, rowOf));
    },
  };
  return extend(base, rowOf, (method, w) => vector(method, 'w', w));
}

/**
 * A classifier's methods on the common ones: `predict`, the class `classOfScores` picks from
 * each row's scores (row i of Z, n×outputs), and `accuracy`, the fraction of rows predicted as
 * `classOf` their target.
 */
export function classifier<T extends FloatArray>(
  design: Design<T>,
  base: Objective<T>,
  rowOf: Uint32Array | null,
  checkW: (method: string, w: unknown) => T,
  classOfScores: (Z: T, i: number) => number,
  targets: Float64Array,
  classOf: (target: number) => number,
): ClassifierObjective<T> {
  const predict = (w: T): Int32Array => {
    checkW('predict', w);
    const n = base.rows;
    const Z = design.work('z', n * design.outputs);
    design.scores(design.view(rowOf), n, w, Z);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = classOfScores(Z, i);
    return out;
  };
  return {
    ...base,
    predict,
    accuracy(w) {
      const p = predict(w);
      let hits = 0;
      for (let i = 0; i < p.length; i++) hits += p[i] === classOf(targets[rowOf === null ? i : rowOf[i]]) ? 1 : 0;
      return hits / p.length;
    },
    batch: base.batch as (indices: RowIndices) => ClassifierObjective<T>,
  };
}
