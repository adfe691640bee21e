import type { FloatArray } from '../backend/types.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import type { Param } from '../param.js';
import { checkBoolean, checkChoice, checkInteger, checkOptions, checkRequired, describe, show } from '../validate.js';
import type { LoadReport, StateDict } from './optimizer.js';
import { OptimizerWrapper, setOwn } from './wrapper.js';
import { SparseAdam } from './sparse-adam.js';
import type { WrappedOptimizer, WrapperStateDict } from './wrapper.js';

/** The number of micro steps per update: a constant, or a function of the updates done so far. */
export type EveryKSchedule = number | ((gradientStep: number) => number);

/** `new MultiSteps(optimizer, options)`. */
export interface MultiStepsOptions {
  /**
   * k, the micro steps accumulated per update of the inner optimizer: an integer >= 1, or a
   * function of `gradientStep` (the updates done so far) returning one. Required.
   */
  everyKSchedule: EveryKSchedule;
  /** Average the accumulated gradients (default true); false sums them. */
  useGradMean?: boolean;
  /** The accumulator's dtype (default `'float32'`, as optax's `accumulator_dtype`, even beside float64 params). */
  accumulatorDtype?: 'float32' | 'float64';
}

/** `MultiSteps.stateDict()`: loadable by `loadStateDict`, and by `saveCheckpoint` as a state dict. */
export interface MultiStepsStateDict extends WrapperStateDict {
  wrapper: 'MultiSteps';
  /** Micro steps accumulated since the last update (optax's `mini_step`). */
  miniStep: number;
  /** Updates of the inner optimizer so far (optax's `gradient_step`). */
  gradientStep: number;
  /** Micro steps skipped for a non-finite gradient (`nonFinite: 'skip'`). */
  skippedSteps: number;
  /** Whether `acc` holds a mean (true) or a sum: loading into the other kind is refused. */
  useGradMean: boolean;
  /** The accumulator's dtype. */
  accumulatorDtype: 'float32' | 'float64';
  /** The accumulated gradients by param name (copies, of `accumulatorDtype`). */
  acc: Record<string, FloatArray>;
  /** The inner optimizer's state dict (optax's `inner_opt_state`). */
  inner: StateDict | WrapperStateDict;
}

/**
 * Gradient accumulation, as optax 0.2.8's `optax.MultiSteps(opt, every_k_schedule,
 * use_grad_mean, accumulator_dtype)`: each `step()` is a micro step that folds the gradients into
 * an accumulator; every k-th one steps the inner optimizer once with the accumulated gradient,
 * and the others change no param and no inner state.
 *
 * ```ts
 * const opt = new MultiSteps(new Adam([w, b], { lr: 1e-3 }), { everyKSchedule: 4 });
 * for (const batch of microBatches) { fillGrads(w, b, batch); opt.step(); opt.zeroGrad(); }
 * // the params move on every 4th step (opt.hasUpdated), with the mean of the 4 gradients
 * ```
 *
 * With n = `miniStep` (micro steps since the last update), k = everyKSchedule(`gradientStep`)
 * (or the constant) and acc the accumulator (zero at first and after each update):
 *
 * ```
 * a = acc + (g − acc)/(n + 1)                useGradMean (the default): a running mean
 * a = g + acc                                useGradMean false: the sum
 * if n + 1 ≥ k:                              the k-th micro step
 *   grad ← a (in the grad's dtype); the inner optimizer steps; grad ← g again
 *   acc ← 0;  n ← 0;  gradientStep ← gradientStep + 1
 * else acc ← a (in the accumulator's dtype);  n ← n + 1
 * ```
 *
 * `a` is computed in the wider of the grad's and the accumulator's dtypes (jax's promotion: a
 * float32 accumulator beside float64 grads computes in float64 and stores the mean rounded to
 * float32; each micro step rounds it again, and the k-th hands the inner optimizer the float64
 * value, not the stored one), with every operation rounded to float32 when both are float32.
 * k = 1 is therefore the inner optimizer itself, bit for bit. The inner optimizer sees the
 * accumulated gradient in its params' `grad` during its step (a buffer of the wrapper's, swapped
 * in and then out: `p.grad` is the caller's array again when `step()` returns).
 *
 * `hasUpdated` is optax's `has_updated`: the last micro step updated the params
 * (`miniStep === 0 && gradientStep > 0`).
 *
 * Non-finite gradients follow the inner optimizer's `nonFinite`, per micro step: under `'error'`
 * a NaN or infinite gradient (or an accumulated value that overflows its dtype) throws
 * NonFiniteError and under `'skip'` the micro step is skipped (counted in `skippedSteps`), both
 * changing nothing, as optax's `should_skip_update_fn=skip_not_finite` ("as if this mini-step
 * never happened"); `'ignore'` accumulates it. Every other refusal changes nothing either: a bad
 * param or grad, a schedule that throws or returns anything but an integer >= 1, and the inner
 * optimizer's own refusal at the k-th micro step (the accumulator stays as it was, so the step
 * can be retried). `paramGroups` and `zeroGrad()` are the inner optimizer's: a scheduler on the
 * wrapper sets the inner lr, which takes effect at the next update.
 *
 * Against optax: optax computes the inner update at every micro step and keeps it only at the
 * k-th (same result); it resets the accumulator to (1 − emit)·acc, i.e. ±0 (and NaN where acc
 * was not finite), here to +0; with a k that drops below n + 1 (a schedule that is not a function
 * of `gradientStep` alone, or a loaded state) it waits for n to wrap around k, here the next
 * micro step updates. `stateDict()` is `{ wrapper: 'MultiSteps', miniStep, gradientStep,
 * skippedSteps, useGradMean, accumulatorDtype, acc: { [name]: values }, inner }`; the schedule
 * itself is not saved (build the wrapper with the same options, then load).
 */
