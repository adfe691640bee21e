import { defineKernel } from '../backend/kernel.js';
import type { StateArray } from '../backend/types.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamState, ParamsInput } from './optimizer.js';
import { PowerSequence } from './powi.js';

/**
 * The Yogi kernel (native/kernels/yogi.h). State: mu, nu. Every operation rounds on its own, as
 * optax runs them.
 *
 * ```
 * m = (1−b1)·g + b1·m;  v = v − ((1−b2)·sign(v − g²))·g²
 * p = p + negLr·((m / bc1) / (√(v / bc2 + epsRoot) + ε))
 * ```
 */
export const YOGI_KERNEL = defineKernel({
  name: 'yogi',
  scalars: ['oneMinusB1', 'b1', 'oneMinusB2', 'epsRoot', 'bc1', 'bc2', 'eps', 'negLr'],
  flags: [],
  state: [{ name: 'mu' }, { name: 'nu' }],
  reference(p, g, [m, v], s) {
    const { oneMinusB1, b1, oneMinusB2, epsRoot, bc1, bc2, eps, negLr } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const mi = oneMinusB1 * gi + b1 * m[i];
      const g2 = gi * gi;
      const d = v[i] - g2;
      const sgn = d > 0 ? 1 : d < 0 ? -1 : d; // jnp.sign: ±0 and NaN stay
      const vi = v[i] - oneMinusB2 * sgn * g2;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] + negLr * (mi / bc1 / (Math.sqrt(vi / bc2 + epsRoot) + eps));
    }
  },
});

const K = YOGI_KERNEL;

export interface YogiOptions {
  lr?: number;
  b1?: number;
  b2?: number;
  eps?: number;
  /** Added inside the square root (optax's scale_by_yogi; 0 in optax.yogi). */
  epsRoot?: number;
  /** Where both moments start (optax's scale_by_yogi; 1e-6 in optax.yogi). */
  initialAccumulatorValue?: number;
}

export interface YogiGroup extends GroupBase, Required<YogiOptions> {}

const SPEC: OptimizerSpec<YogiGroup> = {
  name: 'Yogi',
  kernel: K,
  defaults: { lr: 1e-2, b1: 0.9, b2: 0.999, eps: 1e-3, epsRoot: 0, initialAccumulatorValue: 1e-6 },
  counters: ['step'],
  unit: ['b1', 'b2'],
};

/**
 * Yogi (Zaheer et al. 2018), as optax.yogi (optax 0.2.8): Adam whose second moment moves toward
 * g² by a step of fixed size (1 − b2)·g² in the direction of the difference, so it cannot grow
 * as fast as Adam's when gradients are sparse.
 *
 * ```
 * m_t = (1 − b1) g_t + b1 m_{t-1}                         (m_0 = v_0 = initialAccumulatorValue)
 * v_t = v_{t-1} − (1 − b2) sign(v_{t-1} − g_t²) g_t²
 * θ_t = θ_{t-1} − γ (m_t / (1 − b1^t)) / (√(v_t / (1 − b2^t) + ε_root) + ε)
 * ```
 *
 * Options (default): `lr` γ 1e-2 (optax has no default; the paper's), `b1` 0.9, `b2` 0.999, `eps`
 * 1e-3, `epsRoot` 0, `initialAccumulatorValue` 1e-6. State: `step`, `mu`, `nu` (optax's names).
 */
export class Yogi extends Optimizer<YogiGroup> {
  private readonly b1Pow = new PowerSequence();
  private readonly b2Pow = new PowerSequence();

  constructor(params: ParamsInput<YogiOptions>, options: YogiOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override initBuffer(_name: string, view: StateArray, g: YogiGroup): StateArray {
    return this.fillState(view, g.initialAccumulatorValue);
  }

  protected override fillScalars(g: YogiGroup, _flags: number, state: ParamState, out: Float64Array): number {
    const step = (state.step as number) + 1;
    out[K.slot.bc1] = 1 - this.b1Pow.pow(g.b1, step);
    out[K.slot.bc2] = 1 - this.b2Pow.pow(g.b2, step);
    return 0;
  }
}
