import { defineKernel } from '../backend/kernel.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerSpec, ParamState, OptimizerOptions, ParamsInput } from './optimizer.js';
import { ADAM_FAMILY_DEFAULTS } from './options.js';
import type { AdamFamilyOptions } from './options.js';
import { PowerSequence } from './powi.js';
import { decayedGrad, lerp, secondMoment } from './prelude.js';

export interface NAdamOptions extends AdamFamilyOptions {
  momentumDecay?: number;
  decoupledWeightDecay?: boolean;
}

export interface NAdamGroup extends GroupBase, Required<NAdamOptions> {}

/**
 * The NAdam kernel (native/kernels/nadam.h). State: expAvg, expAvgSq.
 *
 * ```
 * decoupled: p = p·decayMul;  g = sign·g;  wd: g = fma(wd, p, g)
 * m = lerp(m, g, 1−β1);  v = fma((1−β2)·g, g, β2·v);  d = √(v / bc2) + ε
 * p = p + (coefGrad·g)/d;  p = p + (coefAvg·m)/d
 * ```
 */
export const NADAM_KERNEL = defineKernel({
  name: 'nadam',
  scalars: ['wd', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'bc2', 'eps', 'coefGrad', 'coefAvg', 'sign', 'decayMul'],
  flags: ['wd', 'decoupled'],
  state: [{ name: 'expAvg' }, { name: 'expAvgSq' }],
  reference(p, g, [m, v], s, on) {
    const { wd, sign, decayMul, oneMinusBeta1: w, beta2, oneMinusBeta2, bc2, eps, coefGrad, coefAvg } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = decayedGrad(p, g, i, sign, wd, decayMul, on.wd, on.decoupled);
      m[i] = lerp(m[i], gi, w);
      v[i] = secondMoment(v[i], gi, beta2, oneMinusBeta2);
      const denom = Math.sqrt(v[i] / bc2) + eps;
      p[i] = p[i] + (coefGrad * gi) / denom;
      p[i] = p[i] + (coefAvg * m[i]) / denom;
    }
  },
});

const K = NADAM_KERNEL;

const SPEC: OptimizerSpec<NAdamGroup> = {
  name: 'NAdam',
  kernel: K,
  defaults: { lr: 2e-3, ...ADAM_FAMILY_DEFAULTS, momentumDecay: 4e-3, decoupledWeightDecay: false },
  counters: ['step', 'muProduct'],
};


/**
 * NAdam, as torch.optim.NAdam (torch 2.13's single-tensor path).
 *
 * ```
 * θ_{t-1} ← θ_{t-1} (1 − γλ)                 if decoupledWeightDecay (NAdamW)
 * g_t = ∇f(θ_{t-1})                          (−∇f when maximize)
 * g_t = g_t + λ θ_{t-1}                      if weightDecay λ ≠ 0 and not decoupled
 * μ_t = β1 (1 − ½ · 0.96^(t ψ))              (ψ = momentumDecay)
 * m_t = m_{t-1} + (1 − β1)(g_t − m_{t-1})   (= β1 m_{t-1} + (1 − β1) g_t, as torch 2.x's lerp)
 * v_t = β2 v_{t-1} + (1 − β2) g_t²
 * d_t = √(v_t / (1 − β2^t)) + ε
 * θ_t = θ_{t-1} − γ (1 − μ_t)/(1 − Π_{i≤t} μ_i) · g_t/d_t − γ μ_{t+1}/(1 − Π_{i≤t+1} μ_i) · m_t/d_t
 * ```
 *
 * Options (default): `lr` γ 2e-3, `betas` [0.9, 0.999], `eps` 1e-8, `weightDecay` 0,
 * `momentumDecay` 4e-3, `decoupledWeightDecay` false, `maximize` false. State: `step`,
 * `muProduct` (Π μ_i), `expAvg`, `expAvgSq`.
 *
 * Against the lecture-book form (Dozat 2016): the same momentum schedule (ψ = 1/250) and
 * Nesterov-style look-ahead; ε is added outside the square root. As torch 2.13 (which keeps
 * it in a float32 0-d tensor), `muProduct` is rounded to float32 after each multiply; the
 * coefficients are computed in float64 from it. `0.96^(tψ)` uses `Math.pow`.
 */
export class NAdam extends Optimizer<NAdamGroup> {
  private nextMuProduct = 1;
  private readonly beta2Pow = new PowerSequence();

  constructor(params: ParamsInput<NAdamOptions>, options: NAdamOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override flagsOf(g: NAdamGroup): number {
    return this.weightDecayFlag(g, g.decoupledWeightDecay);
  }

  protected override newState(): ParamState {
    return { step: 0, muProduct: 1 };
  }

  protected override fillScalars(g: NAdamGroup, _flags: number, state: ParamState, out: Float64Array): number {
    const { lr, momentumDecay } = g;
    const beta1 = g.betas[0];
    const beta2 = g.betas[1];
    const step = (state.step as number) + 1;
    const bc2 = 1 - this.beta2Pow.pow(beta2, step);
    const mu = beta1 * (1 - 0.5 * Math.pow(0.96, step * momentumDecay));
    const muNext = beta1 * (1 - 0.5 * Math.pow(0.96, (step + 1) * momentumDecay));
    // torch keeps mu_product as a float32 0-d tensor: mu_product *= mu multiplies in float32.
    const muProduct = Math.fround((state.muProduct as number) * Math.fround(mu));
    const muProductNext = muProduct * muNext;
    out[K.slot.bc2] = bc2;
    out[K.slot.coefGrad] = (-lr * (1 - mu)) / (1 - muProduct);
    out[K.slot.coefAvg] = (-lr * muNext) / (1 - muProductNext);
    this.nextMuProduct = muProduct;
    return 0;
  }

  protected override commit(states: ParamState[]): void {
    const muProduct = this.nextMuProduct;
    for (let i = 0; i < states.length; i++) {
      const st = states[i];
      st.step = (st.step as number) + 1;
      st.muProduct = muProduct;
    }
  }
}
