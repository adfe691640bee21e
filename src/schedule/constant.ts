import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { inRange, integer, readOptions } from './options.js';

export interface ConstantLROptions extends SchedulerOptions {
  /** The factor until totalIters, in (0, 1] (default 1/3). */
  factor?: number;
  /** The epoch at which the lr returns to the base lr (default 5). */
  totalIters?: number;
}

/**
 * Scales every group's lr by a constant factor until epoch totalIters, then restores it, as
 * torch.optim.lr_scheduler.ConstantLR (torch 2.13).
 *
 * ```
 * η_t = η₀ · f  for t < T,   η₀  for t >= T                     (closed form; f, T = factor, totalIters)
 * η_0 = f · η,   η_T = η_{T-1} · (1/f),   else η_t = η_{t-1}     (the step taken: chainable)
 * ```
 *
 * torch accepts factor 0 and then divides by it at totalIters; here factor must be > 0.
 */
export class ConstantLR extends FormulaScheduler {
  declare readonly factor: number;
  declare readonly totalIters: number;

  constructor(optimizer: SchedulableOptimizer, options: ConstantLROptions = {}) {
    super('ConstantLR', optimizer, readOptions('ConstantLR', options, { factor: inRange(0, 1, { minOpen: true }, 1 / 3), totalIters: integer(1, 5) }));
    this.start();
  }

  protected lrsAt(epoch: number, current: readonly number[]): number[] {
    if (epoch === 0) return current.map((lr) => lr * this.factor);
    if (epoch !== this.totalIters) return [...current];
    const restore = 1 / this.factor;
    return current.map((lr) => lr * restore);
  }

  protected closedForm(epoch: number): number[] {
    const factor = this.factor + (epoch >= this.totalIters ? 1 - this.factor : 0);
    return this.baseLrs.map((lr) => lr * factor);
  }
}