export class MultiSteps extends OptimizerWrapper {
  /** k, or the function of `gradientStep` giving it. */
  readonly everyKSchedule: EveryKSchedule;
  /** Mean (true) or sum (false) of the accumulated gradients. */
  readonly useGradMean: boolean;
  /** The accumulator's dtype. */
  readonly accumulatorDtype: 'float32' | 'float64';
  private mini = 0;
  private updates = 0;
  private skipped = 0;
  private readonly acc = new Map<Param, FloatArray>();
  /** The gradient handed to the inner optimizer at the k-th micro step, one per param (its dtype). */
  private readonly feed = new Map<Param, FloatArray>();

  constructor(optimizer: WrappedOptimizer, options: MultiStepsOptions) {
    super('MultiSteps', optimizer);
    // It accumulates the dense grads: a row-sparse optimizer would see the last micro step's only.
    let innermost: unknown = optimizer;
    while (innermost instanceof OptimizerWrapper) innermost = innermost.inner;
    if (innermost instanceof SparseAdam) {
      throw new OptimTypeError('MultiSteps(optimizer, options): SparseAdam takes row-sparse gradients (p.sparseGrad), which MultiSteps does not accumulate');
    }
    const o = checkOptions<MultiStepsOptions>(
      checkRequired(options, 'MultiSteps(optimizer, options): options'),
      ['everyKSchedule', 'useGradMean', 'accumulatorDtype'],
      'MultiSteps(optimizer, options)',
    );
    const where = 'MultiSteps: options.';
    const k: unknown = checkRequired(o.everyKSchedule, 'everyKSchedule', where);
    this.everyKSchedule = typeof k === 'function' ? (k as (n: number) => number) : checkInteger(k, 'everyKSchedule', where, 1);
    this.useGradMean = checkBoolean(o.useGradMean ?? true, 'useGradMean', where);
    this.accumulatorDtype = checkChoice(o.accumulatorDtype ?? 'float32', 'accumulatorDtype', where, ['float32', 'float64'] as const);
  }

  /** Micro steps accumulated since the last update (optax's `mini_step`). */
  get miniStep(): number {
    return this.mini;
  }

  /** Updates of the inner optimizer so far (optax's `gradient_step`). */
  get gradientStep(): number {
    return this.updates;
  }

  /** Whether the last micro step updated the params (optax's `has_updated`). */
  get hasUpdated(): boolean {
    return this.mini === 0 && this.updates > 0;
  }

  /** Micro steps skipped for a non-finite gradient (`nonFinite: 'skip'`), and k-th ones the inner optimizer skipped. */
  get skippedSteps(): number {
    return this.skipped;
  }

  /** The micro steps of the current update: k at `gradientStep`, checked. */
  private currentK(): number {
    const s = this.everyKSchedule;
    if (typeof s !== 'function') return s;
    const k: unknown = s(this.updates);
    if (!(typeof k === 'number' && Number.isSafeInteger(k) && k >= 1)) {
      const msg = `MultiSteps.step(): everyKSchedule(${this.updates}) must return an integer >= 1, got ${show(k)}`;
      throw typeof k === 'number' ? new OptimRangeError(msg) : new OptimTypeError(msg);
    }
    return k;
  }

