/**
 * What the optimizer wrappers (Lookahead, MultiSteps: optax's `lookahead` and `MultiSteps`)
 * share: the wrapped optimizer, whose `paramGroups` they forward (so a scheduler built on a
 * wrapper sets the inner optimizer's lr), `zeroGrad()`, `nonFinite`, the step hooks, and the
 * checks of the params a step reads.
 *
 * A wrapper wraps a first-order optimizer of this library (an `Optimizer`: SGD, Adam, ...) or
 * another wrapper (`new Lookahead(new MultiSteps(new Adam(ps), { everyKSchedule: 4 }), ...)`).
 * L-BFGS and Newton are refused: their step evaluates the model itself, several times.
 *
 * A wrapper's step keeps the library's guarantee: a step that is refused (it throws: a bad
 * param, a NaN gradient under `nonFinite: 'error'`, a bad hyperparameter of the inner optimizer)
 * or skipped (`nonFinite: 'skip'`) changes nothing, the wrapper's state included. Each checks
 * what it reads before it writes, and changes its own state only after the inner step returned.
 */
import type { FloatArray } from '../backend/types.js';
import { OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import type { Param } from '../param.js';
import { describe, isFloatArray, isPlainObject, show } from '../validate.js';
import { StepHooks } from './hooks.js';
import type { HookHandle, StepPostHook, StepPreHook } from './hooks.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, LoadReport, NonFinitePolicy, StateDict } from './optimizer.js';

/** What a wrapper wraps: a first-order optimizer, or another wrapper. */
export type WrappedOptimizer = Optimizer<GroupBase> | OptimizerWrapper;

/** A wrapper's state dict: its own entries, tagged with its class, and the inner optimizer's. */
export interface WrapperStateDict {
  /** The class that saved it (`'Lookahead'`, `'MultiSteps'`); loading into another is refused. */
  wrapper: string;
  /** The wrapped optimizer's state dict. */
  inner: StateDict | WrapperStateDict;
}

/** The base of Lookahead and MultiSteps (see the module comment). */
export abstract class OptimizerWrapper {
  /** The wrapped optimizer: it owns the parameter groups and their hyperparameters. */
  readonly inner: WrappedOptimizer;
  /** The class name, for messages. */
  protected readonly name: string;
  private readonly hooks: StepHooks;

  protected constructor(name: string, optimizer: unknown) {
    if (!(optimizer instanceof Optimizer || optimizer instanceof OptimizerWrapper)) {
      const what =
        optimizer !== null && typeof optimizer === 'object'
          ? ((optimizer as { constructor?: { name?: string } }).constructor?.name ?? 'object')
          : describe(optimizer);
      throw new OptimTypeError(
        `${name}(optimizer, options): optimizer must be a first-order optimizer of this library (SGD, Adam, ...) or a Lookahead or MultiSteps, got ${what}` +
          (what === 'LBFGS' || what === 'Newton' || what === 'BFGS' ? ' (its step evaluates the model itself, which a wrapper cannot)' : ''),
      );
    }
    this.name = name;
    this.inner = optimizer;
    this.hooks = new StepHooks(name, 1);
  }

  /**
   * The inner optimizer's parameter groups, the same array: changing a group's `lr` here changes
   * the inner optimizer's, so a scheduler built on the wrapper schedules it.
   */
  get paramGroups(): GroupBase[] {
    return this.inner.paramGroups;
  }

  /** The inner optimizer's policy for NaN and infinite gradients (a wrapper follows it). */
  get nonFinite(): NonFinitePolicy {
    return this.inner.nonFinite;
  }

  /** Steps skipped for a non-finite gradient (`nonFinite: 'skip'`), as the hooks read it. */
  abstract get skippedSteps(): number;

  /** Fills every gradient of the inner optimizer's params with 0. */
  zeroGrad(): void {
    this.inner.zeroGrad();
  }

  /**
   * One step (see the subclass); with a closure, it is called once, first (it fills the grads and
   * returns the loss), and its value returned. Step hooks run around it, as on every optimizer.
   */
  step<L = number>(closure?: () => L): L | undefined {
    return this.hooks.size === 0
      ? this.stepOnce(closure)
      : this.hooks.run(this, closure === undefined ? [] : [closure], (args: [(() => L)?]) => this.stepOnce(args[0]));
  }

  /** torch's `register_step_pre_hook` (src/optim/hooks.ts): `hook(wrapper, args)` before each step. */
  registerStepPreHook(hook: StepPreHook<this, [closure?: () => unknown]>): HookHandle {
    return this.hooks.register('pre', hook);
  }

  /** `hook(wrapper, args)` after each step that was not refused or skipped (src/optim/hooks.ts). */
  registerStepPostHook(hook: StepPostHook<this, [closure?: () => unknown]>): HookHandle {
    return this.hooks.register('post', hook);
  }

  /** A deep copy of the wrapper's state, with the inner optimizer's nested. */
  abstract stateDict(): WrapperStateDict;

  /** Restores a `stateDict()`: checks everything (the inner dict too) before changing anything. */
  abstract loadStateDict(stateDict: WrapperStateDict): LoadReport;

  /** The step without the hooks. */
  protected abstract stepOnce<L>(closure: (() => L) | undefined): L | undefined;

  /** A closure argument: undefined or a function. */
  protected checkClosure(closure: unknown): void {
    if (closure !== undefined && typeof closure !== 'function') {
      throw new OptimTypeError(`${this.name}.step(closure): closure must be a function, got ${describe(closure)}`);
    }
  }

  /**
   * The params of every inner group, in order, each checked to hold a `data` Float32Array or
   * Float64Array and to appear once (the inner step checks the rest again).
   */
  protected stepParams(): Param[] {
    const groups: unknown = this.inner.paramGroups;
    const where = `${this.name}.step(): paramGroups`;
    if (!Array.isArray(groups)) throw new OptimTypeError(`${where} must be an array, got ${describe(groups)}`);
    const out: Param[] = [];
    const seen = new Map<string, Param>();
    groups.forEach((g: unknown, i) => {
      if (g === null || typeof g !== 'object' || !Array.isArray((g as GroupBase).params)) {
        throw new OptimTypeError(`${where}[${i}] must be a group { params, ... }, got ${describe(g)}`);
      }
      (g as GroupBase).params.forEach((p: unknown, j) => {
        if (p === null || typeof p !== 'object' || typeof (p as Param).name !== 'string') {
          throw new OptimTypeError(`${where}[${i}].params[${j}] must be a param (from param(data)), got ${describe(p)}`);
        }
        const data: unknown = (p as Param).data;
        if (!isFloatArray(data)) {
          throw new OptimTypeError(`${this.name}.step(): param "${(p as Param).name}": data must be a Float32Array or Float64Array, got ${describe(data)}`);
        }
        const other = seen.get((p as Param).name);
        if (other !== undefined) {
          throw new OptimRangeError(
            `${where}[${i}].params[${j}]: ` + (other === p ? `param "${other.name}" appears twice` : `two params share the name "${other.name}"`),
          );
        }
        seen.set((p as Param).name, p as Param);
        out.push(p as Param);
      });
    });
    return out;
  }

  /**
   * A buffer the wrapper keeps for `p` (`what`: `slow weights`, `accumulator`) must still fit its
   * data: the same length, and for `sameType` the same dtype.
   */
  protected checkFits(p: Param, buf: FloatArray, what: string, sameType: boolean): void {
    if (sameType && buf.constructor !== p.data.constructor) {
      throw new OptimTypeError(`${this.name}.step(): param "${p.name}": data is a ${p.data.constructor.name} but its ${what} are a ${buf.constructor.name}`);
    }
    if (buf.length !== p.data.length) {
      throw new OptimRangeError(
        `${this.name}.step(): param "${p.name}": data has length ${p.data.length} but its ${what} have length ${buf.length} (detached or replaced by an array of another length?)`,
      );
    }
  }

  /** The dict's own part: a plain object saved by this class, with exactly `keys`. */
  protected checkSavedDict(sd: unknown, keys: readonly string[]): Record<string, unknown> {
    const at = `${this.name}.loadStateDict`;
    if (!isPlainObject(sd)) throw new OptimStateError(`${at}(stateDict): expected an object, got ${describe(sd)}`);
    if (sd.wrapper !== this.name) {
      throw new OptimStateError(
        sd.wrapper === undefined
          ? `${at}: this is not a ${this.name} state dict (no wrapper: '${this.name}'); an optimizer's own state dict goes to ${this.name.toLowerCase()}.inner.loadStateDict()`
          : `${at}: the state dict was saved by ${show(sd.wrapper)}, not by ${this.name}`,
      );
    }
    for (const k of Object.keys(sd)) {
      if (k !== 'wrapper' && k !== 'inner' && !keys.includes(k)) {
        throw new OptimStateError(`${at}: stateDict.${k}: unknown key (expected wrapper, ${keys.join(', ')}, inner)`);
      }
    }
    for (const k of [...keys, 'inner']) if (!(k in sd)) throw new OptimStateError(`${at}: stateDict.${k} is missing`);
    return sd;
  }

  /** A saved counter: a whole number >= 0. */
  protected checkSavedCount(v: unknown, key: string): number {
    if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
      throw new OptimStateError(`${this.name}.loadStateDict: stateDict.${key} must be a whole number >= 0, got ${show(v)}`);
    }
    return v;
  }

  /**
   * Saved buffers by param name (`key`: `slow`, `acc`): those of params here, checked (a Float32Array
   * or Float64Array, of the dtype `dtypeOf(p)` and of the param's length) and copied.
   */
  protected checkSavedBuffers(
    v: unknown,
    key: string,
    dtypeOf: (p: Param) => Float32ArrayConstructor | Float64ArrayConstructor,
  ): { buffers: Map<Param, FloatArray>; unexpected: string[] } {
    const at = `${this.name}.loadStateDict: stateDict.${key}`;
    if (!isPlainObject(v)) throw new OptimStateError(`${at} must be an object of arrays by param name, got ${describe(v)}`);
    const byName = new Map<string, Param>();
    for (const g of this.inner.paramGroups) for (const p of g.params) byName.set(p.name, p);
    const buffers = new Map<Param, FloatArray>();
    const unexpected: string[] = [];
    for (const [name, buf] of Object.entries(v)) {
      const p = byName.get(name);
      if (p === undefined) {
        unexpected.push(name);
        continue;
      }
      const Ctor = dtypeOf(p);
      const where = `${at}[${JSON.stringify(name)}]`;
      if (!isFloatArray(buf) || buf.constructor !== Ctor) {
        throw new OptimStateError(`${where} must be a ${Ctor.name} for param "${name}", got ${describe(buf)}`);
      }
      if (buf.length !== p.data.length) {
        throw new OptimStateError(`${where} has length ${buf.length} but param "${name}" has length ${p.data.length}`);
      }
      buffers.set(p, buf.slice());
    }
    return { buffers, unexpected };
  }

  /**
   * The inner optimizer's load report merged with the wrapper's buffers: a param is matched when
   * both kept state for it, missing when either did not.
   */
  protected mergeReport(inner: LoadReport, ownMatched: ReadonlySet<Param>, ownUnexpected: readonly string[]): LoadReport {
    const matched: string[] = [];
    const missing: string[] = [];
    const innerMatched = new Set(inner.matched);
    for (const g of this.inner.paramGroups) {
      for (const p of g.params) {
        (innerMatched.has(p.name) && ownMatched.has(p) ? matched : missing).push(p.name);
      }
    }
    return { matched, missing, unexpected: [...new Set([...inner.unexpected, ...ownUnexpected])] };
  }
}

/** A key set with define, so that a param named `__proto__` stays an ordinary own key. */
export function setOwn(o: object, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
