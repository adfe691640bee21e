import { defineKernel } from '../backend/kernel.js';
import type { AnyKernel } from '../backend/kernel.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { Optimizer } from './optimizer.js';
import { decayedGrad } from './prelude.js';
import type { GroupBase, OptimizerSpec, ParamState, OptimizerOptions, ParamsInput } from './optimizer.js';
import { checkNonNegative, OPTIONS, path } from '../validate.js';
import type { Where } from '../validate.js';

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
    const { wd, sign, momentum, oneMinusDampening, negLr } = s;
    for (let i = 0; i < p.length; i++) {
      let d = decayedGrad(p, g, i, sign, wd, 1, on.wd, false);
      if (on.momentum) {
        buf[i] = on.first ? d : oneMinusDampening * d + buf[i] * momentum;
        const b = buf[i];
        d = on.nesterov ? momentum * b + d : b;
      }
      p[i] = negLr * d + p[i];
    }
  },
});

/**
 * The look-ahead form's kernel (native/kernels/sgdLookahead.h). State: velocity. With `ahead`,
 * it moves p to the look-ahead point before the closure; then the update, from x = θ + μv and the
 * gradient g there:
 *
 * ```
 * ahead: p = fma(μ, v, p)
 * d = g;  wd: d = fma(wd, x, d);  v' = fma(negLr, d, μ·v);  p = (x − μ·v) + v'
 * ```
 */
export const SGD_LOOKAHEAD_KERNEL = defineKernel({
  name: 'sgdLookahead',
  scalars: ['wd', 'momentum', 'negLr'],
  flags: ['wd', 'ahead'],
  state: [{ name: 'velocity' }],
  reference(p, g, [v], s, on) {
    const { wd, momentum, negLr } = s;
    if (on.ahead) {
      for (let i = 0; i < p.length; i++) p[i] = momentum * v[i] + p[i];
      return;
    }
    for (let i = 0; i < p.length; i++) {
      let d = g[i];
      if (on.wd) d = wd * p[i] + d;
      const prev = momentum * v[i];
      v[i] = negLr * d + prev;
      p[i] = p[i] - prev + v[i];
    }
  },
});

const K = SGD_KERNEL;
const L = SGD_LOOKAHEAD_KERNEL;

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
  alternates: [SGD_LOOKAHEAD_KERNEL],
  signed: ['dampening'],
};

/**
 * Stochastic gradient descent with optional momentum, as torch.optim.SGD (torch 2.13; unchanged since 1.13).
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
 * grads there), then applies the update (its own kernel, SGD_LOOKAHEAD_KERNEL); state `velocity`
 * starts at zero. A refused step, or a closure that throws, puts the params back exactly. The two
 * forms are the same method in different coordinates; the look-ahead one exists to compare
 * against the textbook.
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
    super.checkHyper(g, where);
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

  protected override kernelFor(g: SGDGroup): AnyKernel {
    return g.lookahead ? L : K;
  }

  protected override kernels(): readonly AnyKernel[] {
    return [K, L];
  }

  protected override flagsOf(g: SGDGroup): number {
    let flags = this.weightDecayFlag(g);
    if (g.lookahead) return flags;
    if (g.momentum !== 0) flags |= K.flag.momentum | (g.nesterov ? K.flag.nesterov : 0);
    return flags;
  }


  protected override initFlags(g: SGDGroup, flags: number): number {
    return !g.lookahead && flags & K.flag.momentum && !g.emaMomentum ? K.flag.first : 0;
  }

  protected override fillScalars(g: SGDGroup, _flags: number, _state: ParamState, out: Float64Array): number {
    if (!g.lookahead) out[K.slot.oneMinusDampening] = g.emaMomentum ? 1 - g.momentum : 1 - g.dampening;
    return 0;
  }
}
