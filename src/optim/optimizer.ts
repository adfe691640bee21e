import { getBackend } from '../backend/select.js';
import { CHECK_FINITE, CHECK_ONLY, firstNonFinite } from '../backend/types.js';
import type { Backend, FloatArray, PreparedList, StateArray } from '../backend/types.js';
import { fromBfloat16Bits, narrowBfloat16, toBfloat16Bits } from '../backend/bfloat16.js';
import { lineAligned, maxLinePad } from '../backend/align.js';
import type { AnyKernel } from '../backend/kernel.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import type { Param } from '../param.js';
import { checkKnownKeys, describe, isFloatArray, OPTIONS, show } from '../validate.js';
import type { Where } from '../validate.js';
import { Transaction } from './transaction.js';
import { StepHooks } from './hooks.js';
import type { HookHandle, StepPostHook, StepPreHook } from './hooks.js';
import { fillOptionScalars, optionChecker, optionScalars } from './options.js';
import type { OptionChecker, OptionScalars } from './options.js';

/** One parameter's optimizer state: counters (`step`, `muProduct`) and buffers (`expAvg`, ...). */
export type ParamState = Record<string, number | StateArray>;

/** A parameter group as stored in `paramGroups`: the parameters and every hyperparameter. */
export interface GroupBase {
  params: Param[];
  lr: number;
}

/** What `new X(params, ...)` accepts: parameters, or groups of parameters with their own options. */
export type ParamsInput<O> = Param[] | Array<O & { params: Param[] }>;

export interface StateDict {
  state: Record<string, ParamState>;
  paramGroups: Array<Record<string, unknown> & { params: string[] }>;
  /** Steps skipped for a non-finite gradient (`nonFinite: 'skip'`); absent means 0. */
  skippedSteps?: number;
  /** `'bfloat16'` when the state buffers are bfloat16 bit patterns (Uint16Array); absent otherwise. */
  stateDtype?: 'bfloat16';
}

/**
 * What a step does when a gradient holds a NaN or an infinity:
 * - `'error'` (default): throws NonFiniteError naming the parameter and the element; nothing is
 *   changed (no parameter, state buffer or step count).
 * - `'skip'`: changes nothing, as for `'error'`, counts the step in `skippedSteps` and returns
 *   normally (as torch's GradScaler skips `optimizer.step()` on an inf/NaN gradient).
 * - `'ignore'`: applies the update anyway (torch.optim's behaviour): NaN spreads into the
 *   parameters and state. No scan at all, so it is the fastest.
 *
 * The scan runs inside the same native call as the update, over every gradient of the call before
 * its first write (the update must not start if it cannot finish); see the README's guarantees.
 */
export type NonFinitePolicy = 'error' | 'skip' | 'ignore';

/**
 * How the state buffers are stored: `'param'` (default) in the param's dtype; `'bfloat16'` as
 * bfloat16 (Uint16Array bit patterns) beside float32 params: half the state memory, and for Adam
 * 20 instead of 28 bytes of traffic per element. The arithmetic stays float32: each call widens
 * the state, runs the float32 kernel and rounds the state back to nearest even (docs/bfloat16.md).
 */
export type StateDtype = 'param' | 'bfloat16';

/** Options every first-order optimizer takes besides its hyperparameters (optimizer-wide). */
export interface OptimizerOptions {
  /** What to do when a gradient holds a NaN or an infinity (default `'error'`). */
  nonFinite?: NonFinitePolicy;
  /** How the state buffers are stored (default `'param'`: the param's dtype). */
  stateDtype?: StateDtype;
}

const NON_FINITE_POLICIES: readonly NonFinitePolicy[] = ['error', 'skip', 'ignore'];

/** Checks a `nonFinite` option; `where` names it in the message. */
export function checkNonFinitePolicy(v: unknown, where: string): NonFinitePolicy {
  if (typeof v !== 'string') {
    throw new OptimTypeError(`${where} must be 'error', 'skip' or 'ignore', got ${describe(v)}`);
  }
  if (!(NON_FINITE_POLICIES as readonly string[]).includes(v)) {
    throw new OptimRangeError(`${where} must be 'error', 'skip' or 'ignore', got ${JSON.stringify(v)}`);
  }
  return v as NonFinitePolicy;
}

/** The first non-finite gradient element found, for messages and the skip count. */
export interface NonFiniteFound {
  param: Param;
  index: number;
  value: number;
}


/** What `loadStateDict` did, by parameter name. */
export interface LoadReport {
  /** Parameters whose state was restored. */
  matched: string[];
  /** Parameters of this optimizer with no saved state: they start afresh. */
  missing: string[];
  /** Saved states that belong to no parameter of this optimizer: ignored. */
  unexpected: string[];
}

/** What a subclass declares about its algorithm. */
export interface OptimizerSpec<G extends GroupBase> {
  /** Class name, for messages. */
  readonly name: string;
  /**
   * The step kernel; its descriptor gives the state buffers and their layout. An algorithm with
   * several forms lists the others in `alternates` and picks one per group (`kernelFor`).
   */
  readonly kernel: AnyKernel;
  readonly alternates?: readonly AnyKernel[];
  /** Every option with its default (`undefined` for a required one). */
  readonly defaults: Readonly<Omit<G, 'params'>>;
  /** Counters kept per parameter (`step`, ...); they must be equal within one backend call. */
  readonly counters: readonly string[];
  /** Numeric options that may be negative (only finite); every other number must be ≥ 0. */
  readonly signed?: readonly string[];
  /** Numeric options that must lie in [0, 1] (Adadelta's rho). */
  readonly unit?: readonly string[];
}

/** One backend call: the prepared tensor list and the states of its tensors, in list order. */
interface Call {
  readonly list: PreparedList;
  readonly params: Param[];
  readonly states: ParamState[];
  readonly extraFlags: number;
}

/**
 * A group's prepared calls, valid while the group keeps the same parameter objects, data and
 * grad arrays (same identity and length), the same flags and the same backend.
 */
interface Plan {
  readonly backend: Backend;
  readonly kernel: AnyKernel;
  /** The kernel's scalars, refilled before each call. */
  readonly scalars: Float64Array;
  /** Those that follow from the options alone (options.ts). */
  readonly fromOptions: OptionScalars;
  readonly group: GroupBase;
  readonly paramsRef: Param[];
  readonly params: Param[];
  readonly data: FloatArray[];
  readonly grads: FloatArray[];
  readonly lengths: number[];
  readonly flags: number;
  readonly calls: Call[];
  /** A call initialises state (SGD's first momentum step): the next step regroups. */
  readonly oneShot: boolean;
}

