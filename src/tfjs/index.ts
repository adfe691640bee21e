/**
 * TensorFlow.js integration (`optim/tfjs`): this library's optimizers as a `tf.Optimizer`, so a
 * tfjs-layers model trains with them through `model.compile({ optimizer })` and `model.fit`.
 *
 *   import { AdamW, CosineAnnealingLR } from 'optim';
 *   import { tfjsOptimizer, scheduleCallback } from 'optim/tfjs';
 *   const optimizer = tfjsOptimizer(AdamW, { lr: 1e-3, schedule: (o) => new CosineAnnealingLR(o, { tMax: 20 }) });
 *   model.compile({ optimizer, loss: 'categoricalCrossentropy' });
 *   await model.fit(x, y, { epochs: 20, callbacks: [scheduleCallback(optimizer)] });
 *
 * Each step (`applyGradients`, which `minimize` and `model.fit` call) copies every variable's
 * value and gradient into one of our float32 `param`s per variable (read with `dataSync`; the
 * value only when the variable no longer holds what we last wrote or read), runs the wrapped
 * optimizer's `step()` (this library's kernels, native or reference), and writes the values
 * back with `variable.assign`. `@tensorflow/tfjs-core` is an optional peer dependency:
 * this module loads the copy the application uses, so `model.compile` recognises the class.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import { Optimizer } from '../optim/optimizer.js';
import type { OptimizerOptions, StateDict } from '../optim/optimizer.js';
import * as optimizers from '../optim/index.js';
import { param } from '../param.js';
import type { Param } from '../param.js';
import type { LRScheduler } from '../schedule/scheduler.js';
import { ReduceLROnPlateau } from '../schedule/plateau.js';
import { describe } from '../validate.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
/** Any first-order optimizer of this library (an `Optimizer` subclass). */
export type FirstOrderOptimizer = Optimizer<any>;

/** A first-order optimizer class: `new X(params, options)`. */
export type FirstOrderClass<O extends FirstOrderOptimizer = FirstOrderOptimizer> = new (params: Param[], options?: any) => O;

/** The options of a class's constructor. */
export type OptionsOf<C> = C extends new (params: any, options?: infer P) => any ? P : never;
/* eslint-enable @typescript-eslint/no-explicit-any */

/** A schedule on the wrapped optimizer: any LRScheduler, or ReduceLROnPlateau (stepped with a metric). */
export type Schedule = LRScheduler | ReduceLROnPlateau;

/** What `tfjsOptimizer` takes besides the wrapped optimizer's own options. */
export interface TfjsExtras<O extends FirstOrderOptimizer = FirstOrderOptimizer> {
  /**
   * Builds the learning-rate schedule on the wrapped optimizer once it exists (at the first step,
   * or at `build()`): `(o) => new CosineAnnealingLR(o, { tMax: 10 })`. Step it with
   * `scheduleCallback(optimizer)` in `model.fit`'s callbacks, or yourself through `.scheduler`.
   * A function: not part of `getConfig()`.
   */
  schedule?: (optimizer: O) => Schedule;
}

/** `tfjsOptimizer`'s options for class `C`: its own options (with `nonFinite`) and `schedule`. */
export type TfjsOptimizerOptions<C extends FirstOrderClass> = OptionsOf<C> & OptimizerOptions & TfjsExtras<InstanceType<C>>;

/**
 * The optimizers `getConfig`/`fromConfig` know by name (a saved model names its optimizer's
 * class): every first-order class the library exports (SGD, Adam, AdamW, ...), by export name.
 */
const OPTIMIZERS: Readonly<Record<string, FirstOrderClass>> = Object.freeze(
  Object.fromEntries(
    Object.entries(optimizers).filter(([, v]) => typeof v === 'function' && v.prototype instanceof Optimizer),
  ) as Record<string, FirstOrderClass>,
);

/**
 * `param(data, name, { shape })`: the variable's shape goes with its param, for the optimizers
 * that read it (a matrix method); a `param` that takes no options ignores it.
 */
const shapedParam = param as unknown as (data: Float32Array, name: string, options: { shape: readonly number[] }) => Param<Float32Array>;

function registeredName(cls: FirstOrderClass): string | undefined {
  for (const [name, c] of Object.entries(OPTIMIZERS)) if (c === cls) return name;
  return undefined;
}

