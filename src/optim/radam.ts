import { defineKernel } from '../backend/kernel.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerSpec, ParamState, OptimizerOptions, ParamsInput } from './optimizer.js';
import { ADAM_FAMILY_DEFAULTS } from './options.js';
import type { AdamFamilyOptions } from './options.js';
import { PowerSequence } from './powi.js';
import { decayedGrad, lerp, secondMoment } from './prelude.js';

export interface RAdamOptions extends AdamFamilyOptions {
  decoupledWeightDecay?: boolean;
}

export interface RAdamGroup extends GroupBase, Required<RAdamOptions> {}

/**
 * The RAdam kernel (native/kernels/radam.h). State: expAvg, expAvgSq.
 *
 * ```
 * decoupled: p = p·decayMul;  g = sign·g;  wd: g = fma(wd, p, g)
 * m = lerp(m, g, 1−β1);  v = fma((1−β2)·g, g, β2·v);  m̂ = m / bc1
 * rectified: p = p − ((m̂·γ)·(bc2Sqrt / (√v + ε)))·rect;  else p = p − m̂·γ
 * ```
 */
export const RADAM_KERNEL = defineKernel({
  name: 'radam',
  scalars: ['wd', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'bc1', 'lr', 'bc2Sqrt', 'eps', 'rect', 'sign', 'decayMul'],
  flags: ['wd', 'rectified', 'decoupled'],
  state: [{ name: 'expAvg' }, { name: 'expAvgSq' }],
  reference(p, g, [m, v], s, on) {
    const { wd, sign, decayMul, oneMinusBeta1: w, beta2, oneMinusBeta2, bc1, lr, bc2Sqrt, eps, rect } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = decayedGrad(p, g, i, sign, wd, decayMul, on.wd, on.decoupled);
      m[i] = lerp(m[i], gi, w);
      v[i] = secondMoment(v[i], gi, beta2, oneMinusBeta2);
      const mh = m[i] / bc1;
      p[i] = on.rectified ? p[i] - mh * lr * (bc2Sqrt / (Math.sqrt(v[i]) + eps)) * rect : p[i] - mh * lr;
    }
  },
});

const K = RADAM_KERNEL;

const SPEC: OptimizerSpec<RAdamGroup> = {
  name: 'RAdam',
  kernel: K,
  defaults: { lr: 1e-3, ...ADAM_FAMILY_DEFAULTS, decoupledWeightDecay: false },
  counters: ['step'],
};


/**
 * RAdam, as torch.optim.RAdam (torch 2.13's single-tensor path).
 *
 * ```
 * θ_{t-1} ← θ_{t-1} (1 − γλ)                 if decoupledWeightDecay
 * g_t = ∇f(θ_{t-1})                          (−∇f when maximize)
 * g_t = g_t + λ θ_{t-1}                      if weightDecay λ ≠ 0 and not decoupled
 * m_t = m_{t-1} + (1 − β1)(g_t − m_{t-1}),   m̂_t = m_t / (1 − β1^t)
 * v_t = β2 v_{t-1} + (1 − β2) g_t²
 * ρ_∞ = 2/(1 − β2) − 1,   ρ_t = ρ_∞ − 2 t β2^t / (1 − β2^t)
 * if ρ_t > 5:  r_t = √((ρ_t − 4)(ρ_t − 2) ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2) ρ_t)),
 *              θ_t = θ_{t-1} − γ m̂_t · √(1 − β2^t)/(√v_t + ε) · r_t
 * else         θ_t = θ_{t-1} − γ m̂_t
 * ```
 *
 * Options (default): `lr` γ 1e-3, `betas` [0.9, 0.999], `eps` 1e-8, `weightDecay` 0,
 * `decoupledWeightDecay` false, `maximize` false. State: `step`, `expAvg`, `expAvgSq`.
 *
 * Against the lecture-book form (Liu et al. 2020, Algorithm 2): the paper rectifies when ρ_t > 4
 * and has no ε in the adaptive term √((1 − β2^t)/v_t); torch uses ρ_t > 5 and adds ε.
 */
export class RAdam extends Optimizer<RAdamGroup> {
  private readonly beta1Pow = new PowerSequence();
  private readonly beta2Pow = new PowerSequence();
  constructor(params: ParamsInput<RAdamOptions>, options: RAdamOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override flagsOf(g: RAdamGroup): number {
    return this.weightDecayFlag(g, g.decoupledWeightDecay);
  }


  protected override fillScalars(g: RAdamGroup, _flags: number, state: ParamState, out: Float64Array): number {
    const beta1 = g.betas[0];
    const beta2 = g.betas[1];
    const step = (state.step as number) + 1;
    const beta2t = this.beta2Pow.pow(beta2, step);
    const bc1 = 1 - this.beta1Pow.pow(beta1, step);
    const bc2 = 1 - beta2t;
    const rhoInf = 2 / (1 - beta2) - 1;
    const rhoT = rhoInf - (2 * step * beta2t) / bc2;
    const rectified = rhoT > 5;
    out[K.slot.bc1] = bc1;
    out[K.slot.bc2Sqrt] = Math.sqrt(bc2);
    out[K.slot.rect] = rectified
      ? Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT))
      : 0;
    return rectified ? K.flag.rectified : 0;
  }
}
