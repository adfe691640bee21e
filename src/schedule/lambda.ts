import { OptimRangeError, OptimTypeError } from '../errors.js';
import { checkOptions, checkRequired, describe } from '../validate.js';
import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { checkOptimizer, perGroup } from './validate.js';

/** A factor of the base lr as a function of the epoch. */
export type LrLambda = (epoch: number) => number;

export interface LambdaLROptions extends SchedulerOptions {
  /** One function for every group, or one per group (required). */
  lrLambda: LrLambda | readonly LrLambda[];
}

/**
 * Sets every group's lr to its base lr times a function of the epoch, as
 * torch.optim.lr_scheduler.LambdaLR.
 *
 * ```
 * η_t = η₀ · λ(t)
 * ```
 *
 * Not chainable: outside changes to the lr are overwritten at the next step. λ(t) must return a
 * finite number >= 0; otherwise the step throws and changes nothing. The functions are not part
 * of the state dict.
 */
export class LambdaLR extends FormulaScheduler {
  private readonly lambdas: LrLambda[];
  /** Whether lrLambda was given per group, for messages. */
  private readonly listed: boolean;

  constructor(optimizer: SchedulableOptimizer, options: LambdaLROptions) {
    const o = checkOptions<LambdaLROptions>(options, ['lrLambda', 'lastEpoch'], 'LambdaLR(optimizer, options)');
    const groups = checkOptimizer(optimizer, 'LambdaLR');
    const lambdas = perGroup(checkRequired(o.lrLambda, 'options.lrLambda', 'LambdaLR: '), 'options.lrLambda', 'LambdaLR', groups.length);
    lambdas.forEach((f: unknown, i) => {
      if (typeof f !== 'function') {
        const key = Array.isArray(o.lrLambda) ? `options.lrLambda[${i}]` : 'options.lrLambda';
        throw new OptimTypeError(`LambdaLR: ${key} must be a function of the epoch, got ${describe(f)}`);
      }
    });
    super('LambdaLR', optimizer, { lastEpoch: o.lastEpoch });
    this.lambdas = lambdas;
    this.listed = Array.isArray(o.lrLambda);
    this.start();
  }

  protected lrsAt(epoch: number, _current: readonly number[]): number[] {
    return this.closedForm(epoch);
  }

  protected closedForm(epoch: number): number[] {
    return this.baseLrs.map((lr, i) => {
      const f: unknown = this.lambdas[i](epoch);
      if (typeof f !== 'number' || !(f >= 0 && f < Infinity)) {
        throw new OptimRangeError(
          `LambdaLR: lrLambda${this.listed ? `[${i}]` : ''}(${epoch}) returned ${typeof f === 'number' ? f : describe(f)}; it must return a finite number >= 0`,
        );
      }
      return lr * f;
    });
  }
}
