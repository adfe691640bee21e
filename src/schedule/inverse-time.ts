import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { flag, inRange, nonNegative, readOptions } from './options.js';

export interface InverseTimeLROptions extends SchedulerOptions {
  /** k in η₀ / (1 + k t / decaySteps) (required). */
  decayRate: number;
  /** Epochs per unit of t in the formula (default 1). */
  decaySteps?: number;
  /** Decay in whole units of decaySteps (default false). */
  staircase?: boolean;
}

/**
 * Inverse-time decay, the lecture-book form η_t = η₀ / (1 + k t): the step-size rule of the
 * Robbins–Monro conditions (Σ η_t = ∞, Σ η_t² < ∞) for SGD. Not in torch; named as Keras's
 * InverseTimeDecay, which computes it the same way:
 *
 * ```
 * p = t / decaySteps      (⌊t / decaySteps⌋ when staircase)
 * η_t = η₀ / (1 + decayRate · p)
 * ```
 *
 * Not chainable: each step computes from the base lrs.
 */
export class InverseTimeLR extends FormulaScheduler {
  declare readonly decayRate: number;
  declare readonly decaySteps: number;
  declare readonly staircase: boolean;

  constructor(optimizer: SchedulableOptimizer, options: InverseTimeLROptions) {
    super('InverseTimeLR', optimizer, readOptions('InverseTimeLR', options, { decayRate: nonNegative(), decaySteps: inRange(0, Infinity, { minOpen: true }, 1), staircase: flag(false) }));
    this.start();
  }

  protected lrsAt(epoch: number, _current: readonly number[]): number[] {
    return this.closedForm(epoch);
  }

  protected closedForm(epoch: number): number[] {
    const q = epoch / this.decaySteps;
    const p = this.staircase ? Math.floor(q) : q;
    const denominator = 1 + this.decayRate * p;
    return this.baseLrs.map((lr) => lr / denominator);
  }
}
