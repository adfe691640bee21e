import { defineKernel } from '../backend/kernel.js';
import { firstNonFinite } from '../backend/types.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerSpec, ParamState, OptimizerOptions, ParamsInput } from './optimizer.js';
import type { Param } from '../param.js';
import { checkBoolean, checkFinite, checkNonNegative, OPTIONS, path } from './validate.js';
import type { Where } from './validate.js';

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
  maximize?: boolean;
  emaMomentum?: boolean;
  /** Nesterov in the look-ahead form of Sutskever et al. (2013); `step(closure)` required. */
  lookahead?: boolean;
}

export interface SGDGroup extends GroupBase, Required<Omit<SGDOptions, 'lr'>> {}

/**
 * The SGD kernel (native/kernels/sgd.h). State: momentumBuffer with momentum.
 *
 * ```
 * d = sign·g;  wd: d = fma(wd, p, d)
 * momentum: b = first ? d : fma(oneMinusDampening, d, μ·b);  d = nesterov ? fma(μ, b, d) : b
 * p = fma(negLr, d, p)
 * ```
 */
export const SGD_KERNEL = defineKernel({
  name: 'sgd',
  scalars: ['wd', 'momentum', 'oneMinusDampening', 'negLr', 'sign'],
  flags: ['wd', 'momentum', 'nesterov', 'first'],
  state: [{ name: 'momentumBuffer', when: 'momentum' }],
  reference(p, g, [buf], s, on) {
    const { wd, momentum, oneMinusDampening, negLr, sign } = s;
    for (let i = 0; i < p.length; i++) {
      let d = sign * g[i];
      if (on.wd) d = wd * p[i] + d;
      if (on.momentum) {
        buf[i] = on.first ? d : oneMinusDampening * d + buf[i] * momentum;
        const b = buf[i];
        d = on.nesterov ? momentum * b + d : b;
      }
      p[i] = negLr * d + p[i];
    }
  },
});

const K = SGD_KERNEL;

const SPEC: OptimizerSpec<SGDGroup> = {
  name: 'SGD',
  kernel: K,
  defaults: {
    lr: undefined as unknown as number,
    momentum: 0,
    dampening: 0,
    weightDecay: 0,
    nesterov: false,
    maximize: false,
    emaMomentum: false,
    lookahead: false,
  },
  counters: [],
  extraBuffers: ['velocity'],
};

/**
 * Stochastic gradient descent with optional momentum, as torch.optim.SGD (torch 1.13).
 *
 * ```
 * g_t = ∇f(θ_{t-1})                    (−∇f when maximize)
 * g_t = g_t + λ θ_{t-1}                if weightDecay λ ≠ 0
 * if momentum μ ≠ 0:
 *   b_t = g_t                          at the first step
 *   b_t = μ b_{t-1} + (1 − τ) g_t      afterwards (τ = dampening)
 *   g_t = g_t + μ b_t  if nesterov,  else  g_t = b_t
 * θ_t = θ_{t-1} − γ g_t
 * ```
 *
 * Options (default): `lr` γ (required), `momentum` 0, `dampening` 0, `weightDecay` 0,
 * `nesterov` false (needs momentum > 0 and dampening 0), `maximize` false, `emaMomentum` false.
 *
 * Against the lecture-book form: the buffer starts as the first gradient, undamped, and sums
 * gradients without the (1 − μ) factor of an exponential moving average, so steps are about
 * 1/(1 − μ) times larger for the same lr. `emaMomentum: true` gives the textbook average
 * b_t = μ b_{t-1} + (1 − μ) g_t from b_0 = 0. Nesterov is torch's rewritten form: the gradient
 * is taken at θ_{t-1}, not at a look-ahead point. `lookahead: true` gives the look-ahead form
 * itself (Sutskever et al. 2013), with the gradient evaluated by the closure at θ + μv:
 *
 * ```
 * v_t = μ v_{t-1} − γ (∇f(θ_{t-1} + μ v_{t-1}) + λ(θ_{t-1} + μ v_{t-1})),   θ_t = θ_{t-1} + v_t
 * ```
 *
 * `step(closure)` moves the params to the look-ahead point, calls the closure (which fills the
 * grads there), then applies the update; state `velocity` starts at zero. The two forms are the
 * same method in different coordinates; the look-ahead one runs in TypeScript on either backend
 * (its arithmetic is three axpys) and exists to compare against the textbook.
 */
