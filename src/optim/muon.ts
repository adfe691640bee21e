import { stateLayout } from '../backend/kernel.js';
import type { FloatArray } from '../backend/types.js';
import { roundBfloat16 } from '../backend/bfloat16.js';
import { getBackend } from '../backend/select.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { matmul } from '../linalg/matmul.js';
import { formatShape } from '../param.js';
import type { Param } from '../param.js';
import { checkChoice, describe, path, show } from '../validate.js';
import type { Where } from '../validate.js';
import { Optimizer, refuseBfloat16State } from './optimizer.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamsInput } from './optimizer.js';
import { optionChecker } from './options.js';
import { SGD_KERNEL } from './sgd.js';

/** torch's `adjust_lr_fn`: how the step size follows the matrix's shape (see Muon). */
export type MuonAdjustLrFn = 'original' | 'match_rms_adamw';

/**
 * The arithmetic of the Newton–Schulz iteration: `'float32'` (default), `'bfloat16'` (every
 * operation's result rounded to bfloat16, as torch 2.13 ships it) or `'float64'`.
 */
export type MuonNsDtype = 'float32' | 'bfloat16' | 'float64';

export interface MuonOptions {
  lr?: number;
  weightDecay?: number;
  momentum?: number;
  nesterov?: boolean;
  /** (a, b, c) of the quintic Newton–Schulz step X ← aX + (bA + cA²)X, A = XXᵀ. */
  nsCoefficients?: [number, number, number];
  eps?: number;
  nsSteps?: number;
  /** null (torch's None) or `'original'`: lr·√max(1, rows/cols); `'match_rms_adamw'`: 0.2·lr·√max(rows, cols). */
  adjustLrFn?: MuonAdjustLrFn | null;
  nsDtype?: MuonNsDtype;
}

export interface MuonGroup extends GroupBase, Required<MuonOptions> {}

/**
 * Muon's state layout, in the form the base class reads a kernel's: one buffer per param,
 * `momentumBuffer`, and no counter. It is not a step kernel: Muon's update multiplies whole
 * matrices, so it is neither registered (no native twin, no kernel tables) nor ever handed to a
 * backend; `Muon.step` runs the update itself (its matrix products on the backend's `matmul`).
 */
const MUON_LAYOUT = stateLayout('muon', ['momentumBuffer']);

/** torch's Newton–Schulz coefficients (torch.optim._muon DEFAULT_A, _B, _C). */
const NS_COEFFICIENTS: [number, number, number] = [3.4445, -4.775, 2.0315];

const SPEC: OptimizerSpec<MuonGroup> = {
  name: 'Muon',
  kernel: MUON_LAYOUT,
  defaults: {
    lr: 1e-3,
    weightDecay: 0.1,
    momentum: 0.95,
    nesterov: true,
    nsCoefficients: NS_COEFFICIENTS,
    eps: 1e-7,
    nsSteps: 5,
    adjustLrFn: null,
    nsDtype: 'float32',
  },
  counters: [],
};

/** The checks of the options of the usual kinds (numbers >= 0, a boolean), in torch's wording. */
const checkScalarOptions = optionChecker({ lr: 0, weightDecay: 0, momentum: 0, eps: 0, nesterov: true });

const NS_DTYPES: readonly MuonNsDtype[] = ['float32', 'bfloat16', 'float64'];

/** The Newton–Schulz work arrays for one (rows, cols, arithmetic): X and its successor, A, B. */
interface Scratch {
  x: FloatArray;
  next: FloatArray;
  a: FloatArray;
  b: FloatArray;
}

