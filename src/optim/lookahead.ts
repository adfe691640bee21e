import type { FloatArray } from '../backend/types.js';
import { OptimStateError } from '../errors.js';
import { param } from '../param.js';
import type { Param } from '../param.js';
import { checkChoice, checkInRange, checkInteger, checkOptions, checkRequired } from '../validate.js';
import type { LoadReport, StateDict } from './optimizer.js';
import { OptimizerWrapper, setOwn } from './wrapper.js';
import type { WrappedOptimizer, WrapperStateDict } from './wrapper.js';

/** `new Lookahead(optimizer, options)`. */
export interface LookaheadOptions {
  /** k: the slow weights move every k-th step (an integer >= 1; optax's `sync_period`). Required. */
  syncPeriod: number;
  /** α in [0, 1]: how far the slow weights move towards the fast ones (optax's `slow_step_size`). Required. */
  slowStepSize: number;
  /**
   * What the params hold after a synchronising step (default `'fast'`):
   * - `'fast'`: the fast weights as optax computes them, fast + (u − (1 − α)·d), which equal
   *   the new slow weights up to rounding (optax's `params.fast`);
   * - `'slow'`: a copy of the new slow weights, so fast = slow exactly after each sync (the
   *   paper's rule).
   */
  afterSync?: 'fast' | 'slow';
}

/** `Lookahead.stateDict()`: loadable by `loadStateDict`, and by `saveCheckpoint` as a state dict. */
export interface LookaheadStateDict extends WrapperStateDict {
  wrapper: 'Lookahead';
  /** Steps since the last synchronisation (optax's `steps_since_sync`). */
  stepsSinceSync: number;
  /** The slow weights by param name, for the params that have taken a step (copies). */
  slow: Record<string, FloatArray>;
  /** The fast optimizer's state dict (optax's `fast_state`). */
  inner: StateDict | WrapperStateDict;
}

/** A param's slow weights: a param handle (same name and dtype) and whether they have started. */
interface Slow {
  readonly param: Param;
  started: boolean;
}

/**
 * Lookahead (Zhang et al. 2019), as optax 0.2.8's `optax.lookahead(fast_optimizer, sync_period,
 * slow_step_size)`: the wrapped ("fast") optimizer steps the params as usual; every k-th step the
 * slow weights move a fraction α of the way towards the fast ones, and the fast weights restart
 * from there. The fast optimizer's state is kept (optax's `reset_state=False`).
 *
 * ```ts
 * const opt = new Lookahead(new Adam([w, b], { lr: 1e-3 }), { syncPeriod: 5, slowStepSize: 0.5 });
 * for (...) { fillGrads(w, b); opt.step(); opt.zeroGrad(); }   // gradients at the fast weights, p.data
 * evaluate(opt.slowParams);                                     // the slow weights: { name, data, grad }
 * ```
 *
 * With p the param (the fast weights φ), s its slow weights, n = `stepsSinceSync`, and u the
 * update the inner optimizer applied (p after its step − p before):
 *
 * ```
 * p ← p + u                                  the inner step (gradients taken at p, the fast weights)
 * if n + 1 ≥ k:                              a synchronising step (every k-th)
 *   d = p − s                                optax's fast + u − slow
 *   s ← s + α·d
 *   p ← p_before + (u − (1 − α)·d)           afterSync 'fast' (optax's fast params: = s up to rounding)
 *   p ← s                                    afterSync 'slow'
 *   n ← 0
 * else n ← n + 1
 * ```
 *
 * computed in the params' dtype (float32 params: every operation rounded to float32, α and 1 − α
 * too, as jax computes float32 arrays), in TypeScript after the inner step's kernel. optax's
 * slow update on the other steps, s + 0·d, leaves s as it is (but for a non-finite d), so it is
 * not computed.
 *
 * The slow weights of a param start as a copy of its data as its first step finds it (optax's
 * `LookaheadParams.init_synced` on the params the first update sees), so a param loaded after
 * the Lookahead was made starts right. `slowParams` are param handles over the slow weights, in
 * the order of the inner optimizer's params: until a param's first step they hold a copy of its
 * data as it was when they were first asked for (or the Lookahead made), and the first step
 * copies the data again.
 *
 * Options: `syncPeriod` k (integer >= 1) and `slowStepSize` α (in [0, 1]), both required as in
 * optax; `afterSync` (default `'fast'`, see LookaheadOptions). They are fixed at construction.
 *
 * A step refused by the inner optimizer (it threw: NonFiniteError under `nonFinite: 'error'`, a
 * bad hyperparameter or param) or skipped (`nonFinite: 'skip'`: counted in the inner's
 * `skippedSteps`) changes nothing here either: not the slow weights, not `stepsSinceSync`.
 * `paramGroups`, `nonFinite`, `skippedSteps` and `zeroGrad()` are the inner optimizer's.
 * `stateDict()` is `{ wrapper: 'Lookahead', stepsSinceSync, slow: { [name]: values }, inner }`;
 * `loadStateDict` checks all of it, the inner dict included, before it changes anything, and a
 * resumed run equals the uninterrupted one bit for bit.
 *
 * Against optax: one set of params (p holds the fast weights; the slow ones are `slowParams`)
 * rather than a `LookaheadParams` pair; `reset_state` is not offered.
 */
