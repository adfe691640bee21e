import { defineKernel } from '../backend/kernel.js';
import type { FloatArray, StateArray } from '../backend/types.js';
import { OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import type { Param } from '../param.js';
import { checkInteger, describe, isFloatArray, isPlainObject, path, show } from '../validate.js';
import type { Where } from '../validate.js';
import { Optimizer, refuseBfloat16State } from './optimizer.js';
import type { GroupBase, LoadReport, OptimizerOptions, OptimizerSpec, ParamState, ParamsInput, StateDict } from './optimizer.js';
import { PowerSequence, powi } from './powi.js';

/**
 * The schedule-free kernel (native/kernels/scheduleFree.h), for SGD and (flag `adam`) AdamW as
 * the base. p holds the training point y. State: z, nu (`adam`). Every operation rounds on its
 * own, as optax runs them; `init` (the first step) reads z as y.
 *
 * ```
 * adam: v = (1−b2)·g² + b2·v;  d = (1 / (√(v / bc2) + ε))·g;   else d = g
 * wd:   d = d + wd·y
 * z' = z + negScheduledLr·d
 * x  = (1 − ck)·((y − (1−b1)·z)·invB1) + ck·z'       (invB1 = 1/b1: see ScheduleFreeAdamW)
 * y' = b1·x + (1−b1)·z';  z = z';  p = y + (y' − y)
 * ```
 */
export const SCHEDULE_FREE_KERNEL = defineKernel({
  name: 'scheduleFree',
  scalars: ['oneMinusB2', 'b2', 'bc2', 'eps', 'wd', 'negScheduledLr', 'b1', 'oneMinusB1', 'invB1', 'ck', 'oneMinusCk'],
  flags: ['adam', 'wd', 'init'],
  state: [{ name: 'z' }, { name: 'nu', when: 'adam' }],
  reference(p, g, [z, v], s, on) {
    const { oneMinusB2, b2, bc2, eps, wd, negScheduledLr, b1, oneMinusB1, invB1, ck, oneMinusCk } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const yi = p[i];
      const zi = on.init ? yi : z[i];
      let d = gi;
      if (on.adam) {
        const vi = oneMinusB2 * (gi * gi) + b2 * v[i];
        v[i] = vi;
        d = (1 / (Math.sqrt(v[i] / bc2) + eps)) * gi;
      }
      if (on.wd) d = d + wd * yi;
      const zn = zi + negScheduledLr * d;
      z[i] = zn;
      const xi = oneMinusCk * ((yi - oneMinusB1 * zi) * invB1) + ck * z[i];
      const yn = b1 * xi + oneMinusB1 * z[i];
      p[i] = yi + (yn - yi);
    }
  },
});

const K = SCHEDULE_FREE_KERNEL;

/** The options both schedule-free optimizers take. */
export interface ScheduleFreeOptions {
  lr?: number;
  /** Steps of linear warm-up of the lr from 0 (optax's `warmup_steps`); 0: none (see the class comments). */
  warmupSteps?: number;
  /** β: the interpolation between the average x and the base iterate z (0 < β ≤ 1). */
  b1?: number;
  weightDecay?: number;
  /** The weight of step t in the average x is max_lr_t ** weightLrPower. */
  weightLrPower?: number;
}

export type ScheduleFreeSGDOptions = ScheduleFreeOptions;

export interface ScheduleFreeAdamWOptions extends ScheduleFreeOptions {
  b2?: number;
  eps?: number;
}

export interface ScheduleFreeSGDGroup extends GroupBase, Required<ScheduleFreeSGDOptions> {}
export interface ScheduleFreeAdamWGroup extends GroupBase, Required<ScheduleFreeAdamWOptions> {}

/** Which point `p.data` holds: the training point y, or (after `eval()`) the evaluation point x. */
export type ScheduleFreeMode = 'train' | 'eval';

/**
 * A schedule-free optimizer's state dict: the base's, and in eval mode `mode: 'eval'` with each
 * param's training point y saved beside its state (`state[name].y`), since its params then hold x.
 */
export interface ScheduleFreeStateDict extends StateDict {
  mode?: 'eval';
}

type AnyGroup = ScheduleFreeSGDGroup | ScheduleFreeAdamWGroup;

/**
 * The lr of step t (t = 1, 2, ...) after a linear warm-up of `warmup` steps, in optax's
 * arithmetic (`linear_schedule(0, lr, warmup)` at t: (0 − lr)·(1 − min(t, k)/k) + lr), in double.
 */
