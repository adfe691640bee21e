import { defineKernel } from '../backend/kernel.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamState, ParamsInput } from './optimizer.js';
import type { DecayOptions } from './options.js';
import { decayedGrad } from './prelude.js';

/**
 * The ASGD kernel (native/kernels/asgd.h). State: ax (the average).
 *
 * ```
 * g = sign·g;  wd: g = fma(wd, p, g);  p = p·decayMul;  p = fma(negEta, g, p)
 * average: ax = ax + (p − ax)·μ;  else ax = p
 * ```
 */
export const ASGD_KERNEL = defineKernel({
  name: 'asgd',
  scalars: ['wd', 'sign', 'decayMul', 'negEta', 'mu'],
  flags: ['wd', 'average'],
  state: [{ name: 'ax' }],
  reference(p, g, [ax], s, on) {
    const { wd, sign, decayMul, negEta, mu } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = decayedGrad(p, g, i, sign, wd, 1, on.wd, false);
      p[i] = p[i] * decayMul;
      p[i] = negEta * gi + p[i];
      ax[i] = on.average ? ax[i] + (p[i] - ax[i]) * mu : p[i];
    }
  },
});

const K = ASGD_KERNEL;

export interface ASGDOptions extends DecayOptions {
  /** λ, the decay term. */
  lambd?: number;
  /** α, the power of the η schedule. */
  alpha?: number;
  /** t₀, the step at which averaging starts. */
  t0?: number;
}

export interface ASGDGroup extends GroupBase, Required<ASGDOptions> {}

const SPEC: OptimizerSpec<ASGDGroup> = {
  name: 'ASGD',
  kernel: K,
  defaults: { lr: 1e-2, lambd: 1e-4, alpha: 0.75, t0: 1e6, weightDecay: 0, maximize: false },
  counters: ['step', 'eta', 'mu'],
  signed: ['lambd', 'alpha', 't0'],
};

/**
 * Averaged SGD, as torch.optim.ASGD (torch 2.13 single-tensor path).
 *
 * ```
 * g_t = ∇f(θ_{t-1})                          (−∇f when maximize)
 * g_t = g_t + λ_w θ_{t-1}                    if weightDecay λ_w ≠ 0
 * θ_t = θ_{t-1} (1 − λ η_t) − η_t g_t
 * x̄_t = x̄_{t-1} + μ_t (θ_t − x̄_{t-1})  if μ_t ≠ 1,  else θ_t
 * η_{t+1} = γ / (1 + λ γ t)^α,   μ_{t+1} = 1 / max(1, t − t₀)     (η_1 = γ, μ_1 = 1)
 * ```
 *
 * Options (default): `lr` γ 1e-2, `lambd` λ 1e-4, `alpha` α 0.75, `t0` t₀ 1e6, `weightDecay` 0,
 * `maximize` false. State: `step`, `eta`, `mu`, `ax` (the average x̄, what to evaluate with).
 *
 * As torch keeps them, η and μ are float32 numbers (torch's 0-d tensors of the default dtype):
 * each new value is computed in double and rounded to float32. Against the lecture-book form
 * (Polyak & Juditsky 1992; Bottou's schedule): the same averaging, started at t₀.
 */
export class ASGD extends Optimizer<ASGDGroup> {
  /** η and μ for after this step, computed with its scalars and stored by `commit`. */
  private readonly next = { eta: 0, mu: 0 };

  constructor(params: ParamsInput<ASGDOptions>, options: ASGDOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override newState(g: ASGDGroup): ParamState {
    return { step: 0, eta: Math.fround(g.lr), mu: 1 };
  }

  protected override fillScalars(g: ASGDGroup, _flags: number, state: ParamState, out: Float64Array): number {
    const eta = state.eta as number;
    const mu = state.mu as number;
    const step = (state.step as number) + 1;
    out[K.slot.decayMul] = 1 - g.lambd * eta;
    out[K.slot.negEta] = -eta;
    out[K.slot.mu] = mu;
    this.next.eta = Math.fround(g.lr / (1 + g.lambd * g.lr * step) ** g.alpha);
    this.next.mu = Math.fround(1 / Math.max(1, step - g.t0));
    return mu !== 1 ? K.flag.average : 0;
  }

  protected override commit(states: ParamState[]): void {
    const { eta, mu } = this.next;
    for (let i = 0; i < states.length; i++) {
      const st = states[i];
      st.step = (st.step as number) + 1;
      st.eta = eta;
      st.mu = mu;
    }
  }
}
