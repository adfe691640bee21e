import { defineKernel, stateLayout } from '../backend/kernel.js';
import type { Backend, PreparedList } from '../backend/types.js';
import type { Param } from '../param.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamState, ParamsInput } from './optimizer.js';
import { fillOptionScalars, optionScalars } from './options.js';
import { PowerSequence } from './powi.js';
import { TrustRatioOptimizer, norm2 } from './trust-ratio.js';

/**
 * The LAMB kernel (native/kernels/lamb.h). State: mu, nu, then `update`, a work buffer (not
 * saved) that receives the direction u. Every operation rounds on its own, as optax runs them.
 *
 * ```
 * m = (1−b1)·g + b1·m;  v = (1−b2)·g² + b2·v
 * u = (m / bc1) / (√(v / bc2 + epsRoot) + ε);  wd: u = u + wd·p;  update = u
 * p = p + negLr·(u·ratio)                      (not under `direction`)
 * apply: only p = p + negLr·(update·ratio)
 * ```
 */
export const LAMB_KERNEL = defineKernel({
  name: 'lamb',
  scalars: ['oneMinusB1', 'b1', 'oneMinusB2', 'b2', 'bc1', 'bc2', 'epsRoot', 'eps', 'wd', 'ratio', 'negLr'],
  flags: ['wd', 'direction', 'apply'],
  state: [{ name: 'mu' }, { name: 'nu' }, { name: 'update' }],
  reference(p, g, [m, v, u], s, on) {
    const { oneMinusB1, b1, oneMinusB2, b2, bc1, bc2, epsRoot, eps, wd, ratio, negLr } = s;
    if (on.apply) {
      for (let i = 0; i < p.length; i++) p[i] = p[i] + negLr * (u[i] * ratio);
      return;
    }
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      m[i] = oneMinusB1 * gi + b1 * m[i];
      v[i] = oneMinusB2 * (gi * gi) + b2 * v[i];
      let ui = m[i] / bc1 / (Math.sqrt(v[i] / bc2 + epsRoot) + eps);
      if (on.wd) ui = ui + wd * p[i];
      u[i] = ui;
      if (!on.direction) p[i] = p[i] + negLr * (u[i] * ratio);
    }
  },
});

const K = LAMB_KERNEL;

export interface LAMBOptions {
  lr?: number;
  b1?: number;
  b2?: number;
  eps?: number;
  /** Added inside the square root (optax's eps_root). */
  epsRoot?: number;
  weightDecay?: number;
}

export interface LAMBGroup extends GroupBase, Required<LAMBOptions> {}

const SPEC: OptimizerSpec<LAMBGroup> = {
  name: 'LAMB',
  kernel: stateLayout('lamb', ['mu', 'nu']),
  defaults: { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-6, epsRoot: 0, weightDecay: 0 },
  counters: ['step'],
  unit: ['b1', 'b2'],
};

/**
 * LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning"), as optax.lamb (optax
 * 0.2.8): Adam's direction plus weight decay, rescaled per param by the trust ratio ‖θ‖/‖u‖.
 *
 * ```
 * m_t = (1 − b1) g_t + b1 m_{t-1}
 * v_t = (1 − b2) g_t² + b2 v_{t-1}
 * u_t = (m_t / (1 − b1^t)) / (√(v_t / (1 − b2^t) + ε_root) + ε) + λ θ_{t-1}
 * r_t = ‖θ_{t-1}‖ / ‖u_t‖        (1 when either norm is 0; per param: optax's per leaf)
 * θ_t = θ_{t-1} − γ (u_t r_t)
 * ```
 *
 * Options (default): `lr` γ 1e-3 (optax has no default), `b1` 0.9, `b2` 0.999, `eps` ε 1e-6,
 * `epsRoot` 0, `weightDecay` λ 0. State: `step` (optax's `count`), `mu`, `nu`. optax's `mask`
 * (which leaves get weight decay) is a group with `weightDecay: 0` here.
 *
 * The step, per param: ‖θ‖ in TypeScript; if it is 0 (r = 1) one kernel call does the whole
 * update; else one call computes m, v and u into a work buffer kept per param (not saved), ‖u‖
 * is taken in TypeScript, and a second call applies −γ(u·r). O(n) passes, nothing allocated after
 * the first step (src/optim/trust-ratio.ts). The arithmetic is optax's, operation by operation
 * and unfused; the norms are summed in double in their own order (optax: XLA's sum, in the
 * param dtype). With `nonFinite: 'ignore'`, a NaN gradient makes ‖u‖ NaN, so the whole param
 * becomes NaN, as in optax. bfloat16 state is refused.
 */
export class LAMB extends TrustRatioOptimizer<LAMBGroup> {
  private readonly scalars = new Float64Array(K.nScalars);
  private readonly fromOptions = optionScalars(K);
  private readonly b1Pow = new PowerSequence();
  private readonly b2Pow = new PowerSequence();

  constructor(params: ParamsInput<LAMBOptions>, options: LAMBOptions & OptimizerOptions = {}) {
    super(params, options, SPEC, K);
  }

  protected override stepParam(g: LAMBGroup, p: Param, st: ParamState, list: PreparedList, backend: Backend): void {
    const s = this.scalars;
    const t = (st.step as number) + 1;
    fillOptionScalars(this.fromOptions, g, s);
    s[K.slot.bc1] = 1 - this.b1Pow.pow(g.b1, t);
    s[K.slot.bc2] = 1 - this.b2Pow.pow(g.b2, t);
    s[K.slot.ratio] = 1;
    const wd = g.weightDecay !== 0 ? K.flag.wd : 0;
    const pn = norm2(p.data);
    if (pn === 0) {
      backend.step(K, list, s, wd);
    } else {
      backend.step(K, list, s, wd | K.flag.direction);
      const un = norm2(this.scratchOf(p, 0));
      s[K.slot.ratio] = un === 0 ? 1 : pn / un;
      backend.step(K, list, s, K.flag.apply);
    }
    st.step = t;
  }
}
