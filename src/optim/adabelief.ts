import { defineKernel } from '../backend/kernel.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamState, ParamsInput } from './optimizer.js';
import { PowerSequence } from './powi.js';

/**
 * The AdaBelief kernel (native/kernels/adabelief.h). State: mu, nu. Every operation rounds on
 * its own, as optax runs them.
 *
 * ```
 * m = (1−b1)·g + b1·m;  e = g − m;  s = ((1−b2)·e² + b2·s) + epsRoot
 * nesterov: m̂ = b1·(m / bc1Next) + (1−b1)·(g / bc1);  else m̂ = m / bc1
 * p = p + negLr·(m̂ / (√(s / bc2) + ε))
 * ```
 */
export const ADABELIEF_KERNEL = defineKernel({
  name: 'adabelief',
  scalars: ['oneMinusB1', 'b1', 'oneMinusB2', 'b2', 'epsRoot', 'bc1', 'bc1Next', 'bc2', 'eps', 'negLr'],
  flags: ['nesterov'],
  state: [{ name: 'mu' }, { name: 'nu' }],
  reference(p, g, [m, v], s, on) {
    const { oneMinusB1, b1, oneMinusB2, b2, epsRoot, bc1, bc1Next, bc2, eps, negLr } = s;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const mi = oneMinusB1 * gi + b1 * m[i];
      const e = gi - mi;
      const vi = oneMinusB2 * (e * e) + b2 * v[i] + epsRoot;
      m[i] = mi;
      v[i] = vi;
      const mh = on.nesterov ? b1 * (mi / bc1Next) + oneMinusB1 * (gi / bc1) : mi / bc1;
      p[i] = p[i] + negLr * (mh / (Math.sqrt(vi / bc2) + eps));
    }
  },
});

const K = ADABELIEF_KERNEL;

export interface AdaBeliefOptions {
  lr?: number;
  b1?: number;
  b2?: number;
  eps?: number;
  epsRoot?: number;
  nesterov?: boolean;
}

export interface AdaBeliefGroup extends GroupBase, Required<AdaBeliefOptions> {}

const SPEC: OptimizerSpec<AdaBeliefGroup> = {
  name: 'AdaBelief',
  kernel: K,
  defaults: { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-16, epsRoot: 1e-16, nesterov: false },
  counters: ['step'],
  unit: ['b1', 'b2'],
};

/**
 * AdaBelief (Zhuang et al. 2020), as optax.adabelief (optax 0.2.8): Adam with the second moment
 * of the gradient's deviation from its average (the "belief") in place of the raw second moment.
 *
 * ```
 * m_t = (1 − b1) g_t + b1 m_{t-1}
 * s_t = (1 − b2)(g_t − m_t)² + b2 s_{t-1} + ε_root     (ε_root is kept in s: it accumulates)
 * m̂_t = m_t / (1 − b1^t)        nesterov: m̂_t = b1 m_t/(1 − b1^(t+1)) + (1 − b1) g_t/(1 − b1^t)
 * θ_t = θ_{t-1} − γ m̂_t / (√(s_t / (1 − b2^t)) + ε)
 * ```
 *
 * Options (default): `lr` γ 1e-3 (optax has no default), `b1` 0.9, `b2` 0.999, `eps` 1e-16,
 * `epsRoot` 1e-16, `nesterov` false. State: `step`, `mu`, `nu` (optax's leaf names).
 */
export class AdaBelief extends Optimizer<AdaBeliefGroup> {
  private readonly b1Pow = new PowerSequence();
  private readonly b1PowNext = new PowerSequence();
  private readonly b2Pow = new PowerSequence();

  constructor(params: ParamsInput<AdaBeliefOptions>, options: AdaBeliefOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override flagsOf(g: AdaBeliefGroup): number {
    return g.nesterov ? K.flag.nesterov : 0;
  }

  protected override fillScalars(g: AdaBeliefGroup, _flags: number, state: ParamState, out: Float64Array): number {
    const step = (state.step as number) + 1;
    out[K.slot.bc1] = 1 - this.b1Pow.pow(g.b1, step);
    out[K.slot.bc1Next] = 1 - this.b1PowNext.pow(g.b1, step + 1);
    out[K.slot.bc2] = 1 - this.b2Pow.pow(g.b2, step);
    return 0;
  }
}