  protected stepOnce<L>(closure: (() => L) | undefined): L | undefined {
    this.checkClosure(closure);
    const k = this.currentK();
    const loss = closure === undefined ? undefined : closure();
    const params = this.stepParams();
    const AccCtor = this.accumulatorDtype === 'float32' ? Float32Array : Float64Array;
    params.forEach((p) => {
      const grad: unknown = p.grad;
      const label = `MultiSteps.step(): param "${p.name}"`;
      if (grad === undefined || grad === null) throw new OptimTypeError(`${label}: grad is missing (got ${describe(grad)}); fill p.grad before step()`);
      if (!ArrayBuffer.isView(grad) || grad.constructor !== p.data.constructor) {
        throw new OptimTypeError(`${label}: grad must be a ${p.data.constructor.name} like its data, got ${describe(grad)}`);
      }
      if (p.grad.length !== p.data.length) {
        throw new OptimRangeError(`${label}: grad has length ${p.grad.length} but data has length ${p.data.length}${p.grad.length === 0 ? ' (detached?)' : ''}`);
      }
      const acc = this.acc.get(p);
      if (acc !== undefined) this.checkFits(p, acc, 'accumulated gradients', false);
    });
    const emit = this.mini + 1 >= k;
    const n1 = this.mini + 1;
    const check = this.inner.nonFinite !== 'ignore';
    // The accumulated values: into the feed (the k-th micro step) or checked only (the others), so
    // nothing is written before every gradient is known to fit.
    const accF32 = AccCtor === Float32Array;
    for (const p of params) {
      const acc = this.acc.get(p);
      const out = emit ? this.feedOf(p) : undefined;
      const bad = accumulate(p.grad, acc, accF32, out, emit ? p.grad instanceof Float32Array : accF32, n1, this.useGradMean, check);
      if (bad >= 0) return this.refuse(p, bad, acc === undefined ? 0 : acc[bad], accF32, n1, loss);
    }
    if (!emit) {
      for (const p of params) {
        let acc = this.acc.get(p);
        if (acc === undefined) {
          acc = new AccCtor(p.data.length);
          this.acc.set(p, acc);
        }
        accumulate(p.grad, acc, accF32, acc, accF32, n1, this.useGradMean, false);
      }
      this.mini++;
      return loss;
    }
    const grads = params.map((p) => p.grad);
    const skipped = this.inner.skippedSteps;
    try {
      for (const p of params) p.grad = this.feed.get(p)!;
      this.inner.step();
    } finally {
      params.forEach((p, i) => (p.grad = grads[i]));
    }
    if (this.inner.skippedSteps !== skipped) {
      this.skipped++;
      return loss;
    }
    for (const p of params) {
      const acc = this.acc.get(p);
      if (acc === undefined || acc.length !== p.data.length) this.acc.set(p, new AccCtor(p.data.length));
      else acc.fill(0);
    }
    this.mini = 0;
    this.updates++;
    return loss;
  }

  /** The feed buffer of `p`: its grad's dtype and length. */
  private feedOf(p: Param): FloatArray {
    let f = this.feed.get(p);
    if (f === undefined || f.constructor !== p.data.constructor || f.length !== p.data.length) {
      f = p.data instanceof Float32Array ? new Float32Array(p.data.length) : new Float64Array(p.data.length);
      this.feed.set(p, f);
    }
    return f;
  }

  /**
   * A micro step refused at `index` of `p` (`a` the accumulator there): NonFiniteError naming the
   * grad's value, or the accumulated value that overflowed ('error'), or a skip ('skip').
   */
  private refuse<L>(p: Param, index: number, a: number, accF32: boolean, n1: number, loss: L | undefined): L | undefined {
    if (this.inner.nonFinite === 'skip') {
      this.skipped++;
      return loss;
    }
    const g = p.grad[index];
    const tail = `; nothing was updated (nonFinite: 'error'; 'skip' skips such micro steps, 'ignore' accumulates them)`;
    if (!Number.isFinite(g)) {
      throw new NonFiniteError(`MultiSteps.step(): the grad of param "${p.name}" holds ${g} at index ${index}${tail}`, p.name, index, g);
    }
    const exact = accValue(g, a, n1, this.useGradMean, accF32 && p.grad instanceof Float32Array);
    const v = Number.isFinite(exact) ? Math.fround(exact) : exact;
    throw new NonFiniteError(
      `MultiSteps.step(): the accumulated gradient of param "${p.name}" overflows to ${v} at index ${index} (grad ${g}, accumulated ${a})${tail}`,
      p.name,
      index,
      v,
    );
  }

