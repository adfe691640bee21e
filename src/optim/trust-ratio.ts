/**
 * What LAMB and LARS share: an update scaled per param by a trust ratio, ‖p‖ over the norm of
 * the param's update direction. A norm is a whole-tensor quantity, which the kernels' contract
 * (elementwise, split across threads) cannot form, so these optimizers step one param at a time:
 * their elementwise work runs in their registered kernels (one or two calls per param), the
 * norms in TypeScript between them (`norm2`: one pass over an array, in double). The whole step
 * is O(n); after the first step it allocates nothing (each param's prepared tensor list and
 * scratch buffers are kept, remade only when its arrays or the backend change).
 */
import type { AnyKernel } from '../backend/kernel.js';
import { getBackend } from '../backend/select.js';
import type { Backend, FloatArray, PreparedList, StateArray } from '../backend/types.js';
import { OptimRangeError } from '../errors.js';
import type { Param } from '../param.js';
import { isFloatArray } from '../validate.js';
import { Optimizer, refuseBfloat16State } from './optimizer.js';
import type { GroupBase, OptimizerSpec, ParamState } from './optimizer.js';

/**
 * ‖x‖₂ = √(Σ x_i²), summed in double (four interleaved partial sums; optax's XLA sum has its own
 * order). Overflows to Infinity as the plain formula does.
 */
export function norm2(x: ArrayLike<number>): number {
  const n = x.length;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i] * x[i];
    s1 += x[i + 1] * x[i + 1];
    s2 += x[i + 2] * x[i + 2];
    s3 += x[i + 3] * x[i + 3];
  }
  for (; i < n; i++) s0 += x[i] * x[i];
  return Math.sqrt(s0 + s1 + (s2 + s3));
}

/** One param's prepared call: [p, g, ...state, ...scratch], valid while these arrays and the backend stay. */
interface Prepared {
  readonly backend: Backend;
  readonly arrays: readonly StateArray[];
  readonly list: PreparedList;
}

/**
 * The base of LAMB and LARS: groups, options, state dict, the non-finite policy and `step` (hooks,
 * closure check, transaction) from Optimizer; its own `update`, which checks every group and
 * param, scans every gradient, then calls `stepParam` for each param in turn. The kernel's tensor
 * list for a param is [p, g, the state buffers (the spec's layout, saved in the state dict), the
 * scratch buffers (`scratch`: the kernel's further buffers, kept per param, never saved)].
 */
export abstract class TrustRatioOptimizer<G extends GroupBase> extends Optimizer<G> {
  private readonly className: string;
  private readonly kernel: AnyKernel;
  private readonly stateBuffers: readonly string[];
  private readonly scratchCount: number;
  private readonly prepared = new WeakMap<Param, Prepared>();
  private readonly scratch = new WeakMap<Param, FloatArray[]>();
  private readonly arrays: StateArray[] = [];

  /**
   * `kernel`: the registered step kernel; its first buffers are the spec's state layout, in
   * order, and the rest (`scratch` of them) are per-param work arrays.
   */
  protected constructor(params: unknown, options: unknown, spec: OptimizerSpec<G>, kernel: AnyKernel) {
    // The norms and scratch buffers are in the param's dtype: no bfloat16 state storage.
    refuseBfloat16State(spec.name, options, `${spec.name} keeps its state in the param's dtype: its trust ratio takes norms of it`);
    super(params, options, spec);
    this.className = spec.name;
    this.kernel = kernel;
    this.stateBuffers = spec.kernel.buffers;
    const all = kernel.stateNames(0);
    if (all.slice(0, this.stateBuffers.length).join() !== this.stateBuffers.join()) {
      throw new Error(`${spec.name}: the kernel's buffers ${all.join(', ')} do not start with the state's ${this.stateBuffers.join(', ')}`);
    }
    this.scratchCount = all.length - this.stateBuffers.length;
  }

  /**
   * One param's update: `list` is its prepared tensor list for the kernel, `state` its state
   * (buffers created; counters as before this step, advanced here).
   */
  protected abstract stepParam(group: G, p: Param, state: ParamState, list: PreparedList, backend: Backend): void;