export function warmupLr(lr: number, warmup: number, t: number): number {
  if (warmup === 0) return lr;
  return (0 - lr) * (1 - Math.min(t, warmup) / warmup) + lr;
}

/**
 * The weight of the new z' in the average, optax's `ck`: weight / (weightSum + weight), with
 * optax's `nan_to_num` (0/0, before any positive lr, gives 0), NaN when either term is NaN.
 */
export function averageWeight(weight: number, total: number): number {
  if (Number.isNaN(weight) || Number.isNaN(total)) return NaN;
  const ck = weight / total;
  return Number.isNaN(ck) ? 0 : ck;
}

/**
 * What ScheduleFreeSGD and ScheduleFreeAdamW share: the wrapper's arithmetic (optax's
 * `schedule_free`), the counters, and the train/eval switch. See ScheduleFreeAdamW.
 */
abstract class ScheduleFree<G extends AnyGroup> extends Optimizer<G> {
  private readonly className: string;
  private readonly b2Pow = new PowerSequence();
  /** The counters after this step, computed with its scalars and stored by `commit`. */
  private readonly next = { weightSum: 0, maxLr: 0 };
  private evalMode = false;
  /** initBuffer created a z for the param whose state is being built (initFlags reads it). */
  private zCreated = false;
  /** Each param's training point y while the params hold x (eval mode); buffers kept for reuse. */
  private readonly saved = new Map<Param, FloatArray>();
  /** The params whose `saved` buffer holds their y (eval mode). */
  private readonly held: Param[] = [];

  protected constructor(params: unknown, options: unknown, spec: OptimizerSpec<G>) {
    // The eval point and z are kept in the param's dtype: no bfloat16 state storage.
    refuseBfloat16State(spec.name, options, `${spec.name} keeps z, a point of the param space, in the param's dtype`);
    super(params, options, spec);
    this.className = spec.name;
  }

  /** `'train'` (p.data holds y, where gradients are taken) or `'eval'` (p.data holds x). */
  get mode(): ScheduleFreeMode {
    return this.evalMode ? 'eval' : 'train';
  }

  /**
   * Puts the evaluation point x = (y − (1 − β)·z)/β (optax.contrib.schedule_free_eval_params,
   * computed as XLA does: times 1/β) into every param that has state, keeping its y; params not
   * stepped yet hold x = y already. Nothing changes if a group's options are invalid or a param's
   * data no longer fits its state (the error names it). Does nothing in eval mode.
   */
  eval(): this {
    if (this.evalMode) return this;
    const work: Array<[Param, FloatArray, FloatArray, number]> = [];
    this.paramGroups.forEach((g, i) => {
      this.checkHyper(g, i);
      for (const p of g.params) {
        const z = this.state.get(p)?.z as FloatArray | undefined;
        if (z === undefined) continue;
        const data = this.checkPoint(p, z, `${this.className}.eval(): paramGroups[${i}]: param "${p.name}"`);
        work.push([p, data, z, g.b1]);
      }
    });
    this.held.length = 0;
    for (const [p, y, z, b1] of work) {
      let keep = this.saved.get(p);
      if (keep === undefined || keep.constructor !== y.constructor || keep.length !== y.length) {
        keep = y instanceof Float32Array ? new Float32Array(y.length) : new Float64Array(y.length);
        this.saved.set(p, keep);
      }
      keep.set(y);
      evalPoint(y, y, z, b1);
      this.held.push(p);
    }
    this.evalMode = true;
    return this;
  }

  /**
   * Puts back the training point y that `eval()` kept, bit for bit (whatever was written into the
   * params meanwhile is dropped). Does nothing in train mode.
   */
  train(): this {
    if (!this.evalMode) return this;
    for (const p of this.held) {
      const y = this.saved.get(p)!;
      if (!isFloatArray(p.data) || p.data.constructor !== y.constructor || p.data.length !== y.length) {
        throw new OptimRangeError(
          `${this.className}.train(): param "${p.name}" has data ${isFloatArray(p.data) ? `a ${p.data.constructor.name} of length ${p.data.length}` : describe(p.data)} but its training point y is a ${y.constructor.name} of length ${y.length}; nothing was changed`,
        );
      }
    }
    for (const p of this.held) p.data.set(this.saved.get(p)!);
    this.held.length = 0;
    this.evalMode = false;
    return this;
  }