/**
 * Backends whose `write` copies the values it is given (wasm copies into its heap): a step hands
 * them our param's array as it is. Others (cpu, webgl, tensorflow) keep the array itself as the
 * new tensor's storage, so they get a copy: our array is overwritten by the next step, while the
 * tensor may still be read (a snapshot from `model.getWeights()`).
 */
const COPYING_BACKENDS: ReadonlySet<string> = new Set(['wasm']);

/** One variable: its name, our param mirroring it, its element count. */
interface Slot {
  readonly name: string;
  readonly param: Param<Float32Array>;
  readonly size: number;
  /** The step in which its gradient was last seen (catches a name given twice). */
  seen: number;
  /**
   * The variable's storage (`dataId`) when `param.data` last equalled it: after we read it, or
   * assigned it from `param.data`. tfjs never changes a tensor's storage in place (a new value is
   * a new dataId, whether set by us, `assign`, or `model.setWeights`), so while the variable
   * still holds this one, reading it again is skipped.
   */
  synced: object | undefined;
}

/** Optimizer state loaded by `setWeights` before the variables are known: applied at `build`. */
interface PendingState {
  readonly perVariable: Array<{ name: string; entries: Record<string, number | Float32Array> }>;
  readonly skippedSteps: number;
}

/** A tensor with a name, as tfjs's optimizers take and give them (tfjs-core's `NamedTensor`). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** tfjs's gradient argument: a map by variable name, or a list of `{ name, tensor }`. */
type Gradients = tf.NamedTensorMap | NamedTensor[];

/**
 * A `tf.Optimizer` running one of this library's first-order optimizers (see the module doc).
 * Build one with `tfjsOptimizer(Class, options)`.
 *
 * - **Variables.** The wrapped optimizer is built at the first step over the variables of that
 *   step's gradients (or at `build(variables)`), one float32 param per variable, keyed by the
 *   variable's name. Every later step must bring a gradient for exactly those variables: the
 *   update is one step of every parameter, as a torch optimizer step. A variable missing or new
 *   is refused with OptimRangeError, before anything changes; so is a non-float32 tensor.
 * - **Non-finite gradients** follow the `nonFinite` option (default `'error'`): NonFiniteError
 *   out of `applyGradients` (and so out of `model.fit`) with no variable changed; `'skip'` leaves
 *   every variable as it was and counts the step (`optimizer.skippedSteps`).
 * - **Serialization.** The class is registered with `tf.serialization` as
 *   `OptimTfjsOptimizer`; `getConfig()` is `{ optimizer: 'AdamW', options }` (the schedule, a
 *   function, is left out), `getWeights()`/`setWeights()` carry the wrapped optimizer's state, so
 *   `model.save(handler, { includeOptimizer: true })` and `tf.loadLayersModel` restore it
 *   (matched to the variables by position, as tfjs's own optimizers do).
 */
export class TfjsOptimizer<O extends FirstOrderOptimizer = FirstOrderOptimizer> extends tf.Optimizer {
  /** The name under which `tf.serialization` knows the class (and a saved model names it). */
  static readonly className = 'OptimTfjsOptimizer';

  /** The wrapped class. */
  readonly optimizerClass: FirstOrderClass<O>;
  private readonly optimizerOptions: Record<string, unknown>;
  /** Typed on the base class, so that a TfjsOptimizer<AdamW> is a TfjsOptimizer (it is only called with the O built). */
  private readonly scheduleFactory: ((optimizer: FirstOrderOptimizer) => Schedule) | undefined;
  private inner: O | undefined;
  private sched: Schedule | undefined;
  private slots: Slot[] = [];
  private readonly byName = new Map<string, Slot>();
  private stepNumber = 0;
  private pending: PendingState | undefined;

