import type { FloatArray } from '../backend/types.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { describe } from '../validate.js';
import { centralDifference, compare, point, settings, summarize } from './compare.js';
import type { CheckOptions, Comparison } from './compare.js';

/**
 * What hessianCheck differentiates: a function returning `{ grad, hessian }` at x (as an
 * objective's `evaluate`, or `minimize`'s `fun` for method 'newton'), or an object with
 * `grad(x)` and `hessian(x)` (an objective; its `grad` alone is then used at displaced points).
 */
export type HessianFunction<T extends FloatArray = FloatArray> =
  | ((x: T) => { grad: ArrayLike<number>; hessian: ArrayLike<number> })
  | { grad(x: T): ArrayLike<number>; hessian(x: T): ArrayLike<number> };

export interface HessianCheckResult extends Comparison {
  /** n×n row-major, as returned at x. */
  analytic: Float64Array;
  /** Column j: (∇f(x + hⱼeⱼ) − ∇f(x − hⱼeⱼ)) / 2hⱼ. */
  numeric: Float64Array;
  /** max |Hᵢⱼ − Hⱼᵢ| of the analytic Hessian. */
  asymmetry: number;
  summary: string;
}

function asPair<T extends FloatArray>(fn: string, f: unknown): { grad(x: T): ArrayLike<number>; hessian(x: T): ArrayLike<number> } {
  if (typeof f === 'function') {
    const call = (x: T) => {
      const r = (f as (x: T) => unknown)(x) as { grad?: unknown; hessian?: unknown } | null;
      if (r === null || typeof r !== 'object' || r.grad === undefined || r.hessian === undefined) {
        throw new OptimTypeError(`${fn}: f(x) must return { grad, hessian }, got ${describe(r)}`);
      }
      return r as { grad: ArrayLike<number>; hessian: ArrayLike<number> };
    };
    return { grad: (x) => call(x).grad, hessian: (x) => call(x).hessian };
  }
  const o = f as { grad?: unknown; hessian?: unknown } | null;
  if (o !== null && typeof o === 'object' && typeof o.grad === 'function' && typeof o.hessian === 'function') {
    return { grad: (x) => (o.grad as (x: T) => ArrayLike<number>)(x), hessian: (x) => (o.hessian as (x: T) => ArrayLike<number>)(x) };
  }
  throw new OptimTypeError(`${fn}: f must be a function returning { grad, hessian } or an object with grad(x) and hessian(x), got ${describe(f)}`);
}

function lengthOf(fn: string, what: string, v: unknown, want: number): ArrayLike<number> {
  const a = v as ArrayLike<number> | null;
  if (a === null || typeof a !== 'object' || typeof a.length !== 'number' || a.length !== want) {
    throw new OptimRangeError(`${fn}: the ${what} must have length ${want}, got ${describe(v)}${a && typeof a.length === 'number' ? ` of length ${a.length}` : ''}`);
  }
  return a;
}

/**
 * Checks a Hessian against central differences of the gradient, column by column:
 *
 * ```
 * numeric[:, j] = (∇f(x + hⱼeⱼ) − ∇f(x − hⱼeⱼ)) / 2hⱼ,    hⱼ = eps·max(1, |xⱼ|)
 * errorᵢⱼ = |Hᵢⱼ − numericᵢⱼ| / max(|Hᵢⱼ|, |numericᵢⱼ|, floor)
 * ```
 *
 * passing when every errorᵢⱼ ≤ rtol. Assumes the gradient is right (check it first with
 * gradCheck). Also reports how far the analytic Hessian is from symmetric. Costs 2n gradient
 * evaluations and one Hessian; x is not modified.
 */
export function hessianCheck<T extends FloatArray>(f: HessianFunction<T>, x: T, options?: CheckOptions): HessianCheckResult {
  const fn = 'hessianCheck';
  const pair = asPair<T>(fn, f);
  point(fn, x);
  const s = settings(fn, options, x);
  const n = x.length;
  const analytic = Float64Array.from(lengthOf(fn, 'Hessian', pair.hessian(x.slice() as T), n * n));
  const numeric = new Float64Array(n * n);
  const xp = x.slice() as T;
  for (let j = 0; j < n; j++) {
    centralDifference(xp, j, s.eps, () => Float64Array.from(lengthOf(fn, 'gradient', pair.grad(xp), n)), (plus, minus, width) => {
      for (let i = 0; i < n; i++) numeric[i * n + j] = (plus[i] - minus[i]) / width;
    });
  }
  let asymmetry = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) asymmetry = Math.max(asymmetry, Math.abs(analytic[i * n + j] - analytic[j * n + i]));
  }
  const c = compare(analytic, numeric, s, (k) => ({ row: Math.floor(k / n), col: k % n }));
  const summary = `${summarize(`hessianCheck (${n}×${n})`, c, n * n, 'entries')}\n  analytic asymmetry max|Hij − Hji| = ${asymmetry.toExponential(2)}`;
  return { ...c, analytic, numeric, asymmetry, summary };
}