  /**
   * One step at the training point (see Optimizer.step). Refused in eval mode, before the hooks
   * and the closure run: the gradient must be taken at y; call `train()` first.
   */
  override step<L = number>(closure?: () => L): L | undefined {
    if (this.evalMode) {
      throw new OptimStateError(
        `${this.className}.step(): the params hold the evaluation point x (eval() was called); call train() first, so that the gradient is taken at the training point y`,
      );
    }
    return super.step(closure);
  }

  /** The base's state dict; in eval mode also `mode: 'eval'` and each param's y (`state[name].y`). */
  override stateDict(): ScheduleFreeStateDict {
    const sd: ScheduleFreeStateDict = super.stateDict();
    if (!this.evalMode) return sd;
    for (const p of this.held) {
      const st = sd.state[p.name];
      if (st !== undefined && this.state.has(p)) st.y = this.saved.get(p)!.slice();
    }
    sd.mode = 'eval';
    return sd;
  }

  /**
   * Restores a state dict (see Optimizer.loadStateDict), and the mode it was saved in: a dict
   * saved in eval mode brings each param's y back (its params, restored with it, hold x), one
   * saved in train mode sets train mode. Everything is checked before anything changes.
   */
  override loadStateDict(sd: ScheduleFreeStateDict): LoadReport {
    const name = `${this.className}.loadStateDict`;
    if (!isPlainObject(sd) || !isPlainObject(sd.state)) return super.loadStateDict(sd);
    const { mode, ...rest } = sd;
    if (mode !== undefined && mode !== 'eval') {
      throw new OptimStateError(`${name}: stateDict.mode must be 'eval' or absent, got ${show(mode)}`);
    }
    const byName = new Map<string, Param>();
    for (const g of this.paramGroups) for (const p of g.params) byName.set(p.name, p);
    const state: Record<string, ParamState> = {};
    const ys = new Map<Param, FloatArray>();
    for (const [pname, st] of Object.entries(sd.state)) {
      if (!isPlainObject(st) || !('y' in st)) {
        if (mode === 'eval' && isPlainObject(st) && byName.has(pname)) {
          throw new OptimStateError(`${name}: stateDict.state[${JSON.stringify(pname)}]: missing "y" (a state dict saved in eval mode holds each param's training point)`);
        }
        state[pname] = st as ParamState;
        continue;
      }
      const { y, ...others } = st;
      const where = `${name}: stateDict.state[${JSON.stringify(pname)}].y`;
      if (mode !== 'eval') throw new OptimStateError(`${where}: a training point is saved only in eval mode (stateDict.mode 'eval')`);
      const p = byName.get(pname);
      if (p !== undefined) {
        if (!isFloatArray(y) || y.constructor !== p.data.constructor) {
          throw new OptimStateError(`${where} is a ${describe(y)} but param "${pname}" is a ${p.data.constructor.name}`);
        }
        if (y.length !== p.data.length) throw new OptimStateError(`${where} has length ${y.length} but param "${pname}" has length ${p.data.length}`);
        ys.set(p, y);
      }
      state[pname] = others as ParamState;
    }
    const report = super.loadStateDict({ ...rest, state } as StateDict);
    this.held.length = 0;
    for (const [p, y] of ys) {
      let keep = this.saved.get(p);
      if (keep === undefined || keep.constructor !== y.constructor || keep.length !== y.length) {
        keep = y.slice();
        this.saved.set(p, keep);
      } else {
        keep.set(y);
      }
      this.held.push(p);
    }
    this.evalMode = mode === 'eval';
    return report;
  }

  protected override checkHyper(g: G, where: Where): void {
    super.checkHyper(g, where);
    checkInteger(g.warmupSteps, 'warmupSteps', where, 0);
    if (!(g.b1 > 0)) {
      throw new OptimRangeError(`Invalid b1 value: ${g.b1} (${path(where, 'b1')} must be in (0, 1]: the evaluation point x = (y − (1 − b1)·z)/b1 divides by it)`);
    }
  }

  /** `adam` for AdamW; `wd` when weightDecay ≠ 0. */
  protected override flagsOf(g: G): number {
    return (this.adam ? K.flag.adam : 0) | (g.weightDecay !== 0 ? K.flag.wd : 0);
  }

  /** z starts as y: a step that just created z reads it from p (`init`). */
  protected override initBuffer(name: string, view: StateArray): StateArray {
    if (name === 'z') this.zCreated = true;
    return view;
  }

  protected override initFlags(): number {
    const init = this.zCreated;
    this.zCreated = false;
    return init ? K.flag.init : 0;
  }