  /** The scratch buffer `k` (0-based, after the state buffers) of a param: valid after its list was prepared. */
  protected scratchOf(p: Param, k: number): FloatArray {
    return this.scratch.get(p)![k];
  }

  /**
   * The step (see Optimizer.step for the closure, the hooks and the rollback): calls the closure
   * first, if given. Checks every group's hyperparameters and params and scans every gradient
   * (`nonFinite`) before anything changes; then updates param by param (`stepParam`).
   */
  protected override update<L>(closure: (() => L) | undefined): L | undefined {
    const loss = closure === undefined ? undefined : closure();
    this.checkStepGroups();
    const bad = this.firstNonFiniteGrad();
    if (bad !== undefined) return this.refuseFound(bad, loss);
    // Everything is checked: nothing below throws on these inputs. Should it all the same, the
    // step's transaction drops the state it created (what was written stays).
    const backend = getBackend();
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const st = this.stateFor(group, p);
        this.stepParam(group, p, st, this.listFor(p, st, backend), backend);
      }
    }
    return loss;
  }

  /** The base's checks of a group's params, after `checkFirstLengths`. */
  protected override checkParams(group: G, i: number): void {
    this.checkFirstLengths(group);
    super.checkParams(group, i);
  }

  /**
   * A param whose data changed length since its state was made is refused as the base refuses it
   * (before checkParams, which would see a grad of the old length first).
   */
  private checkFirstLengths(group: G): void {
    if (!Array.isArray(group.params)) return;
    for (const p of group.params as unknown[]) {
      if (p === null || typeof p !== 'object') continue;
      const st = this.state.get(p as Param);
      const data: unknown = (p as Param).data;
      if (st === undefined || !isFloatArray(data)) continue;
      const buf = st[this.stateBuffers[0]];
      if (typeof buf === 'number' || buf === undefined || buf.length === data.length) continue;
      throw new OptimRangeError(
        `${this.className}.step(): param "${(p as Param).name}": data has length ${data.length} but had length ${buf.length} at its first step (detached or replaced by an array of another length?)`,
      );
    }
  }

  /** A param's state, its buffers created (zeroed, recorded in the step's `tx`) when missing. */
  private stateFor(group: G, p: Param): ParamState {
    const tx = this.tx;
    let st = this.state.get(p);
    if (st === undefined) {
      tx.saveEntry(this.state, p);
      st = this.newState(group);
      this.state.set(p, st);
    }
    for (const nm of this.stateBuffers) {
      if (st[nm] === undefined) {
        tx.saveEntry(st, nm);
        const n = p.data.length;
        st[nm] = this.initBuffer(nm, p.data instanceof Float32Array ? new Float32Array(n) : new Float64Array(n), group);
      }
    }
    return st;
  }

  /** A param's prepared list, remade when its arrays, its scratch or the backend changed. */
  private listFor(p: Param, st: ParamState, backend: Backend): PreparedList {
    const arrays = this.arrays;
    arrays.length = 0;
    arrays.push(p.data, p.grad);
    for (const nm of this.stateBuffers) arrays.push(st[nm] as StateArray);
    if (this.scratchCount > 0) {
      let work = this.scratch.get(p);
      if (work === undefined || work[0].length !== p.data.length || work[0].constructor !== p.data.constructor) {
        const n = p.data.length;
        work = Array.from({ length: this.scratchCount }, () => (p.data instanceof Float32Array ? new Float32Array(n) : new Float64Array(n)));
        this.scratch.set(p, work);
      }
      for (const w of work) arrays.push(w);
    }
    const e = this.prepared.get(p);
    if (e !== undefined && e.backend === backend && sameArrays(e.arrays, arrays)) return e.list;
    const kept = [...arrays];
    const list = backend.prepare(kept, kept.length);
    this.prepared.set(p, { backend, arrays: kept, list });
    return list;
  }
}

function sameArrays(a: readonly StateArray[], b: readonly StateArray[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}