/**
 * Muon (MomentUm Orthogonalized by Newton–Schulz), as torch.optim.Muon (torch 2.13), for 2-D
 * params: each step replaces the momentum of a matrix by the nearest semi-orthogonal matrix
 * (approximately: its singular values are pushed towards 1), then steps along it.
 *
 * ```
 * B_t = lerp(B_{t-1}, G_t, 1 − μ)                  (an EMA from B_0 = 0; torch's lerp)
 * U_t = lerp(G_t, B_t, μ)  if nesterov,  else  U_t = B_t
 * O_t = NS(U_t):  X = U_t (Uᵀ when rows > cols);  X = X / max(‖X‖_F, ε)
 *                 nsSteps times:  A = XXᵀ;  B = bA + cA²;  X = aX + BX
 *                 (transposed back)
 * θ_t = θ_{t-1}·(1 − γλ) − γ'·O_t
 * γ' = γ·√max(1, rows/cols)          adjustLrFn null or 'original'
 *    = 0.2·γ·√max(rows, cols)        adjustLrFn 'match_rms_adamw' (the update's RMS matches AdamW's)
 * ```
 *
 * Options (default): `lr` γ 1e-3, `weightDecay` λ 0.1 (decoupled, with the unadjusted γ),
 * `momentum` μ 0.95, `nesterov` true, `nsCoefficients` (a, b, c) = (3.4445, −4.775, 2.0315),
 * `eps` ε 1e-7, `nsSteps` 5 (an integer < 100, as torch requires), `adjustLrFn` null,
 * `nsDtype` `'float32'`: the arithmetic of the Newton–Schulz iteration. State: `momentumBuffer`
 * (row-major, as the param), no step count.
 *
 * Params: 2-D only, read from `p.shape` (`param(data, name, { shape: [rows, cols] })` or
 * `paramArena({ w: [rows, cols] })`); a param of another shape is refused when the optimizer is
 * made (torch: "Muon only supports 2D parameters"), one whose data no longer has rows·cols
 * elements at a step. Optimize biases, gains and embeddings with another optimizer (AdamW), as
 * torch's documentation advises.
 *
 * Against torch 2.13:
 * - torch's docstring writes the momentum as B = μB + G; what it computes is the EMA above
 *   (`buf.lerp_(grad, 1 − momentum)`), and so does this class.
 * - torch always iterates in bfloat16 (`grad.bfloat16()`; each product and sum rounded to
 *   bfloat16). The default here is float32 (each matrix product accumulated and rounded in
 *   float32): a 1-ulp change of a bfloat16 input moves torch's own trajectory by up to 7.4e-3
 *   over 50 steps (test/golden/torch-2.13/muon.json), so bfloat16 is for speed on accelerators,
 *   not a property of the method. `nsDtype: 'bfloat16'` rounds the input and every operation's
 *   result (the norm, the division, each matrix product) to bfloat16 (nearest, ties to even),
 *   as torch does, with the products summed in float32 before the rounding as torch's CPU
 *   kernels sum them; `'float64'` iterates in float64. The matrix products run on the
 *   selected backend (src/linalg's `matmul`: OpenBLAS or the built-in kernels, or the reference
 *   backend's float64 sums); their summation order is not MKL's.
 * - The elementwise parts: torch's CPU kernels fuse each lerp (fma(w, b − a, a), or
 *   fma(w − 1, b − a, b) for w ≥ 0.5) and the final p − γ'·O into one multiply-add. There is no
 *   native Muon kernel; the differences are formed here and each multiply-add runs through the
 *   SGD kernel on the selected backend (as AveragedModel's EMA does): fused on the native
 *   backend with FMA, so `nsDtype: 'bfloat16'` there equals torch bit for bit
 *   (test/muon.test.ts); rounded twice on the reference backend and without FMA (the
 *   prelude's `lerp`: 1 ulp). Scalars are rounded to float32 for float32 params, as torch and
 *   the kernels read them; the weight decay p·(1 − γλ) is one rounding everywhere.
 *
 * `nonFinite` (see Optimizer): the gradients are all scanned before anything changes; a step
 * refused or skipped changes no param, buffer or count, nor creates state. Step hooks run around
 * `step` as for every optimizer.
 */
export class Muon extends Optimizer<MuonGroup> {
  /** Newton–Schulz work arrays by `${rows}x${cols}|${arithmetic}`, kept between steps. */
  private readonly work = new Map<string, Scratch>();
  /** Elementwise work arrays by `${length}|${bits}`. */
  private readonly flat = new Map<string, { diff: FloatArray; u: FloatArray; o: FloatArray }>();
  /** The SGD kernel's scalars (sign 1, nothing else but negLr), for its multiply-add. */
  private readonly sgdScalars = sgdScalars();

  constructor(params: ParamsInput<MuonOptions>, options: MuonOptions & OptimizerOptions = {}) {
    refuseBfloat16State('Muon', options, "Muon keeps its momentum buffer in the param's dtype");
    super(params, options, SPEC);
  }

