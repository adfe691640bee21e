import { defineKernel } from '../backend/kernel.js';
import type { Backend, FloatArray, PreparedList } from '../backend/types.js';
import { OptimTypeError } from '../errors.js';
import type { Param } from '../param.js';
import { checkNonNegative, OPTIONS, path } from '../validate.js';
import type { Where } from '../validate.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamState, ParamsInput } from './optimizer.js';
import { fillOptionScalars, optionScalars } from './options.js';
import { TrustRatioOptimizer, norm2 } from './trust-ratio.js';

/**
 * The LARS kernel (native/kernels/lars.h). State: trace. Every operation rounds on its own, as
 * optax runs them.
 *
 * ```
 * u = g;  wd: u = g + wd·p
 * u = negLr·(u·ratio)
 * t = u + momentum·t;  p = p + (nesterov ? u + momentum·t : t)
 * ```
 */
export const LARS_KERNEL = defineKernel({
  name: 'lars',
  scalars: ['wd', 'ratio', 'negLr', 'momentum'],
  flags: ['wd', 'nesterov'],
  state: [{ name: 'trace' }],
  reference(p, g, [tr], s, on) {
    const { wd, ratio, negLr, momentum } = s;
    for (let i = 0; i < p.length; i++) {
      let u = g[i];
      if (on.wd) u = u + wd * p[i];
      u = negLr * (u * ratio);
      tr[i] = u + momentum * tr[i];
      p[i] = p[i] + (on.nesterov ? u + momentum * tr[i] : tr[i]);
    }
  },
});

const K = LARS_KERNEL;

export interface LARSOptions {
  lr?: number;
  weightDecay?: number;
  /** c in the trust ratio c·‖θ‖/(‖u‖ + ε). */
  trustCoefficient?: number;
  /** ε in the trust ratio's denominator. */
  eps?: number;
  /** Whether the group's params get the trust ratio (optax's trust_ratio_mask, per group here). */
  trustRatioMask?: boolean;
  momentum?: number;
  nesterov?: boolean;
}

export interface LARSGroup extends GroupBase, Required<LARSOptions> {}

const SPEC: OptimizerSpec<LARSGroup> = {
  name: 'LARS',
  kernel: K,
  defaults: {
    lr: undefined as unknown as number,
    weightDecay: 0,
    trustCoefficient: 0.001,
    eps: 0,
    trustRatioMask: true,
    momentum: 0.9,
    nesterov: false,
  },
  counters: [],
};

/**
 * LARS (You et al. 2017, "Large Batch Training of Convolutional Networks"), as optax.lars (optax
 * 0.2.8): SGD with momentum whose update is rescaled per param by a trust ratio; the learning
 * rate is applied before the momentum trace.
 *
 * ```
 * u_t = g_t + λ θ_{t-1}
 * r_t = c ‖θ_{t-1}‖ / (‖u_t‖ + ε)      (1 when either norm is 0, or when trustRatioMask is false)
 * u_t = −γ (u_t r_t)
 * b_t = u_t + μ b_{t-1}                 (b_0 = 0)
 * θ_t = θ_{t-1} + (u_t + μ b_t  if nesterov,  else  b_t)
 * ```
 *
 * Options (default): `lr` γ (required: optax has no default), `weightDecay` λ 0,
 * `trustCoefficient` c 0.001, `eps` ε 0, `trustRatioMask` true, `momentum` μ 0.9, `nesterov`
 * false. State: `trace` (optax's leaf name; no step count). optax's masks are per leaf; here
 * they are per group: `trustRatioMask: false` leaves a group's params unscaled, and a group with
 * `weightDecay: 0` is optax's `weight_decay_mask` false.
 *
 * The step, per param: ‖θ‖ and ‖g + λθ‖ in TypeScript (one pass over θ and g, in double;
 * g + λθ rounded in the param dtype as the kernel computes it), then one kernel call. O(n),
 * nothing allocated after the first step (src/optim/trust-ratio.ts). With `nonFinite: 'ignore'`
 * a NaN gradient makes the norm NaN, so the whole param becomes NaN, as in optax. bfloat16 state
 * is refused.
 */
export class LARS extends TrustRatioOptimizer<LARSGroup> {
  private readonly scalars = new Float64Array(K.nScalars);
  private readonly fromOptions = optionScalars(K);

  constructor(params: ParamsInput<LARSOptions>, options: LARSOptions & OptimizerOptions = {}) {
    super(params, options, SPEC, K);
  }

  protected override checkHyper(g: LARSGroup, where: Where): void {
    if (g.lr === undefined) {
      if (where !== OPTIONS) throw new OptimTypeError(`LARS: ${path(where, 'lr')} is required (optax.lars has no default learning rate)`);
    } else {
      checkNonNegative(g.lr, 'lr', 'Invalid learning rate', where);
    }
    super.checkHyper(g, where);
  }

  protected override stepParam(g: LARSGroup, p: Param, _st: ParamState, list: PreparedList, backend: Backend): void {
    const s = this.scalars;
    fillOptionScalars(this.fromOptions, g, s);
    let ratio = 1;
    if (g.trustRatioMask) {
      const pn = norm2(p.data);
      const un = g.weightDecay === 0 ? norm2(p.grad) : decayedNorm(p.data, p.grad, g.weightDecay);
      if (pn !== 0 && un !== 0) ratio = (g.trustCoefficient * pn) / (un + g.eps);
    }
    s[K.slot.ratio] = ratio;
    const flags = (g.weightDecay !== 0 ? K.flag.wd : 0) | (g.nesterov ? K.flag.nesterov : 0);
    backend.step(K, list, s, flags);
  }
}

/** ‖g + λp‖, each g + λp rounded in the arrays' dtype as the kernel forms it, summed in double. */
function decayedNorm(p: FloatArray, g: FloatArray, wd: number): number {
  let s = 0;
  if (p instanceof Float32Array) {
    const f = Math.fround;
    const w = f(wd);
    for (let i = 0; i < p.length; i++) {
      const u = f(g[i] + f(w * p[i]));
      s += u * u;
    }
  } else {
    for (let i = 0; i < p.length; i++) {
      const u = g[i] + wd * p[i];
      s += u * u;
    }
  }
  return Math.sqrt(s);
}
