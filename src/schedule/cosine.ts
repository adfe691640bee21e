import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { integer, nonNegative, readOptions } from './options.js';

export interface CosineAnnealingLROptions extends SchedulerOptions {
  /** Half-period in epochs (required): the lr reaches etaMin at t = tMax. */
  tMax: number;
  /** The lowest lr (default 0). */
  etaMin?: number;
}

/**
 * Cosine annealing without restarts, as torch.optim.lr_scheduler.CosineAnnealingLR (torch 1.13).
 *
 * Closed form (SGDR, Loshchilov & Hutter, without the restarts):
 * ```
 * η_t = η_min + (η₀ − η_min) · (1 + cos(π t / T_max)) / 2
 * ```
 * The step taken is torch's recursive (chainable) form, which gives the same values up to
 * rounding when nothing else changes the lr, and follows outside changes otherwise:
 * ```
 * η_t = η_min + (η_{t-1} − η_min) · (1 + cos(π t / T_max)) / (1 + cos(π (t−1) / T_max))
 * η_t = η_{t-1} + (η₀ − η_min) · (1 − cos(π / T_max)) / 2     when (t − 1 − T_max) mod 2T_max = 0
 * ```
 * (the second line at the bottom of each period, where the ratio would be 0/0 or undefined).
 * After T_max the lr climbs back along the same cosine; it does not stay at η_min.
 */
export class CosineAnnealingLR extends FormulaScheduler {
  declare readonly tMax: number;
  declare readonly etaMin: number;

  constructor(optimizer: SchedulableOptimizer, options: CosineAnnealingLROptions) {
    super('CosineAnnealingLR', optimizer, readOptions('CosineAnnealingLR', options, { tMax: integer(1), etaMin: nonNegative(0) }));
    this.start();
  }

  protected lrsAt(epoch: number, current: readonly number[]): number[] {
    const { tMax, etaMin } = this;
    if (epoch === 0) return [...current];
    if ((epoch - 1 - tMax) % (2 * tMax) === 0) {
      return current.map((lr, i) => lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2);
    }
    const ratio = (1 + Math.cos((Math.PI * epoch) / tMax)) / (1 + Math.cos((Math.PI * (epoch - 1)) / tMax));
    return current.map((lr) => ratio * (lr - etaMin) + etaMin);
  }

  protected closedForm(epoch: number): number[] {
    const c = 1 + Math.cos((Math.PI * epoch) / this.tMax);
    return this.baseLrs.map((lr) => this.etaMin + ((lr - this.etaMin) * c) / 2);
  }
}
