import { Adam, ADAM_KERNEL, ADAM_SPEC } from './adam.js';
import type { AdamOptions, AdamSpec } from './adam.js';
import type { OptimizerOptions, ParamsInput } from './optimizer.js';

export type AdamWOptions = AdamOptions;

const ADAMW_SPEC: AdamSpec = {
  name: 'AdamW',
  kernel: ADAM_KERNEL,
  defaults: { ...ADAM_SPEC.defaults, weightDecay: 1e-2 },
  counters: ['step'],
  decoupled: true,
};

/**
 * AdamW, as torch.optim.AdamW (torch 2.13): Adam with decoupled weight decay.
 *
 * ```
 * θ_{t-1} ← θ_{t-1} (1 − γλ)                 (weightDecay λ, applied before the update)
 * g_t = ∇f(θ_{t-1})                          (−∇f when maximize)
 * m_t = m_{t-1} + (1 − β1)(g_t − m_{t-1})   (= β1 m_{t-1} + (1 − β1) g_t, as torch 2.x's lerp)
 * v_t = β2 v_{t-1} + (1 − β2) g_t²
 * if amsgrad:  v_t ← v̂_t = max(v̂_{t-1}, v_t)
 * θ_t = θ_{t-1} − γ/(1 − β1^t) · m_t / (√v_t / √(1 − β2^t) + ε)
 * ```
 *
 * Options (default): as Adam, but `weightDecay` 1e-2. State as Adam.
 *
 * Against the lecture-book form (Loshchilov & Hutter): the paper decays by η_t λ with a schedule
 * multiplier η_t independent of the Adam step size; torch (and this) ties the decay to the
 * learning rate, (1 − γλ), so a schedule on lr also scales the decay.
 */
export class AdamW extends Adam {
  protected static override readonly spec: AdamSpec = ADAMW_SPEC;

  constructor(params: ParamsInput<AdamWOptions>, options: AdamWOptions & OptimizerOptions = {}) {
    super(params, options);
  }
}
