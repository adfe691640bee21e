import type { FloatArray } from '../backend/types.js';
import type { Param } from '../param.js';
import { CholeskyError, NonFiniteError, OptimRangeError, OptimTypeError } from '../errors.js';
import { cholesky, choSolve, eigh } from '../linalg/index.js';
import { ClosureOptimizer } from './closure-optimizer.js';
import type { ClosureStateDict } from './closure-optimizer.js';
import { dot, maxAbs } from './flat.js';
import type { NonFinitePolicy } from './optimizer.js';
import { Transaction } from './transaction.js';
import { checkFinite, describe, isFloatArray } from '../validate.js';

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

interface NewtonHyper {
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

/** Newton's state: λ carried between steps by 'adaptive', and the step count. */
export interface NewtonState {
  lambda: number;
  step: number;
}

/** `Newton.stateDict()`: a copy of the state, the hyperparameters and the param names. */
export type NewtonStateDict = ClosureStateDict<NewtonState, NewtonHyper>;

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
 * the addon has OpenBLAS). Options, the non-finite policy, the refused step and the state dict
 * (λ, the step count, `skippedSteps`, the hyperparameters) follow {@link ClosureOptimizer}.
 */
export class Newton extends ClosureOptimizer<NewtonHyper, NewtonState> {
  /** λ carried between steps by 'adaptive', and the step count. */
  declare readonly state: NewtonState;

  constructor(params: Param[], options: NewtonOptions = {}) {
    super(params, options, {
      name: 'Newton',
      returns: '{ loss, hessian }',
      hyperparameters: (o) => ({
        lr: o.lr ?? 1,
        damping: o.damping ?? 0,
        lambda0: o.lambda0 ?? 1e-3,
        lambdaFactor: o.lambdaFactor ?? 10,
        maxDampingTries: o.maxDampingTries ?? 40,
        lineSearch: o.lineSearch ?? null,
        c1: o.c1 ?? 1e-4,
        maxBacktracks: o.maxBacktracks ?? 30,
        pinvRtol: o.pinvRtol ?? null,
      }),
      state: { lambda: 'positive', step: 'count' },
    });
  }

  protected override initialState(g: NewtonHyper): NewtonState {
    return { lambda: g.lambda0, step: 0 };
  }

  protected override checkHyper(g: NewtonHyper, where: string): void {
    const lr = checkFinite(g.lr, 'lr', where);
    if (lr <= 0) throw new OptimRangeError(`${where}lr must be > 0, got ${lr}`);
    const d = g.damping;
    if (d !== 'adaptive' && d !== 'pinv') {
      if (typeof d !== 'number') {
        throw new OptimTypeError(`${where}damping must be a number >= 0, 'adaptive' or 'pinv', got ${describe(d)}`);
      }
      if (!(d >= 0) || !Number.isFinite(d)) {
        throw new OptimRangeError(`${where}damping must be a finite number >= 0, 'adaptive' or 'pinv', got ${d}`);
      }
    }
    const l0 = checkFinite(g.lambda0, 'lambda0', where);
    if (l0 <= 0) throw new OptimRangeError(`${where}lambda0 must be > 0, got ${l0}`);
    const f = checkFinite(g.lambdaFactor, 'lambdaFactor', where);
    if (f <= 1) throw new OptimRangeError(`${where}lambdaFactor must be > 1, got ${f}`);
    for (const k of ['maxDampingTries', 'maxBacktracks'] as const) {
      if (!Number.isInteger(g[k]) || g[k] < 1) throw new OptimRangeError(`${where}${k} must be an integer >= 1, got ${String(g[k])}`);
    }
    if (g.lineSearch !== null && g.lineSearch !== 'backtracking') {
      throw new OptimRangeError(`${where}lineSearch must be 'backtracking' or null, got ${String(g.lineSearch)}`);
    }
    const c1 = checkFinite(g.c1, 'c1', where);
    if (!(c1 > 0 && c1 < 1)) throw new OptimRangeError(`${where}c1 must be in (0, 1), got ${c1}`);
    if (g.pinvRtol !== null) {
      const r = checkFinite(g.pinvRtol, 'pinvRtol', where);
      if (r < 0) throw new OptimRangeError(`${where}pinvRtol must be >= 0, got ${r}`);
    }
  }

  /** One Newton step; the closure fills grads and returns `{ loss, hessian }`. */
  step(closure: () => NewtonEvaluation): NewtonStepInfo {
    return this.transact(
      closure,
      (c) => this.stepFrom(this.evaluate(c), c).info,
      (e) => ({
        loss: e.index === -1 ? e.value : Number.NaN, gradNorm: Number.NaN, lambda: 0, positiveDefinite: false,
        moved: false, t: 0, stepNorm: 0, evaluations: 1, skipped: true,
      }),
    );
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
    if (this.nonFinite !== 'ignore' || trial) this.checkEvaluation(r.loss);
    const grad = this.flat.readGrad(new Float64Array(n));
    return { loss: r.loss, grad, hessian: H };
  }

  /**
   * The step from an evaluation already in hand (minimize() uses this to avoid evaluating the
   * same point twice). Returns the info and, when the step evaluated its end point, that
   * evaluation. A step that does not move, or throws, leaves the params and grads of the
   * starting point bit for bit (a transaction over both).
   */
  stepFrom(ev: FlatEvaluation, closure: () => NewtonEvaluation): { info: NewtonStepInfo; after?: FlatEvaluation } {
    return Transaction.run((tx) => {
      for (const p of this.flat.params) {
        tx.saveArray(p.data);
        tx.saveArray(p.grad);
      }
      const r = this.search(ev, closure);
      if (!r.info.moved) tx.rollback();
      return r;
    });
  }

  private search(ev: FlatEvaluation, closure: () => NewtonEvaluation): { info: NewtonStepInfo; after?: FlatEvaluation } {
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
      // No λ lowered the loss: stay put (stepFrom restores the starting point and its gradient).
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
