import type { FloatArray } from '../backend/types.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { describe } from '../validate.js';
import { centralDifference, compare, point, settings, summarize } from './compare.js';
import type { CheckOptions, Comparison } from './compare.js';

/**
 * What gradCheck differentiates: a function returning `{ loss, grad }` at x (the shape of
 * `minimize`'s `fun` and of an objective's `lossAndGrad`), or an object with `loss(x)` and
 * `grad(x)` (an objective itself; its `loss` alone is then used at the displaced points).
 */
export type GradFunction<T extends FloatArray = FloatArray> =
  | ((x: T) => { loss: number; grad: ArrayLike<number> })
  | { loss(x: T): number; grad(x: T): ArrayLike<number> };

export interface GradCheckResult extends Comparison {
  /** The gradient the function returned at x. */
  analytic: Float64Array;
  /** (f(x + hᵢeᵢ) − f(x − hᵢeᵢ)) / 2hᵢ for each i. */
  numeric: Float64Array;
  /** The verdict and the worst coordinates, as lines to print. */
  summary: string;
}

function asPair<T extends FloatArray>(fn: string, f: unknown): { loss(x: T): number; grad(x: T): ArrayLike<number> } {
  if (typeof f === 'function') {
    const call = (x: T) => {
      const r = (f as (x: T) => unknown)(x) as { loss?: unknown; grad?: unknown } | null;
      if (r === null || typeof r !== 'object' || typeof r.loss !== 'number') {
        throw new OptimTypeError(`${fn}: f(x) must return { loss: number, grad }, got ${describe(r)}`);
      }
      return r as { loss: number; grad: ArrayLike<number> };
    };
    return { loss: (x) => call(x).loss, grad: (x) => call(x).grad };
  }
  const o = f as { loss?: unknown; grad?: unknown } | null;
  if (o !== null && typeof o === 'object' && typeof o.loss === 'function' && typeof o.grad === 'function') {
    return { loss: (x) => (o.loss as (x: T) => number)(x), grad: (x) => (o.grad as (x: T) => ArrayLike<number>)(x) };
  }
  throw new OptimTypeError(`${fn}: f must be a function returning { loss, grad } or an object with loss(x) and grad(x), got ${describe(f)}`);
}

/**
 * Checks a gradient against central differences at x, coordinate by coordinate:
 *
 * ```
 * numericᵢ = (f(x + hᵢeᵢ) − f(x − hᵢeᵢ)) / 2hᵢ,    hᵢ = eps·max(1, |xᵢ|)
 * errorᵢ   = |gᵢ − numericᵢ| / max(|gᵢ|, |numericᵢ|, floor)
 * ```
 *
 * passing when every errorᵢ ≤ rtol. The truncation error of the central difference is
 * O(h²·f‴), its rounding error O(ε·|f|/h): for float32 objectives expect errors near 1e-3.
 * Costs 2n + 1 evaluations; x is not modified (a copy is displaced). The result carries every
 * coordinate's error, the worst ones, and a `summary` to print.
 */
export function gradCheck<T extends FloatArray>(f: GradFunction<T>, x: T, options?: CheckOptions): GradCheckResult {
  const fn = 'gradCheck';
  const pair = asPair<T>(fn, f);
  point(fn, x);
  const s = settings(fn, options, x);
  const n = x.length;
  const g = pair.grad(x.slice() as T);
  if (g === null || typeof g !== 'object' || typeof g.length !== 'number' || g.length !== n) {
    throw new OptimRangeError(`${fn}: the gradient must have length ${n} (that of x), got ${describe(g)}${g && typeof g.length === 'number' ? ` of length ${g.length}` : ''}`);
  }
  const analytic = Float64Array.from(g);
  const numeric = new Float64Array(n);
  const xp = x.slice() as T;
  for (let i = 0; i < n; i++) {
    centralDifference(xp, i, s.eps, () => pair.loss(xp), (plus, minus, width) => {
      numeric[i] = (plus - minus) / width;
    });
  }
  const c = compare(analytic, numeric, s);
  return { ...c, analytic, numeric, summary: summarize(`gradCheck (${n} coordinates)`, c, n, 'coordinates') };
}
