import { OptimRangeError, OptimTypeError } from '../errors.js';
import { checkOptions, checkRequired, describe } from '../validate.js';
import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { checkOptimizer, perGroup } from './validate.js';

/** A factor of the lr as a function of the epoch. */
export type LrLambda = (epoch: number) => number;

export interface LambdaLROptions extends SchedulerOptions {
  /** One function for every group, or one per group (required). */
  lrLambda: LrLambda | readonly LrLambda[];
}

/**
 * The `lrLambda` option of LambdaLR and MultiplicativeLR: one function for every group or one
 * per group, checked at construction; `at` calls group i's function, whose value must be a
 * finite number >= 0 (otherwise it throws, before the scheduler writes anything).
 */
export class LrLambdas {
  private readonly lambdas: LrLambda[];
  /** Whether lrLambda was given per group, for messages. */
  private readonly listed: boolean;

  constructor(private readonly name: string, v: unknown, nGroups: number) {
    const given = checkRequired(v, 'options.lrLambda', `${name}: `);
    const lambdas = perGroup(given as LrLambda | LrLambda[], 'options.lrLambda', name, nGroups);
    this.listed = Array.isArray(given);
    lambdas.forEach((f: unknown, i) => {
      if (typeof f !== 'function') {
        throw new OptimTypeError(`${name}: options.lrLambda${this.listed ? `[${i}]` : ''} must be a function of the epoch, got ${describe(f)}`);
      }
    });
    this.lambdas = lambdas;
  }

  /** Group i's factor at `epoch`. */
  at(i: number, epoch: number): number {
    const f: unknown = this.lambdas[i](epoch);
    if (typeof f !== 'number' || !(f >= 0 && f < Infinity)) {
      throw new OptimRangeError(
        `${this.name}: lrLambda${this.listed ? `[${i}]` : ''}(${epoch}) returned ${typeof f === 'number' ? f : describe(f)}; it must return a finite number >= 0`,
      );
    }
    return f;
  }
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
  private readonly lambdas: LrLambdas;

  constructor(optimizer: SchedulableOptimizer, options: LambdaLROptions) {
    const o = checkOptions<LambdaLROptions>(options, ['lrLambda', 'lastEpoch'], 'LambdaLR(optimizer, options)');
    const lambdas = new LrLambdas('LambdaLR', o.lrLambda, checkOptimizer(optimizer, 'LambdaLR').length);
    super('LambdaLR', optimizer, { lastEpoch: o.lastEpoch });
    this.lambdas = lambdas;
    this.start();
  }

  protected lrsAt(epoch: number, _current: readonly number[]): number[] {
    return this.closedForm(epoch);
  }

  protected closedForm(epoch: number): number[] {
    return this.baseLrs.map((lr, i) => lr * this.lambdas.at(i, epoch));
  }
}
