import type { Param } from '../param.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { matmul } from '../linalg/matmul.js';
import { ClosureOptimizer } from './closure-optimizer.js';
import type { ClosureStateDict, StateSchema } from './closure-optimizer.js';
import { dot, maxAbs } from './flat.js';
import type { NonFinitePolicy } from './optimizer.js';
import { CountingObjective, lineSearchWolfe12 } from './line-search/wolfe12.js';
import type { FunctionValue } from './line-search/wolfe12.js';
import { checkFinite, checkInteger, checkNonNegative, describe, path } from '../validate.js';

/** The constants of the iteration (scipy's `_minimize_bfgs` options, camelCase). */
export interface BFGSSettings {
  /** Stop when ‖g‖ ≤ gtol (the norm below). */
  gtol: number;
  /** The order of ‖g‖: Infinity (max |gᵢ|, default), -Infinity (min |gᵢ|) or p > 0: (Σ|gᵢ|ᵖ)^(1/p). */
  norm: number;
  /** Stop when α‖p‖₂ ≤ xrtol·(xrtol + ‖x‖₂). */
  xrtol: number;
  /** Sufficient-decrease (Armijo) constant of the line search. */
  c1: number;
  /** Curvature constant of the line search; 0 < c1 < c2 < 1. */
  c2: number;
}

/** scipy's defaults. */
export const BFGS_DEFAULTS: Readonly<BFGSSettings> = { gtol: 1e-5, norm: Infinity, xrtol: 0, c1: 1e-4, c2: 0.9 };

export interface BFGSOptions extends Partial<BFGSSettings> {
  /** Iterations per `step()` (default 20, as torch's LBFGS). */
  maxIter?: number;
  /**
   * A NaN or infinite loss or gradient at any evaluation of the step (default 'error'): 'error'
   * puts the params and the state back where the step began and throws NonFiniteError; 'skip'
   * does the same but counts the step in `skippedSteps` and returns the starting loss; 'ignore'
   * does not look: the line searches see the values, as scipy's do.
   */
  nonFinite?: NonFinitePolicy;
}

type BFGSHyper = BFGSSettings & { maxIter: number };

/** BFGS's state; vectors are float64 over the concatenated params. */
export interface BFGSState {
  /** Closure calls, cumulative over all steps. */
  funcEvals: number;
  /** Iterations (moves), cumulative over all steps. */
  nIter: number;
  /** The inverse Hessian approximation H, n rows of n (absent before the first move: H₀ = I). */
  hessInv?: Float64Array[];
  /** scipy's old_old_fval: the loss at the iterate before the current one (sets the first trial step). */
  oldOldFval?: number;
}

/** `BFGS.stateDict()`: a deep copy of the state, the hyperparameters and the param names. */
export type BFGSStateDict = ClosureStateDict<BFGSState, BFGSHyper>;

const STATE: StateSchema = { funcEvals: 'count', nIter: 'count', hessInv: 'vectors?', oldOldFval: 'number?' };

/** The line search's fixed constants in `_minimize_bfgs` (amin, amax) and `line_search_wolfe1` (xtol). */
const LINE_SEARCH = { amin: 1e-100, amax: 1e100, xtol: 1e-14 };

/** Checks the settings; messages are `${where}${key} must be ...`. */
export function checkBFGSSettings(s: BFGSSettings, where: string): void {
  checkNonNegative(s.gtol, 'gtol', where);
  checkNonNegative(s.xrtol, 'xrtol', where);
  const c1 = checkFinite(s.c1, 'c1', where);
  const c2 = checkFinite(s.c2, 'c2', where);
  if (!(0 < c1 && c1 < c2 && c2 < 1)) {
    throw new OptimRangeError(`${path(where, 'c1')} and ${path(where, 'c2')} must satisfy 0 < c1 < c2 < 1, got c1 = ${c1}, c2 = ${c2}`);
  }
  const norm: unknown = s.norm;
  if (typeof norm !== 'number') throw new OptimTypeError(`${path(where, 'norm')} must be a number, got ${describe(norm)}`);
  if (!(Math.abs(norm) === Infinity || (norm > 0 && Number.isFinite(norm)))) {
    throw new OptimRangeError(`${path(where, 'norm')} must be Infinity, -Infinity or a finite number > 0, got ${norm}`);
  }
}