  constructor(optimizerClass: FirstOrderClass<O>, options: Record<string, unknown> = {}) {
    super();
    const where = 'tfjsOptimizer(optimizerClass, options)';
    if (typeof optimizerClass !== 'function' || !(optimizerClass.prototype instanceof Optimizer)) {
      throw new OptimTypeError(
        `${where}: optimizerClass must be one of this library's first-order optimizer classes (SGD, Adam, AdamW, ...), got ${describe(optimizerClass)}`,
      );
    }
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new OptimTypeError(`${where}: options must be an object, got ${describe(options)}`);
    }
    const { schedule, ...rest } = options;
    if (schedule !== undefined && typeof schedule !== 'function') {
      throw new OptimTypeError(`${where}: options.schedule must be a function (optimizer) => scheduler, got ${describe(schedule)}`);
    }
    if (rest.lookahead === true) {
      throw new OptimRangeError(
        `${where}: SGD's lookahead form takes the gradient at a moved point, which tfjs cannot give; use nesterov: true (the same trajectory in torch's coordinates)`,
      );
    }
    // The options are checked now (a bad one fails at compile, not in the middle of fit).
    new optimizerClass([shapedParam(new Float32Array(1), 'tfjsOptimizer: options check', { shape: [1, 1] })], rest);
    this.optimizerClass = optimizerClass;
    this.optimizerOptions = rest;
    this.scheduleFactory = schedule as ((optimizer: FirstOrderOptimizer) => Schedule) | undefined;
  }

  /** The wrapped optimizer (its `paramGroups`, `stateDict()`, ...), once built. */
  get optimizer(): O | undefined {
    return this.inner;
  }

  /** The schedule built by `options.schedule`, once the wrapped optimizer is. */
  get scheduler(): Schedule | undefined {
    return this.sched;
  }

  /** Whether `options.schedule` was given. */
  get hasSchedule(): boolean {
    return this.scheduleFactory !== undefined;
  }

  /** Our params, one per variable, in the order the wrapped optimizer holds them. */
  get params(): ReadonlyArray<Param<Float32Array>> {
    return this.slots.map((s) => s.param);
  }

  /** Steps skipped for a non-finite gradient (`nonFinite: 'skip'`). */
  get skippedSteps(): number {
    return this.inner?.skippedSteps ?? 0;
  }

  /**
   * Builds the wrapped optimizer over these variables (tf.Variables, tfjs-layers weights, or
   * names of registered variables), then the schedule. Done by the first step when not called;
   * call it to reach `optimizer` and `scheduler` before training. Returns the wrapped optimizer.
   */
  build(variables: ReadonlyArray<string | { readonly name: string }>): O {
    if (this.inner !== undefined) {
      throw new OptimStateError('TfjsOptimizer.build(variables): already built (by build() or by the first step)');
    }
    if (!Array.isArray(variables) || variables.length === 0) {
      throw new OptimTypeError(`TfjsOptimizer.build(variables): variables must be a non-empty array, got ${describe(variables)}`);
    }
    const slots: Slot[] = [];
    const byName = new Map<string, Slot>();
    variables.forEach((v, i) => {
      const name = typeof v === 'string' ? v : v?.name;
      if (typeof name !== 'string') {
        throw new OptimTypeError(`TfjsOptimizer.build(variables): variables[${i}] must be a variable or a name, got ${describe(v)}`);
      }
      if (byName.has(name)) throw new OptimRangeError(`TfjsOptimizer.build(variables): variable "${name}" appears twice`);
      const variable = registeredVariable(name, 'TfjsOptimizer.build(variables)');
      const p = shapedParam(new Float32Array(variable.size), name, { shape: variable.shape });
      const slot: Slot = { name, param: p, size: variable.size, seen: 0, synced: undefined };
      slots.push(slot);
      byName.set(name, slot);
    });
    const inner = new this.optimizerClass(slots.map((s) => s.param), this.optimizerOptions);
    const pending = this.pending;
    if (pending !== undefined) loadPending(inner, slots, pending);
    const sched = this.scheduleFactory?.(inner);
    this.slots = slots;
    this.byName.clear();
    for (const [k, s] of byName) this.byName.set(k, s);
    this.inner = inner;
    this.sched = sched;
    this.pending = undefined;
    return inner;
  }

  /**
   * One step: each variable's value and gradient into our params, the wrapped optimizer's
   * `step()`, the new values back into the variables. Called by `minimize` and `model.fit`.
   */
  override applyGradients(variableGradients: Gradients): void {
    if (variableGradients === null || typeof variableGradients !== 'object') {
      throw new OptimTypeError(`TfjsOptimizer.applyGradients(variableGradients): expected a map or a list of named tensors, got ${describe(variableGradients)}`);
    }
    const inner = this.inner ?? this.build(gradientNames(variableGradients));
    const step = ++this.stepNumber;
    let count = 0;
    if (Array.isArray(variableGradients)) {
      for (let i = 0; i < variableGradients.length; i++) {
        const g = variableGradients[i];
        count += this.takeGradient(g.name, g.tensor, step);
      }
    } else {
      for (const name in variableGradients) count += this.takeGradient(name, variableGradients[name], step);
    }
    const slots = this.slots;
    if (count !== slots.length) {
      const missing = slots.filter((s) => s.seen !== step).map((s) => `"${s.name}"`);
      throw new OptimRangeError(
        `TfjsOptimizer.applyGradients: no gradient for ${missing.join(', ')}; every step must bring a gradient for each of the ${slots.length} variables the optimizer was built over (a step updates all of them); nothing was changed`,
      );
    }
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      const variable = registeredVariable(slot.name, 'TfjsOptimizer.applyGradients');
      checkTensor(variable, slot, 'variable');
      if (variable.dataId !== slot.synced) {
        slot.param.data.set(variable.dataSync() as Float32Array);
        slot.synced = variable.dataId;
      }
    }
    const skipped = inner.skippedSteps;
    try {
      inner.step();
    } catch (e) {
      // A refused step changes no param; anything else might have: read them all next time.
      if (!(e instanceof NonFiniteError)) for (const slot of slots) slot.synced = undefined;
      throw e;
    }
    if (inner.skippedSteps === skipped) {
      const copy = !COPYING_BACKENDS.has(tf.getBackend());
      for (let i = 0; i < slots.length; i++) {
        const slot = slots[i];
        const variable = tf.engine().registeredVariables[slot.name];
        const data = slot.param.data;
        const value = tf.tensor(copy ? data.slice() : data, variable.shape, 'float32');
        variable.assign(value);
        value.dispose();
        slot.synced = variable.dataId;
      }
    }
    this.incrementIterations();
  }

  /** Copies one gradient into its param; 1 when taken, 0 for an absent one (null). */
  private takeGradient(name: string, tensor: tf.Tensor | null | undefined, step: number): number {
    if (tensor === null || tensor === undefined) return 0;
    const slot = this.byName.get(name);
    if (slot === undefined) {
      throw new OptimRangeError(
        `TfjsOptimizer.applyGradients: a gradient for variable "${name}", which is not among the ${this.slots.length} variables the optimizer was built over (at its first step or build()); use one optimizer per fixed set of variables; nothing was changed`,
      );
    }
    if (slot.seen === step) throw new OptimRangeError(`TfjsOptimizer.applyGradients: two gradients for variable "${name}"; nothing was changed`);
    checkTensor(tensor, slot, 'gradient');
    slot.param.grad.set(tensor.dataSync() as Float32Array);
    slot.seen = step;
    return 1;
  }

  /** `{ optimizer: class name, options }`: what `fromConfig` rebuilds it from. */
  override getConfig(): tf.serialization.ConfigDict {
    const name = registeredName(this.optimizerClass);
    if (name === undefined) {
      throw new OptimTypeError(
        `TfjsOptimizer.getConfig(): ${this.optimizerClass.name} is not one of this library's optimizers (${Object.keys(OPTIMIZERS).join(', ')}), so a config could not name it`,
      );
    }
    return { optimizer: name, options: toConfigValue(this.optimizerOptions, 'options') as tf.serialization.ConfigDict };
  }

  /** Rebuilds from `getConfig()` (tfjs-layers adds `customObjects` to the config; it is ignored). */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const name = config?.optimizer;
    const optimizerClass = typeof name === 'string' && Object.hasOwn(OPTIMIZERS, name) ? OPTIMIZERS[name] : undefined;
    if (optimizerClass === undefined) {
      throw new OptimTypeError(`TfjsOptimizer.fromConfig: config.optimizer must name one of ${Object.keys(OPTIMIZERS).join(', ')}, got ${describe(name)}`);
    }
    const options = config.options ?? {};
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new OptimTypeError(`TfjsOptimizer.fromConfig: config.options must be an object, got ${describe(options)}`);
    }
    return new cls(optimizerClass, options);
  }

  /**
   * The iteration count, then the wrapped optimizer's state: for each variable in order, each
   * buffer as a float32 tensor `name/buffer` and each counter (`step`, ...) as the 64 bits of its
   * float64 value in an int32 tensor `name/counter`; `skippedSteps` last.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [await this.saveIterations()];
    const inner = this.inner;
    let perVariable: PendingState['perVariable'];
    let skipped: number;
    if (inner === undefined) {
      perVariable = this.pending?.perVariable ?? [];
      skipped = this.pending?.skippedSteps ?? 0;
    } else {
      const state = inner.stateDict().state;
      perVariable = this.slots.map((s) => ({ name: s.name, entries: (state[s.name] ?? {}) as Record<string, number | Float32Array> }));
      skipped = inner.skippedSteps;
    }
    for (const { name, entries } of perVariable) {
      for (const [key, value] of Object.entries(entries)) {
        out.push({ name: `${name}/${key}`, tensor: typeof value === 'number' ? float64Bits(value) : tf.tensor1d(value, 'float32') });
      }
    }
    out.push({ name: 'skippedSteps', tensor: tf.scalar(skipped, 'int32') });
    return out;
  }

  /**
   * Restores `getWeights()`: applied now when built, else at the first step (by position: the
   * i-th variable saved goes to the i-th variable of the first step). Checks everything first.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    const perVariable: PendingState['perVariable'] = [];
    let skippedSteps = 0;
    for (const { name, tensor } of rest) {
      if (name === 'skippedSteps') {
        skippedSteps = (await tensor.data())[0];
        continue;
      }
      const cut = name.lastIndexOf('/');
      if (cut <= 0) throw new OptimStateError(`TfjsOptimizer.setWeights: weight "${name}" is not "variable/state"`);
      const variable = name.slice(0, cut);
      const key = name.slice(cut + 1);
      let last = perVariable[perVariable.length - 1];
      if (last === undefined || last.name !== variable) {
        last = { name: variable, entries: {} };
        perVariable.push(last);
      }
      const data = await tensor.data();
      if (tensor.dtype === 'int32' && data.length === 2) last.entries[key] = new Float64Array((data as Int32Array).slice().buffer)[0];
      else if (tensor.dtype === 'float32') last.entries[key] = (data as Float32Array).slice();
      else throw new OptimStateError(`TfjsOptimizer.setWeights: weight "${name}" has dtype ${tensor.dtype} and ${data.length} elements`);
    }
    const pending: PendingState = { perVariable, skippedSteps };
    if (this.inner === undefined) {
      this.pending = pending;
    } else {
      loadPending(this.inner, this.slots, pending);
    }
  }
}

tf.serialization.registerClass(TfjsOptimizer, 'optim');

/**
 * This library's optimizer `optimizerClass` (SGD, Adam, AdamW, ...) as a `tf.Optimizer` for
 * `model.compile({ optimizer })`: `tfjsOptimizer(AdamW, { lr: 1e-3, weightDecay: 1e-2 })`.
 * `options` are the class's own (checked now), `nonFinite`, and `schedule` (see TfjsExtras).
 */