export class Lookahead extends OptimizerWrapper {
  /** k: the slow weights move every k-th step. */
  readonly syncPeriod: number;
  /** α: how far they move towards the fast weights. */
  readonly slowStepSize: number;
  /** What the params hold after a synchronising step. */
  readonly afterSync: 'fast' | 'slow';
  private sinceSync = 0;
  private readonly slow = new Map<Param, Slow>();
  /** Copies of the params before a synchronising step ('fast'), reused. */
  private readonly before = new Map<Param, FloatArray>();

  constructor(optimizer: WrappedOptimizer, options: LookaheadOptions) {
    super('Lookahead', optimizer);
    const o = checkOptions<LookaheadOptions>(checkRequired(options, 'Lookahead(optimizer, options): options'), ['syncPeriod', 'slowStepSize', 'afterSync'], 'Lookahead(optimizer, options)');
    const where = 'Lookahead: options.';
    this.syncPeriod = checkInteger(checkRequired(o.syncPeriod, 'syncPeriod', where), 'syncPeriod', where, 1);
    this.slowStepSize = checkInRange(checkRequired(o.slowStepSize, 'slowStepSize', where), 'slowStepSize', where, 0, 1);
    this.afterSync = checkChoice(o.afterSync ?? 'fast', 'afterSync', where, ['fast', 'slow'] as const);
    for (const p of this.stepParams()) this.slowOf(p);
  }

  /** Steps since the last synchronisation (optax's `steps_since_sync`): the next sync is at k − 1. */
  get stepsSinceSync(): number {
    return this.sinceSync;
  }

  /** The inner optimizer's skipped steps: a skipped step is not counted here either. */
  get skippedSteps(): number {
    return this.inner.skippedSteps;
  }

  /**
   * The slow weights as params (`{ name, data, grad }`, the names and dtypes of the params), one
   * per param of the inner optimizer, in order; the same handles from call to call.
   */
  get slowParams(): Param[] {
    return this.stepParams().map((p) => this.slowOf(p).param);
  }

  /** The slow weights of `p`, made (a copy of its data, not yet started) when there are none that fit. */
  private slowOf(p: Param): Slow {
    let s = this.slow.get(p);
    if (s === undefined || (!s.started && (s.param.data.constructor !== p.data.constructor || s.param.data.length !== p.data.length))) {
      s = { param: param(p.data.slice(), p.name), started: false };
      this.slow.set(p, s);
    }
    return s;
  }

