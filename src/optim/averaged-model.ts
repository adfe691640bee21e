import { getBackend } from '../backend/select.js';
import type { FloatArray } from '../backend/types.js';
import { OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import { param } from '../param.js';
import type { Param } from '../param.js';
import { checkInRange, checkOptions, describe, isDetached, isFloatArray, isPlainObject, show } from '../validate.js';
import type { LoadReport } from './optimizer.js';
import { SGD_KERNEL } from './sgd.js';

/** `new AveragedModel(params, options)`. */
export interface AveragedModelOptions {
  /**
   * The decay of an exponential moving average (torch's `get_ema_multi_avg_fn(decay)`), in
   * [0, 1]. Absent (or undefined): the SWA equal average (torch's default).
   */
  emaDecay?: number;
}

/** `AveragedModel.stateDict()`: loadable by `loadStateDict`, and by `saveCheckpoint` as a state dict. */
export interface AveragedModelStateDict {
  /** Updates folded in so far (torch's `n_averaged`). */
  nAveraged: number;
  /** The EMA's decay, or null for the SWA average. */
  emaDecay: number | null;
  /** The averaged values by param name (copies, each of its param's dtype and length). */
  averaged: Record<string, FloatArray>;
}

/** Elements per backend call of the EMA update (the scratch for p − ema is this long per dtype). */
const EMA_CHUNK = 1 << 16;

/**
 * A running average of parameters, as torch.optim.swa_utils.AveragedModel: Stochastic Weight
 * Averaging (the default) or an exponential moving average (`emaDecay`).
 *
 * ```ts
 * const opt = new SGD([w, b], { lr: 0.01, momentum: 0.9 });
 * const swa = new AveragedModel([w, b]);                 // or { emaDecay: 0.999 }
 * for (let t = 1; t <= T; t++) {
 *   fillGrads(); opt.step();
 *   if (t >= swaStart) swa.updateParameters();
 * }
 * evaluate(swa.params);                                   // the averaged copies
 * ```
 *
 * `params` are the model's params (read, never written); `.params` are the averaged copies:
 * Params made by `param()` with the same names, dtypes and lengths (each with a zeroed grad of
 * its own), starting as copies of the params' values, as torch's deep copy of the model.
 * `updateParameters()` folds in the params' current values; with n = `nAveraged` before it:
 *
 * ```
 * n = 0:  avg ← p                                   (both rules: the first update copies)
 * SWA:    avg ← avg + (p − avg) / (n + 1)           (a true division; after k updates, the mean
 *                                                    of the k values, as torch on the CPU)
 * EMA:    w = 1 − decay
 *         avg ← lerp(avg, p, w) = avg + w·(p − avg)            if |w| < 0.5
 *                                 p − (p − avg)·(1 − w)        otherwise
 * n ← n + 1
 * ```
 *
 * Arithmetic, against torch 2.13 on the CPU (test/averaged-model.test.ts):
 * - SWA is computed in the params' dtype (float32: each operation rounded to float32, n + 1
 *   too, as torch divides by the long tensor `n_averaged + 1`), in TypeScript: the same bits as
 *   torch on every backend.
 * - EMA is torch's `_foreach_lerp_(avg, p, 1 − decay)`, whose CPU kernel fuses each branch into
 *   one multiply-add: fma(w, p − avg, avg), or fma(1 − w, avg − p, p). w is rounded to float32
 *   for float32 params, as the kernel reads it. JavaScript has no fma, so (as every kernel) the
 *   multiply-add runs on the selected backend: the difference p − avg is formed here, then the
 *   SGD kernel's p ← fma(−γ, d, p), with −γ = w and d = p − avg, adds it in place. The native
 *   backend with FMA gives torch's bits; without FMA and on the reference backend each
 *   multiply-add rounds twice (the `lerp` of src/optim/prelude.ts): within one rounding per
 *   update (about 1e-16 on O(1) values, float64).
 * - No non-finite check: a NaN or infinity in a param spreads into the average, as in torch.
 *
 * `stateDict()` / `loadStateDict()` carry `nAveraged`, the averaged values and `emaDecay`.
 * With checkpoints (src/checkpoint.ts): `saveCheckpoint(path, { optimizer: swa.stateDict() })`
 * and `loadCheckpoint(path, { into: { optimizer: swa } })` (the `optimizer` slot takes any state
 * dict and anything with a `loadStateDict`); to keep an optimizer's state in the same file, save
 * `{ optimizer: { opt: opt.stateDict(), swa: swa.stateDict() } }` and, after `loadCheckpoint`,
 * call `opt.loadStateDict(optimizer.opt)` and `swa.loadStateDict(optimizer.swa)`.
 *
 * Against torch: no module, buffers or `use_buffers` (the params are the whole model), no
 * custom `avg_fn`; `updateParameters()` reads the params given to the constructor rather than a
 * model passed in.
 */
export class AveragedModel {
  /** The averaged copies, in the order of the params given. */
  readonly params: Param[];
  /** The params averaged (the model's). */
  private readonly sources: Param[];
  private n = 0;
  private decay: number | null;
  /** Scratch for p − avg (EMA), one per dtype, allocated at the first EMA update. */
  private readonly scratch = new Map<Float32ArrayConstructor | Float64ArrayConstructor, FloatArray>();
  private readonly scalars = new Float64Array(SGD_KERNEL.nScalars);

  constructor(params: Param[], options?: AveragedModelOptions) {
    const where = 'AveragedModel(params, options)';
    const o = checkOptions<AveragedModelOptions>(options, ['emaDecay'], where);
    this.decay = o.emaDecay === undefined ? null : checkInRange(o.emaDecay, 'emaDecay', 'AveragedModel: options.', 0, 1);
    if (!Array.isArray(params)) {
      throw new OptimTypeError(`AveragedModel(params): params must be an array of params (from param(data)), got ${describe(params)}`);
    }
    if (params.length === 0) throw new OptimRangeError('AveragedModel(params): params is empty; there is nothing to average');
    const seen = new Map<string, Param>();
    params.forEach((p, i) => {
      const at = `AveragedModel(params): params[${i}]`;
      if (p === null || typeof p !== 'object' || Array.isArray(p) || ArrayBuffer.isView(p)) {
        throw new OptimTypeError(`${at} must be a param (from param(data)), got ${describe(p)}`);
      }
      const { name, data } = p as { name: unknown; data: unknown };
      if (typeof name !== 'string' || name === '') {
        throw new OptimTypeError(`${at}.name must be a non-empty string, got ${name === '' ? 'an empty string' : describe(name)}`);
      }
      if (!isFloatArray(data)) {
        throw new OptimTypeError(`${at} (param "${name}"): data must be a Float32Array or Float64Array, got ${describe(data)}`);
      }
      if (isDetached(data)) throw new OptimTypeError(`${at} (param "${name}"): data is backed by a detached ArrayBuffer`);
      const other = seen.get(name);
      if (other !== undefined) {
        throw new OptimRangeError(other === p ? `${at}: param "${name}" appears twice` : `${at}: two params share the name "${name}"; names key the state dict`);
      }
      seen.set(name, p);
    });
    this.sources = [...params];
    this.params = params.map((p) => param(p.data.slice(), p.name));
  }

  /** Updates folded in so far (torch's `n_averaged`). */
  get nAveraged(): number {
    return this.n;
  }

  /** The EMA's decay, or undefined for the SWA average. */
  get emaDecay(): number | undefined {
    return this.decay ?? undefined;
  }

  /**
   * Folds the params' current values into the average (the rule in the class comment). Checks
   * first that every param still holds an array of its dtype and length, and changes nothing
   * when one does not.
   */
  updateParameters(): void {
    const { sources, params } = this;
    for (let i = 0; i < sources.length; i++) {
      const src = sources[i];
      const data: unknown = src.data;
      const avg = params[i].data;
      const at = `AveragedModel.updateParameters(): param "${src.name}"`;
      if (!isFloatArray(data) || data.constructor !== avg.constructor) {
        throw new OptimTypeError(`${at}: data must be a ${avg.constructor.name} as when the AveragedModel was made, got ${describe(data)}`);
      }
      if (data.length !== avg.length) {
        if (isDetached(data)) throw new OptimTypeError(`${at}: data is backed by a detached ArrayBuffer`);
        throw new OptimRangeError(`${at}: data has length ${data.length}, ${avg.length} when the AveragedModel was made`);
      }
    }
    if (this.n === 0) {
      for (let i = 0; i < sources.length; i++) params[i].data.set(sources[i].data);
    } else if (this.decay === null) {
      this.swa();
    } else {
      this.ema(1 - this.decay, Float64Array);
      this.ema(1 - this.decay, Float32Array);
    }
    this.n++;
  }

  /** avg ← avg + (p − avg)/(n + 1), in each param's dtype. */
  private swa(): void {
    const n1 = this.n + 1;
    for (let k = 0; k < this.sources.length; k++) {
      const p = this.sources[k].data;
      const a = this.params[k].data;
      if (a instanceof Float64Array) {
        for (let i = 0; i < a.length; i++) a[i] = a[i] + (p[i] - a[i]) / n1;
      } else {
        const f = Math.fround;
        const d = f(n1);
        for (let i = 0; i < a.length; i++) a[i] = a[i] + f(f(p[i] - a[i]) / d);
      }
    }
  }

  /**
   * avg ← lerp(avg, p, w) over the params of one dtype, through the backend's SGD kernel
   * (p ← fma(negLr, sign·g, p) with no momentum or weight decay): the small-weight branch with
   * p := avg, g := p − avg, negLr := w; the other with avg := p first, g := avg − p,
   * negLr := 1 − w. Tensors are packed into calls of up to EMA_CHUNK elements (longer ones in
   * pieces), so the scratch for g stays small.
   */
  private ema(weight: number, Ctor: Float32ArrayConstructor | Float64ArrayConstructor): void {
    const f32 = Ctor === Float32Array;
    const w = f32 ? Math.fround(weight) : weight;
    const small = w < 0.5 && w > -0.5;
    const K = SGD_KERNEL;
    const s = this.scalars;
    s.fill(0);
    s[K.slot.sign] = 1;
    s[K.slot.negLr] = small ? w : f32 ? Math.fround(1 - w) : 1 - w;
    const backend = getBackend();
    let scratch: FloatArray | undefined;
    let list: FloatArray[] = [];
    let used = 0;
    const flush = () => {
      if (list.length > 0) backend.step(K, list, s, 0);
      list = [];
      used = 0;
    };
    for (let k = 0; k < this.sources.length; k++) {
      const a = this.params[k].data;
      if (!(a instanceof Ctor)) continue;
      const p = this.sources[k].data;
      if (scratch === undefined) {
        scratch = this.scratch.get(Ctor) ?? new Ctor(EMA_CHUNK);
        this.scratch.set(Ctor, scratch);
      }
      for (let off = 0; off < a.length; ) {
        if (used === EMA_CHUNK) flush();
        const len = Math.min(a.length - off, EMA_CHUNK - used);
        const x = a.subarray(off, off + len);
        const g = scratch.subarray(used, used + len);
        if (small) {
          for (let i = 0; i < len; i++) g[i] = p[off + i] - x[i];
        } else {
          for (let i = 0; i < len; i++) g[i] = x[i] - p[off + i];
          x.set(p.subarray(off, off + len));
        }
        list.push(x, g);
        used += len;
        off += len;
      }
    }
    flush();
  }

  /**
   * A deep copy: `{ nAveraged, emaDecay (null for SWA), averaged: { [name]: values } }`. Later
   * updates do not change it, nor does changing it change the model.
   */
  stateDict(): AveragedModelStateDict {
    const averaged: Record<string, FloatArray> = {};
    for (const p of this.params) setOwn(averaged, p.name, p.data.slice());
    return { nAveraged: this.n, emaDecay: this.decay, averaged };
  }

  /**
   * Restores a `stateDict()`: `nAveraged`, the averaged values (copied into `.params`' arrays)
   * and `emaDecay`. Checks everything first (a whole `nAveraged`; the same rule, SWA or EMA, and
   * a decay in [0, 1]; exactly the same param names, each of its param's dtype and length) and
   * throws OptimStateError naming what does not fit, with nothing changed.
   */
  loadStateDict(sd: AveragedModelStateDict): LoadReport {
    const name = 'AveragedModel.loadStateDict';
    const fail = (msg: string): never => {
      throw new OptimStateError(`${name}: ${msg}`);
    };
    if (!isPlainObject(sd)) throw new OptimStateError(`${name}(stateDict): expected an object, got ${describe(sd)}`);
    for (const k of Object.keys(sd)) {
      if (!['nAveraged', 'emaDecay', 'averaged'].includes(k)) fail(`stateDict.${k}: unknown key (expected nAveraged, emaDecay, averaged)`);
    }
    const { nAveraged, emaDecay, averaged } = sd as unknown as Record<string, unknown>;
    if (!(typeof nAveraged === 'number' && Number.isSafeInteger(nAveraged) && nAveraged >= 0)) {
      fail(`stateDict.nAveraged must be a whole number >= 0, got ${show(nAveraged)}`);
    }
    const rule = (d: number | null) => (d === null ? 'an SWA average' : `an EMA (emaDecay ${d})`);
    if (emaDecay !== null && emaDecay !== undefined) {
      if (!(typeof emaDecay === 'number' && emaDecay >= 0 && emaDecay <= 1)) {
        fail(`stateDict.emaDecay must be null (SWA) or a number in [0, 1], got ${show(emaDecay)}`);
      }
    }
    const decay = (emaDecay ?? null) as number | null;
    if ((decay === null) !== (this.decay === null)) {
      fail(`the state dict holds ${rule(decay)} but this AveragedModel is ${rule(this.decay)}`);
    }
    if (!isPlainObject(averaged)) fail(`stateDict.averaged must be an object of values by param name, got ${describe(averaged)}`);
    const saved = averaged as Record<string, unknown>;
    const names = this.params.map((p) => p.name);
    const missing = names.filter((n) => !Object.prototype.hasOwnProperty.call(saved, n));
    const unexpected = Object.keys(saved).filter((n) => !names.includes(n));
    if (missing.length > 0 || unexpected.length > 0) {
      fail(
        `stateDict.averaged must hold exactly this model's params (${JSON.stringify(names)})` +
          (missing.length > 0 ? `; missing ${JSON.stringify(missing)}` : '') +
          (unexpected.length > 0 ? `; unexpected ${JSON.stringify(unexpected)}` : ''),
      );
    }
    for (const p of this.params) {
      const v = saved[p.name];
      const at = `stateDict.averaged[${JSON.stringify(p.name)}]`;
      if (!isFloatArray(v) || v.constructor !== p.data.constructor) {
        fail(`${at} is a ${describe(v)} but param "${p.name}" is a ${p.data.constructor.name}`);
      }
      const arr = v as FloatArray;
      if (arr.length !== p.data.length) fail(`${at} has length ${arr.length} but param "${p.name}" has length ${p.data.length}`);
    }

    // Everything checked: apply.
    for (const p of this.params) p.data.set(saved[p.name] as FloatArray);
    this.n = nAveraged as number;
    this.decay = decay;
    return { matched: names, missing: [], unexpected: [] };
  }
}

/** A key set with define, so that a param named `__proto__` stays an ordinary own key. */
function setOwn(o: object, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
