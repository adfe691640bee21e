import { stateLayout } from '../backend/kernel.js';
import { firstNonFinite } from '../backend/types.js';
import type { FloatArray } from '../backend/types.js';
import { NonFiniteError, OptimRangeError, OptimTypeError } from '../errors.js';
import { checkShape, formatShape } from '../param.js';
import type { Param } from '../param.js';
import { describe, isFloatArray } from '../validate.js';
import { Optimizer, refuseBfloat16State } from './optimizer.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamState, ParamsInput } from './optimizer.js';
import { PowerSequence } from './powi.js';

export type { SparseGrad } from '../param.js';

export interface SparseAdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  maximize?: boolean;
}

export interface SparseAdamGroup extends GroupBase, Required<SparseAdamOptions> {}

/**
 * SparseAdam's state layout, in the form the base class reads a kernel's (as Muon's): `expAvg`
 * and `expAvgSq` per param, beside the `step` counter. Not a step kernel: SparseAdam updates the
 * touched rows only, which the elementwise kernels (a pass over whole tensors) cannot do, so it
 * is neither registered (no native twin, no kernel tables) nor ever handed to a backend;
 * `SparseAdam.step` runs the update itself, in TypeScript.
 */
const SPARSE_ADAM_LAYOUT = stateLayout('sparseAdam', ['expAvg', 'expAvgSq']);

const SPEC: OptimizerSpec<SparseAdamGroup> = {
  name: 'SparseAdam',
  kernel: SPARSE_ADAM_LAYOUT,
  defaults: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, maximize: false },
  counters: ['step'],
};

/** One param's part of a step: checked before anything changes, coalesced, then applied. */
interface Work {
  readonly group: SparseAdamGroup;
  readonly p: Param;
  readonly label: string;
  /** The row length L: the product of the dims after the first (1 for a vector). */
  readonly rowLen: number;
  readonly indices: Uint32Array | readonly number[];
  readonly values: FloatArray;
  /** The coalesced gradient: its distinct rows (order of first appearance) and their summed values. */
  rows: number[];
  grad: FloatArray;
}

/**
 * SparseAdam, as torch.optim.SparseAdam (torch 2.13, `torch.optim._functional.sparse_adam`):
 * Adam for row-sparse gradients (embedding tables), which moves only the rows a gradient touches
 * and lets every other row's moments stand (they do not decay), so a step costs O(rows touched),
 * whatever the size of the table.
 *
 * The gradient is `p.sparseGrad = { indices, values }` (see SparseGrad): row `indices[k]` gets
 * `values[kL .. (k+1)L)`, L the row length (a param of shape [rows, ...rest] has `shape[0]` rows
 * of product(rest) elements; a vector's rows are its elements). Per param, at each step:
 *
 * ```
 * t = t + 1                                         (a whole number, per param)
 * g = coalesce(±sparseGrad)                         (duplicate rows summed; − when maximize)
 * for each row r of g, elementwise over its L entries:
 *   m_r = m_r + (g_r − m_r)·(1 − β1)
 *   v_r = v_r + (g_r·g_r − v_r)·(1 − β2)
 *   p_r = p_r + (−s)·(m_r / (√v_r + ε)),   s = γ·√(1 − β2^t) / (1 − β1^t)
 * rows not in g: p, m and v unchanged
 * ```
 *
 * each operation rounded as written, in the param's dtype (float32 params: the scalars 1 − β1,
 * 1 − β2, ε and −s rounded to float32, as torch reads a Python scalar for a float32 tensor);
 * s is formed in double as torch's `lr * math.sqrt(bias_correction2) / bias_correction1`, with
 * β^t as C's `pow` (src/optim/powi.ts). No multiply-add is fused: torch's sparse path has none.
 * The moments are torch's `m += (g − m)(1 − β1)`, not Adam's fused lerp.
 *
 * Options (default): `lr` γ 1e-3, `betas` [0.9, 0.999], `eps` ε 1e-8, `maximize` false. As torch,
 * the constructor refuses lr ≤ 0 and eps ≤ 0 (a group may set them to 0 later: a scheduler that
 * anneals to 0 keeps working). State: `step`, `expAvg`, `expAvgSq` (dense, the param's shape and
 * dtype, created at the param's first step); `stateDtype: 'bfloat16'` is refused.
 *
 * Against torch 2.13:
 * - torch's coalesce sums duplicate rows in the order its index sort leaves them (std::sort,
 *   stable for up to 16 indices and a radix sort from 32768 on); here they are summed in the order
 *   they come. The same bits whenever no row occurs more than twice or there are at most 16
 *   indices; otherwise torch's own order is its sort's.
 * - torch takes √ from MKL (not always correctly rounded, test/golden/torch-2.13/README.md);
 *   here it is `Math.sqrt`.
 * - torch raises for a dense gradient ("SparseAdam does not support dense gradients, please
 *   consider Adam instead"), and so does this class for a param without `sparseGrad`
 *   (OptimTypeError, nothing changed): `p.grad` is never read. A param none of whose rows a step
 *   touches takes empty ones (`{ indices: [], values: new Float64Array(0) }`): as torch with an
 *   empty sparse gradient, its step count advances and nothing else changes.
 * - Everything is checked before anything changes (torch may raise half way): every group's
 *   hyperparameters, every param's `sparseGrad` (indices integers in [0, rows), `values` of the
 *   param's dtype and `indices.length · L` long), shapes and state; then `nonFinite` (see
 *   Optimizer) looks at every value: under `'error'` a NaN or infinity (or duplicates summing to
 *   one) throws NonFiniteError with `index` the position in `values`; under `'skip'` the step is
 *   counted in `skippedSteps`; both change nothing. `'ignore'` applies it as torch would.
 *
 * `zeroGrad()` clears every `sparseGrad` and, unlike the dense optimizers', leaves `p.grad` as it
 * is: SparseAdam never reads it, and filling it would be a pass over the whole table.
 */
