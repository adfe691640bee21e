import type { FloatArray } from '../backend/types.js';
import type { Param } from '../param.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import { cholesky, choSolve, eigh } from '../linalg/index.js';
import { CholeskyError } from '../errors.js';
import { checkFiniteNumber, dot, FlatParams, maxAbs } from './flat.js';
import { checkNonFinitePolicy } from './optimizer.js';
import type { NonFinitePolicy } from './optimizer.js';
import { describe, isFloatArray } from './validate.js';

export type Damping = number | 'adaptive' | 'pinv';

export interface NewtonOptions {
  /** Step length multiplier (default 1: the full Newton step). */
  lr?: number;
  /** 0 (pure Newton, default), a fixed λ ≥ 0, 'adaptive' (Levenberg–Marquardt) or 'pinv'. */
  damping?: Damping;
  /** Starting λ for 'adaptive' (default 1e-3). */
  lambda0?: number;
  /** Factor by which 'adaptive' raises and lowers λ (default 10). */
  lambdaFactor?: number;
  /** Most λ increases 'adaptive' tries in one step before giving up (default 40). */
  maxDampingTries?: number;
  /** 'backtracking' halves the step until the Armijo condition holds (default null: none). */
  lineSearch?: 'backtracking' | null;
  /** Armijo constant of the backtracking search (default 1e-4). */
  c1?: number;
  /** Most halvings of the backtracking search (default 30). */
  maxBacktracks?: number;
  /** 'pinv': eigenvalues with |μ| ≤ pinvRtol·max|μ| count as flat (default n·machine epsilon). */
  pinvRtol?: number;
  /**
   * A NaN or infinite loss, gradient or Hessian at the starting point (default 'error'): 'error'
   * throws NonFiniteError, 'skip' counts the step in `skippedSteps` and returns with
   * `skipped: true`, both moving nothing; 'ignore' does not check the loss and gradient (a
   * non-finite Hessian is still refused: no factorization takes it). A trial point of the damping
   * or line search that evaluates to non-finite values is rejected like one that raises the loss.
   */
  nonFinite?: NonFinitePolicy;
}

/** What the closure of a second-order step returns (after filling every param's grad). */
export interface NewtonEvaluation {
  loss: number;
  /** n×n, row-major, over the concatenation of all params, in their dtype. */
  hessian: FloatArray;
}

/** What one `step` did. */
export interface NewtonStepInfo {
  /** Loss at the point the step started from. */
  loss: number;
  /** Loss at the point it moved to, when it was evaluated (adaptive damping, line search). */
  lossAfter?: number;
  /** loss − lossAfter, when known. */
  decrease?: number;
  /** max|g| at the starting point. */
  gradNorm: number;
  /** λ used for the accepted step (0 for pure Newton and 'pinv'). */
  lambda: number;
  /** Whether the Hessian itself (without λ) was positive definite. */
  positiveDefinite: boolean;
  /** Whether the parameters moved (false when 'adaptive' found no λ that lowers the loss). */
  moved: boolean;
  /** Step length used (lr, halved by the line search). */
  t: number;
  /** max|t·d|. */
  stepNorm: number;
  /** Closure calls made by this step, the first included. */
  evaluations: number;
  /** For 'pinv': eigenvalues ignored as flat. */
  flatDirections?: number;
  /** The step was skipped for a non-finite evaluation (`nonFinite: 'skip'`); nothing moved. */
  skipped?: boolean;
}

interface NewtonGroup {
  params: Param[];
  lr: number;
  damping: Damping;
  lambda0: number;
  lambdaFactor: number;
  maxDampingTries: number;
  lineSearch: 'backtracking' | null;
  c1: number;
  maxBacktracks: number;
  pinvRtol: number | null;
}

/** 'adaptive' gives up beyond this λ: the step would be smaller than any rounding of the params. */
const LAMBDA_MAX = 1e150;

const KEYS = new Set(['lr', 'damping', 'lambda0', 'lambdaFactor', 'maxDampingTries', 'lineSearch', 'c1', 'maxBacktracks', 'pinvRtol', 'nonFinite']);

