import type { Param } from '../param.js';
import { firstNonFinite } from '../backend/types.js';
import { NonFiniteError, OptimStateError, OptimTypeError } from '../errors.js';
import { FlatParams } from './flat.js';
import { checkNonFinitePolicy } from './optimizer.js';
import type { LoadReport, NonFinitePolicy } from './optimizer.js';
import { Transaction } from './transaction.js';
import { StepHooks } from './hooks.js';
import type { HookHandle, StepPostHook, StepPreHook } from './hooks.js';
import { describe, isPlainObject, show } from '../validate.js';

/**
 * How a state entry is checked on load, copied by `stateDict()` and snapshotted by a step; a
 * trailing `?` makes it optional (absent until a step sets it).
 * - `count`: a whole number >= 0.  `number`: any number (NaN too).  `finite`: a finite number.
 *   `positive`: a finite number > 0.
 * - `vector`: a Float64Array over all params (length n).  `vectors`: a list of them.
 *   `finites`: a list of finite numbers.
 */
export type StateKind = 'count' | 'number' | 'finite' | 'positive' | 'vector' | 'vectors' | 'finites';
export type StateSchema = Readonly<Record<string, StateKind | `${StateKind}?`>>;

/** `stateDict()` of a closure optimizer: a deep copy, loadable by `loadStateDict`. */
export interface ClosureStateDict<S, H> {
  state: S;
  /** One group: the hyperparameters and the param names, in order. */
  paramGroups: [H & { params: string[] }];
  /** Steps skipped under `nonFinite: 'skip'`; absent means 0. */
  skippedSteps: number;
}

/** What a subclass declares. */
export interface ClosureSpec<H> {
  /** Class name, for messages. */
  readonly name: string;
  /** What the closure returns, for messages: `the loss`, `{ loss, hessian }`. */
  readonly returns: string;
  /** Every hyperparameter, in order, from the options with the defaults filled in. */
  readonly hyperparameters: (options: Partial<H>) => H;
  readonly state: StateSchema;
}

/**
 * The contract shared by the optimizers whose `step(closure)` evaluates the model themselves
 * (L-BFGS, Newton): one group over all params, seen as one float64 vector (FlatParams).
 *
 * - Constructor: `options` an object of known keys (the hyperparameters and `nonFinite`), each
 *   hyperparameter checked by the subclass's `checkHyper`; params non-empty, one dtype, unique
 *   names.
 * - `step`: checks the hyperparameters again (a scheduler may have set them) and the params' sizes,
 *   then runs the algorithm in a {@link Transaction} holding the params' data and the state
 *   entries. A step that throws leaves both exactly as they were; a NaN or infinite evaluation
 *   (NonFiniteError) is rethrown under `nonFinite: 'error'`, counted in `skippedSteps` and
 *   returned as the subclass says under 'skip'. 'ignore' does not look. Grads are the closure's:
 *   not restored.
 * - Rule for subclasses: a step may replace any state entry and edit the state's lists in place
 *   (push, shift), but never write into a state Float64Array: those are kept, not copied, by the
 *   snapshot.
 * - `stateDict()` / `loadStateDict()`: `{ state, paramGroups: [{ ...hyperparameters, params }],
 *   skippedSteps }`; loading checks every entry, hyperparameter and name first, then applies all.
 * - Step hooks (`registerStepPreHook`, `registerStepPostHook`; src/optim/hooks.ts) run around
 *   `transact`, so around every subclass's step.
 */
export abstract class ClosureOptimizer<H extends object, S extends object> {
  readonly paramGroups: [H & { params: Param[] }];
  /** The algorithm's state; its entries are described by the spec's schema. */
  readonly state: S;
  /** The policy for NaN and infinite losses and gradients. */
  readonly nonFinite: NonFinitePolicy;
  protected readonly flat: FlatParams;
  protected readonly name: string;
  private readonly spec: ClosureSpec<H>;
  private readonly hyperKeys: readonly string[];
  private skipped = 0;
  /** The step hooks (src/optim/hooks.ts). */
  private readonly hooks: StepHooks;