  /** `{ wrapper: 'MultiSteps', miniStep, gradientStep, skippedSteps, useGradMean, accumulatorDtype, acc, inner }`: a deep copy. */
  stateDict(): MultiStepsStateDict {
    const acc: Record<string, FloatArray> = {};
    for (const g of this.inner.paramGroups) {
      for (const p of g.params) {
        const a = this.acc.get(p);
        if (a !== undefined) setOwn(acc, p.name, a.slice());
      }
    }
    return {
      wrapper: 'MultiSteps',
      miniStep: this.mini,
      gradientStep: this.updates,
      skippedSteps: this.skipped,
      useGradMean: this.useGradMean,
      accumulatorDtype: this.accumulatorDtype,
      acc,
      inner: this.inner.stateDict(),
    };
  }

  /**
   * Restores a `stateDict()`: the counters, the accumulated gradients of the params here (each of
   * `accumulatorDtype` and its param's length; a param without saved ones starts from zero), and
   * the inner optimizer's state. A dict of the other `useGradMean` or `accumulatorDtype` is
   * refused. Throws OptimStateError, changing nothing, when any of it does not fit.
   */
  loadStateDict(stateDict: MultiStepsStateDict): LoadReport {
    const at = 'MultiSteps.loadStateDict';
    const sd = this.checkSavedDict(stateDict, ['miniStep', 'gradientStep', 'skippedSteps', 'useGradMean', 'accumulatorDtype', 'acc']);
    const mini = this.checkSavedCount(sd.miniStep, 'miniStep');
    const updates = this.checkSavedCount(sd.gradientStep, 'gradientStep');
    const skipped = this.checkSavedCount(sd.skippedSteps, 'skippedSteps');
    if (sd.useGradMean !== this.useGradMean) {
      throw new OptimStateError(`${at}: the state dict accumulates with useGradMean ${show(sd.useGradMean)} but this MultiSteps has useGradMean ${this.useGradMean}`);
    }
    if (sd.accumulatorDtype !== this.accumulatorDtype) {
      throw new OptimStateError(`${at}: the state dict has accumulatorDtype ${show(sd.accumulatorDtype)} but this MultiSteps has '${this.accumulatorDtype}'`);
    }
    const Ctor = this.accumulatorDtype === 'float32' ? Float32Array : Float64Array;
    const { buffers, unexpected } = this.checkSavedBuffers(sd.acc, 'acc', () => Ctor);
    let report: LoadReport;
    try {
      report = this.inner.loadStateDict(sd.inner as never);
    } catch (e) {
      if (e instanceof OptimStateError) throw new OptimStateError(`${at}: stateDict.inner: ${e.message}`);
      throw e;
    }
    this.mini = mini;
    this.updates = updates;
    this.skipped = skipped;
    this.acc.clear();
    for (const [p, a] of buffers) this.acc.set(p, a);
    return this.mergeReport(report, new Set(buffers.keys()), unexpected);
  }
}

/** One accumulated value: acc + (g − acc)/n1 (mean) or g + acc (sum), every operation rounded to float32 with `f32`. */
function accValue(g: number, a: number, n1: number, mean: boolean, f32: boolean): number {
  const f = Math.fround;
  if (f32) return mean ? f(a + f(f(g - a) / n1)) : f(g + a);
  return mean ? a + (g - a) / n1 : g + a;
}

/**
 * One param's accumulation (the rule in the class comment), acc absent read as zeros, in float64
 * unless the grad and the accumulator (`accF32`) are both float32. The values go to `out` when
 * given (rounded by its dtype; it may be `acc` itself). With `check`, first returns the first
 * index whose grad is not finite or whose value is not finite in the destination dtype (`outF32`:
 * float32), before anything is written; else -1.
 */
function accumulate(
  g: FloatArray,
  acc: FloatArray | undefined,
  accF32: boolean,
  out: FloatArray | undefined,
  outF32: boolean,
  n1: number,
  mean: boolean,
  check: boolean,
): number {
  const f32 = accF32 && g instanceof Float32Array;
  const n = g.length;
  if (check) {
    for (let i = 0; i < n; i++) {
      const gi = g[i];
      const v = accValue(gi, acc === undefined ? 0 : acc[i], n1, mean, f32);
      if (!(Number.isFinite(gi) && Number.isFinite(outF32 ? Math.fround(v) : v))) return i;
    }
  }
  if (out !== undefined) {
    for (let i = 0; i < n; i++) out[i] = accValue(g[i], acc === undefined ? 0 : acc[i], n1, mean, f32);
  }
  return -1;
}