/** An evaluation already in hand: the loss, the flat gradient and the Hessian at the params. */
export interface FlatEvaluation {
  loss: number;
  grad: Float64Array;
  hessian: FloatArray;
}

/**
 * Newton's method and its damped forms, one Cholesky factorisation per step:
 *
 *   solve (H + λI) d = −g,   p ← p + t·d   (t = lr, or less after a backtracking search)
 *
 * - `damping: 0`: pure Newton; a Hessian that is not positive definite raises a
 *   `CholeskyError` naming the first non-positive pivot.
 * - `damping: λ > 0`: the lecture form (H + λI)⁻¹ with a fixed λ.
 * - `damping: 'adaptive'`: Levenberg–Marquardt. λ (from `lambda0`) is raised ×lambdaFactor until
 *   H + λI factors and the loss at the trial point falls; after a success it is lowered
 *   ÷lambdaFactor for the next step. Costs one more closure call per trial.
 * - `damping: 'pinv'`: d = −Σ (vᵢᵀg / μᵢ) vᵢ over the eigenpairs (μᵢ, vᵢ) of H with
 *   |μᵢ| > pinvRtol·max|μ|: it moves along curved directions and ignores flat ones.
 *
 * `step(closure)`: the closure fills each param's grad and returns `{ loss, hessian }`, the
 * Hessian n×n row-major over the concatenation of all params, in their dtype. Returns a
 * {@link NewtonStepInfo}. The linear algebra runs on the selected backend (LAPACK Cholesky when
 * the addon has OpenBLAS).
 */
export class Newton {
  readonly paramGroups: [NewtonGroup];
  /** λ carried between steps by 'adaptive', and the step count. */
  readonly state: { lambda: number; step: number };
  /** The policy for NaN and infinite evaluations at the starting point. */
  readonly nonFinite: NonFinitePolicy;
  private readonly flat: FlatParams;
  private skipped = 0;

