import type { Param } from '../param.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import { checkFiniteNumber, dot, FlatParams, maxAbs, sumAbs } from './flat.js';
import { firstNonFinite } from '../backend/types.js';
import { checkNonFinitePolicy } from './optimizer.js';
import type { NonFinitePolicy } from './optimizer.js';
import { describe } from './validate.js';

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

interface LBFGSGroup extends Required<Omit<LBFGSOptions, 'lineSearchFn' | 'nonFinite'>> {
  params: Param[];
  lineSearchFn: 'strong_wolfe' | null;
}

const KEYS = new Set(['lr', 'maxIter', 'maxEval', 'toleranceGrad', 'toleranceChange', 'historySize', 'lineSearchFn', 'nonFinite']);

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
export interface LBFGSStateDict {
  state: LBFGSState;
  paramGroups: [Record<string, unknown> & { params: string[] }];
  skippedSteps: number;
}

const STATE_KEYS = new Set(['funcEvals', 'nIter', 'd', 't', 'oldDirs', 'oldStps', 'ro', 'hDiag', 'prevFlatGrad', 'prevLoss']);

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
 * Vectors are float64 whatever the params' dtype.
 */
export class LBFGS {
  readonly paramGroups: [LBFGSGroup];
  /** torch's state: `funcEvals` and `nIter` are cumulative over all steps. */
  readonly state: LBFGSState = { funcEvals: 0, nIter: 0, oldDirs: [], oldStps: [], ro: [], hDiag: 1 };
  /** The policy for NaN and infinite losses and gradients. */
  readonly nonFinite: NonFinitePolicy;
  private readonly flat: FlatParams;
  private skipped = 0;
  /** The loss at the start of the step in progress (what a skipped step returns). */
  private startLoss = Number.NaN;

