import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { checkNonNegative, checkOptions, checkRequired } from '../validate.js';

export interface ExponentialLROptions extends SchedulerOptions {
  /** Factor per epoch (required). */
  gamma: number;
}

/**
 * Decays every group's lr by γ each epoch, as torch.optim.lr_scheduler.ExponentialLR.
 *
 * ```
 * η_t = η₀ · γ^t                 (closed form)
 * η_t = γ · η_{t-1}  for t > 0   (the step taken)
 * ```
 */
export class ExponentialLR extends FormulaScheduler {
  readonly gamma: number;

  constructor(optimizer: SchedulableOptimizer, options: ExponentialLROptions) {
    const at = 'ExponentialLR: options.';
    const o = checkOptions<ExponentialLROptions>(options, ['gamma', 'lastEpoch'], 'ExponentialLR(optimizer, options)');
    const gamma = checkNonNegative(checkRequired(o.gamma, 'gamma', at), 'gamma', at);
    super('ExponentialLR', optimizer, o.lastEpoch);
    this.gamma = gamma;
    this.start();
  }

  protected lrsAt(epoch: number, current: readonly number[]): number[] {
    if (epoch === 0) return [...current];
    return current.map((lr) => lr * this.gamma);
  }

  protected closedForm(epoch: number): number[] {
    return this.baseLrs.map((lr) => lr * this.gamma ** epoch);
  }
}