export function tfjsOptimizer<C extends FirstOrderClass>(
  optimizerClass: C,
  options: TfjsOptimizerOptions<C> = {} as TfjsOptimizerOptions<C>,
): TfjsOptimizer<InstanceType<C>> {
  return new TfjsOptimizer<InstanceType<C>>(optimizerClass as unknown as FirstOrderClass<InstanceType<C>>, options as Record<string, unknown>);
}

/** The logs tfjs-layers passes to callbacks. */
export type CallbackLogs = Record<string, number>;

/** A tfjs-layers custom callback (`model.fit(x, y, { callbacks: [...] })`). */
export interface TfjsScheduleCallback {
  onEpochEnd?: (epoch: number, logs?: CallbackLogs) => Promise<void>;
  onBatchEnd?: (batch: number, logs?: CallbackLogs) => Promise<void>;
}

/** When `scheduleCallback` steps the schedule, and what ReduceLROnPlateau is given. */
export interface ScheduleCallbackOptions {
  /** `'epoch'` (default: torch's usual placement) or `'batch'` (OneCycleLR, CyclicLR). */
  every?: 'epoch' | 'batch';
  /** The log entry ReduceLROnPlateau steps on (default `'val_loss'` when present, else `'loss'`). */
  monitor?: string;
}

/**
 * A callback for `model.fit` that steps `optimizer`'s schedule (built by its `schedule` option)
 * at the end of every epoch, or of every batch; a ReduceLROnPlateau gets the monitored metric.
 */
