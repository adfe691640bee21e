import type { Param } from '../param.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { ClosureOptimizer } from './closure-optimizer.js';
import type { ClosureStateDict, StateSchema } from './closure-optimizer.js';
import { dot, maxAbs, sumAbs } from './flat.js';
import type { NonFinitePolicy } from './optimizer.js';
import { checkFinite, describe } from '../validate.js';

export interface LBFGSOptions {
  /** Step length multiplier (torch `lr`, default 1). */
  lr?: number;
  /** Iterations per `step()` (default 20). */
  maxIter?: number;
  /** Function evaluations per `step()` (default maxIter * 1.25). */
  maxEval?: number;
  /** Stop when max|g| ≤ this (default 1e-7). */
  toleranceGrad?: number;
  /** Stop when the step or the loss change is below this (default 1e-9). */
  toleranceChange?: number;
  /** Curvature pairs kept (default 100). */
  historySize?: number;
  /** 'strong_wolfe' or null (fixed step lr; default null). */
  lineSearchFn?: 'strong_wolfe' | null;
  /**
   * A NaN or infinite loss or gradient at any evaluation of the step (default 'error'): 'error'
   * puts the params and the state back where the step began and throws NonFiniteError; 'skip'
   * does the same but counts the step in `skippedSteps` and returns the starting loss; 'ignore'
   * does not look (torch's behaviour).
   */
  nonFinite?: NonFinitePolicy;
}

type LBFGSHyper = Required<Omit<LBFGSOptions, 'nonFinite'>>;

/** The closure re-evaluates the model: fills every param's grad and returns the loss. */
export type LossClosure = () => number;

/** L-BFGS's state: torch's, camelCase; vectors are float64 over the concatenated params. */
export interface LBFGSState {
  funcEvals: number;
  nIter: number;
  d?: Float64Array;
  t?: number;
  oldDirs: Float64Array[];
  oldStps: Float64Array[];
  ro: number[];
  hDiag: number;
  prevFlatGrad?: Float64Array;
  prevLoss?: number;
}

/** `LBFGS.stateDict()`: a deep copy of the state, the hyperparameters and the param names. */
export type LBFGSStateDict = ClosureStateDict<LBFGSState, LBFGSHyper>;

const STATE: StateSchema = {
  funcEvals: 'count', nIter: 'count', d: 'vector?', t: 'finite?', oldDirs: 'vectors', oldStps: 'vectors', ro: 'finites',
  hDiag: 'finite', prevFlatGrad: 'vector?', prevLoss: 'number?',
};

/**
 * L-BFGS with torch.optim.LBFGS semantics (torch 1.13), camelCase options.
 *
 * Each `step(closure)` runs up to `maxIter` iterations: the direction d = −H·g from the two-loop
 * recursion over the last `historySize` pairs (s = t·d, y = Δg, kept when yᵀs > 1e-10, initial
 * scaling H₀ = yᵀs / yᵀy); the first step length is min(1, 1/‖g‖₁)·lr, later ones lr; with
 * `lineSearchFn: 'strong_wolfe'` the length satisfies the strong Wolfe conditions (c1 = 1e-4,
 * c2 = 0.9, cubic interpolation, at most 25 evaluations). It stops on max|g| ≤ toleranceGrad,
 * on max|t·d| ≤ toleranceChange or |Δloss| < toleranceChange, on maxIter or maxEval.
 * State (history, direction, counters) carries over between `step` calls, as in torch.
 * Vectors are float64 whatever the params' dtype. Options, the non-finite policy, the refused
 * step and the state dict follow {@link ClosureOptimizer}.
 */
export class LBFGS extends ClosureOptimizer<LBFGSHyper, LBFGSState> {
  /** torch's state: `funcEvals` and `nIter` are cumulative over all steps. */
  declare readonly state: LBFGSState;
  /** The loss at the start of the step in progress (what a skipped step returns). */
  private startLoss = Number.NaN;