  protected constructor(params: Param[], options: unknown, spec: ClosureSpec<H>) {
    const name = spec.name;
    this.name = name;
    this.spec = spec;
    this.hooks = new StepHooks(name, 1);
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new OptimTypeError(`${name}: options must be an object, got ${describe(options)}`);
    }
    this.hyperKeys = Object.keys(spec.hyperparameters({}));
    const keys = [...this.hyperKeys, 'nonFinite'];
    for (const k of Object.keys(options)) {
      if (!keys.includes(k)) throw new OptimTypeError(`${name}: unknown option "${k}" (options are ${keys.join(', ')})`);
    }
    const o = options as Partial<H> & { nonFinite?: unknown };
    this.nonFinite = checkNonFinitePolicy(o.nonFinite ?? 'error', `${name}: options.nonFinite`);
    this.flat = new FlatParams(params, name);
    const group = { params, ...spec.hyperparameters(o) };
    this.checkHyper(group, `${name}: `);
    this.paramGroups = [group];
    this.state = this.initialState(group);
  }

  /** Checks every hyperparameter; messages are `${where}${key} must be ...`. */
  protected abstract checkHyper(group: H, where: string): void;
  /** The state before the first step. */
  protected abstract initialState(group: H): S;
  /**
   * Checks relations between a loaded state's entries and the hyperparameters it will run with;
   * `fail` throws the OptimStateError.
   */
  protected checkLoaded(_state: S, _group: H, _fail: (message: string) => never): void {}

  /** Steps refused for a non-finite evaluation under `nonFinite: 'skip'`; saved by stateDict. */
  get skippedSteps(): number {
    return this.skipped;
  }

  zeroGrad(): void {
    for (const p of this.flat.params) p.grad.fill(0);
  }

  /**
   * Registers `hook(optimizer, args)`, called before each step with its arguments (`[closure]`);
   * it may return replacement arguments (`[otherClosure]`). See src/optim/hooks.ts for the rules.
   */
  registerStepPreHook(hook: StepPreHook<this, [closure: unknown]>): HookHandle {
    return this.hooks.register('pre', hook);
  }

  /**
   * Registers `hook(optimizer, args)`, called after each step that completed (not after a
   * refused or skipped one). See src/optim/hooks.ts.
   */
  registerStepPostHook(hook: StepPostHook<this, [closure: unknown]>): HookHandle {
    return this.hooks.register('post', hook);
  }

  /**
   * The frame of every `step`: the step hooks around checks, then `body` in a transaction (see
   * the class comment). `body` gets the closure to run (a pre hook may have replaced the one
   * given); `skipped` gives the return value of a step skipped for `e`.
   */
  protected transact<C, R>(closure: C, body: (closure: C) => R, skipped: (e: NonFiniteError) => R): R {
    if (this.hooks.size === 0) return this.transactOnce(closure, body, skipped);
    return this.hooks.run(this, [closure], (args: [C]) => this.transactOnce(args[0], body, skipped));
  }

  private transactOnce<C, R>(closure: C, body: (closure: C) => R, skipped: (e: NonFiniteError) => R): R {
    const name = this.name;
    if (typeof closure !== 'function') {
      throw new OptimTypeError(`${name}.step(closure): closure must be a function that fills grads and returns ${this.spec.returns}`);
    }
    this.checkHyper(this.paramGroups[0], `${name}: `);
    this.flat.check(`${name}.step()`);
    try {
      return Transaction.run((tx) => {
        for (const p of this.flat.params) tx.saveArray(p.data);
        tx.saveEntries(this.state);
        for (const v of Object.values(this.state)) if (Array.isArray(v)) tx.saveArray(v); // lists: edited in place
        return body(closure);
      });
    } catch (e) {
      if (!(e instanceof NonFiniteError) || this.nonFinite !== 'skip') throw e;
      this.skipped++;
      return skipped(e);
    }
  }

  /**
   * NonFiniteError for a non-finite loss, or for the first non-finite grad element (param by
   * param); the caller has already decided that this evaluation is checked.
   */
  protected checkEvaluation(loss: number): void {
    const tail = `params and state are as before the step (nonFinite: '${this.nonFinite}')`;
    if (!Number.isFinite(loss)) {
      throw new NonFiniteError(`${this.name}.step(): the closure returned a non-finite loss (${loss}); ${tail}`, '', -1, loss);
    }
    for (const p of this.flat.params) {
      const i = firstNonFinite(p.grad);
      if (i >= 0) {
        throw new NonFiniteError(`${this.name}.step(): the grad of param "${p.name}" holds ${p.grad[i]} at index ${i}; ${tail}`, p.name, i, p.grad[i]);
      }
    }
  }

  /**
   * A deep copy: `{ state, paramGroups: [{ ...hyperparameters, params: names }], skippedSteps }`.
   * Later steps do not change it, nor does changing it change the optimizer.
   */
  stateDict(): ClosureStateDict<S, H> {
    const st = this.state as Record<string, unknown>;
    const state: Record<string, unknown> = {};
    for (const k of Object.keys(this.spec.state)) if (st[k] !== undefined) state[k] = copyEntry(st[k]);
    const g = this.paramGroups[0] as unknown as Record<string, unknown>;
    const hyper: Record<string, unknown> = {};
    for (const k of this.hyperKeys) hyper[k] = g[k];
    const names = this.flat.params.map((p) => p.name);
    return { state: state as S, paramGroups: [{ ...hyper, params: names } as H & { params: string[] }], skippedSteps: this.skipped };
  }

  /**
   * Restores a `stateDict()`: the state (copies), the hyperparameters and `skippedSteps`. Checks
   * everything first (each state entry's type, vectors' dtype and length, each hyperparameter as
   * the constructor does, the param names) and throws OptimStateError naming what does not fit,
   * with nothing changed. The state is one vector over all params, so it fits only params of the
   * same names, in the same order: the report then lists them all as matched.
   */
  loadStateDict(sd: ClosureStateDict<S, H>): LoadReport {
    const name = `${this.name}.loadStateDict`;
    const fail = (msg: string): never => {
      throw new OptimStateError(`${name}: ${msg}`);
    };
    if (!isPlainObject(sd)) throw new OptimStateError(`${name}(stateDict): expected an object, got ${describe(sd)}`);
    const { state, paramGroups, skippedSteps = 0 } = sd as unknown as Record<string, unknown>;
    if (!isPlainObject(state)) fail(`stateDict.state must be an object, got ${describe(state)}`);
    if (!(typeof skippedSteps === 'number' && Number.isInteger(skippedSteps) && skippedSteps >= 0)) {
      fail(`stateDict.skippedSteps must be a whole number >= 0, got ${show(skippedSteps)}`);
    }
    if (!Array.isArray(paramGroups) || paramGroups.length !== 1 || !isPlainObject(paramGroups[0])) {
      fail('stateDict.paramGroups must be an array of one group');
    }
    const { params: saved, ...hyper } = (paramGroups as Array<Record<string, unknown>>)[0];
    const where = 'stateDict.paramGroups[0].';
    const names = this.flat.params.map((p) => p.name);
    if (!Array.isArray(saved) || !saved.every((s) => typeof s === 'string')) fail(`${where}params must be an array of param names`);
    if ((saved as string[]).length !== names.length || names.some((n, i) => n !== (saved as string[])[i])) {
      fail(`${where}params is ${JSON.stringify(saved)} but this optimizer has ${JSON.stringify(names)}; the state is one vector over the params in order, so names and order must match`);
    }
    for (const k of Object.keys(hyper)) if (!this.hyperKeys.includes(k)) fail(`${where}${k}: unknown hyperparameter (known: ${this.hyperKeys.join(', ')})`);
    const group = { ...this.paramGroups[0], ...hyper };
    try {
      this.checkHyper(group, `${name}: ${where}`);
    } catch (e) {
      throw new OptimStateError(e instanceof Error ? e.message : String(e));
    }
    const loaded = this.checkState(state as Record<string, unknown>, fail);
    this.checkLoaded(loaded, group, fail);

    // Everything checked: apply.
    Object.assign(this.paramGroups[0], hyper);
    const target = this.state as Record<string, unknown>;
    for (const k of Object.keys(target)) delete target[k];
    Object.assign(target, loaded);
    this.skipped = skippedSteps as number;
    return { matched: names, missing: [], unexpected: [] };
  }

  /** A saved state checked against the schema, as fresh copies. */
  private checkState(saved: Record<string, unknown>, fail: (msg: string) => never): S {
    const n = this.flat.size;
    const schema = this.spec.state;
    for (const k of Object.keys(saved)) {
      if (!(k in schema)) fail(`stateDict.state.${k}: unknown state (${this.name} keeps ${Object.keys(schema).join(', ')})`);
    }
    const vector = (v: unknown, at: string): Float64Array => {
      if (!(v instanceof Float64Array) || v.length !== n) {
        fail(`${at} must be a Float64Array of length ${n} (the params' total size), got ${describe(v)}${ArrayBuffer.isView(v) ? ` of length ${(v as Float64Array).length}` : ''}`);
      }
      return (v as Float64Array).slice();
    };
    const scalar = (v: unknown, kind: StateKind, at: string): number => {
      const ok = typeof v === 'number' && (
        kind === 'number' ||
        (kind === 'count' ? Number.isInteger(v) && v >= 0 : Number.isFinite(v) && (kind !== 'positive' || v > 0)));
      if (!ok) fail(`${at} must be ${SCALAR_RULES[kind]}, got ${show(v)}`);
      return v as number;
    };
    const list = (v: unknown, at: string): unknown[] => {
      if (!Array.isArray(v)) fail(`${at} must be an array, got ${describe(v)}`);
      return v as unknown[];
    };
    const out: Record<string, unknown> = {};
    for (const [k, spec] of Object.entries(schema)) {
      const at = `stateDict.state.${k}`;
      const v = saved[k];
      const kind = spec.replace('?', '') as StateKind;
      if (v === undefined) {
        if (!spec.endsWith('?')) fail(`${at} is missing`);
        continue;
      }
      if (kind === 'vector') out[k] = vector(v, at);
      else if (kind === 'vectors') out[k] = list(v, at).map((x, i) => vector(x, `${at}[${i}]`));
      else if (kind === 'finites') out[k] = list(v, at).map((x, i) => scalar(x, 'finite', `${at}[${i}]`));
      else out[k] = scalar(v, kind, at);
    }
    return out as S;
  }
}

const SCALAR_RULES: Partial<Record<StateKind, string>> = {
  count: 'a whole number >= 0',
  number: 'a number',
  finite: 'a finite number',
  positive: 'a finite number > 0',
};

function copyEntry(v: unknown): unknown {
  if (v instanceof Float64Array) return v.slice();
  if (Array.isArray(v)) return v.map(copyEntry);
  return v;
}
