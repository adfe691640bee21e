import type { FloatArray } from './backend/types.js';
import { OptimRangeError, OptimTypeError } from './errors.js';
import { param } from './param.js';
import type { Param } from './param.js';
import { Newton } from './optim/newton.js';
import type { Damping, FlatEvaluation } from './optim/newton.js';
import { LBFGS } from './optim/lbfgs.js';
import { BFGS_DEFAULTS, bfgsIteration, checkBFGSSettings, startIterate, vecnorm } from './optim/bfgs.js';
import type { BFGSSettings, BFGSStop } from './optim/bfgs.js';
import { CountingObjective } from './optim/line-search/wolfe12.js';
import * as optimizers from './optim/index.js';
import { Optimizer } from './optim/optimizer.js';
import { maxAbs } from './optim/flat.js';
import { checkFloatArray, checkOptions, describe } from './validate.js';

/** What the objective returns at x: the loss, its gradient and (for 'newton') its Hessian. */
export interface Evaluation {
  loss: number;
  grad: FloatArray | ArrayLike<number>;
  /** n×n row-major, same dtype as x; required by method 'newton'. */
  hessian?: FloatArray;
}

/** 'newton', 'lbfgs', 'bfgs', or a first-order optimizer's class name in lower case ('adam', 'sgd', ...). */
export type Method = 'newton' | 'lbfgs' | 'bfgs' | Lowercase<FirstOrderName>;

/** The names of the exported first-order optimizer classes. */
type FirstOrderName = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [K in keyof typeof optimizers]: (typeof optimizers)[K] extends new (...args: any[]) => { zeroGrad(): void } ? K : never;
}[Exclude<keyof typeof optimizers, 'Optimizer'>];

/** One row of the history, also passed to `onIteration`. */
export interface IterationInfo {
  nit: number;
  loss: number;
  /** max|g| at this iterate. */
  gradNorm: number;
  /** Newton only: λ of the step taken from this iterate. */
  lambda?: number;
}

export interface MinimizeOptions {
  method?: Method;
  /** Success when max|g| ≤ gtol (default 1e-5, as scipy; 'bfgs' measures g in `norm`). */
  gtol?: number;
  /** Most iterations (default 100 for newton and lbfgs, 200·n for bfgs, 1000 for first-order methods). */
  maxIter?: number;
  /** Called after each iterate is evaluated; return false to stop. */
  onIteration?: (info: IterationInfo, x: FloatArray) => boolean | void;
  /** Learning rate for first-order methods and L-BFGS (defaults: the optimizer's). */
  lr?: number;
  /** Newton: damping (default 'adaptive'). */
  damping?: Damping;
  /** Newton: 'backtracking' line search (default null). */
  lineSearch?: 'backtracking' | null;
  /** L-BFGS: 'strong_wolfe' (default) or null. */
  lineSearchFn?: 'strong_wolfe' | null;
  /** L-BFGS: history size (default 10). */
  historySize?: number;
  /** BFGS: the order of the norm gtol tests (default Infinity: max |gᵢ|; -Infinity: min |gᵢ|; p > 0). */
  norm?: number;
  /** BFGS: stop when α‖p‖₂ ≤ xrtol·(xrtol + ‖x‖₂) (default 0). */
  xrtol?: number;
  /** BFGS: the line search's sufficient-decrease constant (default 1e-4). */
  c1?: number;
  /** BFGS: the line search's curvature constant (default 0.9); 0 < c1 < c2 < 1. */
  c2?: number;
  /** Other options passed to the first-order optimizer (betas, momentum, ...). */
  optimizerOptions?: Record<string, unknown>;
}

export interface MinimizeResult {
  x: FloatArray;
  /** The loss at x. */
  fun: number;
  /** max|g| at x. */
  gradNorm: number;
  nit: number;
  nfev: number;
  success: boolean;
  message: string;
  history: IterationInfo[];
  /** BFGS: the gradient at x (float64). */
  jac?: Float64Array;
  /**
   * BFGS: scipy's status: 0 success, 1 maxIter reached, 2 no step found or a non-finite loss
   * ("precision loss"), 3 NaN in the result, 99 stopped by onIteration.
   */
  status?: number;
  /**
   * BFGS: gradient evaluations, counted as scipy counts them. For 'bfgs', `nfev` counts loss
   * evaluations the same way: fun is called once per new point, and a point counts in nfev when
   * scipy would have evaluated the loss there, in njev when it would have evaluated the gradient.
   */
  njev?: number;
  /** BFGS: the final inverse Hessian approximation, n×n row-major (scipy's `hess_inv`). */
  hessInv?: Float64Array;
  /** BFGS: line searches in which dcsrch found no step and the zoom search ran (successful or not). */
  lineSearchFallbacks?: number;
}