  constructor(params: Param[], options: LBFGSOptions = {}) {
    super(params, options, {
      name: 'LBFGS',
      returns: 'the loss',
      hyperparameters: (o) => {
        const maxIter = o.maxIter ?? 20;
        return {
          lr: o.lr ?? 1,
          maxIter,
          maxEval: o.maxEval ?? Math.floor((maxIter * 5) / 4),
          toleranceGrad: o.toleranceGrad ?? 1e-7,
          toleranceChange: o.toleranceChange ?? 1e-9,
          historySize: o.historySize ?? 100,
          lineSearchFn: o.lineSearchFn ?? null,
        };
      },
      state: STATE,
    });
  }

  protected override initialState(): LBFGSState {
    return { funcEvals: 0, nIter: 0, oldDirs: [], oldStps: [], ro: [], hDiag: 1 };
  }

  protected override checkHyper(g: LBFGSHyper, where: string): void {
    const pos = (k: 'lr' | 'toleranceGrad' | 'toleranceChange', strict: boolean) => {
      const v = checkFinite(g[k], k, where);
      if (strict ? v <= 0 : v < 0) throw new OptimRangeError(`${where}${k} must be ${strict ? '> 0' : '>= 0'}, got ${v}`);
    };
    pos('lr', true);
    pos('toleranceGrad', false);
    pos('toleranceChange', false);
    for (const k of ['maxIter', 'maxEval', 'historySize'] as const) {
      const v = g[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
        throw new OptimRangeError(`${where}${k} must be an integer >= 1, got ${typeof v === 'number' ? v : describe(v)}`);
      }
    }
    if (g.lineSearchFn !== null && g.lineSearchFn !== 'strong_wolfe') {
      throw new OptimRangeError(`${where}lineSearchFn must be 'strong_wolfe' or null, got ${String(g.lineSearchFn)}`);
    }
  }

  /** The pairs come in threes, and no more than the history holds (it would never shrink). */
  protected override checkLoaded(st: LBFGSState, g: LBFGSHyper, fail: (message: string) => never): void {
    const m = st.oldDirs.length;
    if (st.oldStps.length !== m || st.ro.length !== m) {
      fail(`stateDict.state.oldDirs, oldStps and ro must have one length, got ${m}, ${st.oldStps.length}, ${st.ro.length}`);
    }
    if (m > g.historySize) fail(`stateDict.state.oldDirs holds ${m} pairs, more than historySize (${g.historySize})`);
  }

  /**
   * Runs up to maxIter iterations; returns the loss at the point where the step started. With
   * `nonFinite` 'error' or 'skip', a step that meets a NaN or infinite loss or gradient at any
   * evaluation is undone: params and state are restored exactly.
   */
  step(closure: LossClosure): number {
    return this.transact(
      closure,
      (c) => {
        this.startLoss = Number.NaN;
        return this.run(c, this.nonFinite !== 'ignore');
      },
      (e) => (Number.isNaN(this.startLoss) && e.index === -1 ? e.value : this.startLoss),
    );
  }