/** scipy's `vecnorm`: max |xᵢ| (ord ∞), min |xᵢ| (ord −∞), else (Σ |xᵢ|^ord)^(1/ord). NaN propagates. */
export function vecnorm(x: Float64Array, ord: number): number {
  if (ord === Infinity) return maxAbs(x);
  if (ord === -Infinity) {
    let m = Infinity;
    for (let i = 0; i < x.length; i++) {
      const v = Math.abs(x[i]);
      if (v < m || v !== v) m = v;
      if (m !== m) break;
    }
    return m;
  }
  let s = 0;
  if (ord === 2) {
    for (let i = 0; i < x.length; i++) s += x[i] * x[i];
    return Math.sqrt(s);
  }
  for (let i = 0; i < x.length; i++) s += Math.abs(x[i]) ** ord;
  return s ** (1 / ord);
}

/** Where the iteration stands: x_k, f_k, g_k, H_k (n×n row-major), f_{k−1} and k. */
export interface BFGSIterate {
  x: Float64Array;
  f: number;
  g: Float64Array;
  hessInv: Float64Array;
  oldOldFval: number;
  /** Moves made (scipy's k). */
  nit: number;
}

/**
 * Why an iteration ended the run: the gradient test (`gtol`), the step test (`xrtol`), no step
 * from either line search (`lineSearch`), a non-finite loss after the move (`nonFinite`; scipy's
 * warnflag 2 in both), or the callback (`callback`).
 */
export type BFGSStop = 'gtol' | 'xrtol' | 'lineSearch' | 'nonFinite' | 'callback';

/** The n×n identity, row-major. */
export function identity(n: number): Float64Array {
  const h = new Float64Array(n * n);
  for (let i = 0; i < n; i++) h[i * n + i] = 1;
  return h;
}

/**
 * The start of scipy's run at x0: f0 and g0 (one evaluation), H₀ = I, and the previous value
 * f0 + ‖g0‖₂/2, which makes the first trial step min(1, 1.01/‖g0‖₂).
 */
export function startIterate(obj: CountingObjective, x0: Float64Array, hessInv?: Float64Array, oldOldFval?: number): BFGSIterate {
  const f = obj.fun(x0);
  const g = obj.grad(x0);
  return {
    x: x0, f, g,
    hessInv: hessInv ?? identity(x0.length),
    oldOldFval: oldOldFval ?? f + Math.sqrt(dot(g, g)) / 2,
    nit: 0,
  };
}

/**
 * The BFGS update of the inverse Hessian with s = x_{k+1} − x_k and y = g_{k+1} − g_k, as scipy
 * computes it:
 *
 *   ρ = 1/(yᵀs)  (1000 when yᵀs = 0)
 *   H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
 *
 * The two dense products run through `matmul` (gemm on the selected backend); the result is a
 * new array.
 */
export function bfgsUpdate(H: Float64Array, s: Float64Array, y: Float64Array): Float64Array {
  const n = s.length;
  const ys = dot(y, s);
  const rho = ys === 0 ? 1000.0 : 1 / ys;
  const A1 = new Float64Array(n * n);
  const A2 = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const d = i === j ? 1 : 0;
      A1[i * n + j] = d - s[i] * y[j] * rho;
      A2[i * n + j] = d - y[i] * s[j] * rho;
    }
  }
  const HA2 = matmul(H, A2, { m: n, n, k: n });
  const out = matmul(A1, HA2, { m: n, n, k: n });
  for (let i = 0; i < n; i++) {
    const rs = rho * s[i];
    for (let j = 0; j < n; j++) out[i * n + j] = out[i * n + j] + rs * s[j];
  }
  return out;
}

/**
 * One pass of the loop of scipy's `_minimize_bfgs`, from `it` (changed in place):
 *
 *   p = −H g;  α from `_line_search_wolfe12` (dcsrch, else the zoom search);  s = αp;
 *   x ← x + s;  y = g′ − g;  k ← k + 1;  callback;  stop if ‖g′‖ ≤ gtol, if α‖p‖₂ ≤
 *   xrtol(xrtol + ‖x‖₂) or if f is not finite;  else H ← update(H, s, y).
 *
 * Returns why the run should stop (null: go on) and whether the line search fell back to the
 * zoom search. When no step is found, `it` is unchanged.
 */
