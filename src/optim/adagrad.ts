import { defineKernel } from '../backend/kernel.js';
import type { StateArray } from '../backend/types.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerSpec, ParamState, OptimizerOptions, ParamsInput } from './optimizer.js';
import { decayedGrad } from './prelude.js';

export interface AdagradOptions {
  lr?: number;
  lrDecay?: number;
  weightDecay?: number;
  initialAccumulatorValue?: number;
  eps?: number;
  maximize?: boolean;
}

export interface AdagradGroup extends GroupBase, Required<AdagradOptions> {}

/**
 * The Adagrad kernel (native/kernels/adagrad.h). State: sum.
 *
 * ```
 * g = sign·g;  wd: g = fma(wd, p, g);  sum = fma(g, g, sum)
 * p = p + (negClr·g) / (√sum + ε)
 * ```
 */
export const ADAGRAD_KERNEL = defineKernel({
  name: 'adagrad',
  scalars: ['wd', 'negClr', 'eps', 'sign'],
  flags: ['wd'],
  state: [{ name: 'sum' }],
  reference(p, g, [sum], s, on) {
    const { wd, sign, negClr, eps } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = decayedGrad(p, g, i, sign, wd, 1, on.wd, false);
      sum[i] = gi * gi + sum[i];
      p[i] = p[i] + (negClr * gi) / (Math.sqrt(sum[i]) + eps);
    }
  },
});

const K = ADAGRAD_KERNEL;

const SPEC: OptimizerSpec<AdagradGroup> = {
  name: 'Adagrad',
  kernel: K,
  defaults: { lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10, maximize: false },
  counters: ['step'],
};

/**
 * Adagrad, as torch.optim.Adagrad (torch 2.13; its arithmetic is unchanged since 1.13).
 *
 * ```
 * g_t = ∇f(θ_{t-1})                      (−∇f when maximize)
 * g_t = g_t + λ θ_{t-1}                  if weightDecay λ ≠ 0
 * γ̃_t = γ / (1 + (t − 1) η)             (η = lrDecay)
 * s_t = s_{t-1} + g_t²                   (s_0 = initialAccumulatorValue)
 * θ_t = θ_{t-1} − γ̃_t g_t / (√s_t + ε)
 * ```
 *
 * Options (default): `lr` γ 1e-2, `lrDecay` 0, `weightDecay` 0, `initialAccumulatorValue` 0,
 * `eps` 1e-10, `maximize` false. State: `step`, `sum`.
 *
 * Against the lecture-book form (Duchi et al.): ε is added outside the square root, and the
 * learning-rate decay η is torch's addition (0 gives the original).
 */
export class Adagrad extends Optimizer<AdagradGroup> {
  constructor(params: ParamsInput<AdagradOptions>, options: AdagradOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override initBuffer(_name: string, view: StateArray, g: AdagradGroup): StateArray {
    return this.fillState(view, g.initialAccumulatorValue);
  }

  protected override fillScalars(g: AdagradGroup, _flags: number, state: ParamState, out: Float64Array): number {
    const step = (state.step as number) + 1;
    const clr = g.lr / (1 + (step - 1) * g.lrDecay);
    out[K.slot.negClr] = -clr;
    return 0;
  }
}
