import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { inRange, integer, readOptions } from './options.js';

export interface LinearLROptions extends SchedulerOptions {
  /** Factor at epoch 0, in (0, 1] (default 1/3). */
  startFactor?: number;
  /** Factor from epoch totalIters on, in [0, 1] (default 1). */
  endFactor?: number;
  /** Epochs over which the factor moves (default 5). */
  totalIters?: number;
}

/**
 * Scales every group's lr by a factor that moves linearly from startFactor to endFactor over
 * totalIters epochs, then stays: a warm-up (or a linear decay). As torch.optim.lr_scheduler.LinearLR.
 *
 * ```
 * η_t = η₀ · (s + (e − s) · min(t, T) / T)                      (closed form; s, e, T = start, end, totalIters)
 * η_0 = s · η,   η_t = η_{t-1} · (1 + (e − s) / (T s + (t − 1)(e − s)))  for 1 <= t <= T   (the step taken)
 * ```
 */
export class LinearLR extends FormulaScheduler {
  declare readonly startFactor: number;
  declare readonly endFactor: number;
  declare readonly totalIters: number;

  constructor(optimizer: SchedulableOptimizer, options: LinearLROptions = {}) {
    super('LinearLR', optimizer, readOptions('LinearLR', options, { startFactor: inRange(0, 1, { minOpen: true }, 1 / 3), endFactor: inRange(0, 1, {}, 1), totalIters: integer(1, 5) }));
    this.start();
  }

  protected lrsAt(epoch: number, current: readonly number[]): number[] {
    const { startFactor: s, endFactor: e, totalIters: T } = this;
    if (epoch === 0) return current.map((lr) => lr * s);
    if (epoch > T) return [...current];
    const factor = 1 + (e - s) / (T * s + (epoch - 1) * (e - s));
    return current.map((lr) => lr * factor);
  }

  protected closedForm(epoch: number): number[] {
    const { startFactor: s, endFactor: e, totalIters: T } = this;
    const factor = s + ((e - s) * Math.min(T, epoch)) / T;
    return this.baseLrs.map((lr) => lr * factor);
  }
}
