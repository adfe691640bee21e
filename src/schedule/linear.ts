import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { checkInRange, checkInteger, checkOptions } from '../validate.js';

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
  readonly startFactor: number;
  readonly endFactor: number;
  readonly totalIters: number;

  constructor(optimizer: SchedulableOptimizer, options: LinearLROptions = {}) {
    const at = 'LinearLR: options.';
    const o = checkOptions<LinearLROptions>(options, ['startFactor', 'endFactor', 'totalIters', 'lastEpoch'], 'LinearLR(optimizer, options)');
    const startFactor = checkInRange(o.startFactor ?? 1 / 3, 'startFactor', at, 0, 1, { minOpen: true });
    const endFactor = checkInRange(o.endFactor ?? 1, 'endFactor', at, 0, 1);
    const totalIters = checkInteger(o.totalIters ?? 5, 'totalIters', at, 1);
    super('LinearLR', optimizer, o.lastEpoch);
    this.startFactor = startFactor;
    this.endFactor = endFactor;
    this.totalIters = totalIters;
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
