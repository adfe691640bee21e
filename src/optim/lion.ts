import { defineKernel } from '../backend/kernel.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamsInput } from './optimizer.js';

/**
 * The Lion kernel (native/kernels/lion.h). State: mu. Every operation rounds on its own, as
 * optax runs them.
 *
 * ```
 * c = (1−b1)·g + b1·m;  u = sign(c)  (sign(0) = 0)
 * m = (1−b2)·g + b2·m
 * wd: u = u + wd·p;  p = p + negLr·u
 * ```
 */
export const LION_KERNEL = defineKernel({
  name: 'lion',
  scalars: ['oneMinusB1', 'b1', 'oneMinusB2', 'b2', 'wd', 'negLr'],
  flags: ['wd'],
  state: [{ name: 'mu' }],
  reference(p, g, [m], s, on) {
    const { oneMinusB1, b1, oneMinusB2, b2, wd, negLr } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const mi = m[i];
      const c = oneMinusB1 * gi + b1 * mi;
      let u = c > 0 ? 1 : c < 0 ? -1 : c; // jnp.sign: ±0 and NaN stay
      m[i] = oneMinusB2 * gi + b2 * mi;
      if (on.wd) u = u + wd * p[i];
      p[i] = p[i] + negLr * u;
    }
  },
});

export interface LionOptions {
  lr?: number;
  b1?: number;
  b2?: number;
  weightDecay?: number;
}

export interface LionGroup extends GroupBase, Required<LionOptions> {}

const SPEC: OptimizerSpec<LionGroup> = {
  name: 'Lion',
  kernel: LION_KERNEL,
  defaults: { lr: 1e-4, b1: 0.9, b2: 0.99, weightDecay: 1e-3 },
  counters: ['step'],
  unit: ['b1', 'b2'],
};

/**
 * Lion (EvoLved Sign Momentum, Chen et al. 2023), as optax.lion (optax 0.2.8).
 *
 * ```
 * c_t = (1 − b1) g_t + b1 m_{t-1}
 * m_t = (1 − b2) g_t + b2 m_{t-1}
 * θ_t = θ_{t-1} − γ (sign(c_t) + λ θ_{t-1})
 * ```
 *
 * Options (default): `lr` γ 1e-4 (optax has no default; the paper suggests 3–10× below AdamW's),
 * `b1` 0.9, `b2` 0.99, `weightDecay` λ 1e-3 (optax's default; decoupled: it is added to the sign
 * and scaled by γ). State: `step`, `mu`.
 *
 * The update has the same size in every coordinate (±γ before weight decay), so the step is
 * insensitive to the gradient's scale; `mu` interpolates with b2, the direction with b1.
 */
export class Lion extends Optimizer<LionGroup> {
  constructor(params: ParamsInput<LionOptions>, options: LionOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }
}
