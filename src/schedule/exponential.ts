import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { nonNegative, readOptions } from './options.js';

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
  declare readonly gamma: number;

  constructor(optimizer: SchedulableOptimizer, options: ExponentialLROptions) {
    super('ExponentialLR', optimizer, readOptions('ExponentialLR', options, { gamma: nonNegative() }));
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
