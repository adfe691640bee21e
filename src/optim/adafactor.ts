import { stateLayout } from '../backend/kernel.js';
import type { FloatArray } from '../backend/types.js';
import { getBackend } from '../backend/select.js';
import { OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import { formatShape } from '../param.js';
import type { Param } from '../param.js';
import { checkNonNegative, describe, isFloatArray, isPlainObject, path, show } from '../validate.js';
import type { Where } from '../validate.js';
import { lerpInto, sgdScalars } from './muon.js';
import { Optimizer, refuseBfloat16State } from './optimizer.js';
import type { GroupBase, LoadReport, OptimizerOptions, OptimizerSpec, ParamsInput, StateDict } from './optimizer.js';
import { optionChecker } from './options.js';
import { SGD_KERNEL } from './sgd.js';

export interface AdafactorOptions {
  /** γ: caps the relative step size ρ_t = min(γ, 1/√t) and scales the weight decay (not a step size). */
  lr?: number;
  /** τ ≤ 0: the second-moment EMA weight at step t is t^τ. */
  beta2Decay?: number;
  /** [ε₁, ε₂]: ε₁ (null: the param dtype's machine epsilon) floors the variance, ε₂ the param RMS. */
  eps?: [number | null, number];
  /** The clipping threshold (≥ 1) on the RMS of the update. */
  d?: number;
  weightDecay?: number;
  /** torch's `foreach`: accepted (null, true or false) and ignored; there is one implementation. */
  foreach?: boolean | null;
  maximize?: boolean;
}

export interface AdafactorGroup extends GroupBase, Required<AdafactorOptions> {}

/**
 * Adafactor's state layout, in the form the base class reads a kernel's: a `step` counter and
 * buffers whose length is not the param's (`rowVar`, `colVar`), so none is declared here: the
 * class creates, checks, saves (through the base's `stateDict`) and loads them itself. Not a step
 * kernel: the update takes norms over whole rows, columns and tensors, so it is neither
 * registered nor ever handed to a backend; `Adafactor.step` runs it, its fused multiply-adds
 * through the SGD kernel.
 */
const ADAFACTOR_LAYOUT = stateLayout('adafactor', []);

const SPEC: OptimizerSpec<AdafactorGroup> = {
  name: 'Adafactor',
  kernel: ADAFACTOR_LAYOUT,
  defaults: {
    lr: 1e-2,
    beta2Decay: -0.8,
    eps: [null, 1e-3],
    d: 1.0,
    weightDecay: 0.0,
    foreach: null,
    maximize: false,
  },
  counters: ['step'],
};

/** The checks of the options of the usual kinds (numbers >= 0, a boolean), in torch's wording. */
const checkScalarOptions = optionChecker({ lr: 0, weightDecay: 0, maximize: false });

/** torch.finfo(torch.float32).eps and torch.finfo(torch.float64).eps. */
const FLOAT32_EPS = 2 ** -23;
const FLOAT64_EPS = 2 ** -52;

/**
 * Elements per SIMD vector in torch 2.13's CPU kernels as the recording ran them (256-bit
 * vectors: 4 float64, 8 float32; test/adafactor.test.ts replays the recording operation for
 * operation with these): the lanes its sums of squares and sums accumulate in, and half the
 * stride of its elementwise loops, which run two vectors at a time and leave the rest to a
 * scalar loop.
 */
const LANES = { f32: 8, f64: 4 };
const lanesOf = (f32: boolean) => (f32 ? LANES.f32 : LANES.f64);

/** How a param is factored: `[...batch, rows, cols]` when it has 2 dims or more, else a vector. */
interface Layout {
  readonly factored: boolean;
  /** The product of the leading dims (1 for a matrix). */
  readonly batch: number;
  readonly rows: number;
  readonly cols: number;
}

/** The work arrays for one (layout, dtype), made once and kept. */
interface Scratch {
  /** The variance estimate, then the update (length n). */
  u: FloatArray;
  /** The new row and column means of g² (factored), or g² (a vector; length n). */
  rowMean: FloatArray;
  colMean: FloatArray;
  /** Differences for the lerps (one per buffer length). */
  rowDiff: FloatArray;
  colDiff: FloatArray;
}

/**
 * Adafactor, as torch.optim.Adafactor (torch 2.13, its single-tensor path): the second moment of a
 * matrix kept as a row and a column factor (memory rows + cols instead of rows·cols), relative step
 * sizes, and updates clipped by their RMS. For a param with 2 dims or more, factored over the last
 * two (the leading ones are a batch, each matrix with its own factors):
 *
 * ```
 * t ← t + 1;   G = −∇ if maximize, else ∇;   ε₁ = eps[0] ?? machine epsilon of the dtype;  ε₂ = eps[1]
 * β̂_t = t^τ                                    (τ = beta2Decay ≤ 0: the weight of the new g²)
 * ρ_t = min(γ, 1/√t)                          (γ = lr)
 * α_t = max(ε₂, ‖θ_{t−1}‖₂ / √n) · ρ_t         (n = the number of elements; θ before the decay)
 * θ ← θ·(1 − γλ)                               (λ = weightDecay, when λ ≠ 0)
 * matrix (rows × cols):
 *   R_t = lerp(R_{t−1}, rowmean(G²), β̂_t)      R: rows × 1, rowmean_i = ‖G_i,:‖₂² / cols
 *   C_t = lerp(C_{t−1}, colmean(G²), β̂_t)      C: 1 × cols, colmean_j = ‖G_:,j‖₂² / rows
 *   V̂_t = R_t C_t / max(mean_i R_t, ε₁)
 * vector (1-D, a scalar, or a param without a shape):
 *   V_t = lerp(V_{t−1}, G², β̂_t);   V̂_t = V_t
 * U_t = G / √max(V̂_t, ε₁²)
 * θ_t = θ − α_t / max(1, RMS(U_t)/d) · U_t       (RMS(U) = ‖U‖₂ / √n)
 * ```
 *
 * lerp(a, b, w) = a + w(b − a). State per param: `step`, and `rowVar` (R, batch·rows elements) and
 * `colVar` (C, batch·cols) for a factored param or `variance` (V, n) for a vector, torch's
 * `row_var`, `col_var`, `variance` flattened row-major, in the param's dtype.
 *
 * Options (torch's defaults): `lr` γ 1e-2 (it only caps ρ and scales the weight decay),
 * `beta2Decay` τ −0.8 (≤ 0), `eps` [ε₁, ε₂] = [null, 1e-3] (null: torch's finfo(dtype).eps),
 * `d` 1 (≥ 1), `weightDecay` λ 0, `foreach` null (accepted, ignored), `maximize` false. State
 * storage is the param's dtype: `stateDtype: 'bfloat16'` is refused.
 *
 * Params: the shape is read from `p.shape` (`param(data, name, { shape })`, `paramArena`); 2 dims
 * or more are factored, anything else (and a hand-made param without `shape`) is a vector.
 *
 * Arithmetic, as torch 2.13's CPU kernels ran it for the recording, operation for operation
 * (test/adafactor.test.ts replays it; they used 256-bit vectors: 4 float64 or 8 float32 lanes):
 * - every result rounded to the param's dtype; scalars (β̂, the clamps, the final factor) read in
 *   it; ρ, α and the clipping ratio in double, as torch's Python computes them;
 * - a norm over a contiguous run (the whole tensor, a row) sums the squares in the vector lanes
 *   (multiply, then add), adds the lanes in order and the remaining elements one by one, then √
 *   (correctly rounded); down a column it sums in order; the means are (‖·‖₂)²/count, the root
 *   squared back, as torch computes them;
 * - mean_i R is torch's cascade sum (four interleaved sums; vectors of lanes past a vector's
 *   length) divided by rows;
 * - 1/√ rounds twice (torch's `rsqrt`);
 * - a lerp runs two vectors at a time as one fused multiply-add (fma(w, b − a, a), or
 *   fma(w − 1, b − a, b) for w ≥ 0.5) and the elements after the last pair in a scalar loop that
 *   rounds twice (a + w(b − a), or b − (b − a)(1 − w)); θ − s·U is fused everywhere. The fused
 *   parts run through the SGD kernel on the selected backend: fused on the native backend with
 *   FMA, rounded twice on the reference backend and without FMA;
 * - torch's Python `max`/`min` keep their first argument unless the second compares greater
 *   (smaller): a NaN norm leaves α = ε₂·ρ and the clipping denominator 1, as in torch.
 *
 * Where this differs from torch:
 * - ε₁ = null is resolved per param from its own dtype; torch resolves it from the first param
 *   of the group it meets and keeps that for the rest of the group (a difference only in a group
 *   that mixes float32 and float64 params).
 * - torch stores `step` as a float32 tensor (exact up to 2^24 steps); here it is a number.
 * - torch on another CPU (AVX-512 kernels, or none) sums in other lanes, and with several threads
 *   may split long sums: the last bits of its norms move; this class keeps the recording's order.
 * - An empty param is left as is (torch divides by zero on it).
 *
 * `nonFinite` (see Optimizer): the gradients are all scanned before anything changes; a step
 * refused or skipped changes no param, buffer or count, nor creates state. Step hooks run around
 * `step` as for every optimizer.
 */
export class Adafactor extends Optimizer<AdafactorGroup> {
  /** The length of each param's data at its first step (or when its state was loaded). */
  private readonly firstLengths = new Map<Param, number>();
  /** Work arrays by layout and dtype. */
  private readonly work = new Map<string, Scratch>();
  /** The SGD kernel's scalars (sign 1, nothing else but negLr), for its multiply-add. */
  private readonly sgdScalars = sgdScalars();

  constructor(params: ParamsInput<AdafactorOptions>, options: AdafactorOptions & OptimizerOptions = {}) {
    refuseBfloat16State('Adafactor', options, "Adafactor keeps its factors in the param's dtype");
    super(params, options, SPEC);
  }

  /** Adds a group (torch's `add_param_group`); each param's shape must describe its data. */
  override addParamGroup(group: Partial<Omit<AdafactorGroup, 'params'>> & { params: Param[] }): void {
    super.addParamGroup(group);
    const i = this.paramGroups.length - 1;
    try {
      this.paramGroups[i].params.forEach((p, j) => layoutOf(p, `Adafactor: paramGroups[${i}].params[${j}]`));
    } catch (e) {
      this.paramGroups.pop();
      throw e;
    }
  }

  protected override checkHyper(g: AdafactorGroup, where: Where): void {
    checkScalarOptions(g, where);
    const b: unknown = g.beta2Decay;
    if (!(typeof b === 'number' && b <= 0 && b > -Infinity)) {
      if (typeof b !== 'number') {
        throw new OptimTypeError(`Invalid beta2_decay value: ${show(b)} (${path(where, 'beta2Decay')} must be a number, got ${describe(b)})`);
      }
      throw new OptimRangeError(`Invalid beta2_decay value: ${b} (${path(where, 'beta2Decay')} must be a finite number <= 0)`);
    }
    const e: unknown = g.eps;
    if (!Array.isArray(e) || e.length !== 2) {
      const got = Array.isArray(e) ? `an Array of length ${e.length}` : describe(e);
      throw new OptimTypeError(`${path(where, 'eps')} must be an array [eps1, eps2] (eps1 null: the dtype's machine epsilon), got ${got}`);
    }
    const e1: unknown = e[0];
    if (e1 !== null && !(typeof e1 === 'number' && e1 >= 0 && e1 < Infinity)) {
      if (typeof e1 !== 'number') {
        throw new OptimTypeError(`Invalid epsilon value: ${show(e1)} (${path(where, 'eps[0]')} must be null or a number, got ${describe(e1)})`);
      }
      throw new OptimRangeError(`Invalid epsilon value: ${e1} (${path(where, 'eps[0]')} must be null or a finite number >= 0)`);
    }
    checkNonNegative(e[1], 'eps[1]', 'Invalid epsilon value', where);
    const d: unknown = g.d;
    if (!(typeof d === 'number' && d >= 1)) {
      if (typeof d !== 'number') throw new OptimTypeError(`Invalid clipping threshold d: ${show(d)} (${path(where, 'd')} must be a number, got ${describe(d)})`);
      throw new OptimRangeError(`Invalid clipping threshold d: ${d} (${path(where, 'd')} must be a number >= 1)`);
    }
    const f: unknown = g.foreach;
    if (f !== null && typeof f !== 'boolean') {
      throw new OptimTypeError(`${path(where, 'foreach')} must be null or a boolean (accepted for torch's signature, and ignored), got ${describe(f)}`);
    }
  }

  /**
   * A saved `stateDict()`: checks the factors against each param's shape (`rowVar` of
   * batch·rows elements and `colVar` of batch·cols for a param of 2 dims or more, `variance` of
   * its length otherwise, each in its dtype), and everything else as every optimizer does,
   * before changing anything.
   */
  override loadStateDict(sd: StateDict): LoadReport {
    const name = 'Adafactor.loadStateDict';
    if (!isPlainObject(sd) || !isPlainObject(sd.state)) return super.loadStateDict(sd);
    if (sd.stateDtype !== undefined) {
      throw new OptimStateError(`${name}: stateDict.stateDtype must be absent (Adafactor keeps its state in the param's dtype), got ${show(sd.stateDtype)}`);
    }
    const byName = new Map<string, Param>();
    for (const g of this.paramGroups) for (const p of g.params) byName.set(p.name, p);
    const counters: Record<string, unknown> = {};
    const buffers = new Map<Param, Record<string, FloatArray>>();
    for (const [pname, saved] of Object.entries(sd.state)) {
      const p = byName.get(pname);
      if (p === undefined || !isPlainObject(saved) || !isFloatArray(p.data)) {
        counters[pname] = saved; // unexpected, or refused by the base's checks
        continue;
      }
      const where = `${name}: stateDict.state[${JSON.stringify(pname)}]`;
      let layout: Layout;
      try {
        layout = layoutOf(p, where);
      } catch (e) {
        throw new OptimStateError(e instanceof Error ? e.message : String(e));
      }
      const want = bufferLengths(layout, p.data.length);
      const own: Record<string, unknown> = {};
      const bufs: Record<string, FloatArray> = {};
      for (const [key, v] of Object.entries(saved)) {
        if (key === 'step') {
          own.step = v;
          continue;
        }
        const length = want[key];
        if (length === undefined) {
          throw new OptimStateError(
            `${where}: unknown state "${key}" for Adafactor (param "${p.name}" of shape ${formatShape(shapeOf(p))} keeps step, ${Object.keys(want).join(', ')})`,
          );
        }
        if (!isFloatArray(v) || v.constructor !== p.data.constructor) {
          throw new OptimStateError(`${where}.${key} is a ${describe(v)} but param "${p.name}" is a ${p.data.constructor.name}`);
        }
        if (v.length !== length) {
          throw new OptimStateError(
            `${where}.${key} has length ${v.length} but param "${p.name}" of shape ${formatShape(shapeOf(p))} needs ${length} (${describeLength(key, layout)})`,
          );
        }
        bufs[key] = v.slice();
      }
      for (const key of Object.keys(want)) {
        if (!(key in bufs)) throw new OptimStateError(`${where}: missing "${key}"`);
      }
      counters[pname] = own;
      buffers.set(p, bufs);
    }
    // The base checks the rest (groups, hyperparameters, step counts) and applies, or throws
    // with nothing changed; the buffers, all checked above, are added to what it restored.
    const report = super.loadStateDict({ ...sd, state: counters as StateDict['state'] });
    this.firstLengths.clear();
    for (const [p, bufs] of buffers) {
      Object.assign(this.state.get(p)!, bufs);
      this.firstLengths.set(p, p.data.length);
    }
    return report;
  }

  /**
   * The step (see Optimizer.step for the closure, the hooks and the rollback): calls the closure
   * first, if given. Checks every group's hyperparameters, params and shapes, then scans every
   * gradient (`nonFinite`), before anything changes; then updates param by param.
   */
  protected override update<L>(closure: (() => L) | undefined): L | undefined {
    const loss = closure === undefined ? undefined : closure();
    const layouts: Layout[] = [];
    this.checkStepGroups((_group, p, where) => {
      const layout = layoutOf(p, where);
      const st = this.state.get(p);
      if (st !== undefined) {
        for (const [key, length] of Object.entries(bufferLengths(layout, p.data.length))) {
          const buf = st[key];
          if (buf === undefined || typeof buf === 'number' || buf.length !== length) {
            throw new OptimRangeError(
              `${where}: param "${p.name}" of shape ${formatShape(shapeOf(p))} needs a ${key} of ${length} elements, but its state has ` +
                (buf === undefined || typeof buf === 'number' ? 'none' : `${buf.length}`),
            );
          }
        }
      }
      layouts.push(layout);
    });
    const bad = this.firstNonFiniteGrad();
    if (bad !== undefined) return this.refuseFound(bad, loss);
    // Everything is checked: nothing below throws on these inputs. Should it all the same, the
    // step's transaction puts every param, buffer and state entry back.
    let k = 0;
    for (const group of this.paramGroups) for (const p of group.params) this.updateParam(group, p, layouts[k++]);
    return loss;
  }

  /** The base's checks of a group's params, after `checkFirstLengths`. */
  protected override checkParams(group: AdafactorGroup, i: number): void {
    if (Array.isArray(group.params)) this.checkFirstLengths(group.params);
    super.checkParams(group, i);
  }

  /** A param whose data changed length since its first step is refused (before the base's checks). */
  private checkFirstLengths(params: readonly Param[]): void {
    for (const p of params) {
      const first = this.firstLengths.get(p);
      const data: unknown = p !== null && typeof p === 'object' ? p.data : undefined;
      if (first !== undefined && isFloatArray(data) && data.length !== first) {
        throw new OptimRangeError(
          `Adafactor.step(): param "${p.name}": data has length ${data.length} but had length ${first} at its first step (detached or replaced by an array of another length?)`,
        );
      }
    }
  }

  /** The update of one param (see the class comment), recorded in `tx` before each write. */
  private updateParam(g: AdafactorGroup, p: Param, layout: Layout): void {
    const tx = this.tx;
    const { data, grad } = p;
    const n = data.length;
    const f32 = data instanceof Float32Array;
    /** A value as torch holds it in a tensor (or reads a scalar for one) of the param's dtype. */
    const r = f32 ? Math.fround : (x: number) => x;
    const { batch, rows, cols } = layout;
    let st = this.state.get(p);
    if (st === undefined) {
      tx.saveEntry(this.state, p);
      tx.saveEntry(this.firstLengths, p);
      const make = (length: number) => (f32 ? new Float32Array(length) : new Float64Array(length));
      st = layout.factored ? { step: 0, rowVar: make(batch * rows), colVar: make(batch * cols) } : { step: 0, variance: make(n) };
      this.state.set(p, st);
      this.firstLengths.set(p, n);
    } else {
      tx.saveEntry(st, 'step');
      for (const v of Object.values(st)) if (typeof v !== 'number') tx.saveArray(v);
    }
    tx.saveArray(data);
    const s = this.sgdScalars;
    const w = this.scratch(layout, n, f32);

    const t = (st.step as number) + 1;
    st.step = t;
    const eps1 = g.eps[0] ?? (f32 ? FLOAT32_EPS : FLOAT64_EPS);
    const beta2t = r(t ** g.beta2Decay);
    const inv = 1 / Math.sqrt(t);
    const rho = inv < g.lr ? inv : g.lr;
    const rms = norm2(data, 0, n, f32) / Math.sqrt(n);
    const alpha = (rms > g.eps[1] ? rms : g.eps[1]) * rho;
    if (g.weightDecay !== 0) {
      const decay = r(1 - g.lr * g.weightDecay);
      for (let k = 0; k < n; k++) data[k] = data[k] * decay;
    }

    const u = w.u;
    if (layout.factored) {
      const rowVar = st.rowVar as FloatArray;
      const colVar = st.colVar as FloatArray;
      const { rowMean, colMean } = w;
      const size = rows * cols;
      for (let b = 0; b < batch; b++) {
        const base = b * size;
        for (let i = 0; i < rows; i++) {
          const nr = norm2(grad, base + i * cols, cols, f32);
          rowMean[b * rows + i] = r(nr * nr) / cols;
        }
        for (let j = 0; j < cols; j++) {
          const nc = columnNorm(grad, base + j, rows, cols, f32);
          colMean[b * cols + j] = r(nc * nc) / rows;
        }
      }
      torchLerp(rowVar, rowMean, beta2t, w.rowDiff, s, f32);
      torchLerp(colVar, colMean, beta2t, w.colDiff, s, f32);
      const floor1 = r(eps1);
      for (let b = 0; b < batch; b++) {
        const mean = r(torchSum(rowVar, b * rows, rows, f32) / rows);
        const denom = mean < floor1 ? floor1 : mean;
        for (let i = 0, k = b * rows * cols; i < rows; i++) {
          const ri = rowVar[b * rows + i];
          for (let j = 0; j < cols; j++, k++) u[k] = r(ri * colVar[b * cols + j]) / denom;
        }
      }
    } else {
      const variance = st.variance as FloatArray;
      const sq = w.rowMean;
      for (let k = 0; k < n; k++) sq[k] = grad[k] * grad[k];
      torchLerp(variance, sq, beta2t, w.rowDiff, s, f32);
      u.set(variance);
    }
    // U = G / √max(V̂, ε₁²): torch's clamp_min (a NaN stays NaN), rsqrt as 1/√, times G.
    const floor2 = r(eps1 * eps1);
    for (let k = 0; k < n; k++) {
      const v = u[k];
      const root = r(Math.sqrt(v < floor2 ? floor2 : v));
      u[k] = r(1 / root) * grad[k];
    }
    const ratio = norm2(u, 0, n, f32) / (Math.sqrt(n) * g.d);
    const denom = ratio > 1 ? ratio : 1;
    // θ ← θ − (α/denom)·U, one multiply-add (the SGD kernel's p ← fma(negLr, U, p)); maximize
    // negated G, hence U: the same as negating the factor.
    const step = -alpha / denom;
    s[SGD_KERNEL.slot.negLr] = g.maximize ? -step : step;
    getBackend().step(SGD_KERNEL, [data, u], s, 0);
  }

  /** The work arrays for a layout in a dtype, made once and kept. */
  private scratch(layout: Layout, n: number, f32: boolean): Scratch {
    const rowLength = layout.factored ? layout.batch * layout.rows : n;
    const colLength = layout.factored ? layout.batch * layout.cols : 0;
    const key = `${n}|${rowLength}|${colLength}|${f32 ? 32 : 64}`;
    let s = this.work.get(key);
    if (s === undefined) {
      const make = (length: number) => (f32 ? new Float32Array(length) : new Float64Array(length));
      s = { u: make(n), rowMean: make(rowLength), colMean: make(colLength), rowDiff: make(rowLength), colDiff: make(colLength) };
      this.work.set(key, s);
    }
    return s;
  }
}

/** A param's dims as given, or `[length]` for a param without a shape. */
function shapeOf(p: Param): readonly unknown[] {
  const shape: unknown = (p as { shape?: unknown }).shape;
  return Array.isArray(shape) ? shape : [p.data.length];
}

/** How a param is factored, or an error naming it when its shape does not describe its data. */
function layoutOf(p: Param, where: string): Layout {
  const n = p.data.length;
  const shape: unknown = (p as { shape?: unknown }).shape;
  if (shape === undefined) return { factored: false, batch: 1, rows: 1, cols: n };
  if (!Array.isArray(shape)) {
    throw new OptimTypeError(`${where} (param "${p.name}"): shape must be an array of whole numbers (the dims, row-major), got ${describe(shape)}`);
  }
  let count = 1;
  for (const d of shape) {
    if (!(Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new OptimRangeError(`${where}: param "${p.name}" has shape ${formatShape(shape)}, not an array of whole numbers`);
    }
    count *= d as number;
  }
  if (count !== n) {
    throw new OptimRangeError(
      `${where}: param "${p.name}" has shape ${formatShape(shape)} (${count} elements) but its data has length ${n} (replaced by an array of another length?)`,
    );
  }
  if (shape.length < 2) return { factored: false, batch: 1, rows: 1, cols: n };
  const dims = shape as number[];
  let batch = 1;
  for (let k = 0; k < dims.length - 2; k++) batch *= dims[k];
  return { factored: true, batch, rows: dims[dims.length - 2], cols: dims[dims.length - 1] };
}

/** The state buffers of a layout and their lengths. */
function bufferLengths(layout: Layout, n: number): Record<string, number> {
  return layout.factored ? { rowVar: layout.batch * layout.rows, colVar: layout.batch * layout.cols } : { variance: n };
}

function describeLength(key: string, layout: Layout): string {
  if (key === 'variance') return 'its length';
  return `${layout.batch > 1 ? `${layout.batch} matrices × ` : ''}${key === 'rowVar' ? `${layout.rows} rows` : `${layout.cols} columns`}`;
}

/**
 * ‖a[from, from + n)‖₂ as torch 2.13's CPU `linalg.vector_norm` takes it over a contiguous run:
 * the squares summed in LANES lanes over the whole vectors (a multiply, then an add), the lanes
 * added in order, the remaining elements added on one by one, then the square root; each
 * operation rounded to the dtype.
 */
function norm2(a: FloatArray, from: number, n: number, f32: boolean): number {
  const lanes = lanesOf(f32);
  const full = n - (n % lanes);
  let total = 0;
  if (full > 0) {
    if (f32) {
      for (let l = 0; l < lanes; l++) {
        let acc = 0;
        for (let k = from + l; k < from + full; k += lanes) acc = Math.fround(acc + Math.fround(a[k] * a[k]));
        total = l === 0 ? acc : Math.fround(total + acc);
      }
    } else {
      for (let l = 0; l < lanes; l++) {
        let acc = 0;
        for (let k = from + l; k < from + full; k += lanes) acc += a[k] * a[k];
        total = l === 0 ? acc : total + acc;
      }
    }
  }
  if (f32) {
    for (let k = from + full; k < from + n; k++) total = Math.fround(total + Math.fround(a[k] * a[k]));
    return Math.fround(Math.sqrt(total));
  }
  for (let k = from + full; k < from + n; k++) total += a[k] * a[k];
  return Math.sqrt(total);
}

/** ‖column‖₂ down `rows` elements `stride` apart from `from`, summed in order (torch's strided reduction). */
function columnNorm(a: FloatArray, from: number, rows: number, stride: number, f32: boolean): number {
  let total = 0;
  if (f32) {
    for (let i = 0, k = from; i < rows; i++, k += stride) total = Math.fround(total + Math.fround(a[k] * a[k]));
    return Math.fround(Math.sqrt(total));
  }
  for (let i = 0, k = from; i < rows; i++, k += stride) total += a[k] * a[k];
  return Math.sqrt(total);
}

/** Running sums of torchSum: 4 cascade levels × 4 interleaved sums × up to 8 lanes. */
const SUM_ACC = new Float64Array(4 * 4 * 8);

/**
 * Σ a[from, from + n) in the order of torch 2.13's CPU sum over a contiguous run (SumKernel.cpp's
 * cascade_sum): fewer elements than a vector holds are summed by `row_sum` (four interleaved sums,
 * the rest added to the first, then the other three added to it); more, as vectors of LANES
 * elements by the same `row_sum` lane by lane (in cascade levels of 16 groups past 64 vectors),
 * then the elements after the last whole vector, then each lane in order. Each addition rounded
 * to the dtype.
 */
function torchSum(a: FloatArray, from: number, n: number, f32: boolean): number {
  const r = f32 ? Math.fround : (x: number) => x;
  const lanes = lanesOf(f32);
  if (n < lanes) {
    rowSum(a, from, n, 1, r);
    return SUM_ACC[0];
  }
  const vectors = Math.floor(n / lanes);
  rowSum(a, from, vectors, lanes, r);
  let total = 0;
  for (let k = from + vectors * lanes; k < from + n; k++) total = r(total + a[k]);
  for (let l = 0; l < lanes; l++) total = r(total + SUM_ACC[l]);
  return total;
}

/**
 * torch's `row_sum` over `size` elements of `width` lanes each (element e, lane l at
 * a[from + e·width + l]): the result's lanes in SUM_ACC[0, width). Four interleaved sums through
 * `multi_row_sum`'s cascade, the remainder added to the first, the other three added to it.
 */
function rowSum(a: FloatArray, from: number, size: number, width: number, r: (x: number) => number): void {
  const acc = SUM_ACC;
  acc.fill(0);
  // acc[(level·4 + k)·8 + lane]: level 0 takes the elements, higher levels the cascade.
  const at = (level: number, k: number, lane: number) => (level * 4 + k) * 8 + lane;
  const groups = Math.floor(size / 4);
  // c10's CeilLog2: 1 up to 2, else the bit length of groups − 1.
  let ceilLog2 = 1;
  if (groups > 2) for (ceilLog2 = 0; 2 ** ceilLog2 < groups; ceilLog2++);
  const levelPower = Math.max(4, Math.floor(ceilLog2 / 4));
  const levelStep = 2 ** levelPower;
  const add = (i: number) => {
    for (let k = 0; k < 4; k++) {
      const base = from + (i * 4 + k) * width;
      for (let l = 0; l < width; l++) acc[at(0, k, l)] = r(acc[at(0, k, l)] + a[base + l]);
    }
  };
  let i = 0;
  while (i + levelStep <= groups) {
    for (let j = 0; j < levelStep; j++, i++) add(i);
    for (let level = 1; level < 4; level++) {
      for (let k = 0; k < 4; k++) {
        for (let l = 0; l < width; l++) {
          acc[at(level, k, l)] = r(acc[at(level, k, l)] + acc[at(level - 1, k, l)]);
          acc[at(level - 1, k, l)] = 0;
        }
      }
      if (Math.floor(i / 2 ** (level * levelPower)) % levelStep !== 0) break;
    }
  }
  for (; i < groups; i++) add(i);
  for (let level = 1; level < 4; level++) {
    for (let k = 0; k < 4; k++) for (let l = 0; l < width; l++) acc[at(0, k, l)] = r(acc[at(0, k, l)] + acc[at(level, k, l)]);
  }
  for (let e = groups * 4; e < size; e++) {
    for (let l = 0; l < width; l++) acc[at(0, 0, l)] = r(acc[at(0, 0, l)] + a[from + e * width + l]);
  }
  for (let k = 1; k < 4; k++) for (let l = 0; l < width; l++) acc[at(0, 0, l)] = r(acc[at(0, 0, l)] + acc[at(0, k, l)]);
}

/**
 * torch's `lerp_(end, w)` of a state buffer in place, as its CPU kernel runs it: two vectors at a
 * time, fused (fma(w, end − out, out), or fma(w − 1, end − out, end) for w ≥ 0.5: the SGD kernel,
 * through `lerpInto`), and the elements after the last pair of vectors by the scalar loop, which
 * rounds the product and the sum apart (out + w·(end − out), or end − (end − out)·(1 − w)).
 * `diff` is scratch of out's length.
 */
function torchLerp(out: FloatArray, end: FloatArray, w: number, diff: FloatArray, s: Float64Array, f32: boolean): void {
  const n = out.length;
  const head = n - (n % (2 * lanesOf(f32)));
  // The scalar loop's elements: kept before the fused pass overwrites them.
  const tail = TAIL;
  for (let k = head; k < n; k++) tail[k - head] = out[k];
  lerpInto(out, out, end, w, diff, s);
  const r = f32 ? Math.fround : (x: number) => x;
  const small = w < 0.5 && w > -0.5;
  for (let k = head; k < n; k++) {
    const a = tail[k - head];
    const b = end[k];
    const d = r(b - a);
    out[k] = small ? r(a + r(w * d)) : r(b - r(d * r(1 - w)));
  }
}

/** The scalar loop's elements of torchLerp (fewer than two vectors: at most 15). */
const TAIL = new Float64Array(16);