  constructor(params: Param[], options: LBFGSOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new OptimTypeError(`LBFGS: options must be an object, got ${describe(options)}`);
    }
    for (const k of Object.keys(options)) {
      if (!KEYS.has(k)) throw new OptimTypeError(`LBFGS: unknown option "${k}" (options are ${[...KEYS].join(', ')})`);
    }
    this.nonFinite = checkNonFinitePolicy(options.nonFinite ?? 'error', 'LBFGS: options.nonFinite');
    this.flat = new FlatParams(params, 'LBFGS');
    const maxIter = options.maxIter ?? 20;
    const group: LBFGSGroup = {
      params,
      lr: options.lr ?? 1,
      maxIter,
      maxEval: options.maxEval ?? Math.floor((maxIter * 5) / 4),
      toleranceGrad: options.toleranceGrad ?? 1e-7,
      toleranceChange: options.toleranceChange ?? 1e-9,
      historySize: options.historySize ?? 100,
      lineSearchFn: options.lineSearchFn ?? null,
    };
    LBFGS.checkGroup(group);
    this.paramGroups = [group];
  }

  private static checkGroup(g: LBFGSGroup): void {
    const pos = (k: 'lr' | 'toleranceGrad' | 'toleranceChange', strict: boolean) => {
      const v = checkFiniteNumber(g[k], `LBFGS: ${k}`);
      if (strict ? v <= 0 : v < 0) throw new OptimRangeError(`LBFGS: ${k} must be ${strict ? '> 0' : '>= 0'}, got ${v}`);
    };
    pos('lr', true);
    pos('toleranceGrad', false);
    pos('toleranceChange', false);
    for (const k of ['maxIter', 'maxEval', 'historySize'] as const) {
      const v = g[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
        throw new OptimRangeError(`LBFGS: ${k} must be an integer >= 1, got ${typeof v === 'number' ? v : describe(v)}`);
      }
    }
    if (g.lineSearchFn !== null && g.lineSearchFn !== 'strong_wolfe') {
      throw new OptimRangeError(`LBFGS: lineSearchFn must be 'strong_wolfe' or null, got ${String(g.lineSearchFn)}`);
    }
  }

  zeroGrad(): void {
    for (const p of this.flat.params) p.grad.fill(0);
  }

  /**
   * A deep copy of the state (curvature pairs, direction, counters), the hyperparameters and the
   * param names: what a checkpoint needs for a resumed run to equal the uninterrupted one.
   */
  stateDict(): LBFGSStateDict {
    const st = this.state;
    const copy = (v: Float64Array | undefined) => (v === undefined ? undefined : v.slice());
    const state: LBFGSState = {
      funcEvals: st.funcEvals, nIter: st.nIter, oldDirs: st.oldDirs.map((v) => v.slice()),
      oldStps: st.oldStps.map((v) => v.slice()), ro: [...st.ro], hDiag: st.hDiag,
    };
    if (st.d !== undefined) state.d = copy(st.d);
    if (st.t !== undefined) state.t = st.t;
    if (st.prevFlatGrad !== undefined) state.prevFlatGrad = copy(st.prevFlatGrad);
    if (st.prevLoss !== undefined) state.prevLoss = st.prevLoss;
    const { params, ...hyper } = this.paramGroups[0];
    return { state, paramGroups: [{ ...hyper, params: params.map((p) => p.name) }], skippedSteps: this.skipped };
  }

  /**
   * Restores a `stateDict()`: checks everything (vector lengths against these params, counters,
   * hyperparameters) before changing anything; throws OptimStateError when it does not fit.
   */
  loadStateDict(sd: LBFGSStateDict): void {
    const name = 'LBFGS.loadStateDict';
    const n = this.flat.size;
    if (sd === null || typeof sd !== 'object') throw new OptimStateError(`${name}(stateDict): expected an object, got ${describe(sd)}`);
    const st = sd.state as unknown as Record<string, unknown>;
    if (st === null || typeof st !== 'object') throw new OptimStateError(`${name}: stateDict.state must be an object, got ${describe(st)}`);
    for (const k of Object.keys(st)) if (!STATE_KEYS.has(k)) throw new OptimStateError(`${name}: unknown state "${k}"`);
    const whole = (k: string) => {
      const v = st[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new OptimStateError(`${name}: state.${k} must be a whole number >= 0, got ${String(v)}`);
      return v;
    };
    const finite = (k: string, optional: boolean) => {
      const v = st[k];
      if (optional && v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new OptimStateError(`${name}: state.${k} must be a finite number, got ${String(v)}`);
      return v;
    };
    const vector = (v: unknown, where: string) => {
      if (!(v instanceof Float64Array) || v.length !== n) {
        throw new OptimStateError(`${name}: ${where} must be a Float64Array of length ${n} (the params' total size), got ${describe(v)}${ArrayBuffer.isView(v) ? ` of length ${(v as Float64Array).length}` : ''}`);
      }
      return v.slice();
    };
    const list = (k: string) => {
      const v = st[k];
      if (!Array.isArray(v)) throw new OptimStateError(`${name}: state.${k} must be an array, got ${describe(v)}`);
      return v;
    };
    const funcEvals = whole('funcEvals');
    const nIter = whole('nIter');
    const hDiag = finite('hDiag', false)!;
    const t = finite('t', true);
    const prevLoss = st.prevLoss === undefined ? undefined : (st.prevLoss as number);
    if (prevLoss !== undefined && typeof prevLoss !== 'number') throw new OptimStateError(`${name}: state.prevLoss must be a number`);
    const oldDirs = list('oldDirs').map((v, i) => vector(v, `state.oldDirs[${i}]`));
    const oldStps = list('oldStps').map((v, i) => vector(v, `state.oldStps[${i}]`));
    const ro = list('ro').map((v, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new OptimStateError(`${name}: state.ro[${i}] must be a finite number`);
      return v;
    });
    if (oldStps.length !== oldDirs.length || ro.length !== oldDirs.length) {
      throw new OptimStateError(`${name}: state.oldDirs, oldStps and ro must have one length, got ${oldDirs.length}, ${oldStps.length}, ${ro.length}`);
    }
    const d = st.d === undefined ? undefined : vector(st.d, 'state.d');
    const prevFlatGrad = st.prevFlatGrad === undefined ? undefined : vector(st.prevFlatGrad, 'state.prevFlatGrad');
    const groups = (sd as { paramGroups?: unknown }).paramGroups;
    let hyper: Record<string, unknown> = {};
    if (groups !== undefined) {
      if (!Array.isArray(groups) || groups.length !== 1 || groups[0] === null || typeof groups[0] !== 'object') {
        throw new OptimStateError(`${name}: stateDict.paramGroups must be an array of one group`);
      }
      const { params: _names, ...rest } = groups[0] as Record<string, unknown>;
      for (const k of Object.keys(rest)) if (!KEYS.has(k) || k === 'nonFinite') throw new OptimStateError(`${name}: unknown hyperparameter "${k}"`);
      try {
        LBFGS.checkGroup({ ...this.paramGroups[0], ...rest } as LBFGSGroup);
      } catch (e) {
        throw new OptimStateError(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
      hyper = rest;
    }
    const skipped = (sd as { skippedSteps?: unknown }).skippedSteps ?? 0;
    if (typeof skipped !== 'number' || !Number.isInteger(skipped) || skipped < 0) {
      throw new OptimStateError(`${name}: stateDict.skippedSteps must be a whole number >= 0, got ${String(skipped)}`);
    }
    // Everything checked: apply.
    Object.assign(this.paramGroups[0], hyper);
    const target = this.state;
    for (const k of Object.keys(target) as Array<keyof LBFGSState>) delete target[k];
    Object.assign(target, { funcEvals, nIter, oldDirs, oldStps, ro, hDiag });
    if (d !== undefined) target.d = d;
    if (t !== undefined) target.t = t;
    if (prevFlatGrad !== undefined) target.prevFlatGrad = prevFlatGrad;
    if (prevLoss !== undefined) target.prevLoss = prevLoss;
    this.skipped = skipped;
  }

  /** Steps refused for a non-finite loss or gradient under `nonFinite: 'skip'`. */
  get skippedSteps(): number {
    return this.skipped;
  }

  /**
   * Runs up to maxIter iterations; returns the loss at the point where the step started. With
   * `nonFinite` 'error' or 'skip', a step that meets a NaN or infinite loss or gradient at any
   * evaluation is undone: params and state are restored exactly (from copies taken at the start).
   */
  step(closure: LossClosure): number {
    if (typeof closure !== 'function') {
      throw new OptimTypeError('LBFGS.step(closure): closure must be a function that fills grads and returns the loss');
    }
    LBFGS.checkGroup(this.paramGroups[0]);
    this.flat.check('LBFGS.step()');
    if (this.nonFinite === 'ignore') return this.run(closure, false);
    const x0 = this.flat.readData(new Float64Array(this.flat.size));
    const st = this.state;
    const saved = { ...st, oldDirs: [...st.oldDirs], oldStps: [...st.oldStps], ro: [...st.ro] };
    this.startLoss = Number.NaN;
    try {
      return this.run(closure, true);
    } catch (e) {
      if (!(e instanceof NonFiniteError)) throw e;
      this.flat.writeData(x0);
      for (const k of Object.keys(st) as Array<keyof typeof st>) if (!(k in saved)) delete st[k];
      Object.assign(st, saved);
      if (this.nonFinite === 'error') throw e;
      this.skipped++;
      return Number.isNaN(this.startLoss) && e.index === -1 ? e.value : this.startLoss;
    }
  }

  private run(closure: LossClosure, check: boolean): number {
    const g = this.paramGroups[0];
    const { lr, maxIter, maxEval, toleranceGrad, toleranceChange, historySize } = g;
    const st = this.state;
    const n = this.flat.size;
    const flat = this.flat;

    const evaluate = (): number => {
      const v = closure();
      if (typeof v !== 'number') throw new OptimTypeError(`LBFGS.step(): the closure must return the loss as a number, got ${describe(v)}`);
      if (check) {
        if (!Number.isFinite(v)) {
          throw new NonFiniteError(`LBFGS.step(): the closure returned a non-finite loss (${v}); params and state are as before the step (nonFinite: '${this.nonFinite}')`, '', -1, v);
        }
        for (const p of flat.params) {
          const i = firstNonFinite(p.grad);
          if (i >= 0) {
            throw new NonFiniteError(
              `LBFGS.step(): the grad of param "${p.name}" holds ${p.grad[i]} at index ${i}; params and state are as before the step (nonFinite: '${this.nonFinite}')`,
              p.name, i, p.grad[i],
            );
          }
        }
      }
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