  /** Whether the base is AdamW (else SGD). */
  protected abstract readonly adam: boolean;

  protected override fillScalars(g: G, _flags: number, state: ParamState, out: Float64Array): number {
    const t = (state.step as number) + 1;
    const lr = warmupLr(g.lr, g.warmupSteps, t);
    const maxLr = Math.max(state.maxLr as number, lr);
    const weight = powi(maxLr, g.weightLrPower); // C's pow, as XLA's, for a whole power
    const total = (state.weightSum as number) + weight;
    const ck = averageWeight(weight, total);
    out[K.slot.negScheduledLr] = -lr;
    out[K.slot.invB1] = 1 / g.b1;
    out[K.slot.ck] = ck;
    out[K.slot.oneMinusCk] = 1 - ck;
    if (this.adam) {
      out[K.slot.bc2] = 1 - this.b2Pow.pow((g as ScheduleFreeAdamWGroup).b2, t);
    } else {
      // Not read without `adam`; finite, so the kernel tables' draws of these scalars stay meaningful.
      out[K.slot.oneMinusB2] = 1;
      out[K.slot.b2] = 0;
      out[K.slot.bc2] = 1;
      out[K.slot.eps] = 1;
    }
    this.next.weightSum = total;
    this.next.maxLr = maxLr;
    return 0;
  }

  protected override commit(states: ParamState[]): void {
    const { weightSum, maxLr } = this.next;
    for (let i = 0; i < states.length; i++) {
      const st = states[i];
      st.step = (st.step as number) + 1;
      st.weightSum = weightSum;
      st.maxLr = maxLr;
    }
  }

  /** A param's data, checked against its state's z (same dtype and length). */
  private checkPoint(p: Param, z: FloatArray, label: string): FloatArray {
    const data: unknown = p.data;
    if (!isFloatArray(data)) throw new OptimTypeError(`${label}: data must be a Float32Array or Float64Array, got ${describe(data)}`);
    if (data.constructor !== z.constructor) throw new OptimTypeError(`${label}: data is a ${data.constructor.name} but its state z is a ${z.constructor.name}`);
    if (data.length !== z.length) throw new OptimRangeError(`${label}: data has length ${data.length} but its state z ${z.length}`);
    return data;
  }
}

/**
 * x = (y − (1 − β)·z)/β elementwise into `out`, as XLA computes optax's division by the scalar β:
 * times 1/β (bit for bit with the recordings); each operation rounded in the arrays' dtype.
 */
function evalPoint(out: FloatArray, y: FloatArray, z: FloatArray, b1: number): void {
  const n = out.length;
  if (out instanceof Float32Array) {
    const f = Math.fround;
    const inv = f(1 / f(b1));
    const omb = f(1 - b1);
    for (let i = 0; i < n; i++) out[i] = f(y[i] - f(omb * z[i])) * inv;
  } else {
    const inv = 1 / b1;
    const omb = 1 - b1;
    for (let i = 0; i < n; i++) out[i] = (y[i] - omb * z[i]) * inv;
  }
}

const COUNTERS = ['step', 'weightSum', 'maxLr'];

const SGD_SPEC: OptimizerSpec<ScheduleFreeSGDGroup> = {
  name: 'ScheduleFreeSGD',
  kernel: K,
  defaults: { lr: 1, warmupSteps: 0, b1: 0.9, weightDecay: 0, weightLrPower: 2 },
  counters: COUNTERS,
  unit: ['b1'],
};

const ADAMW_SPEC: OptimizerSpec<ScheduleFreeAdamWGroup> = {
  name: 'ScheduleFreeAdamW',
  kernel: K,
  defaults: { lr: 0.0025, warmupSteps: 0, b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0, weightLrPower: 2 },
  counters: COUNTERS,
  unit: ['b1', 'b2'],
};

/**
 * Schedule-free SGD (Defazio et al. 2024, "The Road Less Scheduled"), as
 * optax.contrib.schedule_free_sgd (optax 0.2.8): SGD without momentum as the base, its momentum
 * replaced by an interpolation (y) and an average (x) of the iterates (z). The rule is
 * ScheduleFreeAdamW's with d_t = g_t (+ λ y_{t-1} when weightDecay λ ≠ 0).
 *
 * Options (default): `lr` γ 1 (optax's default), `warmupSteps` 0, `b1` β 0.9, `weightDecay` λ 0
 * (optax's None: none), `weightLrPower` 2. State: `step`, `weightSum`, `maxLr`, `z`.
 *
 * `train()`, `eval()`, `mode`, the warm-up and the state dict: as ScheduleFreeAdamW.
 */