/**
 * What a step reads, in one object of one class. Each optimizer class is a receiver shape of its
 * own to V8, so in a process that has stepped several of them every `this.x` in the base class's
 * methods goes megamorphic (a stub-cache probe instead of an inline check): Adam.step() on one
 * element cost 0.36 µs after twenty classes had stepped, 0.18 µs in a fresh process. The step
 * path loads `this.core` once and reads the rest here, where the loads stay monomorphic; the
 * methods a subclass may override are looked up once, at construction (undefined: the base's
 * own, which the step path runs inline).
 */
class StepCore<G extends GroupBase> {
  plans: Array<Plan | undefined> = [];
  /** This step's transaction drops the prepared calls on rollback (it created state). */
  dropsPlans = false;
  mayMoveAhead: boolean | undefined = undefined;
  nonFinite: NonFinitePolicy = 'error';

  constructor(
    readonly spec: OptimizerSpec<G>,
    readonly hooks: StepHooks,
    readonly tx: Transaction,
    readonly groups: G[],
    readonly checkOptions: OptionChecker,
    readonly m: StepMethods<G>,
  ) {}
}

/** The overridable methods a step calls, as the optimizer's class defines them (StepCore). */
interface StepMethods<G extends GroupBase> {
  update(closure: (() => unknown) | undefined): unknown;
  /** Undefined: the base's (the option checks alone). */
  checkHyper: ((group: G, where: Where) => void) | undefined;
  /** Undefined: the base's (the spec's kernel). */
  kernelFor: ((group: G) => AnyKernel) | undefined;
  flagsOf(group: G): number;
  fillScalars(group: G, flags: number, state: ParamState, out: Float64Array): number;
  /** Undefined: the base's (each state's counters advance by one). */
  commit: ((states: ParamState[]) => void) | undefined;
  rollback(): void;
}

/**
 * The machinery shared by the first-order optimizers, following torch.optim: parameter groups
 * whose options override the constructor's, which override the defaults; state created lazily
 * at the first step, keyed by parameter name in checkpoints; `step(closure?)`.
 *
 * A step validates everything first (every group's hyperparameters; each parameter's data and
 * grad), then makes one backend call per (group, dtype) with all scalars folded in. The flat
 * tensor lists are built once and reused while nothing changed, so a step allocates nothing.
 */
export abstract class Optimizer<G extends GroupBase> {
  /** The groups, mutable between steps (a scheduler sets `lr`); checked again at every step. */
  readonly paramGroups: G[] = [];
  /** The constructor options over the class defaults: what a group gets when it omits a key. */
  readonly defaults: Readonly<Omit<G, 'params'>>;

  /** The policy for NaN and infinite gradients (see NonFinitePolicy); optimizer-wide. */
  readonly nonFinite: NonFinitePolicy;
  /** How the state buffers are stored (see StateDtype); optimizer-wide. */
  readonly stateDtype: StateDtype;

  protected readonly state = new Map<Param, ParamState>();
  private readonly firstLength = new Map<Param, number>();
  private skipped = 0;
  /**
   * What this step created (new states, buffers, first lengths) and overwrote before its update
   * (the look-ahead move), undone when the step is refused or throws. An `update` override
   * records its writes here (`saveEntry`, `saveArray`, `onRollback`) before making them.
   */
  protected readonly tx = new Transaction();
  /** What the step path reads (see StepCore). */
  private readonly core: StepCore<G>;
  private readonly spec: OptimizerSpec<G>;
  private readonly optionKeys: readonly string[];
  /** Every buffer a saved state may hold, and those it must hold (the kernel's unconditional ones). */
  private readonly buffers: readonly string[];
  private readonly requiredBuffers: readonly string[];
  /** The names seen by `checkStepGroups`, kept between steps. */
  private readonly stepNames = new Map<string, Param>();