export function bfgsIteration(
  obj: CountingObjective, it: BFGSIterate, s: BFGSSettings, onMove?: (it: BFGSIterate) => boolean,
): { stop: BFGSStop | null; fallback: boolean } {
  const n = it.x.length;
  const p = matmul(it.hessInv, it.g, { m: n, n: 1, k: n });
  for (let i = 0; i < n; i++) p[i] = -p[i];
  const ls = lineSearchWolfe12(obj, it.x, p, it.g, it.f, it.oldOldFval, { c1: s.c1, c2: s.c2, ...LINE_SEARCH });
  if (ls === null) return { stop: 'lineSearch', fallback: true };
  const alpha = ls.alpha;
  const step = new Float64Array(n);
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    step[i] = alpha * p[i];
    x[i] = it.x[i] + step[i];
  }
  const g = ls.g ?? obj.grad(x);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = g[i] - it.g[i];
  it.x = x;
  it.g = g;
  it.f = ls.f;
  it.oldOldFval = ls.f0;
  it.nit++;
  const result = (stop: BFGSStop | null) => ({ stop, fallback: ls.fallback });
  if (onMove && !onMove(it)) return result('callback');
  if (vecnorm(g, s.norm) <= s.gtol) return result('gtol');
  if (alpha * vecnorm(p, 2) <= s.xrtol * (s.xrtol + vecnorm(x, 2))) return result('xrtol');
  if (!Number.isFinite(it.f)) return result('nonFinite');
  it.hessInv = bfgsUpdate(it.hessInv, step, y);
  return result(null);
}

/** The rows of an n×n row-major matrix, as views. */
function rowsOf(h: Float64Array, n: number): Float64Array[] {
  return Array.from({ length: n }, (_, i) => h.subarray(i * n, (i + 1) * n));
}

/** The n×n matrix whose rows these are: the rows' own buffer when they lie in it in order, else a copy. */
function matrixOf(rows: Float64Array[], n: number): Float64Array {
  const first = rows[0];
  const inPlace = first.buffer.byteLength >= first.byteOffset + n * n * 8 &&
    rows.every((r, i) => r.buffer === first.buffer && r.byteOffset === first.byteOffset + i * n * 8);
  if (inPlace) return new Float64Array(first.buffer, first.byteOffset, n * n);
  const h = new Float64Array(n * n);
  rows.forEach((r, i) => h.set(r, i * n));
  return h;
}

/**
 * BFGS with a dense inverse-Hessian approximation, iterate for iterate as
 * `scipy.optimize.minimize(method='BFGS')` (scipy 1.17), its line search included.
 *
 * From H₀ = I, each iteration takes the direction p = −H g and a step α meeting the strong Wolfe
 * conditions (c1, c2): MINPACK's dcsrch (Moré–Thuente; xtol 1e-14, steps in [1e-100, 1e100], at
 * most 100 evaluations) first, and when it finds none, the Nocedal–Wright zoom search. The first
 * trial step is min(1, 1.01·2(f_k − f_{k−1})/gᵀp), with f_{−1} = f₀ + ‖g₀‖₂/2. Then, with
 * s = αp and y = g_{k+1} − g_k:
 *
 *   x_{k+1} = x_k + s
 *   ρ = 1/(yᵀs)   (1000 when yᵀs = 0)
 *   H_{k+1} = (I − ρ s yᵀ) H_k (I − ρ y sᵀ) + ρ s sᵀ
 *
 * The update is skipped on the iteration that stops: ‖g_{k+1}‖ ≤ gtol (`norm`: max |gᵢ| by
 * default) or α‖p‖₂ ≤ xrtol(xrtol + ‖x_{k+1}‖₂).
 *
 * `step(closure)`: the closure fills every param's grad and returns the loss. Like torch's LBFGS,
 * one step evaluates the closure at the params (that loss is returned), then runs up to
 * `maxIter` iterations, stopping early on the tests above or when no step is found; H and
 * f_{k−1} carry over to the next step. With a deterministic closure the iterates are therefore
 * scipy's whatever `maxIter` is; a step costs one evaluation more than scipy's iterations
 * (scipy never evaluates a point twice in a row, and neither does a step). The params end each
 * step at the last iterate. `minimize(fun, x0, { method: 'bfgs' })` runs the same iteration
 * with scipy's counts, messages and `hessInv`.
 *
 * Dense: H takes n² doubles and an iteration O(n³) (two n×n products, as scipy). Vectors are
 * float64 whatever the params' dtype (float32 params see each point rounded when it is
 * written). Options, the non-finite policy, the refused step and the state dict (H as rows,
 * f_{k−1}, the counters) follow {@link ClosureOptimizer}.
 */
