import type { FloatArray } from '../backend/types.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import type { Param } from '../param.js';
import { checkBoolean, checkNonNegative, checkOptions, describe, isFloatArray } from '../validate.js';

export interface ClipGradNormOptions {
  /** p of the norm: a number > 0, or Infinity / 'inf' for the max norm (default 2). */
  normType?: number | 'inf';
  /** Throw, changing nothing, when the total norm is NaN or ±∞ (default false). */
  errorIfNonfinite?: boolean;
}

/**
 * Scales all gradients together so that their global norm is at most maxNorm, in place, as
 * torch.nn.utils.clip_grad_norm_; returns the norm before clipping.
 *
 * ```
 * N = ‖(g₁, g₂, …)‖_p = (Σ_params Σ_i |g_i|^p)^(1/p)     (max |g_i| for p = ∞), in float64
 * c = maxNorm / (N + 1e-6)
 * g ← c · g   for every gradient, when c < 1
 * ```
 *
 * One norm over the concatenation of all gradients (not one per parameter), so clipping keeps
 * the direction of the full gradient. The 1e-6 is torch's: it keeps c finite when N = 0 and
 * leaves the clipped norm a hair under maxNorm.
 *
 * Non-finite norms: with errorIfNonfinite, an error. Otherwise N = ∞ gives c = 0 (finite
 * entries become 0, infinite ones NaN, as torch), and N = NaN leaves the gradients unchanged
 * (torch would fill them with NaN). A gradient array listed twice is counted and scaled once.
 */
export function clipGradNorm(params: Param | readonly Param[], maxNorm: number, options: ClipGradNormOptions = {}): number {
  const where = 'clipGradNorm(params, maxNorm, options)';
  const grads = gradsOf('clipGradNorm', params);
  checkNonNegative(maxNorm, 'maxNorm', `${where}: `);
  const o = checkOptions<ClipGradNormOptions>(options, ['normType', 'errorIfNonfinite'], where);
  const p = normOrder(where, o.normType ?? 2);
  const errorIfNonfinite = checkBoolean(o.errorIfNonfinite ?? false, 'options.errorIfNonfinite', `${where}: `);
  const total = p === Infinity ? maxAbs(grads) : pNorm(grads, p);
  if (errorIfNonfinite && !Number.isFinite(total)) {
    throw new OptimRangeError(
      `clipGradNorm: the total norm of order ${p} of the gradients is ${total}, so they cannot be clipped; pass errorIfNonfinite: false to scale by it anyway`,
    );
  }
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) {
    for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= coef;
  }
  return total;
}

/**
 * Clamps every gradient entry to [−clipValue, clipValue], in place, as
 * torch.nn.utils.clip_grad_value_. NaN entries stay NaN.
 */
export function clipGradValue(params: Param | readonly Param[], clipValue: number): void {
  const grads = gradsOf('clipGradValue', params);
  checkNonNegative(clipValue, 'clipValue', 'clipGradValue(params, clipValue): ');
  const lo = -clipValue;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) {
      const v = g[i];
      if (v > clipValue) g[i] = clipValue;
      else if (v < lo) g[i] = lo;
    }
  }
}

/** Every param's grad, checked before anything changes, without repeats. */
function gradsOf(fn: string, params: Param | readonly Param[]): FloatArray[] {
  const list: readonly unknown[] = Array.isArray(params) ? params : [params];
  const seen = new Set<FloatArray>();
  const grads: FloatArray[] = [];
  list.forEach((p, i) => {
    const at = Array.isArray(params) ? `params[${i}]` : 'params';
    if (p === null || typeof p !== 'object') {
      throw new OptimTypeError(`${fn}: ${at} must be a param ({ name, data, grad }) or an array of params, got ${describe(p)}`);
    }
    const grad = (p as Partial<Param>).grad;
    if (!isFloatArray(grad)) {
      throw new OptimTypeError(`${fn}: ${at}.grad must be a Float32Array or Float64Array, got ${describe(grad)}`);
    }
    if (!seen.has(grad)) {
      seen.add(grad);
      grads.push(grad);
    }
  });
  return grads;
}

function normOrder(where: string, v: unknown): number {
  if (v === 'inf' || v === Infinity) return Infinity;
  if (typeof v !== 'number') {
    throw new OptimTypeError(`${where}: options.normType must be a number or 'inf', got ${describe(v)}`);
  }
  if (!(v > 0 && v < Infinity)) {
    throw new OptimRangeError(`${where}: options.normType must be a number > 0, Infinity or 'inf', got ${v}`);
  }
  return v;
}

/** max |g_i| over all gradients; NaN if any entry is NaN (as torch's max). */
function maxAbs(grads: readonly FloatArray[]): number {
  let m = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) {
      const a = Math.abs(g[i]);
      if (a > m) m = a;
      else if (Number.isNaN(a)) return NaN;
    }
  }
  return m;
}

/**
 * (Σ |g_i|^p)^(1/p) in float64. The plain sum is right unless it overflows or underflows
 * (entries beyond about 1e154 or below 1e-154 for p = 2); then the sum is taken again over
 * g_i / max|g|, which cannot.
 */
function pNorm(grads: readonly FloatArray[], p: number): number {
  let sum = 0;
  let m = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) {
      const a = Math.abs(g[i]);
      if (a > m) m = a;
      sum += p === 2 ? a * a : p === 1 ? a : a ** p;
    }
  }
  if (!(m > 0 && m < Infinity) || (sum > 1e-290 && sum < Infinity)) return p === 1 ? sum : sum ** (1 / p);
  let scaled = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) {
      const a = Math.abs(g[i]) / m;
      scaled += p === 2 ? a * a : p === 1 ? a : a ** p;
    }
  }
  return m * scaled ** (1 / p);
}