  constructor(params: Param[], options: NewtonOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new OptimTypeError(`Newton: options must be an object, got ${describe(options)}`);
    }
    for (const k of Object.keys(options)) {
      if (!KEYS.has(k)) throw new OptimTypeError(`Newton: unknown option "${k}" (options are ${[...KEYS].join(', ')})`);
    }
    this.nonFinite = checkNonFinitePolicy(options.nonFinite ?? 'error', 'Newton: options.nonFinite');
    this.flat = new FlatParams(params, 'Newton');
    const group: NewtonGroup = {
      params,
      lr: options.lr ?? 1,
      damping: options.damping ?? 0,
      lambda0: options.lambda0 ?? 1e-3,
      lambdaFactor: options.lambdaFactor ?? 10,
      maxDampingTries: options.maxDampingTries ?? 40,
      lineSearch: options.lineSearch ?? null,
      c1: options.c1 ?? 1e-4,
      maxBacktracks: options.maxBacktracks ?? 30,
      pinvRtol: options.pinvRtol ?? null,
    };
    Newton.checkGroup(group);
    this.paramGroups = [group];
    this.state = { lambda: group.lambda0, step: 0 };
  }

  private static checkGroup(g: NewtonGroup): void {
    const lr = checkFiniteNumber(g.lr, 'Newton: lr');
    if (lr <= 0) throw new OptimRangeError(`Newton: lr must be > 0, got ${lr}`);
    const d = g.damping;
    if (d !== 'adaptive' && d !== 'pinv') {
      if (typeof d !== 'number') {
        throw new OptimTypeError(`Newton: damping must be a number >= 0, 'adaptive' or 'pinv', got ${describe(d)}`);
      }
      if (!(d >= 0) || !Number.isFinite(d)) {
        throw new OptimRangeError(`Newton: damping must be a finite number >= 0, 'adaptive' or 'pinv', got ${d}`);
      }
    }
    const l0 = checkFiniteNumber(g.lambda0, 'Newton: lambda0');
    if (l0 <= 0) throw new OptimRangeError(`Newton: lambda0 must be > 0, got ${l0}`);
    const f = checkFiniteNumber(g.lambdaFactor, 'Newton: lambdaFactor');
    if (f <= 1) throw new OptimRangeError(`Newton: lambdaFactor must be > 1, got ${f}`);
    for (const k of ['maxDampingTries', 'maxBacktracks'] as const) {
      if (!Number.isInteger(g[k]) || g[k] < 1) throw new OptimRangeError(`Newton: ${k} must be an integer >= 1, got ${String(g[k])}`);
    }
    if (g.lineSearch !== null && g.lineSearch !== 'backtracking') {
      throw new OptimRangeError(`Newton: lineSearch must be 'backtracking' or null, got ${String(g.lineSearch)}`);
    }
    const c1 = checkFiniteNumber(g.c1, 'Newton: c1');
    if (!(c1 > 0 && c1 < 1)) throw new OptimRangeError(`Newton: c1 must be in (0, 1), got ${c1}`);
    if (g.pinvRtol !== null) {
      const r = checkFiniteNumber(g.pinvRtol, 'Newton: pinvRtol');
      if (r < 0) throw new OptimRangeError(`Newton: pinvRtol must be >= 0, got ${r}`);
    }
  }

  zeroGrad(): void {
    for (const p of this.flat.params) p.grad.fill(0);
  }

  /** λ and the step count, for checkpoints. */
  stateDict(): { state: { lambda: number; step: number }; paramGroups: Array<Omit<NewtonGroup, 'params'> & { params: string[] }> } {
    const { params, ...rest } = this.paramGroups[0];
    return { state: { ...this.state }, paramGroups: [{ ...rest, params: params.map((p) => p.name) }] };
  }

  loadStateDict(sd: { state: { lambda: number; step: number } }): void {
    const st = sd?.state;
    if (!st || typeof st.lambda !== 'number' || !(st.lambda > 0) || !Number.isInteger(st.step) || st.step < 0) {
      throw new OptimStateError('Newton.loadStateDict: state must be { lambda > 0, step: integer >= 0 }');
    }
    this.state.lambda = st.lambda;
    this.state.step = st.step;
  }

  /** One Newton step; the closure fills grads and returns `{ loss, hessian }`. */
  step(closure: () => NewtonEvaluation): NewtonStepInfo {
    if (typeof closure !== 'function') {
      throw new OptimTypeError('Newton.step(closure): closure must be a function that fills grads and returns { loss, hessian }');
    }
    Newton.checkGroup(this.paramGroups[0]);
    this.flat.check('Newton.step()');
    let ev: FlatEvaluation;
    try {
      ev = this.evaluate(closure);
    } catch (e) {
      if (!(e instanceof NonFiniteError) || this.nonFinite !== 'skip') throw e;
      this.skipped++;
      return {
        loss: e.index === -1 ? e.value : Number.NaN, gradNorm: Number.NaN, lambda: 0, positiveDefinite: false,
        moved: false, t: 0, stepNorm: 0, evaluations: 1, skipped: true,
      };
    }
    return this.stepFrom(ev, closure).info;
  }

  /** Steps skipped for a non-finite evaluation (`nonFinite: 'skip'`). */
  get skippedSteps(): number {
    return this.skipped;
  }

  /** A trial point's evaluation, or undefined when it is not finite (the trial is rejected). */
  private tryEvaluate(closure: () => NewtonEvaluation): FlatEvaluation | undefined {
    try {
      return this.evaluate(closure, true);
    } catch (e) {
      if (e instanceof NonFiniteError) return undefined;
      throw e;
    }
  }

  /**
   * Calls the closure and checks what it returned: NonFiniteError (an OptimRangeError) for a
   * non-finite Hessian, and with nonFinite 'error'/'skip' (or at a trial point) a non-finite loss
   * or gradient.
   */
  evaluate(closure: () => NewtonEvaluation, trial = false): FlatEvaluation {
    const r = closure();
    const n = this.flat.size;
    if (r === null || typeof r !== 'object') {
      throw new OptimTypeError(`Newton.step(): the closure must return { loss, hessian }, got ${describe(r)}`);
    }
    if (typeof r.loss !== 'number') throw new OptimTypeError(`Newton.step(): the closure's loss must be a number, got ${describe(r.loss)}`);
    const H = r.hessian;
    if (!isFloatArray(H)) {
      throw new OptimTypeError(`Newton.step(): the closure's hessian must be a Float32Array or Float64Array, got ${describe(H)}`);
    }
    if ((H instanceof Float32Array) !== (this.flat.dtype === 'float32')) {
      throw new OptimTypeError(`Newton.step(): the hessian is a ${describe(H)} but the params are ${this.flat.dtype}`);
    }
    if (H.length !== n * n) {
      throw new OptimRangeError(`Newton.step(): the hessian must have n*n = ${n * n} entries (n = ${n} values in all params), got ${H.length}`);
    }
    for (let i = 0; i < H.length; i++) {
      if (!Number.isFinite(H[i])) {
        throw new NonFiniteError(`Newton.step(): the hessian holds a non-finite value (${H[i]}) at row ${Math.floor(i / n)}, column ${i % n}; nothing moved`, '(hessian)', i, H[i]);
      }
    }
    const grad = this.flat.readGrad(new Float64Array(n));
    if (this.nonFinite !== 'ignore' || trial) {
      if (!Number.isFinite(r.loss)) {
        throw new NonFiniteError(`Newton.step(): the closure returned a non-finite loss (${r.loss}); nothing moved`, '', -1, r.loss);
      }
      for (let i = 0; i < n; i++) {
        if (!Number.isFinite(grad[i])) {
          throw new NonFiniteError(`Newton.step(): the gradient holds a non-finite value (${grad[i]}) at index ${i}; nothing moved`, '(gradient)', i, grad[i]);
        }
      }
    }
    return { loss: r.loss, grad, hessian: H };
  }

  /**
   * The step from an evaluation already in hand (minimize() uses this to avoid evaluating the
   * same point twice). Returns the info and, when the step evaluated its end point, that
   * evaluation.
   */
  stepFrom(ev: FlatEvaluation, closure: () => NewtonEvaluation): { info: NewtonStepInfo; after?: FlatEvaluation } {
    const g = this.paramGroups[0];
    const n = this.flat.size;
    const H = ev.hessian;
    const x0 = this.flat.readData(new Float64Array(n));
    let evaluations = 1;
    let lambda = 0;
    let flatDirections: number | undefined;
    let d: Float64Array;
    let positiveDefinite: boolean;

    if (g.damping === 'pinv') {
      const { values, vectors } = eigh(H, n);
      let maxMu = 0;
      for (let j = 0; j < n; j++) maxMu = Math.max(maxMu, Math.abs(values[j]));
      const eps = this.flat.dtype === 'float32' ? 2 ** -23 : 2 ** -52;
      const tol = (g.pinvRtol ?? Math.max(n, 1) * eps) * maxMu;
      positiveDefinite = n === 0 || values[0] > 0;
      d = new Float64Array(n);
      flatDirections = 0;
      for (let j = 0; j < n; j++) {
        const mu = values[j];
        if (Math.abs(mu) <= tol) {
          flatDirections++;
          continue;
        }
        let vg = 0;
        for (let i = 0; i < n; i++) vg += vectors[i * n + j] * ev.grad[i];
        const coef = -vg / mu;
        for (let i = 0; i < n; i++) d[i] += coef * vectors[i * n + j];
      }
    } else if (g.damping === 'adaptive') {
      positiveDefinite = factorDamped(H, n, 0) !== null;
      lambda = this.state.lambda;
      for (let attempt = 0; attempt < g.maxDampingTries && lambda <= LAMBDA_MAX; attempt++) {
        const L = factorDamped(H, n, lambda);
        if (L === null) {
          lambda *= g.lambdaFactor;
          continue;
        }
        const dir = solveNeg(L, ev.grad, n);
        this.flat.writeData(x0);
        this.flat.addScaled(g.lr, dir);
        const after = this.tryEvaluate(closure);
        evaluations++;
        // Equal counts as success: at a minimum the loss cannot fall, and λ must not grow.
        if (after !== undefined && after.loss <= ev.loss) {
          this.state.lambda = Math.max(lambda / g.lambdaFactor, Number.MIN_VALUE);
          this.state.step++;
          return {
            info: {
              loss: ev.loss, lossAfter: after.loss, decrease: ev.loss - after.loss, gradNorm: maxAbs(ev.grad),
              lambda, positiveDefinite, moved: true, t: g.lr, stepNorm: g.lr * maxAbs(dir), evaluations,
            },
            after,
          };
        }
        lambda *= g.lambdaFactor;
      }
      // No λ lowered the loss: stay put, with the gradient of the starting point restored.
      this.flat.writeData(x0);
      this.writeGrad(ev.grad);
      this.state.lambda = Math.min(lambda, LAMBDA_MAX);
      this.state.step++;
      return {
        info: {
          loss: ev.loss, gradNorm: maxAbs(ev.grad), lambda, positiveDefinite, moved: false, t: 0, stepNorm: 0, evaluations,
        },
      };
    } else {
      lambda = g.damping;
      const L = factorDampedOrThrow(H, n, lambda);
      positiveDefinite = lambda === 0 ? true : factorDamped(H, n, 0) !== null;
      d = solveNeg(L, ev.grad, n);
    }

    let t = g.lr;
    let after: FlatEvaluation | undefined;
    if (g.lineSearch === 'backtracking') {
      const gtd = dot(ev.grad, d);
      for (let k = 0; ; k++) {
        this.flat.writeData(x0);
        this.flat.addScaled(t, d);
        after = this.tryEvaluate(closure);
        evaluations++;
        if ((after !== undefined && after.loss <= ev.loss + g.c1 * t * gtd) || k + 1 >= g.maxBacktracks) break;
        t *= 0.5;
      }
      if (after === undefined) {
        // Every trial point evaluated to non-finite values: stay put, as 'adaptive' does.
        this.flat.writeData(x0);
        this.writeGrad(ev.grad);
        this.state.step++;
        return {
          info: { loss: ev.loss, gradNorm: maxAbs(ev.grad), lambda, positiveDefinite, moved: false, t: 0, stepNorm: 0, evaluations },
        };
      }
    } else {
      this.flat.addScaled(t, d);
    }
    this.state.step++;
    const info: NewtonStepInfo = {
      loss: ev.loss, gradNorm: maxAbs(ev.grad), lambda, positiveDefinite, moved: true, t, stepNorm: t * maxAbs(d), evaluations,
    };
    if (after) {
      info.lossAfter = after.loss;
      info.decrease = ev.loss - after.loss;
    }
    if (flatDirections !== undefined) info.flatDirections = flatDirections;
    return { info, after };
  }

  private writeGrad(grad: Float64Array): void {
    let o = 0;
    for (const p of this.flat.params) {
      p.grad.set(grad.subarray(o, o + p.grad.length));
      o += p.grad.length;
    }
  }
}

/** The lower Cholesky factor of H + λI, or null when it is not positive definite. */
function factorDamped(H: FloatArray, n: number, lambda: number): FloatArray | null {
  try {
    return factorDampedOrThrow(H, n, lambda);
  } catch (e) {
    if (e instanceof CholeskyError) return null;
    throw e;
  }
}

function factorDampedOrThrow(H: FloatArray, n: number, lambda: number): FloatArray {
  const M = H.slice();
  if (lambda !== 0) for (let i = 0; i < n; i++) M[i * n + i] += lambda;
  return cholesky(M, n, { inPlace: true });
}

/** d = −(LLᵀ)⁻¹ g, in float64. */
function solveNeg(L: FloatArray, grad: Float64Array, n: number): Float64Array {
  const rhs = L instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) rhs[i] = -grad[i];
  const x = choSolve(L, rhs, n);
  return x instanceof Float64Array ? x : Float64Array.from(x);
}