type FirstOrderClass = new (params: Param[], options: Record<string, unknown>) => Optimizer<{ params: Param[]; lr: number }>;

/** Every first-order optimizer the package exports, by lower-case class name ('adam', 'sgd', ...). */
const FIRST_ORDER: Readonly<Record<string, FirstOrderClass>> = Object.fromEntries(
  Object.entries(optimizers)
    .filter(([, v]) => typeof v === 'function' && v.prototype instanceof Optimizer)
    .map(([k, v]) => [k.toLowerCase(), v as unknown as FirstOrderClass]),
);
const KEYS = [
  'method', 'gtol', 'maxIter', 'onIteration', 'lr', 'damping', 'lineSearch', 'lineSearchFn', 'historySize', 'norm', 'xrtol', 'c1', 'c2',
  'optimizerOptions',
];

/**
 * Minimises `fun` from `x0`, in the shape of scipy.optimize.minimize. `fun(x)` returns
 * `{ loss, grad, hessian? }`; x is the library's working copy (read it, don't keep it).
 * Methods: 'newton' (Cholesky-based, damped as `damping` says; needs the Hessian), 'lbfgs'
 * (torch semantics, strong Wolfe line search by default), 'bfgs' (scipy's BFGS iterate for
 * iterate, src/optim/bfgs.ts; its result adds scipy's `jac`, `njev`, `status` and `hessInv`), or a
 * first-order optimizer's name.
 * Stops with success when max|g| ≤ gtol; otherwise at maxIter or when a step can make no
 * progress. x0 is not modified.
 */
