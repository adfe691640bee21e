import { defineKernel } from '../backend/kernel.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerSpec, ParamState, OptimizerOptions, ParamsInput } from './optimizer.js';
import { PowerSequence } from './powi.js';
import { ADAM_FAMILY_DEFAULTS } from './options.js';
import type { AdamFamilyOptions } from './options.js';
import { decayedGrad, lerp, secondMoment } from './prelude.js';

export interface AdamOptions extends AdamFamilyOptions {
  amsgrad?: boolean;
  biasCorrection?: boolean;
}

export interface AdamGroup extends GroupBase, Required<AdamOptions> {}

/** Adam's spec, plus whether weight decay is decoupled (AdamW). */
export interface AdamSpec extends OptimizerSpec<AdamGroup> {
  readonly decoupled: boolean;
}

/**
 * The Adam kernel (native/kernels/adam.h), shared with AdamW. State: expAvg, expAvgSq, and
 * maxExpAvgSq with amsgrad.
 *
 * ```
 * decoupled: p = p·decayMul;  g = sign·g;  wd: g = fma(wd, p, g)
 * m = lerp(m, g, 1−β1);  v = fma((1−β2)·g, g, β2·v);  amsgrad: v̂ = max(v̂, v), use v̂
 * p = p + (negStepSize·m) / (√v / bc2Sqrt + ε)
 * ```
 */
export const ADAM_KERNEL = defineKernel({
  name: 'adam',
  scalars: ['wd', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'negStepSize', 'bc2Sqrt', 'eps', 'sign', 'decayMul'],
  flags: ['wd', 'amsgrad', 'decoupled'],
  state: [{ name: 'expAvg' }, { name: 'expAvgSq' }, { name: 'maxExpAvgSq', when: 'amsgrad' }],
  reference(p, g, [m, v, vmaxBuf], s, on) {
    const { wd, sign, decayMul, oneMinusBeta1, beta2, oneMinusBeta2, negStepSize, bc2Sqrt, eps } = s;
    const vmax = on.amsgrad ? vmaxBuf : v;
    for (let i = 0; i < p.length; i++) {
      const gi = decayedGrad(p, g, i, sign, wd, decayMul, on.wd, on.decoupled);
      m[i] = lerp(m[i], gi, oneMinusBeta1);
      v[i] = secondMoment(v[i], gi, beta2, oneMinusBeta2);
      if (on.amsgrad) vmax[i] = Math.max(vmax[i], v[i]);
      const denom = Math.sqrt(vmax[i]) / bc2Sqrt + eps;
      p[i] = p[i] + (negStepSize * m[i]) / denom;
    }
  },
});

const K = ADAM_KERNEL;

export const ADAM_SPEC: AdamSpec = {
  name: 'Adam',
  kernel: K,
  defaults: { lr: 1e-3, ...ADAM_FAMILY_DEFAULTS, amsgrad: false, biasCorrection: true },
  counters: ['step'],
  decoupled: false,
};


/**
 * Adam, as torch.optim.Adam (torch 2.13's single-tensor path, operation for operation).
 *
 * ```
 * g_t = ∇f(θ_{t-1})                          (−∇f when maximize)
 * g_t = g_t + λ θ_{t-1}                      if weightDecay λ ≠ 0 (L2, coupled)
 * m_t = m_{t-1} + (1 − β1)(g_t − m_{t-1})   (= β1 m_{t-1} + (1 − β1) g_t, as torch 2.x's lerp)
 * v_t = β2 v_{t-1} + (1 − β2) g_t²
 * if amsgrad:  v_t ← v̂_t = max(v̂_{t-1}, v_t)
 * θ_t = θ_{t-1} − γ/(1 − β1^t) · m_t / (√v_t / √(1 − β2^t) + ε)
 * ```
 *
 * Options (default): `lr` γ 1e-3, `betas` [0.9, 0.999], `eps` 1e-8, `weightDecay` 0,
 * `amsgrad` false, `maximize` false, `biasCorrection` true. State: `step`, `expAvg`,
 * `expAvgSq`, and `maxExpAvgSq` (amsgrad).
 *
 * Against the lecture-book form (Kingma & Ba, Algorithm 1): the same update, with the bias
 * corrections folded into the step size and the denominator. `biasCorrection: false` drops them
 * (θ_t = θ_{t-1} − γ m_t / (√v_t + ε)). Weight decay here is an L2 term added to the gradient;
 * see AdamW for the decoupled form. AMSGrad keeps the maximum of the raw v_t, not of the
 * bias-corrected one.
 */
export class Adam extends Optimizer<AdamGroup> {
  /** The subclass's spec: AdamW replaces it. */
  protected static readonly spec: AdamSpec = ADAM_SPEC;
  private readonly decoupled: boolean;
  private readonly beta1Pow = new PowerSequence();
  private readonly beta2Pow = new PowerSequence();

  constructor(params: ParamsInput<AdamOptions>, options: AdamOptions & OptimizerOptions = {}) {
    const spec = (new.target as typeof Adam).spec;
    super(params, options, spec);
    this.decoupled = spec.decoupled;
  }

  protected override flagsOf(g: AdamGroup): number {
    return this.weightDecayFlag(g, this.decoupled) | (g.amsgrad ? K.flag.amsgrad : 0);
  }


  protected override fillScalars(g: AdamGroup, _flags: number, state: ParamState, out: Float64Array): number {
    const beta1 = g.betas[0];
    const beta2 = g.betas[1];
    const step = (state.step as number) + 1;
    let negStepSize = -g.lr;
    let bc2Sqrt = 1;
    if (g.biasCorrection) {
      const bc1 = 1 - this.beta1Pow.pow(beta1, step);
      const bc2 = 1 - this.beta2Pow.pow(beta2, step);
      negStepSize = -(g.lr / bc1);
      bc2Sqrt = Math.sqrt(bc2);
    }
    out[K.slot.negStepSize] = negStepSize;
    out[K.slot.bc2Sqrt] = bc2Sqrt;
    return 0;
  }
}