  private run(closure: LossClosure, check: boolean): number {
    const g = this.paramGroups[0];
    const { lr, maxIter, maxEval, toleranceGrad, toleranceChange, historySize } = g;
    const st = this.state;
    const n = this.flat.size;

    const evaluate = (): number => {
      const v = closure();
      if (typeof v !== 'number') throw new OptimTypeError(`LBFGS.step(): the closure must return the loss as a number, got ${describe(v)}`);
      if (check) this.checkEvaluation(v);
      return v;
    };

    const origLoss = evaluate();
    this.startLoss = origLoss;
    let loss = origLoss;
    let currentEvals = 1;
    st.funcEvals += 1;
    let flatGrad = this.flat.readGrad(new Float64Array(n));
    let optCond = maxAbs(flatGrad) <= toleranceGrad;
    if (optCond) return origLoss;

    let d = st.d;
    let t = st.t ?? 0;
    let nIter = 0;
    while (nIter < maxIter) {
      nIter++;
      st.nIter++;
      if (st.nIter === 1 || d === undefined) {
        d = flatGrad.map((v) => -v);
        st.oldDirs = [];
        st.oldStps = [];
        st.ro = [];
        st.hDiag = 1;
      } else {
        const prev = st.prevFlatGrad!;
        const y = new Float64Array(n);
        const s = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          y[i] = flatGrad[i] - prev[i];
          s[i] = d[i] * t;
        }
        const ys = dot(y, s);
        if (ys > 1e-10) {
          if (st.oldDirs.length === historySize) {
            st.oldDirs.shift();
            st.oldStps.shift();
            st.ro.shift();
          }
          st.oldDirs.push(y);
          st.oldStps.push(s);
          st.ro.push(1 / ys);
          st.hDiag = ys / dot(y, y);
        }
        const num = st.oldDirs.length;
        const al = new Array<number>(num);
        const q = flatGrad.map((v) => -v);
        for (let i = num - 1; i >= 0; i--) {
          al[i] = dot(st.oldStps[i], q) * st.ro[i];
          const yi = st.oldDirs[i];
          for (let j = 0; j < n; j++) q[j] -= al[i] * yi[j];
        }
        const r = q;
        for (let j = 0; j < n; j++) r[j] *= st.hDiag;
        for (let i = 0; i < num; i++) {
          const be = dot(st.oldDirs[i], r) * st.ro[i];
          const si = st.oldStps[i];
          for (let j = 0; j < n; j++) r[j] += (al[i] - be) * si[j];
        }
        d = r;
      }
      st.prevFlatGrad = Float64Array.from(flatGrad);
      st.prevLoss = loss;
      t = st.nIter === 1 ? Math.min(1, 1 / sumAbs(flatGrad)) * lr : lr;
      const gtd = dot(flatGrad, d);
      if (gtd > -toleranceChange) break;

      let lsEvals = 0;
      if (g.lineSearchFn === 'strong_wolfe') {
        const x0 = this.flat.readData(new Float64Array(n));
        const dir = d;
        const obj = (step: number): [number, Float64Array] => {
          this.flat.addScaled(step, dir);
          const f = evaluate();
          const grad = this.flat.readGrad(new Float64Array(n));
          this.flat.writeData(x0);
          return [f, grad];
        };
        const r = strongWolfe(obj, t, d, loss, flatGrad, gtd, toleranceChange);
        loss = r.f;
        flatGrad = r.g;
        t = r.t;
        lsEvals = r.evals;
        this.flat.addScaled(t, d);
        optCond = maxAbs(flatGrad) <= toleranceGrad;
      } else {
        this.flat.addScaled(t, d);
        if (nIter !== maxIter) {
          loss = evaluate();
          flatGrad = this.flat.readGrad(new Float64Array(n));
          optCond = maxAbs(flatGrad) <= toleranceGrad;
          lsEvals = 1;
        }
      }
      currentEvals += lsEvals;
      st.funcEvals += lsEvals;
      if (nIter === maxIter) break;
      if (currentEvals >= maxEval) break;
      if (optCond) break;
      let stepMax = 0;
      for (let i = 0; i < n; i++) stepMax = Math.max(stepMax, Math.abs(d[i] * t));
      if (stepMax <= toleranceChange) break;
      if (Math.abs(loss - st.prevLoss) < toleranceChange) break;
    }
    st.d = d;
    st.t = t;
    return origLoss;
  }
}

/** torch.optim.lbfgs._cubic_interpolate: the minimiser of the cubic through two points. */
function cubicInterpolate(x1: number, f1: number, g1: number, x2: number, f2: number, g2: number, bounds?: [number, number]): number {
  const [lo, hi] = bounds ?? (x1 <= x2 ? [x1, x2] : [x2, x1]);
  const d1 = g1 + g2 - (3 * (f1 - f2)) / (x1 - x2);
  const d2sq = d1 * d1 - g1 * g2;
  if (d2sq >= 0) {
    const d2 = Math.sqrt(d2sq);
    const minPos = x1 <= x2
      ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
      : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
    return Math.min(Math.max(minPos, lo), hi);
  }
  return (lo + hi) / 2;
}

