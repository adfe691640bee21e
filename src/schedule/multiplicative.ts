import { checkOptions } from '../validate.js';
import { LrLambdas } from './lambda.js';
import type { LrLambda } from './lambda.js';
import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { checkOptimizer } from './validate.js';

export interface MultiplicativeLROptions extends SchedulerOptions {
  /** The factor of each epoch: one function for every group, or one per group (required). */
  lrLambda: LrLambda | readonly LrLambda[];
}

/**
 * Multiplies every group's lr by a function of the epoch at each step, as
 * torch.optim.lr_scheduler.MultiplicativeLR.
 *
 * ```
 * η_t = η_{t-1} · λ(t)  for t > 0,   η_0 = η         (the step taken: chainable)
 * η_t = η₀ · λ(1) · λ(2) ⋯ λ(t)                      (closed form, multiplied left to right)
 * ```
 *
 * λ(t) must return a finite number >= 0; otherwise the step throws and changes nothing. The
 * functions are not part of the state dict.
 */
export class MultiplicativeLR extends FormulaScheduler {
  private readonly lambdas: LrLambdas;

  constructor(optimizer: SchedulableOptimizer, options: MultiplicativeLROptions) {
    const o = checkOptions<MultiplicativeLROptions>(options, ['lrLambda', 'lastEpoch'], 'MultiplicativeLR(optimizer, options)');
    const lambdas = new LrLambdas('MultiplicativeLR', o.lrLambda, checkOptimizer(optimizer, 'MultiplicativeLR').length);
    super('MultiplicativeLR', optimizer, { lastEpoch: o.lastEpoch });
    this.lambdas = lambdas;
    this.start();
  }

  protected lrsAt(epoch: number, current: readonly number[]): number[] {
    if (epoch === 0) return [...current];
    return current.map((lr, i) => lr * this.lambdas.at(i, epoch));
  }

  protected closedForm(epoch: number): number[] {
    return this.baseLrs.map((base, i) => {
      let lr = base;
      for (let t = 1; t <= epoch; t++) lr *= this.lambdas.at(i, t);
      return lr;
    });
  }
}
