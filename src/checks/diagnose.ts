import type { FloatArray } from '../backend/types.js';
import { OptimRangeError } from '../errors.js';
import { eigh } from '../linalg/eigh.js';
import { checkDimension, checkFloatArray, checkLength, checkOptions, describe } from '../validate.js';
import { tolerance } from './compare.js';

/** What the second-order test says about a stationary point with Hessian H. */
export type PointKind = 'minimum' | 'maximum' | 'saddle' | 'degenerate';

export interface DiagnoseOptions {
  /**
   * Eigenvalues with |λ| ≤ rtol·max|λ| count as zero. Default n·machine epsilon of H's dtype
   * (the cut-off numpy's matrix_rank uses).
   */
  rtol?: number;
  /** The gradient at the point, to report whether it is stationary. */
  grad?: ArrayLike<number>;
  /** Stationary when max|g| ≤ gtol (default 1e-5, as minimize). */
  gtol?: number;
}

export interface Diagnosis {
  /**
   * 'minimum': H positive definite; 'maximum': negative definite; 'saddle': eigenvalues of
   * both signs; 'degenerate': semidefinite with zero eigenvalues (or H = 0), where the
   * second-order test cannot decide.
   */
  kind: PointKind;
  /** Ascending, in float64. */
  eigenvalues: Float64Array;
  lambdaMin: number;
  lambdaMax: number;
  /** Counts of eigenvalues > tol, < −tol and within ±tol (the inertia of H). */
  positive: number;
  negative: number;
  zero: number;
  /** The cut-off |λ| ≤ tol for zero. */
  tol: number;
  /** κ₂ = max|λ| / min|λ|; Infinity when an eigenvalue is zero (within tol). */
  conditionNumber: number;
  /**
   * 2/λmax: on the quadratic model, gradient descent x ← x − ηg converges along every
   * positive-curvature direction iff η < 2/λmax (each error component is multiplied by
   * 1 − ηλ per step). Null when no eigenvalue is positive: then no step converges.
   */
  maxStableStep: number | null;
  /** For a minimum: 2/(λmin + λmax), the fixed step with the best worst-case rate (κ−1)/(κ+1). */
  optimalStep: number | null;
  /** With options.grad: max|g| and whether it is ≤ gtol. */
  gradNorm?: number;
  stationary?: boolean;
  summary: string;
}

/**
 * Diagnoses a symmetric n×n Hessian (lower triangle read) from its eigenvalues (`eigh`):
 * the kind of stationary point, the condition number, and the largest step gradient descent
 * can take without diverging, 2/λmax.
 */
export function diagnose(H: FloatArray, n: number, options: DiagnoseOptions = {}): Diagnosis {
  const fn = 'diagnose';
  const at = 'diagnose: ';
  checkFloatArray(H, 'H', at);
  const N = checkDimension(n, 'n', at);
  if (N === 0) throw new OptimRangeError(`${fn}: n must be >= 1`);
  checkLength(H, 'H', at, N * N, 'n*n');
  const o = checkOptions<DiagnoseOptions>(options, ['rtol', 'grad', 'gtol'], fn);
  const eps = H instanceof Float32Array ? 2 ** -23 : 2 ** -52;
  const rtol = o.rtol ?? N * eps;
  if (typeof rtol !== 'number' || !(rtol >= 0 && rtol < Infinity)) throw new OptimRangeError(`${fn}: options.rtol must be a finite number >= 0, got ${String(rtol)}`);
  const gtol = o.gtol ?? 1e-5;
  if (typeof gtol !== 'number' || !(gtol >= 0)) throw new OptimRangeError(`${fn}: options.gtol must be a number >= 0, got ${String(gtol)}`);
  const g = o.grad;
  if (g !== undefined && (g === null || typeof g !== 'object' || g.length !== N)) {
    throw new OptimRangeError(`${fn}: options.grad must be an array of length n = ${N}, got ${describe(g)}`);
  }

  const eigenvalues = Float64Array.from(eigh(H, N).values);
  const lambdaMin = eigenvalues[0];
  const lambdaMax = eigenvalues[N - 1];
  const scale = Math.max(Math.abs(lambdaMin), Math.abs(lambdaMax));
  const tol = rtol * scale;
  let positive = 0;
  let negative = 0;
  let minAbs = Infinity;
  for (const v of eigenvalues) {
    if (v > tol) positive++;
    else if (v < -tol) negative++;
    minAbs = Math.min(minAbs, Math.abs(v));
  }
  const zero = N - positive - negative;
  const kind: PointKind = zero === 0 && negative === 0 ? 'minimum'
    : zero === 0 && positive === 0 ? 'maximum'
      : positive > 0 && negative > 0 ? 'saddle'
        : 'degenerate';
  const conditionNumber = zero > 0 ? Infinity : scale / minAbs;
  const maxStableStep = positive > 0 ? 2 / lambdaMax : null;
  const optimalStep = kind === 'minimum' ? 2 / (lambdaMin + lambdaMax) : null;
  const d: Diagnosis = {
    kind, eigenvalues, lambdaMin, lambdaMax, positive, negative, zero, tol, conditionNumber, maxStableStep, optimalStep, summary: '',
  };
  if (g !== undefined) {
    let m = 0;
    for (let i = 0; i < N; i++) m = Math.max(m, Math.abs(g[i]));
    d.gradNorm = m;
    d.stationary = m <= gtol;
  }
  d.summary = describeDiagnosis(d, N, gtol);
  return d;
}

const e = (v: number): string => v.toExponential(3);

function describeDiagnosis(d: Diagnosis, n: number, gtol: number): string {
  const inertia = `${d.positive} positive, ${d.negative} negative, ${d.zero} zero (|λ| ≤ ${e(d.tol)}) of ${n} eigenvalues`;
  const lines = [
    `${d.kind}: ${inertia}; λmin ${e(d.lambdaMin)}, λmax ${e(d.lambdaMax)}`,
    `condition number ${Number.isFinite(d.conditionNumber) ? e(d.conditionNumber) : 'infinite'}`,
    d.maxStableStep === null
      ? 'gradient descent: no positive curvature, no step converges'
      : `gradient descent stable for steps < 2/λmax = ${e(d.maxStableStep)}` +
        (d.optimalStep === null ? '' : `; best fixed step 2/(λmin+λmax) = ${e(d.optimalStep)}`),
  ];
  if (d.gradNorm !== undefined) {
    lines.push(d.stationary
      ? `stationary: max|g| = ${e(d.gradNorm)} ≤ ${tolerance(gtol)}`
      : `NOT stationary: max|g| = ${e(d.gradNorm)} > ${tolerance(gtol)}; the curvature above describes the point, not an extremum`);
  }
  return lines.join('\n');
}