/** torch.optim.lbfgs._strong_wolfe (c1 = 1e-4, c2 = 0.9, maxLs = 25). */
function strongWolfe(
  obj: (t: number) => [number, Float64Array],
  t0: number,
  d: Float64Array,
  f: number,
  g: Float64Array,
  gtd: number,
  toleranceChange: number,
): { f: number; g: Float64Array; t: number; evals: number } {
  const c1 = 1e-4;
  const c2 = 0.9;
  const maxLs = 25;
  let t = t0;
  const dNorm = maxAbs(d);
  let [fNew, gNew] = obj(t);
  let evals = 1;
  let gtdNew = dot(gNew, d);
  let tPrev = 0;
  let fPrev = f;
  let gPrev = g;
  let gtdPrev = gtd;
  let done = false;
  let lsIter = 0;
  let bracket: number[] = [];
  let bf: number[] = [];
  let bg: Float64Array[] = [];
  let bgtd: number[] = [];
  while (lsIter < maxLs) {
    if (fNew > f + c1 * t * gtd || (lsIter > 1 && fNew >= fPrev)) {
      bracket = [tPrev, t];
      bf = [fPrev, fNew];
      bg = [gPrev, gNew];
      bgtd = [gtdPrev, gtdNew];
      break;
    }
    if (Math.abs(gtdNew) <= -c2 * gtd) {
      bracket = [t];
      bf = [fNew];
      bg = [gNew];
      done = true;
      break;
    }
    if (gtdNew >= 0) {
      bracket = [tPrev, t];
      bf = [fPrev, fNew];
      bg = [gPrev, gNew];
      bgtd = [gtdPrev, gtdNew];
      break;
    }
    const minStep = t + 0.01 * (t - tPrev);
    const maxStep = t * 10;
    const tmp = t;
    t = cubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, [minStep, maxStep]);
    tPrev = tmp;
    fPrev = fNew;
    gPrev = gNew;
    gtdPrev = gtdNew;
    [fNew, gNew] = obj(t);
    evals++;
    gtdNew = dot(gNew, d);
    lsIter++;
  }
  if (lsIter === maxLs) {
    bracket = [0, t];
    bf = [f, fNew];
    bg = [g, gNew];
  }
  let insufProgress = false;
  let [low, high] = bf[0] <= bf[bf.length - 1] ? [0, 1] : [1, 0];
  while (!done && lsIter < maxLs) {
    if (Math.abs(bracket[1] - bracket[0]) * dNorm < toleranceChange) break;
    t = cubicInterpolate(bracket[0], bf[0], bgtd[0], bracket[1], bf[1], bgtd[1]);
    const bMax = Math.max(bracket[0], bracket[1]);
    const bMin = Math.min(bracket[0], bracket[1]);
    const eps = 0.1 * (bMax - bMin);
    if (Math.min(bMax - t, t - bMin) < eps) {
      if (insufProgress || t >= bMax || t <= bMin) {
        t = Math.abs(t - bMax) < Math.abs(t - bMin) ? bMax - eps : bMin + eps;
        insufProgress = false;
      } else {
        insufProgress = true;
      }
    } else {
      insufProgress = false;
    }
    [fNew, gNew] = obj(t);
    evals++;
    gtdNew = dot(gNew, d);
    lsIter++;
    if (fNew > f + c1 * t * gtd || fNew >= bf[low]) {
      bracket[high] = t;
      bf[high] = fNew;
      bg[high] = gNew;
      bgtd[high] = gtdNew;
      [low, high] = bf[0] <= bf[1] ? [0, 1] : [1, 0];
    } else {
      if (Math.abs(gtdNew) <= -c2 * gtd) {
        done = true;
      } else if (gtdNew * (bracket[high] - bracket[low]) >= 0) {
        bracket[high] = bracket[low];
        bf[high] = bf[low];
        bg[high] = bg[low];
        bgtd[high] = bgtd[low];
      }
      bracket[low] = t;
      bf[low] = fNew;
      bg[low] = gNew;
      bgtd[low] = gtdNew;
    }
  }
  return { f: bf[low], g: bg[low], t: bracket[low], evals };
}