  /** Adds a group (torch's `add_param_group`); its params must be 2-D (see the class comment). */
  override addParamGroup(group: Partial<Omit<MuonGroup, 'params'>> & { params: Param[] }): void {
    super.addParamGroup(group);
    const i = this.paramGroups.length - 1;
    try {
      this.paramGroups[i].params.forEach((p, j) => matrixShape(p, `Muon: paramGroups[${i}].params[${j}]`));
    } catch (e) {
      this.paramGroups.pop();
      throw e;
    }
  }

  protected override checkHyper(g: MuonGroup, where: Where): void {
    checkScalarOptions(g, where);
    const c: unknown = g.nsCoefficients;
    if (!Array.isArray(c) || c.length !== 3) {
      const got = Array.isArray(c) ? `an Array of length ${c.length}` : describe(c);
      throw new OptimTypeError(`${path(where, 'nsCoefficients')} must be an array of three numbers (a, b, c), got ${got}`);
    }
    for (let i = 0; i < 3; i++) {
      const v: unknown = c[i];
      if (typeof v !== 'number') throw new OptimTypeError(`${path(where, `nsCoefficients[${i}]`)} must be a number, got ${describe(v)}`);
      if (!Number.isFinite(v)) throw new OptimRangeError(`${path(where, `nsCoefficients[${i}]`)} must be a finite number, got ${v}`);
    }
    const s: unknown = g.nsSteps;
    if (typeof s !== 'number') throw new OptimTypeError(`${path(where, 'nsSteps')} must be a number, got ${describe(s)}`);
    if (!(Number.isInteger(s) && s >= 0 && s < 100)) {
      throw new OptimRangeError(
        `${path(where, 'nsSteps')} must be an integer in [0, 99] (torch: Number of steps must be less than 100 for computational efficiency), got ${s}`,
      );
    }
    const f: unknown = g.adjustLrFn;
    if (f !== null && f !== 'original' && f !== 'match_rms_adamw') {
      throw new OptimRangeError(
        `Adjust learning rate function ${show(f)} is not supported (${path(where, 'adjustLrFn')} must be null, 'original' or 'match_rms_adamw')`,
      );
    }
    checkChoice(g.nsDtype, 'nsDtype', where, NS_DTYPES);
  }

  /**
   * The step (see Optimizer.step for the closure, the hooks and the rollback): calls the closure
   * first, if given. Checks every group's hyperparameters, params and shapes, then scans every
   * gradient (`nonFinite`), before anything changes; then updates param by param.
   */
  protected override update<L>(closure: (() => L) | undefined): L | undefined {
    const loss = closure === undefined ? undefined : closure();
    const shapes: Array<[number, number]> = [];
    this.checkStepGroups((_group, p, where) => {
      const buf = this.state.get(p)?.momentumBuffer;
      if (buf !== undefined && (buf as FloatArray).length !== p.data.length) {
        throw new OptimRangeError(`${where}: param "${p.name}" has length ${p.data.length} but its momentumBuffer ${(buf as FloatArray).length}`);
      }
      shapes.push(matrixShape(p, where));
    });
    const bad = this.firstNonFiniteGrad();
    if (bad !== undefined) return this.refuseFound(bad, loss);
    // Everything is checked: nothing below throws on these inputs. Should it all the same, the
    // step's transaction puts every param, buffer and state entry back.
    let k = 0;
    for (const group of this.paramGroups) for (const p of group.params) this.updateParam(group, p, shapes[k++]);
    return loss;
  }

