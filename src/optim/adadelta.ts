import { defineKernel } from '../backend/kernel.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamsInput } from './optimizer.js';
import type { DecayOptions } from './options.js';
import { decayedGrad, secondMoment } from './prelude.js';

/**
 * The Adadelta kernel (native/kernels/adadelta.h). State: squareAvg, accDelta.
 *
 * ```
 * g = sign·g;  wd: g = fma(wd, p, g);  v = fma((1−ρ)·g, g, ρ·v)
 * d = √(u + ε) / √(v + ε) · g;  u = fma((1−ρ)·d, d, ρ·u);  p = fma(negLr, d, p)
 * ```
 */
export const ADADELTA_KERNEL = defineKernel({
  name: 'adadelta',
  scalars: ['wd', 'rho', 'oneMinusRho', 'eps', 'negLr', 'sign'],
  flags: ['wd'],
  state: [{ name: 'squareAvg' }, { name: 'accDelta' }],
  reference(p, g, [v, u], s, on) {
    const { wd, sign, rho, oneMinusRho, eps, negLr } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = decayedGrad(p, g, i, sign, wd, 1, on.wd, false);
      v[i] = secondMoment(v[i], gi, rho, oneMinusRho);
      const std = Math.sqrt(v[i] + eps);
      const d = (Math.sqrt(u[i] + eps) / std) * gi;
      u[i] = secondMoment(u[i], d, rho, oneMinusRho);
      p[i] = negLr * d + p[i];
    }
  },
});

const K = ADADELTA_KERNEL;

export interface AdadeltaOptions extends DecayOptions {
  /** ρ, the decay of both running averages, in [0, 1]. */
  rho?: number;
  eps?: number;
}

export interface AdadeltaGroup extends GroupBase, Required<AdadeltaOptions> {}

const SPEC: OptimizerSpec<AdadeltaGroup> = {
  name: 'Adadelta',
  kernel: K,
  defaults: { lr: 1, rho: 0.9, eps: 1e-6, weightDecay: 0, maximize: false },
  counters: ['step'],
  unit: ['rho'],
};

/**
 * Adadelta, as torch.optim.Adadelta (torch 2.13).
 *
 * ```
 * g_t = ∇f(θ_{t-1})                            (−∇f when maximize)
 * g_t = g_t + λ θ_{t-1}                        if weightDecay λ ≠ 0
 * v_t = ρ v_{t-1} + (1 − ρ) g_t²
 * Δ_t = √(u_{t-1} + ε) / √(v_t + ε) · g_t
 * u_t = ρ u_{t-1} + (1 − ρ) Δ_t²
 * θ_t = θ_{t-1} − γ Δ_t
 * ```
 *
 * Options (default): `lr` γ 1, `rho` ρ 0.9 (in [0, 1]), `eps` 1e-6, `weightDecay` 0, `maximize`
 * false. State: `step`, `squareAvg` (v), `accDelta` (u).
 *
 * Against the lecture-book form (Zeiler 2012, Algorithm 1): the same update with ε inside both
 * roots; the paper has no learning rate (γ = 1, torch's default).
 */
export class Adadelta extends Optimizer<AdadeltaGroup> {
  constructor(params: ParamsInput<AdadeltaOptions>, options: AdadeltaOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override fillScalars(g: AdadeltaGroup, _flags: number, _state: unknown, out: Float64Array): number {
    out[K.slot.rho] = g.rho;
    out[K.slot.oneMinusRho] = 1 - g.rho;
    return 0;
  }
}
