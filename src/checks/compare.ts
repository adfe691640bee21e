/**
 * What gradCheck and hessianCheck share: the finite-difference step, the comparison of analytic
 * and numeric values, and the report of the worst entries.
 */
import type { FloatArray } from '../backend/types.js';
import { OptimRangeError } from '../errors.js';
import { checkFloatArray, checkInRange, checkOptions } from '../validate.js';

export interface CheckOptions {
  /**
   * Relative step: coordinate i moves by ±eps·max(1, |xᵢ|). Default 1e-6 for float64, 5e-3
   * for float32 (near the cube root of the machine epsilon, which balances the truncation and
   * rounding errors of central differences).
   */
  eps?: number;
  /** Largest relative error that passes. Default 1e-6 for float64, 1e-2 for float32. */
  rtol?: number;
  /**
   * Magnitude below which values count as "small": relative errors are taken against
   * max(|analytic|, |numeric|, floor). Default: the largest magnitude × 1e-3 (float64) or × 1e-2
   * (float32), so entries that are zero or nearly so are judged on the scale of the whole
   * gradient or Hessian, not their own (their rounding noise is that of the largest entries).
   */
  floor?: number;
  /** How many of the worst entries to list (default 5). */
  worst?: number;
}

/** One compared entry: a coordinate of the gradient, or (row, col) of the Hessian. */
export interface Discrepancy {
  index: number;
  /** For a Hessian entry. */
  row?: number;
  col?: number;
  analytic: number;
  numeric: number;
  absError: number;
  relError: number;
}

export interface Comparison {
  ok: boolean;
  rtol: number;
  eps: number;
  floor: number;
  /** |analytic − numeric| / max(|analytic|, |numeric|, floor), per entry. */
  relError: Float64Array;
  absError: Float64Array;
  maxRelError: number;
  maxAbsError: number;
  /** Entries over rtol. */
  failures: number;
  /** The entries with the largest relative errors, worst first. */
  worst: Discrepancy[];
}

export interface Settings {
  eps: number;
  rtol: number;
  floor: number | undefined;
  /** The default floor as a fraction of the largest magnitude. */
  floorFraction: number;
  worst: number;
}

export function settings(fn: string, options: unknown, x: FloatArray): Settings {
  const o = checkOptions(options, ['eps', 'rtol', 'floor', 'worst'], fn);
  const single = x instanceof Float32Array;
  const positive = (name: string, fallback: number | undefined): number | undefined => {
    const v = o[name];
    return v === undefined ? fallback : checkInRange(v, name, `${fn}: options.`, 0, Infinity, { minOpen: true });
  };
  const worst = o.worst ?? 5;
  if (typeof worst !== 'number' || !Number.isInteger(worst) || worst < 0) {
    throw new OptimRangeError(`${fn}: options.worst must be an integer >= 0, got ${String(worst)}`);
  }
  return {
    eps: positive('eps', single ? 5e-3 : 1e-6)!,
    rtol: positive('rtol', single ? 1e-2 : 1e-6)!,
    floor: positive('floor', undefined),
    floorFraction: single ? 1e-2 : 1e-3,
    worst,
  };
}

export function point(fn: string, x: unknown): FloatArray {
  const a = checkFloatArray(x, 'x', `${fn}: `);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new OptimRangeError(`${fn}: x[${i}] = ${a[i]} is not finite`);
  }
  return a;
}

/**
 * Central difference of `value` along coordinate i of the working copy `xp` (restored after):
 * (f(x + h⁺eᵢ) − f(x − h⁻eᵢ)) / (h⁺ + h⁻), where h± are the steps as actually stored in the
 * array's dtype (x ± h rounds, in float32 noticeably).
 */
export function centralDifference<R>(xp: FloatArray, i: number, eps: number, value: () => R, combine: (plus: R, minus: R, width: number) => void): void {
  const orig = xp[i];
  const h = eps * Math.max(1, Math.abs(orig));
  xp[i] = orig + h;
  const hp = xp[i] - orig;
  const plus = value();
  xp[i] = orig - h;
  const hm = orig - xp[i];
  const minus = value();
  xp[i] = orig;
  combine(plus, minus, hp + hm);
}

/** Compares entry by entry; `locate(i)` gives (row, col) for a matrix. */
export function compare(
  analytic: ArrayLike<number>,
  numeric: ArrayLike<number>,
  s: Settings,
  locate?: (i: number) => { row: number; col: number },
): Comparison {
  const n = analytic.length;
  let scale = 0;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(analytic[i]), Math.abs(numeric[i]));
  const floor = s.floor ?? (scale > 0 ? s.floorFraction * scale : Number.MIN_VALUE);
  const relError = new Float64Array(n);
  const absError = new Float64Array(n);
  let maxRelError = 0;
  let maxAbsError = 0;
  let failures = 0;
  for (let i = 0; i < n; i++) {
    const a = analytic[i];
    const v = numeric[i];
    const abs = Math.abs(a - v);
    // NaN in either fails: the comparisons below are false for NaN, so count it explicitly.
    const rel = Number.isNaN(abs) ? Infinity : abs === 0 ? 0 : abs / Math.max(Math.abs(a), Math.abs(v), floor);
    absError[i] = Number.isNaN(abs) ? Infinity : abs;
    relError[i] = rel;
    if (rel > maxRelError) maxRelError = rel;
    if (absError[i] > maxAbsError) maxAbsError = absError[i];
    if (rel > s.rtol) failures++;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((p, q) => relError[q] - relError[p] || p - q);
  const worst = order.slice(0, s.worst).map((i): Discrepancy => ({
    index: i,
    ...(locate ? locate(i) : {}),
    analytic: analytic[i],
    numeric: numeric[i],
    absError: absError[i],
    relError: relError[i],
  }));
  return { ok: failures === 0, rtol: s.rtol, eps: s.eps, floor, relError, absError, maxRelError, maxAbsError, failures, worst };
}

/** A tolerance as written by hand: 0.01, 1e-6. */
export const tolerance = (v: number): string => (v >= 1e-3 && v < 1e4 ? String(v) : v.toExponential());
const num = (v: number): string => (Number.isFinite(v) ? v.toExponential(4) : String(v)).padStart(12);
const err = (v: number): string => (Number.isFinite(v) ? v.toExponential(1) : String(v)).padStart(9);

/** A few lines fit to print: the verdict, then the worst entries as a table. */
export function summarize(title: string, c: Comparison, count: number, unit: string): string {
  const verdict = c.ok ? 'PASS' : `FAIL (${c.failures} of ${count} ${unit} over rtol)`;
  const lines = [
    `${title}: ${verdict}; max relative error ${c.maxRelError.toExponential(2)} (rtol ${tolerance(c.rtol)}), ` +
      `max absolute error ${c.maxAbsError.toExponential(2)}; central differences, eps ${tolerance(c.eps)}`,
  ];
  if (c.worst.length > 0) {
    const matrix = c.worst[0].row !== undefined;
    lines.push(`  ${(matrix ? 'entry' : 'index').padEnd(12)}${'analytic'.padStart(12)}${'numeric'.padStart(12)}${'abs err'.padStart(9)}${'rel err'.padStart(9)}`);
    for (const d of c.worst) {
      const where = matrix ? `(${d.row}, ${d.col})` : `[${d.index}]`;
      lines.push(`  ${where.padEnd(12)}${num(d.analytic)}${num(d.numeric)}${err(d.absError)}${err(d.relError)}`);
    }
  }
  return lines.join('\n');
}