export class SparseAdam extends Optimizer<SparseAdamGroup> {
  private readonly beta1Pow = new PowerSequence();
  private readonly beta2Pow = new PowerSequence();
  /** Row → position among the distinct rows, while one param's gradient is coalesced. */
  private readonly slots = new Map<number, number>();

  constructor(params: ParamsInput<SparseAdamOptions>, options: SparseAdamOptions & OptimizerOptions = {}) {
    refuseBfloat16State('SparseAdam', options, "SparseAdam keeps its moments in the param's dtype");
    super(params, options, SPEC);
    const { lr, eps } = this.defaults;
    if (!(lr > 0)) throw new OptimRangeError(`Invalid learning rate: ${lr} (options.lr must be > 0: torch's SparseAdam refuses 0)`);
    if (!(eps > 0)) throw new OptimRangeError(`Invalid epsilon value: ${eps} (options.eps must be > 0: torch's SparseAdam refuses 0)`);
  }

  /** Clears every `p.sparseGrad`; `p.grad` is left as it is (see the class comment). */
  override zeroGrad(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) if (p.sparseGrad !== undefined) p.sparseGrad = undefined;
    }
  }

  /**
   * The step (see Optimizer.step for the closure, the hooks and the rollback): calls the closure
   * first, if given. Checks everything, then applies each param's `sparseGrad` (class comment).
   */
  protected override update<L>(closure: (() => L) | undefined): L | undefined {
    const loss = closure === undefined ? undefined : closure();
    const work: Work[] = [];
    this.checkStepGroups((group, p) => work.push(this.checkParam(group, p)), true);
    if (this.nonFinite !== 'ignore') {
      for (const w of work) {
        const k = firstNonFinite(w.values);
        if (k >= 0) return this.refuseValue(w, k, w.values[k], 'holds', loss);
      }
    }
    for (const w of work) {
      this.coalesce(w);
      if (this.nonFinite !== 'ignore' && w.rows.length < w.indices.length) {
        // Finite duplicates may sum past the largest float.
        const u = firstNonFinite(w.grad);
        if (u >= 0) return this.refuseValue(w, u, w.grad[u], 'sums', loss);
      }
    }
    // Everything is checked: nothing below throws on these inputs. Should it all the same, the
    // step's transaction puts every touched row, count and state entry back.
    for (const w of work) this.applyRows(w);
    return loss;
  }

  /** Checks one param, its shape, state and `sparseGrad`; returns its part of the step. */
  private checkParam(group: SparseAdamGroup, p: Param): Work {
    const label = `SparseAdam.step(): param "${p.name}"`;
    const { data } = p;
    const rawShape: unknown = (p as { shape?: unknown }).shape;
    const shape = rawShape === undefined ? [data.length] : checkShape(rawShape, 'p.shape', `${label}: `, data.length, 'data');
    const rows = shape.length === 0 ? 1 : shape[0];
    let rowLen = 1;
    for (let d = 1; d < shape.length; d++) rowLen *= shape[d];
    const st = this.state.get(p);
    if (st !== undefined) {
      for (const key of ['expAvg', 'expAvgSq']) {
        const buf = st[key];
        if (typeof buf === 'number' || buf === undefined || buf.constructor !== data.constructor || buf.length !== data.length) {
          throw new OptimTypeError(
            `${label}: its state ${key} is ${buf === undefined || typeof buf === 'number' ? describe(buf) : `a ${buf.constructor.name} of length ${buf.length}`}` +
              ` but data is a ${data.constructor.name} of length ${data.length} (replaced by another array?)`,
          );
        }
      }
    }
    const sg: unknown = p.sparseGrad;
    if (sg === undefined || sg === null) {
      throw new OptimTypeError(
        `${label} has no sparseGrad (got ${describe(sg)}): SparseAdam takes row-sparse gradients only; set p.sparseGrad = { indices, values } ` +
          `before step() (empty ones for a param no row of which was touched). torch: SparseAdam does not support dense gradients, please consider Adam instead`,
      );
    }
    if (typeof sg !== 'object' || Array.isArray(sg) || ArrayBuffer.isView(sg)) {
      throw new OptimTypeError(`${label}: p.sparseGrad must be an object { indices, values }, got ${describe(sg)}`);
    }
    const { indices, values } = sg as { indices?: unknown; values?: unknown };
    if (!(indices instanceof Uint32Array) && !Array.isArray(indices)) {
      throw new OptimTypeError(`${label}: p.sparseGrad.indices must be a Uint32Array or an Array of row numbers, got ${describe(indices)}`);
    }
    const n = indices.length;
    const range = () => `an integer in [0, ${rows}) (a row of shape ${formatShape(shape)})`;
    if (indices instanceof Uint32Array) {
      for (let k = 0; k < n; k++) {
        if (indices[k] >= rows) throw new OptimRangeError(`${label}: p.sparseGrad.indices[${k}] must be ${range()}, got ${indices[k]}`);
      }
    } else {
      for (let k = 0; k < n; k++) {
        const r: unknown = indices[k];
        if (typeof r !== 'number') throw new OptimTypeError(`${label}: p.sparseGrad.indices[${k}] must be a number (a row), got ${describe(r)}`);
        if (!(Number.isInteger(r) && r >= 0 && r < rows)) throw new OptimRangeError(`${label}: p.sparseGrad.indices[${k}] must be ${range()}, got ${r}`);
      }
    }
    if (!isFloatArray(values) || values.constructor !== data.constructor) {
      throw new OptimTypeError(`${label}: p.sparseGrad.values must be a ${data.constructor.name} (the param's dtype), got ${describe(values)}`);
    }
    if (values.length !== n * rowLen) {
      throw new OptimRangeError(
        `${label}: p.sparseGrad.values has length ${values.length} but must hold one row of ${rowLen} per index: ` +
          `indices.length × ${rowLen} = ${n * rowLen}${values.length === 0 ? ' (detached?)' : ''}`,
      );
    }
    return { group, p, label, rowLen, indices: indices as Uint32Array | number[], values, rows: [], grad: values };
  }

  /**
   * Sums the rows of `w`'s gradient that share an index (in the order they come; negated under
   * `maximize`, as torch negates before coalescing) into `w.rows` and `w.grad`. O(indices).
   */
  private coalesce(w: Work): void {
    const { indices, values, rowLen: L } = w;
    const sign = w.group.maximize ? -1 : 1;
    const slots = this.slots;
    slots.clear();
    const rows: number[] = [];
    // In the param's dtype: a float32 sum is rounded to float32 as it is stored.
    const grad = values instanceof Float32Array ? new Float32Array(values.length) : new Float64Array(values.length);
    for (let k = 0; k < indices.length; k++) {
      const r = indices[k];
      let s = slots.get(r);
      const src = k * L;
      if (s === undefined) {
        s = rows.length;
        slots.set(r, s);
        rows.push(r);
        const dst = s * L;
        for (let c = 0; c < L; c++) grad[dst + c] = sign * values[src + c];
      } else {
        const dst = s * L;
        for (let c = 0; c < L; c++) grad[dst + c] = grad[dst + c] + sign * values[src + c];
      }
    }
    slots.clear();
    w.rows = rows;
    w.grad = grad.subarray(0, rows.length * L);
  }

  /**
   * A step refused for a non-finite value: `how` 'holds' (values[k] itself) or 'sums' (position
   * k of the coalesced gradient: finite duplicates that overflow). Nothing was changed.
   */
  private refuseValue<L>(w: Work, k: number, value: number, how: 'holds' | 'sums', loss: L | undefined): L | undefined {
    const { p, rowLen, indices } = w;
    let index = k;
    let detail: string;
    if (how === 'holds') {
      const occ = Math.floor(k / rowLen);
      detail = `p.sparseGrad.values of param "${p.name}" holds ${value} at index ${k} (row ${indices[occ]} = indices[${occ}], column ${k % rowLen})`;
    } else {
      const row = w.rows[Math.floor(k / rowLen)];
      const c = k % rowLen;
      let first = 0;
      while (indices[first] !== row) first++;
      index = first * rowLen + c;
      detail = `the duplicates of row ${row} in p.sparseGrad of param "${p.name}" sum to ${value} at column ${c} (float overflow; first at values[${index}])`;
    }
    if (this.nonFinite === 'skip') return this.refuseFound({ param: p, index, value }, loss);
    throw new NonFiniteError(
      `SparseAdam.step(): ${detail}; nothing was updated (nonFinite: 'error'; 'skip' skips such steps, 'ignore' applies them)`,
      p.name,
      index,
      value,
    );
  }

  /** Applies one param's coalesced gradient (class comment), recorded in the step's `tx` before each write. */
  private applyRows(w: Work): void {
    const tx = this.tx;
    const { group, p, rows, grad, rowLen: L } = w;
    const data = p.data;
    const f32 = data instanceof Float32Array;
    let st = this.state.get(p);
    if (st === undefined) {
      tx.saveEntry(this.state, p);
      const zeros = () => (f32 ? new Float32Array(data.length) : new Float64Array(data.length));
      st = { step: 0, expAvg: zeros(), expAvgSq: zeros() } as ParamState;
      this.state.set(p, st);
    }
    tx.saveEntry(st, 'step');
    const step = (st.step as number) + 1;
    st.step = step;
    const m = st.expAvg as FloatArray;
    const v = st.expAvgSq as FloatArray;
    const U = rows.length;
    if (U === 0) return;

    // The touched rows as they were, put back on rollback.
    const saved = f32 ? new Float32Array(3 * U * L) : new Float64Array(3 * U * L);
    for (let u = 0; u < U; u++) {
      const j0 = rows[u] * L;
      const o = 3 * u * L;
      for (let c = 0; c < L; c++) {
        saved[o + c] = data[j0 + c];
        saved[o + L + c] = m[j0 + c];
        saved[o + 2 * L + c] = v[j0 + c];
      }
    }
    tx.onRollback(() => {
      for (let u = 0; u < U; u++) {
        const j0 = rows[u] * L;
        const o = 3 * u * L;
        for (let c = 0; c < L; c++) {
          data[j0 + c] = saved[o + c];
          m[j0 + c] = saved[o + L + c];
          v[j0 + c] = saved[o + 2 * L + c];
        }
      }
    });

    const [beta1, beta2] = group.betas;
    // torch: step_size = lr * math.sqrt(bias_correction2) / bias_correction1, in double.
    const bc1 = 1 - this.beta1Pow.pow(beta1, step);
    const bc2 = 1 - this.beta2Pow.pow(beta2, step);
    const stepSize = (group.lr * Math.sqrt(bc2)) / bc1;
    // The same update twice, the float32 one rounding each operation as torch's float32 kernel
    // does. One loop rounding through a function chosen per call (Math.fround or the identity)
    // gives the same bits and costs nothing while a process steps one dtype, but once it has seen
    // both, the call site is polymorphic and the loop runs ~10x slower (the whole step ~4x;
    // measured on Node 20). Keep the two loops in step when changing one.
    if (f32) {
      const fr = Math.fround;
      const omb1 = fr(1 - beta1);
      const omb2 = fr(1 - beta2);
      const eps = fr(group.eps);
      const negStep = fr(-stepSize);
      for (let u = 0; u < U; u++) {
        const j0 = rows[u] * L;
        const g0 = u * L;
        for (let c = 0; c < L; c++) {
          const j = j0 + c;
          const g = grad[g0 + c];
          const mo = m[j];
          const mn = fr(mo + fr(fr(g - mo) * omb1));
          m[j] = mn;
          const vo = v[j];
          const vn = fr(vo + fr(fr(fr(g * g) - vo) * omb2));
          v[j] = vn;
          data[j] = fr(data[j] + fr(fr(mn / fr(fr(Math.sqrt(vn)) + eps)) * negStep));
        }
      }
    } else {
      const omb1 = 1 - beta1;
      const omb2 = 1 - beta2;
      const eps = group.eps;
      const negStep = -stepSize;
      for (let u = 0; u < U; u++) {
        const j0 = rows[u] * L;
        const g0 = u * L;
        for (let c = 0; c < L; c++) {
          const j = j0 + c;
          const g = grad[g0 + c];
          const mo = m[j];
          const mn = mo + (g - mo) * omb1;
          m[j] = mn;
          const vo = v[j];
          const vn = vo + (g * g - vo) * omb2;
          v[j] = vn;
          data[j] = data[j] + (mn / (Math.sqrt(vn) + eps)) * negStep;
        }
      }
    }
  }
}
