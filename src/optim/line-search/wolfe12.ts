/**
 * The vector side of scipy's strong Wolfe line searches: `line_search_wolfe1` (MINPACK's dcsrch),
 * `line_search_wolfe2` (Nocedal–Wright zoom) and `_line_search_wolfe12` (the first, falling back
 * to the second), over an objective that remembers its last point as scipy's ScalarFunction does.
 */
import { dot } from '../flat.js';
import { scalarSearchWolfe1 } from './dcsrch.js';
import { scalarSearchWolfe2 } from './wolfe2.js';

/** f and ∇f at one point, from one call of the user's function. */
export interface FunctionValue {
  f: number;
  g: Float64Array;
}

/**
 * scipy's ScalarFunction for a function that gives f and ∇f together: f(x) and ∇f(x) are asked
 * for separately and counted as scipy counts them (`nfev`, `njev`: a request at a point other
 * than the last one, or the first request of its kind there), while `evaluate` runs once per
 * new point. The last point is compared by value (numpy's `array_equal`: NaN never equal).
 * Returned gradients are never written to.
 */
export class CountingObjective {
  nfev = 0;
  njev = 0;
  private x: Float64Array | null = null;
  private value: FunctionValue = { f: Number.NaN, g: new Float64Array(0) };
  private fCounted = false;
  private gCounted = false;

  constructor(private readonly evaluate: (x: Float64Array) => FunctionValue) {}

  fun(x: Float64Array): number {
    this.moveTo(x);
    if (!this.fCounted) {
      this.nfev++;
      this.fCounted = true;
    }
    return this.value.f;
  }

  grad(x: Float64Array): Float64Array {
    this.moveTo(x);
    if (!this.gCounted) {
      this.njev++;
      this.gCounted = true;
    }
    return this.value.g;
  }

  private moveTo(x: Float64Array): void {
    const last = this.x;
    if (last !== null && last.length === x.length && last.every((v, i) => v === x[i])) return;
    this.value = this.evaluate(x);
    this.x = x.slice();
    this.fCounted = false;
    this.gCounted = false;
  }
}

/** x + α·p, elementwise (numpy's `xk + alpha * pk`: a product, then a sum). */
export function along(x: Float64Array, alpha: number, p: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + alpha * p[i];
  return out;
}

/** The constants of a search (scipy's keyword arguments). */
export interface WolfeParams {
  c1: number;
  c2: number;
  /** Largest step. */
  amax: number;
  /** Smallest step (dcsrch only). */
  amin: number;
  /** dcsrch's relative interval width (scipy: 1e-14). */
  xtol: number;
}

/** A step found along p from x. */
export interface LineStep {
  alpha: number;
  /** f(x + αp). */
  f: number;
  /** f(x): what scipy hands back as the new old_old_fval. */
  f0: number;
  /** ∇f(x + αp), or null when the search did not compute it there. */
  g: Float64Array | null;
}

/** φ(α) = f(x + αp) and φ′(α) = ∇f(x + αp)ᵀp, remembering the last gradient asked for. */
function lineFunctions(obj: CountingObjective, x: Float64Array, p: Float64Array, g0: Float64Array) {
  const last = { g: g0 };
  return {
    last,
    phi: (alpha: number): number => obj.fun(along(x, alpha, p)),
    derphi: (alpha: number): number => {
      last.g = obj.grad(along(x, alpha, p));
      return dot(last.g, p);
    },
  };
}

/**
 * scipy's `line_search_wolfe1`: dcsrch on φ from f0 = f(x), g0 = ∇f(x), with the previous
 * iterate's value `fPrev` setting the first trial. Null when dcsrch found no step.
 */
export function lineSearchWolfe1(
  obj: CountingObjective, x: Float64Array, p: Float64Array, g0: Float64Array, f0: number, fPrev: number | null, params: WolfeParams,
): LineStep | null {
  const ls = lineFunctions(obj, x, p, g0);
  const r = scalarSearchWolfe1(ls.phi, ls.derphi, f0, fPrev, dot(g0, p), params);
  // dcsrch evaluates φ′ at every step it evaluates φ, so the last gradient is at the step.
  return r.stp === null ? null : { alpha: r.stp, f: r.phi1, f0: r.phi0, g: ls.last.g };
}

/** scipy's `line_search_wolfe2` (its own maxiter, 10): null when it found no step. */
export function lineSearchWolfe2(
  obj: CountingObjective, x: Float64Array, p: Float64Array, g0: Float64Array, f0: number, fPrev: number | null,
  params: Pick<WolfeParams, 'c1' | 'c2' | 'amax'>,
): LineStep | null {
  const ls = lineFunctions(obj, x, p, g0);
  const r = scalarSearchWolfe2(ls.phi, ls.derphi, f0, fPrev, dot(g0, p), params.c1, params.c2, params.amax);
  if (r.alpha === null) return null;
  // scipy hands back the most recent gradient when φ′ at the step is known, else none.
  return { alpha: r.alpha, f: r.phi as number, f0: r.phi0, g: r.derphi === null ? null : ls.last.g };
}

/**
 * scipy's `_line_search_wolfe12`: `lineSearchWolfe1`, and when it finds no step,
 * `lineSearchWolfe2` with the same c1, c2 and amax. Null when neither finds one.
 */
export function lineSearchWolfe12(
  obj: CountingObjective, x: Float64Array, p: Float64Array, g0: Float64Array, f0: number, fPrev: number | null, params: WolfeParams,
): (LineStep & { fallback: boolean }) | null {
  const first = lineSearchWolfe1(obj, x, p, g0, f0, fPrev, params);
  if (first !== null) return { ...first, fallback: false };
  const second = lineSearchWolfe2(obj, x, p, g0, f0, fPrev, params);
  return second === null ? null : { ...second, fallback: true };
}