export class SGD extends Optimizer<SGDGroup> {
  constructor(params: ParamsInput<SGDOptions>, options: SGDOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override checkHyper(g: SGDGroup, where: Where): void {
    if (g.lr === undefined) {
      if (where !== OPTIONS) {
        throw new OptimTypeError(
          `SGD: ${path(where, 'lr')} is required (torch: parameter group didn't specify a value of required optimization parameter lr)`,
        );
      }
    } else {
      checkNonNegative(g.lr, 'lr', 'Invalid learning rate', where);
    }
    checkNonNegative(g.momentum, 'momentum', 'Invalid momentum value', where);
    checkFinite(g.dampening, 'dampening', 'Invalid dampening value', where);
    checkNonNegative(g.weightDecay, 'weightDecay', 'Invalid weight_decay value', where);
    checkBoolean(g.nesterov, 'nesterov', where);
    checkBoolean(g.maximize, 'maximize', where);
    checkBoolean(g.emaMomentum, 'emaMomentum', where);
    checkBoolean(g.lookahead, 'lookahead', where);
    if (g.lookahead && (g.momentum <= 0 || g.nesterov || g.emaMomentum || g.dampening !== 0 || g.maximize)) {
      throw new OptimRangeError(
        `${path(where, 'lookahead')} is the look-ahead form of Nesterov momentum: it needs momentum > 0, and nesterov, emaMomentum, maximize false and dampening 0`,
      );
    }
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
      throw new OptimRangeError(
        `Nesterov momentum requires a momentum and zero dampening (${path(where, 'nesterov')} is true with momentum ${g.momentum}, dampening ${g.dampening})`,
      );
    }
    if (g.emaMomentum && (g.momentum <= 0 || g.dampening !== 0)) {
      throw new OptimRangeError(
        `${path(where, 'emaMomentum')} requires momentum > 0 and dampening 0 (it dampens by the momentum itself), got momentum ${g.momentum}, dampening ${g.dampening}`,
      );
    }
  }

  /**
   * With `lookahead` groups: moves them to θ + μv, calls the closure, then updates them; the
   * other groups step as usual (after the same closure call).
   */
  override step<L = number>(closure?: () => L): L | undefined {
    const ahead = this.paramGroups.filter((g) => g !== null && typeof g === 'object' && g.lookahead === true);
    if (ahead.length === 0) return super.step(closure);
    if (typeof closure !== 'function') {
      throw new OptimTypeError('SGD.step(closure): lookahead needs a closure that fills the grads at the look-ahead point and returns the loss');
    }
    this.paramGroups.forEach((g, i) => {
      this.checkHyper(g, i);
      this.checkParams(g, i);
    });
    // With a gradient policy, the look-ahead move is undone exactly (from a copy) if the closure
    // returns a non-finite gradient: a refused step changes nothing.
    const guard = this.nonFinite !== 'ignore';
    const saved: Array<[Float32Array | Float64Array, Float32Array | Float64Array]> = [];
    const createdState: Param[] = [];
    const createdVelocity: Param[] = [];
    for (const g of ahead) {
      for (const p of g.params) {
        let st = this.state.get(p);
        if (st === undefined) {
          this.state.set(p, (st = {}));
          createdState.push(p);
        }
        if (st.velocity === undefined) {
          st.velocity = p.data instanceof Float32Array ? new Float32Array(p.data.length) : new Float64Array(p.data.length);
          createdVelocity.push(p);
        }
        const v = st.velocity as Float32Array | Float64Array;
        const x = p.data;
        if (guard) saved.push([x, x.slice()]);
        for (let i = 0; i < x.length; i++) x[i] += g.momentum * v[i];
      }
    }
    const loss = closure();
    if (guard) {
      for (const g of this.paramGroups) {
        for (const p of g.params) {
          const index = firstNonFinite(p.grad);
          if (index < 0) continue;
          for (const [x, copy] of saved) x.set(copy);
          for (const q of createdVelocity) delete this.state.get(q)?.velocity;
          for (const q of createdState) this.state.delete(q);
          return this.refuseFound({ param: p, index, value: p.grad[index] }, loss);
        }
      }
    }
    for (const g of ahead) {
      const { momentum: mu, lr, weightDecay: wd } = g;
      for (const p of g.params) {
        const v = this.state.get(p)!.velocity as Float32Array | Float64Array;
        const x = p.data;
        const grad = p.grad;
        for (let i = 0; i < x.length; i++) {
          const prev = v[i];
          const next = mu * prev - lr * (grad[i] + wd * x[i]);
          v[i] = next;
          x[i] = x[i] - mu * prev + next;
        }
      }
    }
    const rest = this.paramGroups.filter((g) => !ahead.includes(g));
    if (rest.length > 0) {
      const all = this.paramGroups.splice(0, this.paramGroups.length);
      this.paramGroups.push(...rest);
      try {
        super.step();
      } finally {
        this.paramGroups.splice(0, this.paramGroups.length, ...all);
      }
    }
    return loss;
  }

  protected override flagsOf(g: SGDGroup): number {
    let flags = g.weightDecay !== 0 ? K.flag.wd : 0;
    if (g.momentum !== 0) flags |= K.flag.momentum | (g.nesterov ? K.flag.nesterov : 0);
    return flags;
  }


  protected override initFlags(g: SGDGroup, flags: number): number {
    return flags & K.flag.momentum && !g.emaMomentum ? K.flag.first : 0;
  }

  protected override fillScalars(g: SGDGroup, _flags: number, _state: ParamState, out: Float64Array): number {
    out[K.slot.wd] = g.weightDecay;
    out[K.slot.momentum] = g.momentum;
    out[K.slot.oneMinusDampening] = g.emaMomentum ? 1 - g.momentum : 1 - g.dampening;
    out[K.slot.negLr] = -g.lr;
    out[K.slot.sign] = g.maximize ? -1 : 1;
    return 0;
  }
}