export class BFGS extends ClosureOptimizer<BFGSHyper, BFGSState> {
  declare readonly state: BFGSState;
  /** The loss at the start of the step in progress (what a skipped step returns). */
  private startLoss = Number.NaN;

  constructor(params: Param[], options: BFGSOptions = {}) {
    super(params, options, {
      name: 'BFGS',
      returns: 'the loss',
      hyperparameters: (o) => ({
        maxIter: o.maxIter ?? 20,
        gtol: o.gtol ?? BFGS_DEFAULTS.gtol,
        norm: o.norm ?? BFGS_DEFAULTS.norm,
        xrtol: o.xrtol ?? BFGS_DEFAULTS.xrtol,
        c1: o.c1 ?? BFGS_DEFAULTS.c1,
        c2: o.c2 ?? BFGS_DEFAULTS.c2,
      }),
      state: STATE,
    });
  }

  protected override initialState(): BFGSState {
    return { funcEvals: 0, nIter: 0 };
  }

  protected override checkHyper(g: BFGSHyper, where: string): void {
    checkInteger(g.maxIter, 'maxIter', where, 1);
    checkBFGSSettings(g, where);
  }

  /** H has n rows (each of length n, checked by the schema) and comes with f_{k−1}. */
  protected override checkLoaded(st: BFGSState, _g: BFGSHyper, fail: (message: string) => never): void {
    const n = this.flat.size;
    if (st.hessInv !== undefined && st.hessInv.length !== n) fail(`stateDict.state.hessInv must have ${n} rows, got ${st.hessInv.length}`);
    if ((st.hessInv === undefined) !== (st.oldOldFval === undefined)) fail('stateDict.state.hessInv and oldOldFval must be both present or both absent');
  }

  /**
   * Evaluates the closure at the params, then runs up to maxIter iterations; returns the loss at
   * the start. With `nonFinite` 'error' or 'skip', a step that meets a NaN or infinite loss or
   * gradient at any evaluation is undone: params and state are restored exactly.
   */
  step(closure: () => number): number {
    return this.transact(
      closure,
      (c) => {
        this.startLoss = Number.NaN;
        return this.run(c, this.nonFinite !== 'ignore');
      },
      (e) => (Number.isNaN(this.startLoss) && e.index === -1 ? e.value : this.startLoss),
    );
  }

  private run(closure: () => number, check: boolean): number {
    const hyper = this.paramGroups[0];
    const st = this.state;
    const n = this.flat.size;
    const obj = new CountingObjective((x): FunctionValue => {
      this.flat.writeData(x);
      const v = closure();
      if (typeof v !== 'number') throw new OptimTypeError(`BFGS.step(): the closure must return the loss as a number, got ${describe(v)}`);
      if (check) this.checkEvaluation(v);
      st.funcEvals++;
      return { f: v, g: this.flat.readGrad(new Float64Array(n)) };
    });
    const it = startIterate(
      obj, this.flat.readData(new Float64Array(n)),
      st.hessInv === undefined ? undefined : matrixOf(st.hessInv, n), st.oldOldFval,
    );
    this.startLoss = it.f;
    for (let k = 0; k < hyper.maxIter && vecnorm(it.g, hyper.norm) > hyper.gtol; k++) {
      if (bfgsIteration(obj, it, hyper).stop !== null) break;
    }
    this.flat.writeData(it.x);
    if (it.nit > 0) {
      st.nIter += it.nit;
      st.hessInv = rowsOf(it.hessInv, n);
      st.oldOldFval = it.oldOldFval;
    }
    return this.startLoss;
  }
}
