import { defineKernel } from '../backend/kernel.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamState, ParamsInput } from './optimizer.js';
import { ADAM_FAMILY_DEFAULTS } from './options.js';
import type { AdamFamilyOptions } from './options.js';
import { PowerSequence } from './powi.js';
import { decayedGrad, lerp } from './prelude.js';

/**
 * The Adamax kernel (native/kernels/adamax.h). State: expAvg, expInf.
 *
 * ```
 * g = sign·g;  wd: g = fma(wd, p, g)
 * m = lerp(m, g, 1−β1)   (the native kernel fuses it as ATen 2.x does: fma(1−β1, g−m, m))
 * u = max(β2·u, |g| + ε)
 * p = p + (negClr·m) / u,  negClr = −γ/(1−β1^t)
 * ```
 */
export const ADAMAX_KERNEL = defineKernel({
  name: 'adamax',
  scalars: ['wd', 'oneMinusBeta1', 'beta2', 'eps', 'negClr', 'sign'],
  flags: ['wd'],
  state: [{ name: 'expAvg' }, { name: 'expInf' }],
  reference(p, g, [m, u], s, on) {
    const { wd, sign, oneMinusBeta1: w, beta2, eps, negClr } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = decayedGrad(p, g, i, sign, wd, 1, on.wd, false);
      m[i] = lerp(m[i], gi, w);
      const a = u[i] * beta2;
      const b = Math.abs(gi) + eps;
      // torch.maximum: NaN when either is NaN (Math.max agrees).
      u[i] = Math.max(a, b);
      p[i] = p[i] + (negClr * m[i]) / u[i];
    }
  },
});

const K = ADAMAX_KERNEL;

export type AdamaxOptions = AdamFamilyOptions;

export interface AdamaxGroup extends GroupBase, Required<AdamaxOptions> {}

const SPEC: OptimizerSpec<AdamaxGroup> = {
  name: 'Adamax',
  kernel: K,
  defaults: { lr: 2e-3, ...ADAM_FAMILY_DEFAULTS },
  counters: ['step'],
};

/**
 * Adamax, as torch.optim.Adamax (torch 2.13): Adam with the infinity norm in place of the
 * second moment.
 *
 * ```
 * g_t = ∇f(θ_{t-1})                          (−∇f when maximize)
 * g_t = g_t + λ θ_{t-1}                      if weightDecay λ ≠ 0
 * m_t = β1 m_{t-1} + (1 − β1) g_t            (torch's lerp)
 * u_t = max(β2 u_{t-1}, |g_t| + ε)
 * θ_t = θ_{t-1} − γ/(1 − β1^t) · m_t / u_t
 * ```
 *
 * Options (default): `lr` γ 2e-3, `betas` [0.9, 0.999], `eps` 1e-8, `weightDecay` 0,
 * `maximize` false. State: `step`, `expAvg`, `expInf`.
 *
 * Against the lecture-book form (Kingma & Ba, Algorithm 2): ε sits inside the maximum (the paper
 * has none), which keeps u_t > 0 when the gradient is zero from the start.
 */
export class Adamax extends Optimizer<AdamaxGroup> {
  private readonly beta1Pow = new PowerSequence();

  constructor(params: ParamsInput<AdamaxOptions>, options: AdamaxOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override fillScalars(g: AdamaxGroup, _flags: number, state: ParamState, out: Float64Array): number {
    const beta1 = g.betas[0];
    const step = (state.step as number) + 1;
    out[K.slot.negClr] = -(g.lr / (1 - this.beta1Pow.pow(beta1, step)));
    return 0;
  }
}