export function minimize(fun: (x: FloatArray) => Evaluation, x0: FloatArray, options: MinimizeOptions = {}): MinimizeResult {
  if (typeof fun !== 'function') throw new OptimTypeError(`minimize(fun, x0): fun must be a function, got ${describe(fun)}`);
  checkFloatArray(x0, 'x0', 'minimize(fun, x0): ');
  checkOptions(options, KEYS, 'minimize');
  const method = options.method ?? 'lbfgs';
  if (method !== 'newton' && method !== 'lbfgs' && method !== 'bfgs' && !(method in FIRST_ORDER)) {
    throw new OptimRangeError(`minimize: method must be 'newton', 'lbfgs', 'bfgs' or one of ${Object.keys(FIRST_ORDER).join(', ')}, got ${String(method)}`);
  }
  const gtol = options.gtol ?? 1e-5;
  if (typeof gtol !== 'number' || !(gtol >= 0)) throw new OptimRangeError(`minimize: gtol must be a number >= 0, got ${String(gtol)}`);
  const maxIter = options.maxIter ?? (method === 'newton' || method === 'lbfgs' ? 100 : method === 'bfgs' ? 200 * x0.length : 1000);
  if (!Number.isInteger(maxIter) || maxIter < 0) throw new OptimRangeError(`minimize: maxIter must be an integer >= 0, got ${String(maxIter)}`);
  if (options.onIteration !== undefined && typeof options.onIteration !== 'function') {
    throw new OptimTypeError(`minimize: onIteration must be a function, got ${describe(options.onIteration)}`);
  }
  const bfgs: BFGSSettings = {
    gtol,
    norm: options.norm ?? BFGS_DEFAULTS.norm,
    xrtol: options.xrtol ?? BFGS_DEFAULTS.xrtol,
    c1: options.c1 ?? BFGS_DEFAULTS.c1,
    c2: options.c2 ?? BFGS_DEFAULTS.c2,
  };
  if (method === 'bfgs') checkBFGSSettings(bfgs, 'minimize: ');

  const p = param(x0.slice(), 'x');
  const n = x0.length;
  let nfev = 0;
  const evaluate = (): Evaluation => {
    const r = fun(p.data);
    nfev++;
    if (r === null || typeof r !== 'object' || typeof r.loss !== 'number') {
      throw new OptimTypeError(`minimize: fun(x) must return { loss: number, grad, hessian? }, got ${describe(r)}`);
    }
    const g = r.grad;
    if (g === null || typeof g !== 'object' || typeof (g as ArrayLike<number>).length !== 'number' || g.length !== n) {
      throw new OptimRangeError(`minimize: fun(x).grad must be an array of length ${n}, got ${describe(g)}`);
    }
    p.grad.set(g);
    return r;
  };
  const history: IterationInfo[] = [];
  /** Records a row; `x` is the iterate the row describes (p.data unless the step already moved it). */
  const report = (info: IterationInfo, x: FloatArray = p.data): boolean => {
    history.push(info);
    return options.onIteration ? options.onIteration(info, x) !== false : true;
  };
  const done = (fun: number, gradNorm: number, nit: number, success: boolean, message: string): MinimizeResult => ({
    x: p.data, fun, gradNorm, nit, nfev, success, message, history,
  });

  if (method === 'newton') return runNewton();
  if (method === 'lbfgs') return runLBFGS();
  if (method === 'bfgs') return runBFGS();
  return runFirstOrder();

  function runNewton(): MinimizeResult {
    const newton = new Newton([p], {
      damping: options.damping ?? 'adaptive',
      lineSearch: options.lineSearch ?? null,
      ...(options.lr !== undefined ? { lr: options.lr } : {}),
    });
    const closure = () => {
      const r = evaluate();
      if (r.hessian === undefined) throw new OptimTypeError("minimize: method 'newton' needs fun(x) to return a hessian");
      return { loss: r.loss, hessian: r.hessian };
    };
    let ev: FlatEvaluation = newton.evaluate(closure);
    for (let nit = 0; ; nit++) {
      const gradNorm = maxAbs(ev.grad);
      const info: IterationInfo = { nit, loss: ev.loss, gradNorm };
      if (gradNorm <= gtol) {
        report(info);
        return done(ev.loss, gradNorm, nit, true, 'Optimization terminated successfully: max|g| <= gtol.');
      }
      if (nit >= maxIter) {
        report(info);
        return done(ev.loss, gradNorm, nit, false, 'Maximum number of iterations has been exceeded.');
      }
      // The row describes x_nit (its loss, its gradient); the step below moves p, so keep x_nit.
      const x = options.onIteration ? p.data.slice() : p.data;
      const { info: step, after } = newton.stepFrom(ev, closure);
      info.lambda = step.lambda;
      if (!report(info, x)) return finish(nit + 1, 'Stopped by onIteration.');
      if (!step.moved) return done(ev.loss, gradNorm, nit, false, 'Desired error not necessarily achieved: no damping lowered the loss.');
      ev = after ?? newton.evaluate(closure);
    }
  }

  function runLBFGS(): MinimizeResult {
    const opt = new LBFGS([p], {
      maxIter: 1,
      maxEval: 1 << 30,
      toleranceGrad: gtol,
      // torch's 1e-9 default stops on |gᵀd| < 1e-9, long before a tight gtol is met; minimize
      // judges progress itself (gtol, maxIter, a step that does not move).
      toleranceChange: 0,
      historySize: options.historySize ?? 10,
      lineSearchFn: options.lineSearchFn === undefined ? 'strong_wolfe' : options.lineSearchFn,
      ...(options.lr !== undefined ? { lr: options.lr } : {}),
    });
    for (let nit = 0; ; nit++) {
      if (nit >= maxIter) {
        const r = evaluate();
        const gradNorm = maxAbs(Float64Array.from(p.grad));
        report({ nit, loss: r.loss, gradNorm });
        return done(r.loss, gradNorm, nit, gradNorm <= gtol, gradNorm <= gtol
          ? 'Optimization terminated successfully: max|g| <= gtol.'
          : 'Maximum number of iterations has been exceeded.');
      }
      // One L-BFGS iteration per step() call (its history carries over). The step's first
      // closure call evaluates the current iterate: that is the row this iteration reports.
      let startGradNorm = NaN;
      let first = true;
      const before = p.data.slice();
      const loss = opt.step(() => {
        const l = evaluate().loss;
        if (first) {
          startGradNorm = maxAbs(Float64Array.from(p.grad));
          first = false;
        }
        return l;
      });
      const keepGoing = report({ nit, loss, gradNorm: startGradNorm }, before);
      if (startGradNorm <= gtol) return done(loss, startGradNorm, nit, true, 'Optimization terminated successfully: max|g| <= gtol.');
      if (!keepGoing) return finish(nit + 1, 'Stopped by onIteration.');
      if (p.data.every((v, i) => v === before[i])) {
        return finish(nit + 1, 'Desired error not necessarily achieved: the line search made no progress.');
      }
    }
  }

  /**
   * scipy's `_minimize_bfgs` loop: the iteration, its stopping tests and its status and message.
   * Non-finite values go to the line searches as in scipy. onIteration sees x0 (nit 0) and each
   * iterate after its move, where scipy calls its callback; returning false ends the run with
   * status 99.
   */
  function runBFGS(): MinimizeResult {
    const obj = new CountingObjective((x) => {
      p.data.set(x);
      const r = evaluate();
      return { f: r.loss, g: Float64Array.from(r.grad as ArrayLike<number>) };
    });
    const it = startIterate(obj, Float64Array.from(p.data));
    const row = (): IterationInfo => ({ nit: it.nit, loss: it.f, gradNorm: maxAbs(it.g) });
    let stop: BFGSStop | null = report(row()) ? null : 'callback';
    let fallbacks = 0;
    while (stop === null && vecnorm(it.g, bfgs.norm) > bfgs.gtol && it.nit < maxIter) {
      const r = bfgsIteration(obj, it, bfgs, () => {
        p.data.set(it.x);
        return report(row());
      });
      if (r.fallback) fallbacks++;
      stop = r.stop;
    }
    p.data.set(it.x);
    let status: number;
    let message: string;
    if (stop === 'callback') {
      status = 99;
      message = 'Stopped by onIteration.';
    } else if (stop === 'lineSearch' || stop === 'nonFinite') {
      status = 2;
      message = 'Desired error not necessarily achieved due to precision loss.';
    } else if (it.nit >= maxIter) {
      status = 1;
      message = 'Maximum number of iterations has been exceeded.';
    } else if (Number.isNaN(vecnorm(it.g, bfgs.norm)) || Number.isNaN(it.f) || it.x.some(Number.isNaN)) {
      status = 3;
      message = 'NaN result encountered.';
    } else {
      status = 0;
      message = 'Optimization terminated successfully.';
    }
    return {
      x: p.data, fun: it.f, gradNorm: maxAbs(it.g), nit: it.nit, nfev: obj.nfev, success: status === 0, message, history,
      jac: it.g, status, njev: obj.njev, hessInv: it.hessInv, lineSearchFallbacks: fallbacks,
    };
  }

  function runFirstOrder(): MinimizeResult {
    const Ctor = FIRST_ORDER[method as keyof typeof FIRST_ORDER];
    const opts: Record<string, unknown> = { ...(options.optimizerOptions ?? {}) };
    if (options.lr !== undefined) opts.lr = options.lr;
    if (method === 'sgd' && opts.lr === undefined) opts.lr = 1e-3;
    const opt = new (Ctor as unknown as new (ps: Param[], o: Record<string, unknown>) => { step(): void })([p], opts);
    for (let nit = 0; ; nit++) {
      const r = evaluate();
      const gradNorm = maxAbs(Float64Array.from(p.grad));
      const info: IterationInfo = { nit, loss: r.loss, gradNorm };
      const keepGoing = report(info);
      if (gradNorm <= gtol) return done(r.loss, gradNorm, nit, true, 'Optimization terminated successfully: max|g| <= gtol.');
      if (nit >= maxIter) return done(r.loss, gradNorm, nit, false, 'Maximum number of iterations has been exceeded.');
      if (!keepGoing) return done(r.loss, gradNorm, nit, false, 'Stopped by onIteration.');
      opt.step();
    }
  }

  /** Evaluates the final point so fun and gradNorm describe x itself. */
  function finish(nit: number, message: string): MinimizeResult {
    const r = evaluate();
    return done(r.loss, maxAbs(Float64Array.from(p.grad)), nit, false, message);
  }

}