export class ScheduleFreeSGD extends ScheduleFree<ScheduleFreeSGDGroup> {
  protected readonly adam = false;

  constructor(params: ParamsInput<ScheduleFreeSGDOptions>, options: ScheduleFreeSGDOptions & OptimizerOptions = {}) {
    super(params, options, SGD_SPEC);
  }
}

/**
 * Schedule-free AdamW (Defazio et al. 2024, "The Road Less Scheduled"), as
 * optax.contrib.schedule_free_adamw (optax 0.2.8): RMSprop-style scaling with bias correction
 * and no first moment as the base (optax's scale_by_rms(b2, eps, eps_in_sqrt=False,
 * bias_correction=True)), wrapped by optax.contrib.schedule_free. p holds y, where the gradient
 * is taken; the state holds z; x, the point to evaluate, follows from them.
 *
 * ```
 * γ_t = γ·min(t, k)/k  (warmupSteps k > 0),  γ  (k = 0)
 * M_t = max(M_{t-1}, γ_t);  w_t = M_t^p;  W_t = W_{t-1} + w_t;  c_t = w_t / W_t   (0 while W_t = 0)
 * ν_t = (1 − b2) g_t² + b2 ν_{t-1}
 * d_t = g_t / (√(ν_t / (1 − b2^t)) + ε) + λ y_{t-1}
 * z_t = z_{t-1} − γ_t d_t                                     (z_0 = y_0 = the params)
 * x_{t-1} = (y_{t-1} − (1 − β) z_{t-1}) / β
 * x_t = (1 − c_t) x_{t-1} + c_t z_t
 * y_t = β x_t + (1 − β) z_t
 * ```
 *
 * Options (default, optax's): `lr` γ 0.0025, `warmupSteps` k 0, `b1` β 0.9 (in (0, 1]),
 * `b2` 0.999, `eps` ε 1e-8, `weightDecay` λ 0, `weightLrPower` p 2. State (optax's leaves):
 * `step` (optax's base `count`; its `step_count` is step + 1), `weightSum` W, `maxLr` M, `z`,
 * `nu` ν. W and M are counters of the group (as optax's are of the whole tree), kept in double.
 *
 * Arithmetic: optax's, operation by operation, unfused; optax returns the update y_t − y_{t-1}
 * and adds it, so p = y + (y_t − y) is stored, as there. optax divides by β (in x_{t-1}, and in
 * schedule_free_eval_params), which XLA computes as a multiplication by 1/β: so do the kernel and
 * `eval()` (schedule_free_sgd's recording is then reproduced bit for bit, y and x, open loop).
 *
 * Train and eval: `p.data` holds y (train mode) while stepping. `eval()` puts x into the params
 * (optax.contrib.schedule_free_eval_params's arithmetic) and keeps y; `train()` puts y back bit
 * for bit. `mode` says which. `step()` in eval mode throws OptimStateError (before the hooks
 * and the closure): the gradient must be taken at y. In eval mode `stateDict()` also holds
 * `mode: 'eval'` and each param's y (`state[name].y`), and `loadStateDict` restores the mode,
 * so a checkpoint saved while evaluating resumes exactly after `train()`.
 *
 * Against optax:
 * - `warmupSteps: 0` means no warm-up. optax's `warmup_steps=0` makes its lr the constant 0
 *   (`linear_schedule` with 0 transition steps returns its initial value), so the params never
 *   move: a quirk not copied. optax's None is our 0.
 * - With a warm-up, optax evaluates the schedule at the wrapper's step_count t (1, 2, ...) for
 *   M_t and c_t, but the base's `scale_by_learning_rate` at its own count t − 1 (0, 1, ...), so
 *   its base steps lag one step behind (the first moves nothing). Here γ_t is used in both, as
 *   in the paper and its reference implementation. optax also evaluates the schedule in float32
 *   (its int32 count promotes to float32 even under x64); here it is double.
 * - W and M are doubles for float32 params (optax keeps them in the param dtype).
 *
 * bfloat16 state is refused (z is a point of the param space).
 */
export class ScheduleFreeAdamW extends ScheduleFree<ScheduleFreeAdamWGroup> {
  protected readonly adam = true;

  constructor(params: ParamsInput<ScheduleFreeAdamWOptions>, options: ScheduleFreeAdamWOptions & OptimizerOptions = {}) {
    super(params, options, ADAMW_SPEC);
  }
}