export function scheduleCallback(optimizer: TfjsOptimizer, options: ScheduleCallbackOptions = {}): TfjsScheduleCallback {
  const where = 'scheduleCallback(optimizer, options)';
  if (!(optimizer instanceof TfjsOptimizer)) {
    throw new OptimTypeError(`${where}: optimizer must come from tfjsOptimizer(), got ${describe(optimizer)}`);
  }
  if (!optimizer.hasSchedule) {
    throw new OptimRangeError(`${where}: the optimizer has no schedule; pass options.schedule to tfjsOptimizer`);
  }
  const every = options.every ?? 'epoch';
  if (every !== 'epoch' && every !== 'batch') {
    throw new OptimRangeError(`${where}: options.every must be 'epoch' or 'batch', got ${describe(every)}`);
  }
  const monitor = options.monitor;
  if (monitor !== undefined && typeof monitor !== 'string') {
    throw new OptimTypeError(`${where}: options.monitor must be a string, got ${describe(monitor)}`);
  }
  const step = async (_index: number, logs?: CallbackLogs): Promise<void> => {
    const s = optimizer.scheduler;
    if (s === undefined) {
      throw new OptimStateError(`${where}: the schedule was stepped before the optimizer's first step built it`);
    }
    if (s instanceof ReduceLROnPlateau) {
      const key = monitor ?? (logs !== undefined && 'val_loss' in logs ? 'val_loss' : 'loss');
      const metric = logs?.[key];
      if (typeof metric !== 'number') {
        throw new OptimRangeError(`${where}: ReduceLROnPlateau monitors "${key}", which the logs lack (they hold ${Object.keys(logs ?? {}).join(', ') || 'nothing'})`);
      }
      s.step(metric);
    } else {
      s.step();
    }
  };
  return every === 'epoch' ? { onEpochEnd: step } : { onBatchEnd: step };
}

