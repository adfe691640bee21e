import { defineKernel } from '../backend/kernel.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerSpec, OptimizerOptions, ParamsInput } from './optimizer.js';
import { decayedGrad, lerp, secondMoment } from './prelude.js';

export interface RMSpropOptions {
  lr?: number;
  alpha?: number;
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  centered?: boolean;
  maximize?: boolean;
  epsInsideSqrt?: boolean;
}

export interface RMSpropGroup extends GroupBase, Required<RMSpropOptions> {}

/**
 * The RMSprop kernel (native/kernels/rmsprop.h). State: squareAvg, gradAvg (centered),
 * momentumBuffer (momentum).
 *
 * ```
 * g = sign·g;  wd: g = fma(wd, p, g);  v = fma((1−α)·g, g, α·v)
 * centered: ḡ = lerp(ḡ, g, 1−α), x = fma(−ḡ, ḡ, v); else x = v
 * a = √x + ε  (epsInside: √(x + ε))
 * momentum: b = μ·b + g/a, p = fma(negLr, b, p); else p = p + (negLr·g)/a
 * ```
 */
export const RMSPROP_KERNEL = defineKernel({
  name: 'rmsprop',
  scalars: ['wd', 'alpha', 'oneMinusAlpha', 'eps', 'momentum', 'negLr', 'sign'],
  flags: ['wd', 'centered', 'momentum', 'epsInside'],
  state: [{ name: 'squareAvg' }, { name: 'gradAvg', when: 'centered' }, { name: 'momentumBuffer', when: 'momentum' }],
  reference(p, g, state, s, on) {
    const { wd, sign, alpha, oneMinusAlpha, eps, momentum, negLr } = s;
    const sq = state[0];
    // Unused slots alias `sq` so the loop needs no optional buffers; they are never written then.
    const ga = on.centered ? state[1] : sq;
    const buf = on.momentum ? state[on.centered ? 2 : 1] : sq;
    for (let i = 0; i < p.length; i++) {
      const gi = decayedGrad(p, g, i, sign, wd, 1, on.wd, false);
      sq[i] = secondMoment(sq[i], gi, alpha, oneMinusAlpha);
      let x = sq[i];
      if (on.centered) {
        ga[i] = lerp(ga[i], gi, oneMinusAlpha);
        const gav = ga[i];
        x = -gav * gav + x;
      }
      const avg = on.epsInside ? Math.sqrt(x + eps) : Math.sqrt(x) + eps;
      if (on.momentum) {
        buf[i] = buf[i] * momentum + gi / avg;
        p[i] = negLr * buf[i] + p[i];
      } else {
        p[i] = p[i] + (negLr * gi) / avg;
      }
    }
  },
});

const K = RMSPROP_KERNEL;

const SPEC: OptimizerSpec<RMSpropGroup> = {
  name: 'RMSprop',
  kernel: K,
  defaults: {
    lr: 1e-2,
    alpha: 0.99,
    eps: 1e-8,
    weightDecay: 0,
    momentum: 0,
    centered: false,
    maximize: false,
    epsInsideSqrt: false,
  },
  counters: ['step'],
};

// Indexed by flags & (CENTERED | MOMENTUM): the kernel's buffer order for each combination.

/**
 * RMSprop, as torch.optim.RMSprop (torch 2.13's single-tensor path).
 *
 * ```
 * g_t = ∇f(θ_{t-1})                          (−∇f when maximize)
 * g_t = g_t + λ θ_{t-1}                      if weightDecay λ ≠ 0
 * v_t = α v_{t-1} + (1 − α) g_t²
 * if centered:  ḡ_t = ḡ_{t-1} + (1 − α)(g_t − ḡ_{t-1}),   ṽ_t = v_t − ḡ_t²   else  ṽ_t = v_t
 * if momentum μ > 0:  b_t = μ b_{t-1} + g_t / (√ṽ_t + ε),   θ_t = θ_{t-1} − γ b_t
 * else                θ_t = θ_{t-1} − γ g_t / (√ṽ_t + ε)
 * ```
 *
 * Options (default): `lr` γ 1e-2, `alpha` 0.99, `eps` 1e-8, `weightDecay` 0, `momentum` 0,
 * `centered` false, `maximize` false, `epsInsideSqrt` false. State: `step`, `squareAvg`, and
 * `gradAvg` (centered), `momentumBuffer` (momentum > 0).
 *
 * Against the lecture-book form (Hinton's lecture 6e, √(v + ε)): torch adds ε outside the square
 * root; `epsInsideSqrt: true` computes √(ṽ_t + ε) instead.
 */
export class RMSprop extends Optimizer<RMSpropGroup> {
  constructor(params: ParamsInput<RMSpropOptions>, options: RMSpropOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override flagsOf(g: RMSpropGroup): number {
    return (
      this.weightDecayFlag(g) |
      (g.centered ? K.flag.centered : 0) |
      (g.momentum > 0 ? K.flag.momentum : 0) |
      (g.epsInsideSqrt ? K.flag.epsInside : 0)
    );
  }

}
