import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { integer, nonNegative, readOptions } from './options.js';

export interface PolynomialLROptions extends SchedulerOptions {
  /** Epochs until the lr reaches 0 (default 5). */
  totalIters?: number;
  /** The power p (default 1: linear decay). */
  power?: number;
}

/**
 * Decays every group's lr to 0 over totalIters epochs along a polynomial, as
 * torch.optim.lr_scheduler.PolynomialLR.
 *
 * ```
 * η_t = η₀ · (1 − min(t, T) / T)^p                                        (closed form)
 * η_t = η_{t-1} · ((1 − t/T) / (1 − (t−1)/T))^p  for 1 <= t <= T, else η_{t-1}   (the step taken)
 * ```
 */
export class PolynomialLR extends FormulaScheduler {
  declare readonly totalIters: number;
  declare readonly power: number;

  constructor(optimizer: SchedulableOptimizer, options: PolynomialLROptions = {}) {
    super('PolynomialLR', optimizer, readOptions('PolynomialLR', options, { totalIters: integer(1, 5), power: nonNegative(1) }));
    this.start();
  }

  protected lrsAt(epoch: number, current: readonly number[]): number[] {
    const T = this.totalIters;
    if (epoch === 0 || epoch > T) return [...current];
    const factor = ((1 - epoch / T) / (1 - (epoch - 1) / T)) ** this.power;
    return current.map((lr) => lr * factor);
  }

  protected closedForm(epoch: number): number[] {
    const T = this.totalIters;
    const factor = (1 - Math.min(T, epoch) / T) ** this.power;
    return this.baseLrs.map((lr) => lr * factor);
  }
}
