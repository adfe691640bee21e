import { RMSPROP as K } from '../backend/types.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerSpec, ParamState, OptimizerOptions, ParamsInput } from './optimizer.js';
import { checkBoolean, checkNonNegative } from './validate.js';
import type { Where } from './validate.js';

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

const SPEC: OptimizerSpec<RMSpropGroup> = {
  name: 'RMSprop',
  kernel: 'rmspropStep',
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
  requiredBuffers: ['squareAvg'],
  buffers: ['squareAvg', 'gradAvg', 'momentumBuffer'],
};

// Indexed by flags & (CENTERED | MOMENTUM): the kernel's buffer order for each combination.
const BUFFERS: Readonly<Record<number, readonly string[]>> = {
  0: ['squareAvg'],
  [K.F_CENTERED]: ['squareAvg', 'gradAvg'],
  [K.F_MOMENTUM]: ['squareAvg', 'momentumBuffer'],
  [K.F_CENTERED | K.F_MOMENTUM]: ['squareAvg', 'gradAvg', 'momentumBuffer'],
};

/**
 * RMSprop, as torch.optim.RMSprop (torch 1.13).
 *
 * ```
 * g_t = ∇f(θ_{t-1})                          (−∇f when maximize)
 * g_t = g_t + λ θ_{t-1}                      if weightDecay λ ≠ 0
 * v_t = α v_{t-1} + (1 − α) g_t²
 * if centered:  ḡ_t = α ḡ_{t-1} + (1 − α) g_t,   ṽ_t = v_t − ḡ_t²   else  ṽ_t = v_t
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
    super(params, options, SPEC, K.N_SCALARS);
  }

  protected override checkHyper(g: RMSpropGroup, where: Where): void {
    checkNonNegative(g.lr, 'lr', 'Invalid learning rate', where);
    checkNonNegative(g.eps, 'eps', 'Invalid epsilon value', where);
    checkNonNegative(g.momentum, 'momentum', 'Invalid momentum value', where);
    checkNonNegative(g.weightDecay, 'weightDecay', 'Invalid weight_decay value', where);
    checkNonNegative(g.alpha, 'alpha', 'Invalid alpha value', where);
    checkBoolean(g.centered, 'centered', where);
    checkBoolean(g.maximize, 'maximize', where);
    checkBoolean(g.epsInsideSqrt, 'epsInsideSqrt', where);
  }

  protected override flagsOf(g: RMSpropGroup): number {
    return (
      (g.weightDecay !== 0 ? K.F_WD : 0) |
      (g.centered ? K.F_CENTERED : 0) |
      (g.momentum > 0 ? K.F_MOMENTUM : 0) |
      (g.epsInsideSqrt ? K.F_EPS_INSIDE : 0)
    );
  }

  protected override bufferNames(flags: number): readonly string[] {
    return BUFFERS[flags & (K.F_CENTERED | K.F_MOMENTUM)];
  }

  protected override fillScalars(g: RMSpropGroup, _flags: number, _state: ParamState, out: Float64Array): number {
    out[K.S_WD] = g.weightDecay;
    out[K.S_ALPHA] = g.alpha;
    out[K.S_ONE_MINUS_ALPHA] = 1 - g.alpha;
    out[K.S_EPS] = g.eps;
    out[K.S_MOMENTUM] = g.momentum;
    out[K.S_NEG_LR] = -g.lr;
    out[K.S_SIGN] = g.maximize ? -1 : 1;
    return 0;
  }
}
