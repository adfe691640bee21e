import { OptimTypeError } from '../errors.js';
import { checkInteger, checkRequired, describe } from '../validate.js';
import { integer, nonNegative, readOptions } from './options.js';
import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';

export interface StepLROptions extends SchedulerOptions {
  /** Epochs between decays (required). */
  stepSize: number;
  /** Factor per decay (default 0.1). */
  gamma?: number;
}

/**
 * Decays every group's lr by γ every `stepSize` epochs, as torch.optim.lr_scheduler.StepLR.
 *
 * ```
 * η_t = η₀ · γ^⌊t / stepSize⌋                          (closed form)
 * η_t = γ · η_{t-1}  if t > 0 and t mod stepSize = 0,  else η_{t-1}   (the step taken)
 * ```
 *
 * The step multiplies the group's current lr, so a change made to it from outside persists.
 */
export class StepLR extends FormulaScheduler {
  declare readonly stepSize: number;
  declare readonly gamma: number;

  constructor(optimizer: SchedulableOptimizer, options: StepLROptions) {
    super('StepLR', optimizer, readOptions('StepLR', options, { stepSize: integer(1), gamma: nonNegative(0.1) }));
    this.start();
  }

  protected lrsAt(epoch: number, current: readonly number[]): number[] {
    if (epoch === 0 || epoch % this.stepSize !== 0) return [...current];
    return current.map((lr) => lr * this.gamma);
  }

  protected closedForm(epoch: number): number[] {
    const k = Math.floor(epoch / this.stepSize);
    return this.baseLrs.map((lr) => lr * this.gamma ** k);
  }
}

/** MultiStepLR's milestones: a required array of epochs (integers >= 0), read sorted. */
function epochList(v: unknown, key: string, at: string): readonly number[] {
  const list = checkRequired(v, key, at);
  if (!Array.isArray(list)) {
    throw new OptimTypeError(`${at}${key} must be an array of integers, got ${describe(list)}`);
  }
  list.forEach((m: unknown, i) => checkInteger(m, `${key}[${i}]`, at, 0));
  return [...(list as number[])].sort((a, b) => a - b);
}

export interface MultiStepLROptions extends SchedulerOptions {
  /** Epochs at which to decay (required); a milestone listed twice decays twice. */
  milestones: readonly number[];
  /** Factor per milestone (default 0.1). */
  gamma?: number;
}

/**
 * Decays every group's lr by γ at each milestone epoch, as torch.optim.lr_scheduler.MultiStepLR.
 *
 * ```
 * η_t = η₀ · γ^(number of milestones m <= t)                       (closed form)
 * η_t = γ^c · η_{t-1}  where c = how often t is listed in milestones (the step taken)
 * ```
 */
export class MultiStepLR extends FormulaScheduler {
  declare readonly milestones: readonly number[];
  declare readonly gamma: number;
  private readonly counts = new Map<number, number>();

  constructor(optimizer: SchedulableOptimizer, options: MultiStepLROptions) {
    super('MultiStepLR', optimizer, readOptions('MultiStepLR', options, { milestones: epochList, gamma: nonNegative(0.1) }));
    for (const m of this.milestones) this.counts.set(m, (this.counts.get(m) ?? 0) + 1);
    this.start();
  }

  protected lrsAt(epoch: number, current: readonly number[]): number[] {
    const c = this.counts.get(epoch);
    if (c === undefined) return [...current];
    return current.map((lr) => lr * this.gamma ** c);
  }

  protected closedForm(epoch: number): number[] {
    let k = 0;
    while (k < this.milestones.length && this.milestones[k] <= epoch) k++;
    return this.baseLrs.map((lr) => lr * this.gamma ** k);
  }
}