  protected stepOnce<L>(closure: (() => L) | undefined): L | undefined {
    this.checkClosure(closure);
    const params = this.stepParams();
    // Everything read before the inner step is checked first; nothing of ours is written until it returned.
    const slows = params.map((p) => this.slowOf(p));
    params.forEach((p, i) => {
      if (slows[i].started) this.checkFits(p, slows[i].param.data, 'slow weights', true);
    });
    const starts = params.map((p, i) => (slows[i].started ? undefined : p.data.slice()));
    const sync = this.sinceSync + 1 >= this.syncPeriod;
    const keepBefore = sync && this.afterSync === 'fast';
    if (keepBefore) {
      for (const p of params) {
        let b = this.before.get(p);
        if (b === undefined || b.constructor !== p.data.constructor || b.length !== p.data.length) {
          b = p.data.slice();
          this.before.set(p, b);
        } else {
          b.set(p.data);
        }
      }
    }
    const skipped = this.inner.skippedSteps;
    const loss = this.inner.step(closure);
    if (this.inner.skippedSteps !== skipped) return loss;
    params.forEach((p, i) => {
      const start = starts[i];
      if (start !== undefined) {
        slows[i].param.data.set(start);
        slows[i].started = true;
      }
    });
    if (!sync) {
      this.sinceSync++;
      return loss;
    }
    params.forEach((p, i) => {
      const s = slows[i].param.data;
      const before = keepBefore ? this.before.get(p)! : undefined;
      if (p.data instanceof Float64Array) syncF64(p.data, s as Float64Array, before as Float64Array | undefined, this.slowStepSize);
      else syncF32(p.data, s as Float32Array, before as Float32Array | undefined, this.slowStepSize);
    });
    this.sinceSync = 0;
    return loss;
  }

  /** `{ wrapper: 'Lookahead', stepsSinceSync, slow, inner }`: a deep copy. */
  stateDict(): LookaheadStateDict {
    const slow: Record<string, FloatArray> = {};
    for (const g of this.inner.paramGroups) {
      for (const p of g.params) {
        const s = this.slow.get(p);
        if (s !== undefined && s.started) setOwn(slow, p.name, s.param.data.slice());
      }
    }
    return { wrapper: 'Lookahead', stepsSinceSync: this.sinceSync, slow, inner: this.inner.stateDict() };
  }

  /**
   * Restores a `stateDict()`: `stepsSinceSync`, the slow weights of the params here (each of its
   * param's dtype and length; a param without saved ones starts afresh at its next step), and the
   * inner optimizer's state. A saved `stepsSinceSync` >= k − 1 makes the next step synchronise.
   * Throws OptimStateError, changing nothing, when any of it does not fit.
   */
  loadStateDict(stateDict: LookaheadStateDict): LoadReport {
    const sd = this.checkSavedDict(stateDict, ['stepsSinceSync', 'slow']);
    const since = this.checkSavedCount(sd.stepsSinceSync, 'stepsSinceSync');
    const { buffers, unexpected } = this.checkSavedBuffers(sd.slow, 'slow', (p) =>
      p.data instanceof Float32Array ? Float32Array : Float64Array,
    );
    let report: LoadReport;
    try {
      report = this.inner.loadStateDict(sd.inner as never);
    } catch (e) {
      if (e instanceof OptimStateError) throw new OptimStateError(`Lookahead.loadStateDict: stateDict.inner: ${e.message}`);
      throw e;
    }
    this.sinceSync = since;
    for (const g of this.inner.paramGroups) {
      for (const p of g.params) {
        const saved = buffers.get(p);
        const s = this.slowOf(p);
        if (saved === undefined) {
          s.started = false;
        } else if (s.param.data.constructor === saved.constructor && s.param.data.length === saved.length) {
          s.param.data.set(saved);
          s.started = true;
        } else {
          this.slow.set(p, { param: param(saved, p.name), started: true });
        }
      }
    }
    return this.mergeReport(report, new Set(buffers.keys()), unexpected);
  }
}

/** The synchronisation in float64 (see the class comment); `before` for afterSync 'fast'. */
function syncF64(p: Float64Array, s: Float64Array, before: Float64Array | undefined, alpha: number): void {
  const beta = 1 - alpha;
  for (let i = 0; i < p.length; i++) {
    const d = p[i] - s[i];
    const si = s[i] + alpha * d;
    s[i] = si;
    if (before === undefined) {
      p[i] = si;
    } else {
      const b = before[i];
      p[i] = b + (p[i] - b - beta * d);
    }
  }
}

/** The same in float32: every operation rounded to float32, α and 1 − α too. */
function syncF32(p: Float32Array, s: Float32Array, before: Float32Array | undefined, alphaIn: number): void {
  const f = Math.fround;
  const alpha = f(alphaIn);
  const beta = f(1 - alphaIn);
  for (let i = 0; i < p.length; i++) {
    const d = f(p[i] - s[i]);
    const si = f(s[i] + f(alpha * d));
    s[i] = si;
    if (before === undefined) {
      p[i] = si;
    } else {
      const b = before[i];
      p[i] = f(b + f(f(p[i] - b) - f(beta * d)));
    }
  }
}