  /** The update of one param (see the class comment), recorded in `tx` before each write. */
  private updateParam(g: MuonGroup, p: Param, [rows, cols]: [number, number]): void {
    const tx = this.tx;
    const { data, grad } = p;
    const n = data.length;
    const f32 = data instanceof Float32Array;
    /** A scalar as torch reads it for a tensor of the param's dtype. */
    const scalar = f32 ? Math.fround : (x: number) => x;
    let st = this.state.get(p);
    if (st === undefined) {
      tx.saveEntry(this.state, p);
      st = {};
      this.state.set(p, st);
    }
    let buf = st.momentumBuffer as FloatArray | undefined;
    if (buf === undefined) {
      tx.saveEntry(st, 'momentumBuffer');
      buf = f32 ? new Float32Array(n) : new Float64Array(n);
      st.momentumBuffer = buf;
    } else {
      tx.saveArray(buf);
    }
    tx.saveArray(data);
    const { diff, u, o } = this.elementwiseScratch(data);

    // B = lerp(B, G, 1 − μ); U = lerp(G, B, μ) (Nesterov) or B.
    lerpInto(buf, buf, grad, scalar(1 - g.momentum), diff, this.sgdScalars);
    if (g.nesterov) lerpInto(u, grad, buf, scalar(g.momentum), diff, this.sgdScalars);
    else u.set(buf);

    // O = NS(U), on U in the iteration's arithmetic (transposed when tall).
    const dtype = g.nsDtype;
    const work = this.scratch(rows, cols, dtype);
    const x = work.x;
    const tall = rows > cols;
    if (dtype === 'bfloat16') {
      for (let r = 0, k = 0; r < rows; r++) for (let c = 0; c < cols; c++, k++) x[tall ? c * rows + r : k] = roundBfloat16(u[k]);
    } else if (tall) {
      for (let r = 0, k = 0; r < rows; r++) for (let c = 0; c < cols; c++, k++) x[c * rows + r] = u[k];
    } else {
      x.set(u);
    }
    const result = this.newtonSchulz(g, work, Math.min(rows, cols), Math.max(rows, cols));
    if (tall) {
      for (let r = 0, k = 0; r < rows; r++) for (let c = 0; c < cols; c++, k++) o[k] = result[c * rows + r];
    } else {
      o.set(result);
    }

    // θ = θ·(1 − γλ), then θ = θ − γ'·O: one multiply-add (the SGD kernel's p ← fma(−γ', O, p)).
    const decay = scalar(1 - g.lr * g.weightDecay);
    for (let k = 0; k < n; k++) data[k] = data[k] * decay;
    const s = this.sgdScalars;
    s[SGD_KERNEL.slot.negLr] = -adjustedLr(g.lr, g.adjustLrFn, rows, cols);
    getBackend().step(SGD_KERNEL, [data, o], s, 0);
  }

  /** Three arrays of a param's dtype and length for the elementwise steps, made once per (dtype, length). */
  private elementwiseScratch(data: FloatArray): { diff: FloatArray; u: FloatArray; o: FloatArray } {
    const key = `${data.length}|${data instanceof Float32Array ? 32 : 64}`;
    let s = this.flat.get(key);
    if (s === undefined) {
      const make = () => (data instanceof Float32Array ? new Float32Array(data.length) : new Float64Array(data.length));
      s = { diff: make(), u: make(), o: make() };
      this.flat.set(key, s);
    }
    return s;
  }

  /**
   * The Newton–Schulz iteration on the m×n matrix in `work.x` (m ≤ n), in its arithmetic; returns
   * the array holding the result (`work.x` or `work.next`).
   */
  private newtonSchulz(g: MuonGroup, work: Scratch, m: number, n: number): FloatArray {
    const [a, b, c] = g.nsCoefficients;
    const dtype = g.nsDtype;
    const round = dtype === 'bfloat16' ? roundBfloat16 : dtype === 'float32' ? Math.fround : (v: number) => v;
    let x = work.x;
    let next = work.next;
    const A = work.a;
    const B = work.b;
    const size = m * n;
    let ss = 0;
    for (let i = 0; i < size; i++) ss += x[i] * x[i];
    const norm = round(Math.max(round(Math.sqrt(ss)), g.eps));
    for (let i = 0; i < size; i++) x[i] = round(x[i] / norm);
    const bf16 = dtype === 'bfloat16';
    for (let s = 0; s < g.nsSteps; s++) {
      matmul(x, x, { m, n: m, k: n, transB: true, out: A });
      if (bf16) roundAll(A);
      B.set(A);
      matmul(A, A, { m, n: m, k: m, alpha: c, beta: b, out: B });
      if (bf16) roundAll(B);
      next.set(x);
      matmul(B, x, { m, n, k: m, beta: a, out: next });
      if (bf16) roundAll(next);
      const t = x;
      x = next;
      next = t;
    }
    return x;
  }