function gradientNames(g: Gradients): string[] {
  if (Array.isArray(g)) return g.filter((e) => e.tensor != null).map((e) => e.name);
  return Object.keys(g).filter((k) => g[k] != null);
}

function registeredVariable(name: string, where: string): tf.Variable {
  const v = tf.engine().registeredVariables[name];
  if (v === undefined) throw new OptimRangeError(`${where}: no variable named "${name}" is registered with tfjs (disposed?)`);
  return v;
}

function checkTensor(t: tf.Tensor, slot: Slot, what: string): void {
  if (t.dtype !== 'float32') {
    throw new OptimTypeError(`TfjsOptimizer.applyGradients: the ${what} of "${slot.name}" is ${t.dtype}; only float32 variables are trained; nothing was changed`);
  }
  if (t.size !== slot.size) {
    throw new OptimRangeError(`TfjsOptimizer.applyGradients: the ${what} of "${slot.name}" has ${t.size} elements, the variable had ${slot.size}; nothing was changed`);
  }
}

/** A float64 counter as an int32 tensor of its 64 bits (tfjs tensors hold no float64). */
function float64Bits(x: number): tf.Tensor {
  return tf.tensor1d(new Int32Array(new Float64Array([x]).buffer), 'int32');
}

/** Loads saved per-variable state into `inner`, matched to `slots` by position; all or nothing. */
function loadPending(inner: FirstOrderOptimizer, slots: readonly Slot[], pending: PendingState): void {
  const { perVariable, skippedSteps } = pending;
  if (perVariable.length > slots.length) {
    throw new OptimStateError(`TfjsOptimizer.setWeights: the saved state has ${perVariable.length} variables, the optimizer ${slots.length}`);
  }
  const current: StateDict = inner.stateDict();
  const state: StateDict['state'] = {};
  perVariable.forEach((v, i) => {
    state[slots[i].name] = v.entries;
  });
  inner.loadStateDict({ state, paramGroups: current.paramGroups, skippedSteps });
}

/** A JSON-safe copy of an option value, for getConfig. */
function toConfigValue(v: unknown, where: string): tf.serialization.ConfigDictValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x, i) => toConfigValue(x, `${where}[${i}]`));
  if (typeof v === 'object') {
    const out: tf.serialization.ConfigDict = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) out[k] = toConfigValue(x, `${where}.${k}`);
    return out;
  }
  throw new OptimTypeError(`TfjsOptimizer.getConfig(): ${where} is ${describe(v)}, which a config cannot hold`);
}