  protected constructor(params: unknown, options: unknown, spec: OptimizerSpec<G>) {
    this.spec = spec;
    this.optionKeys = Object.keys(spec.defaults);
    const base = Optimizer.prototype as unknown as Optimizer<G>;
    // The step hooks (src/optim/hooks.ts) and the option checks live in the core.
    const hooks = new StepHooks(spec.name, 1);
    const checkOptions = optionChecker(spec.defaults, spec.signed, spec.unit);
    this.core = new StepCore(spec, hooks, this.tx, this.paramGroups, checkOptions, {
      update: this.update,
      checkHyper: this.checkHyper === base.checkHyper ? undefined : this.checkHyper,
      kernelFor: this.kernelFor === base.kernelFor ? undefined : this.kernelFor,
      flagsOf: this.flagsOf,
      fillScalars: this.fillScalars,
      commit: this.commit === base.commit ? undefined : this.commit,
      rollback: this.rollback,
    });
    const kernels = [spec.kernel, ...(spec.alternates ?? [])];
    this.buffers = [...new Set(kernels.flatMap((k) => k.buffers))];
    // A saved state must hold the buffers every form of the algorithm always keeps.
    const always = (k: AnyKernel) => k.state.filter((b) => b.when === undefined).map((b) => b.name);
    this.requiredBuffers = kernels.map(always).reduce((a, b) => a.filter((x) => b.includes(x)));
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new OptimTypeError(`${spec.name}(params, options): options must be an object, got ${describe(options)}`);
    }
    const { nonFinite, stateDtype, ...hyper } = options as Record<string, unknown>;
    this.nonFinite = checkNonFinitePolicy(nonFinite ?? 'error', `${spec.name}(params, options): options.nonFinite`);
    this.core.nonFinite = this.nonFinite;
    this.stateDtype = checkStateDtype(stateDtype ?? 'param', `${spec.name}(params, options): options.stateDtype`);
    checkKnownKeys(hyper, this.optionKeys, `${spec.name}(params, options)`, false);
    const defaults = copyOptions({ ...spec.defaults, ...hyper }) as Omit<G, 'params'>;
    this.checkHyper(defaults as G, OPTIONS);
    this.defaults = defaults;
    if (!Array.isArray(params)) {
      throw new OptimTypeError(`${spec.name}(params): params must be an array of params or of groups, got ${describe(params)}`);
    }
    if (params.length === 0) throw new OptimRangeError(`${spec.name}(params): optimizer got an empty parameter list`);
    const isGroups = isGroupLike(params[0]);
    for (let i = 0; i < params.length; i++) {
      if (isGroupLike(params[i]) !== isGroups) {
        throw new OptimTypeError(
          `${spec.name}(params): params[${i}] is ${isGroups ? 'a param' : 'a group'} but params[0] is ${isGroups ? 'a group' : 'a param'}; pass either params or groups`,
        );
      }
    }
    const groups = (isGroups ? params : [{ params }]) as Array<{ params: Param[] }>;
    for (const g of groups) this.addParamGroup(g as Partial<G> & { params: Param[] });
  }

  /** Adds a group (as torch's `add_param_group`): its options over `defaults`. */
  addParamGroup(group: Partial<Omit<G, 'params'>> & { params: Param[] }): void {
    const i = this.paramGroups.length;
    const where = `${this.spec.name}: paramGroups[${i}]`;
    if (group === null || typeof group !== 'object' || Array.isArray(group)) {
      throw new OptimTypeError(`${where} must be an object { params, ...options }, got ${describe(group)}`);
    }
    if ('nonFinite' in group) {
      throw new OptimTypeError(`${where}.nonFinite: the non-finite gradient policy is optimizer-wide; pass it in the constructor options`);
    }
    if ('stateDtype' in group) {
      throw new OptimTypeError(`${where}.stateDtype: the state's storage is optimizer-wide; pass it in the constructor options`);
    }
    checkKnownKeys(group, this.optionKeys, where, true);
    const { params, ...rest } = group;
    if (!Array.isArray(params)) {
      throw new OptimTypeError(`${where}.params must be an array of params, got ${describe(params)}`);
    }
    const merged = { params: [...params], ...copyOptions({ ...this.defaults, ...rest }) } as unknown as G;
    this.checkHyper(merged, i);
    const seen = new Map<string, Param>();
    for (const g of this.paramGroups) for (const p of g.params) seen.set(p.name, p);
    params.forEach((p, j) => {
      checkParamShape(p, `${where}.params[${j}]`);
      this.checkStateDtype(p, `${where}.params[${j}]`);
      const other = seen.get(p.name);
      if (other !== undefined) {
        throw new OptimRangeError(
          other === p
            ? `${where}.params[${j}]: param "${p.name}" appears in more than one parameter group (or twice in one)`
            : `${where}.params[${j}]: two params share the name "${p.name}"; names key the optimizer state and must be unique`,
        );
      }
      seen.set(p.name, p);
    });
    this.paramGroups.push(merged);
  }

  /**
   * One optimization step over every group. With a closure, calls it first (it fills the grads
   * and returns the loss) and returns its value. Refuses, changing nothing, when a group holds an
   * invalid hyperparameter or a parameter's data or grad is missing, of the wrong type or length.
   * A NaN or infinite gradient follows `nonFinite`: NonFiniteError or a skipped step, both with
   * nothing changed, or (`'ignore'`) an update like any other. Step hooks run around it
   * (`registerStepPreHook`, `registerStepPostHook`; src/optim/hooks.ts).
   */
  step<L = number>(closure?: () => L): L | undefined {
    const core = this.core;
    if (core.hooks.size === 0) return Optimizer.stepOnce(this, core, closure);
    return core.hooks.run(this, closure === undefined ? [] : [closure], (args: [(() => L)?]) => Optimizer.stepOnce(this, core, args[0]));
  }

  /**
   * Registers `hook(optimizer, args)`, called before each step with its arguments (`[]` or
   * `[closure]`); it may return replacement arguments. See src/optim/hooks.ts for the rules.
   */
  registerStepPreHook(hook: StepPreHook<this, [closure?: () => unknown]>): HookHandle {
    return this.core.hooks.register('pre', hook);
  }

  /**
   * Registers `hook(optimizer, args)`, called after each step that updated (not after a refused
   * or skipped one). See src/optim/hooks.ts.
   */
  registerStepPostHook(hook: StepPostHook<this, [closure?: () => unknown]>): HookHandle {
    return this.core.hooks.register('post', hook);
  }

  /** `step` without the hooks (static: see StepCore). */
  private static stepOnce<G extends GroupBase, L>(opt: Optimizer<G>, core: StepCore<G>, closure: (() => L) | undefined): L | undefined {
    if (closure !== undefined && typeof closure !== 'function') {
      throw new OptimTypeError(`${core.spec.name}.step(closure): closure must be a function, got ${describe(closure)}`);
    }
    core.tx.commit();
    core.dropsPlans = false;
    try {
      const loss = core.m.update.call(opt, closure) as L | undefined;
      core.tx.commit();
      return loss;
    } catch (e) {
      core.m.rollback.call(opt);
      throw e;
    }
  }

  /**
   * The step itself, between the hooks, the closure's type check and the step's transaction
   * (`tx`: committed when it returns, rolled back when it throws); a refusal calls `rollback()`
   * itself. An algorithm whose step is not one kernel pass per (group, dtype) overrides it
   * (Muon, Adafactor, SparseAdam, LAMB and LARS): it calls the closure, checks everything
   * (`checkStepGroups`, `firstNonFiniteGrad`) before it writes anything, then updates.
   */
  protected update<L>(closure: (() => L) | undefined): L | undefined {
    const core = this.core;
    const backend = getBackend();
    Optimizer.moveAhead(this, core, backend, closure !== undefined);
    const loss = closure === undefined ? undefined : closure();
    Optimizer.preparePlans(this, core, backend);
    const plans = core.plans as Plan[];
    const groups = core.groups;
    // The gradient scan: inside the update's own call when the step is one call; otherwise every
    // call is scanned first (CHECK_ONLY), so no call writes before all gradients are known finite.
    let check = 0;
    if (core.nonFinite !== 'ignore') {
      let calls = 0;
      for (let i = 0; i < groups.length; i++) calls += plans[i].calls.length;
      if (calls === 1) {
        check = CHECK_FINITE;
      } else {
        for (let i = 0; i < groups.length; i++) {
          const plan = plans[i];
          for (const call of plan.calls) {
            const bad = backend.step(plan.kernel, call.list, plan.scalars, plan.flags | call.extraFlags | CHECK_FINITE | CHECK_ONLY);
            if (bad !== undefined) return this.refuse(call.params[bad], loss);
          }
        }
      }
    }
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i];
      const plan = plans[i];
      const calls = plan.calls;
      for (let c = 0; c < calls.length; c++) {
        const call = calls[c];
        const flags = plan.flags | call.extraFlags | Optimizer.scalarsFor(this, core, plan, group, call.states[0]);
        const bad = backend.step(plan.kernel, call.list, plan.scalars, flags | check);
        if (bad !== undefined) return this.refuse(call.params[bad], loss);
        if (core.m.commit === undefined) Optimizer.advance(core.spec, call.states);
        else core.m.commit.call(this, call.states);
      }
      if (plan.oneShot) plans[i] = undefined as unknown as Plan;
    }
    return loss;
  }

  /**
   * Validates every group and brings its prepared calls up to date: every hyperparameter at every
   * step (cheap); the parameters in full only when a group's calls are no longer current.
   */
  private static preparePlans<G extends GroupBase>(opt: Optimizer<G>, core: StepCore<G>, backend: Backend): void {
    const groups = core.groups;
    const plans = core.plans;
    if (plans.length !== groups.length) plans.length = groups.length;
    let stale = false;
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i];
      if (typeof group !== 'object' || group === null) opt.checkGroupObject(group, i);
      if (core.m.checkHyper === undefined) core.checkOptions(group, i);
      else core.m.checkHyper.call(opt, group, i);
      const kernel = core.m.kernelFor === undefined ? core.spec.kernel : core.m.kernelFor.call(opt, group);
      const flags = core.m.flagsOf.call(opt, group);
      const plan = plans[i];
      if (
        plan === undefined ||
        plan.backend !== backend ||
        plan.group !== group ||
        plan.kernel !== kernel ||
        plan.flags !== flags ||
        !planCurrent(plan, group)
      ) {
        opt.checkParams(group, i);
        plans[i] = undefined;
        stale = true;
      }
    }
    if (stale) {
      opt.checkUnique();
      for (let i = 0; i < groups.length; i++) {
        if (plans[i] === undefined) plans[i] = opt.buildPlan(groups[i], backend);
      }
    }
  }

  /**
   * The look-ahead phase of kernels that take the gradient at a moved point (a descriptor with an
   * `ahead` flag, such as SGD's look-ahead form): before the closure runs, one call with that
   * flag moves each such group's params there. Their values before are kept, so a refused step
   * (or a closure that throws) puts them back exactly. Returns whether anything moved.
   */
  private static moveAhead<G extends GroupBase>(opt: Optimizer<G>, core: StepCore<G>, backend: Backend, hasClosure: boolean): boolean {
    // Most optimizers have no look-ahead kernel at all: known once, not asked per group per step.
    core.mayMoveAhead ??= opt.kernels().some((k) => k.flag.ahead !== undefined);
    if (!core.mayMoveAhead) return false;
    const groups = core.groups;
    if (!groups.some((g) => g !== null && typeof g === 'object' && opt.kernelFor(g).flag.ahead !== undefined)) return false;
    if (!hasClosure) {
      throw new OptimTypeError(
        `${core.spec.name}.step(closure): this form takes the gradient at a look-ahead point; pass a closure that fills the grads there and returns the loss`,
      );
    }
    Optimizer.preparePlans(opt, core, backend);
    const plans = core.plans as Plan[];
    for (let i = 0; i < groups.length; i++) {
      const plan = plans[i];
      const bit = plan.kernel.flag.ahead as number | undefined;
      if (bit === undefined) continue;
      for (const call of plan.calls) {
        for (const p of call.params) core.tx.saveArray(p.data);
        Optimizer.scalarsFor(opt, core, plan, groups[i], call.states[0]);
        backend.step(plan.kernel, call.list, plan.scalars, plan.flags | bit);
      }
    }
    return true;
  }

  /**
   * For an `update` override: checks every group as a step must before anything changes, group
   * by group: that it is an object, its hyperparameters (`checkHyper`), its params (`checkParams`,
   * or with `sparse` only that they are an array: the grads are the subclass's to check), then
   * param by param that it is one, that no param appears twice nor two share a name, and
   * `each(group, p, where)` (`where` names the param in messages: the subclass's own checks).
   */
  protected checkStepGroups(each?: (group: G, p: Param, where: string) => void, sparse = false): void {
    const name = this.spec.name;
    const groups = this.paramGroups;
    const seen = this.stepNames;
    seen.clear();
    try {
      for (let i = 0; i < groups.length; i++) {
        const group = groups[i];
        this.checkGroupObject(group, i);
        this.checkHyper(group, i);
        if (sparse) this.checkParamArray(group, i);
        else this.checkParams(group, i);
        const ps = group.params;
        for (let j = 0; j < ps.length; j++) {
          const p = ps[j];
          const where = `${name}.step(): paramGroups[${i}].params[${j}]`;
          checkParamShape(p, where);
          const other = seen.get(p.name);
          if (other !== undefined) throw duplicateName(where, p, other);
          seen.set(p.name, p);
          if (each !== undefined) each(group, p, where);
        }
      }
    } finally {
      seen.clear();
    }
  }

  /**
   * For an `update` override: the first non-finite element of any gradient, in group and param
   * order, or undefined (always under `nonFinite: 'ignore'`); `refuseFound` refuses the step.
   */
  protected firstNonFiniteGrad(): NonFiniteFound | undefined {
    if (this.nonFinite === 'ignore') return undefined;
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const index = firstNonFinite(p.grad);
        if (index >= 0) return { param: p, index, value: p.grad[index] };
      }
    }
    return undefined;
  }

  /** Steps skipped so far for a non-finite gradient (`nonFinite: 'skip'`); saved by stateDict. */
  get skippedSteps(): number {
    return this.skipped;
  }

  /**
   * A step refused for a non-finite gradient of `param`, before anything was written: undoes what
   * the step created (state of parameters seen for the first time), then throws or counts.
   */
  protected refuse<L>(param: Param, loss: L | undefined): L | undefined {
    const index = firstNonFinite(param.grad);
    this.rollback();
    return this.refuseFound({ param, index, value: index >= 0 ? param.grad[index] : NaN }, loss);
  }

  /** Throws NonFiniteError ('error') or counts a skipped step ('skip'). */
  protected refuseFound<L>(found: NonFiniteFound, loss: L | undefined): L | undefined {
    if (this.nonFinite === 'skip') {
      this.skipped++;
      return loss;
    }
    const { param, index, value } = found;
    throw new NonFiniteError(
      `${this.spec.name}.step(): the grad of param "${param.name}" holds ${value} at index ${index}; nothing was updated ` +
        `(nonFinite: 'error'; 'skip' skips such steps, 'ignore' applies them)`,
      param.name,
      index,
      value,
    );
  }

  /**
   * Undoes what this step did before it was refused or threw: the look-ahead move, and the state
   * it created, whose prepared calls are dropped then (rebuilt at the next step). A step that
   * created nothing keeps them, so repeated skips cost no rebuild.
   */
  protected rollback(): void {
    this.tx.rollback();
  }

  /** Sets every gradient to zero, in place, and clears every row-sparse one (`p.sparseGrad`). */
  zeroGrad(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (isFloatArray(p.grad)) p.grad.fill(0);
        if (p.sparseGrad !== undefined) p.sparseGrad = undefined;
      }
    }
  }

  /**
   * A deep copy of the state: `{ state: { [paramName]: { step, buffers... } }, paramGroups:
   * [{ ...hyperparameters, params: [names] }] }`. Later steps do not change it.
   */
  stateDict(): StateDict {
    const state: Record<string, ParamState> = {};
    const paramGroups: StateDict['paramGroups'] = [];
    for (const g of this.paramGroups) {
      const names: string[] = [];
      for (const p of g.params) {
        names.push(p.name);
        const st = this.state.get(p);
        if (st !== undefined) state[p.name] = copyState(st);
      }
      const hyper: Record<string, unknown> = {};
      for (const key of this.optionKeys) hyper[key] = copyValue((g as unknown as Record<string, unknown>)[key]);
      paramGroups.push({ ...hyper, params: names });
    }
    const sd: StateDict = { state, paramGroups, skippedSteps: this.skipped };
    if (this.stateDtype === 'bfloat16') sd.stateDtype = 'bfloat16';
    return sd;
  }

  /**
   * Restores a `stateDict()`: every saved state whose name matches a parameter here (a copy, of
   * the same dtype and length), and the saved hyperparameters of each group, by position. Checks
   * everything before changing anything; throws OptimStateError when the dict does not fit.
   * Parameters without a saved state start afresh, as in torch.
   */
  loadStateDict(sd: StateDict): LoadReport {
    const name = `${this.spec.name}.loadStateDict`;
    if (!isPlainObject(sd)) throw new OptimStateError(`${name}(stateDict): expected an object, got ${describe(sd)}`);
    const { state, paramGroups, skippedSteps = 0, stateDtype } = sd;
    if (!isPlainObject(state)) throw new OptimStateError(`${name}: stateDict.state must be an object, got ${describe(state)}`);
    if (stateDtype !== undefined && stateDtype !== 'bfloat16') {
      throw new OptimStateError(`${name}: stateDict.stateDtype must be 'bfloat16' or absent, got ${describe(stateDtype)}`);
    }
    if (!(typeof skippedSteps === 'number' && Number.isInteger(skippedSteps) && skippedSteps >= 0)) {
      throw new OptimStateError(`${name}: stateDict.skippedSteps must be a whole number >= 0, got ${typeof skippedSteps === 'number' ? skippedSteps : describe(skippedSteps)}`);
    }
    if (!Array.isArray(paramGroups)) {
      throw new OptimStateError(`${name}: stateDict.paramGroups must be an array, got ${describe(paramGroups)}`);
    }
    if (paramGroups.length !== this.paramGroups.length) {
      throw new OptimStateError(
        `${name}: the state dict has ${paramGroups.length} parameter groups, this optimizer has ${this.paramGroups.length}`,
      );
    }
    const hypers = paramGroups.map((saved, i) => this.checkSavedGroup(saved, i, name));
    const byName = new Map<string, Param>();
    for (const g of this.paramGroups) for (const p of g.params) byName.set(p.name, p);
    const restored = new Map<Param, ParamState>();
    const report: LoadReport = { matched: [], missing: [], unexpected: [] };
    for (const [pname, saved] of Object.entries(state)) {
      const p = byName.get(pname);
      if (p === undefined) {
        report.unexpected.push(pname);
        continue;
      }
      restored.set(p, this.checkSavedState(saved, p, `${name}: stateDict.state[${JSON.stringify(pname)}]`, stateDtype === 'bfloat16'));
    }
    for (const [pname, p] of byName) (restored.has(p) ? report.matched : report.missing).push(pname);
    const backend = getBackend();

    this.paramGroups.forEach((g, i) => Object.assign(g, hypers[i]));
    this.state.clear();
    this.firstLength.clear();
    for (const [p, st] of restored) {
      this.state.set(p, st);
      this.firstLength.set(p, p.data.length);
    }
    this.core.plans = [];
    this.skipped = skippedSteps;
    for (const g of this.paramGroups) this.packState(g, backend);
    return report;
  }

  /**
   * Moves a group's loaded state buffers into arenas, as its first step would have created them,
   * so a resumed run steps as fast as the uninterrupted one (one checked buffer per arena,
   * consecutive views coalesced, streams aligned alike).
   */
  private packState(group: G, backend: Backend): void {
    const names = this.kernelFor(group).stateNames(this.flagsOf(group));
    const lengths = new Map<ParamState, number>();
    for (const p of group.params) {
      const st = this.state.get(p);
      if (st !== undefined) lengths.set(st, p.data.length);
    }
    const loaded = (st: ParamState | undefined, nm: string) =>
      st !== undefined && ArrayBuffer.isView(st[nm]) && (st[nm] as StateArray).length === lengths.get(st);
    const arenas = this.allocateArenas(group, names, backend, loaded);
    for (const p of group.params) {
      const st = this.state.get(p);
      for (const nm of names) {
        if (loaded(st, nm)) {
          const view = arenas.take(nm, p.data);
          view.set(st![nm] as StateArray & ArrayLike<number>);
          st![nm] = view;
        }
      }
    }
  }

  /**
   * Checks a group's hyperparameters (cheap: it runs at every step): by default each option by
   * the type of its default (options.ts); an optimizer with rules between options adds them.
   */
  protected checkHyper(group: G, where: Where): void {
    this.core.checkOptions(group, where);
  }
  /**
   * The kernel flags a group's options select; by default the weight-decay flag (coupled) when the
   * kernel has one.
   */
  protected flagsOf(group: G): number {
    return 'wd' in this.kernelFor(group).flag ? this.weightDecayFlag(group as G & { readonly weightDecay: number }) : 0;
  }
  /**
   * The weight-decay flag of a group's kernel: none when λ = 0, else `decoupled` (p·(1 − γλ)
   * before the update) or `wd` (λp added to the gradient).
   */
  protected weightDecayFlag(g: G & { readonly weightDecay: number }, decoupled = false): number {
    if (g.weightDecay === 0) return 0;
    const f = this.kernelFor(g).flag;
    return decoupled ? f.decoupled : f.wd;
  }
  /** The kernel a group steps with: the spec's, or one of its alternates. */
  protected kernelFor(_group: G): AnyKernel {
    return this.spec.kernel;
  }
  /** Every kernel `kernelFor` may return (an optimizer with alternates lists them). */
  protected kernels(): readonly AnyKernel[] {
    return [this.spec.kernel];
  }
  /**
   * Fills the scalars for one call that do not follow from the options alone (those are filled
   * already: options.ts), from the group and the state shared by the call's tensors (before this
   * step's update); returns flags that depend on the step (RAdam's rectification).
   */
  protected fillScalars(_group: G, _flags: number, _state: ParamState, _out: Float64Array): number {
    return 0;
  }

  /** Fills a call's scalars, the options' and the optimizer's; returns the step's extra flags. */
  private static scalarsFor<G extends GroupBase>(opt: Optimizer<G>, core: StepCore<G>, plan: Plan, group: G, state: ParamState): number {
    fillOptionScalars(plan.fromOptions, group, plan.scalars);
    return core.m.fillScalars.call(opt, group, plan.flags, state, plan.scalars);
  }

  /**
   * Fills a new state buffer with `value` in its storage (bfloat16: the nearest bfloat16), for
   * `initBuffer` overrides whose state does not start at zero.
   */
  protected fillState(view: StateArray, value: number): StateArray {
    return view.fill(view instanceof Uint16Array ? toBfloat16Bits(value) : value);
  }

  /** Refuses a float64 param under bfloat16 state (the kernels keep float32 params' state only). */
  private checkStateDtype(p: Param, where: string): void {
    if (this.stateDtype === 'bfloat16' && !(p.data instanceof Float32Array)) {
      throw new OptimTypeError(
        `${where} (param "${p.name}"): stateDtype 'bfloat16' keeps the state of float32 params only, got a ${p.data.constructor.name}`,
      );
    }
  }

  /** The state of a parameter before its first step. */
  protected newState(_group: G): ParamState {
    const st: ParamState = {};
    for (const c of this.spec.counters) st[c] = 0;
    return st;
  }

  /**
   * Sets a new state buffer (a zeroed view handed in) to its initial value. Buffers created
   * together are views into one ArrayBuffer per buffer name and dtype (an arena), so a step
   * through the prepared list checks a few buffers instead of one per tensor, and walks memory
   * in order.
   */
  protected initBuffer(_name: string, view: StateArray, _group: G): StateArray {
    return view;
  }

  /** Flags for a call whose tensors just had buffers created (SGD's first momentum step). */
  protected initFlags(_group: G, _flags: number): number {
    return 0;
  }

  /** Advances the counters of a call's states after the kernel ran. */
  protected commit(states: ParamState[]): void {
    Optimizer.advance(this.spec, states);
  }

  /** The base's commit: each state's step counter advances by one. */
  private static advance(spec: OptimizerSpec<GroupBase>, states: ParamState[]): void {
    if (spec.counters.length === 0) return;
    for (let i = 0; i < states.length; i++) {
      const st = states[i];
      st.step = (st.step as number) + 1;
    }
  }

  /** A step refuses a group that is not an object. */
  private checkGroupObject(group: G, i: number): void {
    if (typeof group !== 'object' || group === null) {
      throw new OptimTypeError(`${this.spec.name}.step(): paramGroups[${i}] must be an object, got ${describe(group)}`);
    }
  }

  /** A step refuses a group whose `params` is not an array. */
  private checkParamArray(group: G, i: number): void {
    if (!Array.isArray(group.params)) {
      throw new OptimTypeError(`${this.spec.name}.step(): paramGroups[${i}].params must be an array of params, got ${describe(group.params)}`);
    }
  }

  /**
   * Full check of a group's parameters, when its prepared calls are no longer current (and at
   * every step of an `update` override, through `checkStepGroups`).
   */
  protected checkParams(group: G, i: number): void {
    const where = `${this.spec.name}.step(): paramGroups[${i}].params`;
    this.checkParamArray(group, i);
    group.params.forEach((p, j) => {
      checkParamShape(p, `${where}[${j}]`);
      const { data, grad } = p;
      const label = `${this.spec.name}.step(): param "${p.name}"`;
      if (p.sparseGrad !== undefined) {
        throw new OptimTypeError(
          `${label}: ${this.spec.name} does not support sparse gradients (p.sparseGrad is set); SparseAdam takes them, or clear it (zeroGrad())`,
        );
      }
      if (grad === undefined || grad === null) {
        throw new OptimTypeError(`${label}: grad is missing (got ${describe(grad)}); fill p.grad before step()`);
      }
      if (!isFloatArray(grad)) {
        throw new OptimTypeError(`${label}: grad must be a Float32Array or Float64Array, got ${describe(grad)}`);
      }
      if (grad.constructor !== data.constructor) {
        throw new OptimTypeError(`${label}: grad is a ${grad.constructor.name} but data is a ${data.constructor.name}`);
      }
      this.checkStateDtype(p, label);
      const first = this.firstLength.get(p);
      if (first !== undefined && data.length !== first) {
        throw new OptimRangeError(
          `${label}: data has length ${data.length} but had length ${first} at its first step (detached or replaced by an array of another length?)`,
        );
      }
      if (grad.length !== data.length) {
        throw new OptimRangeError(
          `${label}: grad has length ${grad.length} but data has length ${data.length}${grad.length === 0 ? ' (detached?)' : ''}`,
        );
      }
      const st = this.state.get(p);
      if (st !== undefined) {
        const want = this.stateDtype === 'bfloat16' ? Uint16Array : data.constructor;
        for (const [key, buf] of Object.entries(st)) {
          if (typeof buf !== 'number' && buf.constructor !== want) {
            throw new OptimTypeError(`${label}: data is a ${data.constructor.name} but its state ${key} is a ${buf.constructor.name}`);
          }
        }
      }
    });
  }

  /** No parameter may appear twice: it would be updated twice, and names key the state. */
  private checkUnique(): void {
    const seen = new Map<string, Param>();
    this.paramGroups.forEach((g, i) => {
      g.params.forEach((p, j) => {
        const other = seen.get(p.name);
        if (other !== undefined) throw duplicateName(`${this.spec.name}.step(): paramGroups[${i}].params[${j}]`, p, other);
        seen.set(p.name, p);
      });
    });
  }

  /**
   * One zeroed arena per dtype for the state buffers this plan must create: each buffer name has a
   * region of it, where the params' buffers follow one another in param order. A step then checks
   * one ArrayBuffer for all the state (each checked buffer costs two Node-API calls per step) and
   * steps consecutive views as one tensor (native/bindings/addon.cc, coalesce). Each view starts
   * where its param starts within a cache line (align.ts). `wanted` picks the buffers to place:
   * by default those a param's state lacks.
   */
  private allocateArenas(
    group: G,
    names: readonly string[],
    backend: Backend,
    wanted = (st: ParamState | undefined, nm: string) => st === undefined || st[nm] === undefined,
  ): { take(name: string, data: FloatArray): StateArray } {
    const bits = (data: FloatArray) => (this.stateDtype === 'bfloat16' ? 16 : data instanceof Float32Array ? 32 : 64);
    // Per dtype: the elements each name needs (with room to start each view where its param
    // starts within a cache line: align.ts), then its region's start.
    const need = new Map<number, Map<string, number>>();
    for (const p of group.params) {
      const st = this.state.get(p);
      for (const nm of names) {
        if (wanted(st, nm)) {
          const b = bits(p.data);
          let byName = need.get(b);
          if (byName === undefined) need.set(b, (byName = new Map()));
          byName.set(nm, (byName.get(nm) ?? 0) + p.data.length + maxLinePad(backend.lineOffset, p.data));
        }
      }
    }
    const regions = new Map<string, { buf: StateArray; used: number }>();
    for (const [b, byName] of need) {
      let total = 0;
      for (const n of byName.values()) total += n;
      const buf = b === 16 ? new Uint16Array(total) : b === 32 ? new Float32Array(total) : new Float64Array(total);
      let start = 0;
      for (const [nm, n] of byName) {
        regions.set(`${nm}|${b}`, { buf, used: start });
        start += n;
      }
    }
    return {
      take(name: string, data: FloatArray): StateArray {
        const region = regions.get(`${name}|${bits(data)}`)!;
        const at = lineAligned(backend.lineOffset, region.buf, region.used, data);
        const view = region.buf.subarray(at, at + data.length);
        region.used = at + data.length;
        return view;
      },
    };
  }

  /** Records an entry this step creates, before it does; a rollback also drops the prepared calls. */
  private noteCreated(target: Map<Param, unknown> | ParamState, key: Param | string): void {
    const core = this.core;
    if (!core.dropsPlans) {
      core.dropsPlans = true;
      core.tx.onRollback(() => (core.plans = []));
    }
    if (target instanceof Map) this.tx.saveEntry(target, key as Param);
    else this.tx.saveEntry(target, key as string);
  }

  /** Creates missing state, then groups the tensors into calls by dtype and shared counters. */
  private buildPlan(group: G, backend: Backend): Plan {
    const kernel = this.kernelFor(group);
    const flags = this.flagsOf(group);
    const names = kernel.stateNames(flags);
    const byKey = new Map<string, { list: StateArray[]; params: Param[]; states: ParamState[]; extraFlags: number }>();
    let oneShot = false;
    const arenas = this.allocateArenas(group, names, backend);
    for (const p of group.params) {
      let st = this.state.get(p);
      if (st === undefined) {
        this.noteCreated(this.state, p);
        st = this.newState(group);
        this.state.set(p, st);
      }
      if (!this.firstLength.has(p)) {
        this.noteCreated(this.firstLength, p);
        this.firstLength.set(p, p.data.length);
      }
      let created = false;
      for (const nm of names) {
        if (st[nm] === undefined) {
          this.noteCreated(st, nm);
          st[nm] = this.initBuffer(nm, arenas.take(nm, p.data), group);
          created = true;
        }
      }
      const extraFlags = created ? this.initFlags(group, flags) : 0;
      if (extraFlags !== 0) oneShot = true;
      const counters = this.spec.counters.map((c) => st[c] as number).join('/');
      const key = `${p.data.constructor.name}|${extraFlags}|${counters}`;
      let call = byKey.get(key);
      if (call === undefined) {
        call = { list: [], params: [], states: [], extraFlags };
        byKey.set(key, call);
      }
      call.list.push(p.data, p.grad);
      for (const nm of names) call.list.push(st[nm] as StateArray);
      call.params.push(p);
      call.states.push(st);
    }
    const stride = kernel.stride(flags);
    const calls: Call[] = [];
    for (const { list, params, states, extraFlags } of byKey.values()) {
      calls.push({ list: backend.prepare(list, stride), params, states, extraFlags });
    }
    return {
      backend,
      kernel,
      scalars: new Float64Array(kernel.nScalars),
      fromOptions: optionScalars(kernel),
      group,
      paramsRef: group.params,
      params: [...group.params],
      data: group.params.map((p) => p.data),
      grads: group.params.map((p) => p.grad),
      lengths: group.params.map((p) => p.data.length),
      flags,
      calls,
      oneShot,
    };
  }

  private checkSavedGroup(saved: unknown, i: number, name: string): Record<string, unknown> {
    const where = `stateDict.paramGroups[${i}]`;
    if (!isPlainObject(saved)) throw new OptimStateError(`${name}: ${where} must be an object, got ${describe(saved)}`);
    const { params, ...hyper } = saved;
    if (!Array.isArray(params) || !params.every((n) => typeof n === 'string')) {
      throw new OptimStateError(`${name}: ${where}.params must be an array of parameter names`);
    }
    const current = this.paramGroups[i];
    const merged = { ...copyOptions(hyper) };
    try {
      checkKnownKeys(hyper, this.optionKeys, where, false);
      this.checkHyper({ ...current, ...merged } as G, `${where}.`);
    } catch (e) {
      throw new OptimStateError(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
    return merged;
  }

  /**
   * A saved state checked against `p`, its buffers copied into this optimizer's storage: saved
   * bfloat16 (`savedBf16`, Uint16Array) widened for float state, saved float state rounded to
   * bfloat16 for bfloat16 state; float32 and float64 are not converted into each other.
   */
  private checkSavedState(saved: unknown, p: Param, where: string, savedBf16: boolean): ParamState {
    if (!isPlainObject(saved)) throw new OptimStateError(`${where} must be an object, got ${describe(saved)}`);
    const data: unknown = p.data;
    if (!isFloatArray(data)) {
      throw new OptimStateError(`${where}: param "${p.name}" has data of type ${describe(data)}, not a Float32Array or Float64Array`);
    }
    const { counters } = this.spec;
    const { buffers, requiredBuffers } = this;
    const out: ParamState = {};
    for (const [key, v] of Object.entries(saved)) {
      if (counters.includes(key)) {
        if (typeof v !== 'number' || !Number.isFinite(v) || (key === 'step' && !(Number.isInteger(v) && v >= 0))) {
          throw new OptimStateError(`${where}.${key} must be a ${key === 'step' ? 'whole number >= 0' : 'finite number'}, got ${typeof v === 'number' ? v : describe(v)}`);
        }
        out[key] = v;
      } else if (buffers.includes(key)) {
        const want = savedBf16 ? Uint16Array : data.constructor;
        if (!(isFloatArray(v) || v instanceof Uint16Array) || v.constructor !== want) {
          throw new OptimStateError(
            `${where}.${key} is a ${describe(v)} but param "${p.name}" is a ${data.constructor.name}` +
              (savedBf16 ? ' with bfloat16 state (a Uint16Array expected)' : ''),
          );
        }
        if (v.length !== data.length) {
          throw new OptimStateError(`${where}.${key} has length ${v.length} but param "${p.name}" has length ${data.length}`);
        }
        out[key] = convertState(v, this.stateDtype === 'bfloat16', data);
      } else {
        throw new OptimStateError(`${where}: unknown state "${key}" for ${this.spec.name} (expected ${[...counters, ...buffers].join(', ')})`);
      }
    }
    for (const key of [...counters, ...requiredBuffers]) {
      if (!(key in out)) throw new OptimStateError(`${where}: missing "${key}"`);
    }
    return out;
  }
}

function planCurrent(plan: Plan, group: GroupBase): boolean {
  const ps = group.params;
  if (ps !== plan.paramsRef || ps.length !== plan.params.length) return false;
  const { params, data, grads, lengths } = plan;
  for (let j = 0; j < ps.length; j++) {
    const p = ps[j];
    const n = lengths[j];
    if (p !== params[j] || p.data !== data[j] || p.grad !== grads[j] || p.data.length !== n || p.grad.length !== n || p.sparseGrad !== undefined) {
      return false;
    }
  }
  return true;
}

function checkParamShape(p: unknown, where: string): asserts p is Param {
  if (p === null || typeof p !== 'object' || Array.isArray(p) || ArrayBuffer.isView(p)) {
    throw new OptimTypeError(`${where} must be a param (from param(data)), got ${describe(p)}`);
  }
  const { name, data } = p as Record<string, unknown>;
  if (typeof name !== 'string') throw new OptimTypeError(`${where}.name must be a string, got ${describe(name)}`);
  if (!isFloatArray(data)) {
    throw new OptimTypeError(`${where} (param "${name}"): data must be a Float32Array or Float64Array, got ${describe(data)}`);
  }
}

/** A step's error for `p`, at `where`, whose name `other` (p itself, or another param) holds already. */
function duplicateName(where: string, p: Param, other: Param): OptimRangeError {
  return new OptimRangeError(`${where}: ${other === p ? `param "${p.name}" appears twice` : `two params share the name "${p.name}"`}`);
}

function isGroupLike(v: unknown): boolean {
  return isPlainObject(v) && 'params' in v && !('data' in v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function copyValue(v: unknown): unknown {
  return Array.isArray(v) ? [...(v as unknown[])] : v;
}

/** Copies arrays inside options (betas) so a group never shares them with the caller. */
function copyOptions(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = copyValue(v);
  return out;
}

/** A saved state buffer in this optimizer's storage: bfloat16 bits, or p's float dtype. */
function convertState(v: StateArray, toBf16: boolean, data: FloatArray): StateArray {
  if (toBf16) {
    if (v instanceof Uint16Array) return v.slice();
    const out = new Uint16Array(v.length);
    narrowBfloat16(v, v.length, out, 0);
    return out;
  }
  if (!(v instanceof Uint16Array)) return v.slice();
  const out = data instanceof Float32Array ? new Float32Array(v.length) : new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = fromBfloat16Bits(v[i]);
  return out;
}

/** Checks a `stateDtype` option; `where` names it in the message. */
function checkStateDtype(v: unknown, where: string): StateDtype {
  if (typeof v !== 'string') throw new OptimTypeError(`${where} must be 'param' or 'bfloat16', got ${describe(v)}`);
  if (v !== 'param' && v !== 'bfloat16') throw new OptimRangeError(`${where} must be 'param' or 'bfloat16', got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Refuses `options.stateDtype` other than absent or `'param'`, for an optimizer that keeps its
 * state in the param's dtype: call it before the base constructor (which would accept
 * `'bfloat16'`). `name` is the class (`Muon`), `reason` what it keeps in the param's dtype and
 * why (`Muon keeps its momentum buffer in the param's dtype`), quoted in the message.
 */
export function refuseBfloat16State(name: string, options: unknown, reason: string): void {
  const storage: unknown = options !== null && typeof options === 'object' ? (options as { stateDtype?: unknown }).stateDtype : undefined;
  if (storage !== undefined && storage !== 'param') {
    throw new OptimRangeError(`${name}(params, options): options.stateDtype must be 'param' (${reason}), got ${show(storage)}`);
  }
}

function copyState(st: ParamState): ParamState {
  const out: ParamState = {};
  for (const [k, v] of Object.entries(st)) out[k] = typeof v === 'number' ? v : v.slice();
  return out;
}