  /** The work arrays for a rows×cols param in `dtype`'s storage, made once and kept. */
  private scratch(rows: number, cols: number, dtype: MuonNsDtype): Scratch {
    const key = `${rows}x${cols}|${dtype}`;
    let s = this.work.get(key);
    if (s === undefined) {
      const Ctor = dtype === 'float64' ? Float64Array : Float32Array;
      const m = Math.min(rows, cols);
      s = { x: new Ctor(rows * cols), next: new Ctor(rows * cols), a: new Ctor(m * m), b: new Ctor(m * m) };
      this.work.set(key, s);
    }
    return s;
  }
}

/** torch's `_adjust_lr`: the step size of a rows×cols param. */
export function adjustedLr(lr: number, fn: MuonAdjustLrFn | null, rows: number, cols: number): number {
  const ratio = fn === 'match_rms_adamw' ? 0.2 * Math.sqrt(Math.max(rows, cols)) : Math.sqrt(Math.max(1, rows / cols));
  return lr * ratio;
}

/** Scalars for the SGD kernel with sign 1 and no momentum or weight decay: p ← fma(negLr, g, p). */
export function sgdScalars(): Float64Array {
  const s = new Float64Array(SGD_KERNEL.nScalars);
  s[SGD_KERNEL.slot.sign] = 1;
  return s;
}

/**
 * out = lerp(a, b, w) elementwise as torch's CPU kernel computes it, one multiply-add:
 * fma(w, b − a, a) when |w| < 0.5, else fma(w − 1, b − a, b). The difference is formed here
 * (one rounding, as torch forms it), the multiply-add runs on the selected backend through the
 * SGD kernel (p ← fma(negLr, g, p)): fused on the native backend with FMA, two roundings
 * otherwise (src/optim/prelude.ts's `lerp`). `out` may be `a` or `b`; `diff` is scratch.
 */
export function lerpInto(out: FloatArray, a: FloatArray, b: FloatArray, w: number, diff: FloatArray, s: Float64Array): void {
  const n = out.length;
  for (let i = 0; i < n; i++) diff[i] = b[i] - a[i];
  const small = w < 0.5 && w > -0.5;
  if (small) {
    if (out !== a) out.set(a);
    s[SGD_KERNEL.slot.negLr] = w;
  } else {
    if (out !== b) out.set(b);
    s[SGD_KERNEL.slot.negLr] = w - 1;
  }
  getBackend().step(SGD_KERNEL, [out, diff], s, 0);
}

/** Rounds every element to bfloat16 (float32 storage), in place. */
function roundAll(a: FloatArray): void {
  for (let i = 0; i < a.length; i++) a[i] = roundBfloat16(a[i]);
}

/** A param's [rows, cols], or an error naming it when it is not a matrix of its data's length. */
function matrixShape(p: Param, where: string): [number, number] {
  const shape: unknown = (p as { shape?: unknown }).shape;
  const make = `make it with param(data, name, { shape: [rows, cols] }) or paramArena({ ${JSON.stringify(p.name)}: [rows, cols] })`;
  if (!Array.isArray(shape)) {
    throw new OptimTypeError(`${where} (param "${p.name}") has no shape (got ${describe(shape)}); Muon updates 2-D params only: ${make}`);
  }
  if (shape.length !== 2) {
    throw new OptimRangeError(
      `${where}: Muon updates 2-D params only, but param "${p.name}" has shape ${formatShape(shape)} ` +
        `(torch: Muon only supports 2D parameters); give a matrix its shape (${make}) and optimize the other params with another optimizer (AdamW)`,
    );
  }
  const [rows, cols] = shape as unknown[];
  if (!(Number.isSafeInteger(rows) && Number.isSafeInteger(cols) && (rows as number) > 0 && (cols as number) > 0)) {
    throw new OptimRangeError(`${where}: param "${p.name}" has shape ${formatShape(shape)}, not two positive integers`);
  }
  const r = rows as number;
  const c = cols as number;
  if (r * c !== p.data.length) {
    throw new OptimRangeError(
      `${where}: param "${p.name}" has shape [${r}, ${c}] (${r * c} elements) but its data has length ${p.data.length} (replaced by an array of another length?)`,
    );
  }
  return [r, c];
}
