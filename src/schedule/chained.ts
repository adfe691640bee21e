import { OptimStateError } from '../errors.js';
import { CompositeScheduler, checkSchedulers } from './composite.js';
import { MOMENTUM_KEYS } from './momentum.js';
import type { LRScheduler, SchedulableOptimizer } from './scheduler.js';
import { checkGroupCount } from './validate.js';

/** The group keys a scheduler writes, saved so a refused chain step can put them back. */
const WRITTEN = ['lr', 'initialLr', ...MOMENTUM_KEYS] as const;

/**
 * Steps several schedulers together at every epoch, as torch.optim.lr_scheduler.ChainedScheduler:
 * each `step()` steps them in order, so chainable ones (ConstantLR, MultiplicativeLR,
 * ExponentialLR, StepLR, ...) multiply their factors. For chainable schedulers with factors
 * f₁, f₂, ... of the epoch:
 *
 * ```
 * η_t = η_{t-1} · f₁(t) · f₂(t) ⋯          (each factor applied in the order given)
 * ```
 *
 * A scheduler that is not chainable (LambdaLR, OneCycleLR, ...) sets the lr from its own formula
 * and so overrides the ones before it. `optimizer` defaults to the first scheduler's; all must
 * use it. A step is all or nothing: when one of the schedulers throws (a OneCycleLR past its
 * total steps), the ones stepped before it are put back and no group changes. `lastEpoch`
 * counts the chain's steps (torch's ChainedScheduler keeps no epoch); the state dict nests the
 * schedulers'. A ChainedScheduler cannot be sequenced by SequentialLR (the reverse works).
 */
export class ChainedScheduler extends CompositeScheduler {
  constructor(schedulers: readonly LRScheduler[], optimizer?: SchedulableOptimizer) {
    const name = 'ChainedScheduler';
    const first: unknown = Array.isArray(schedulers) ? schedulers[0] : undefined;
    const opt = optimizer ?? (first as Partial<LRScheduler> | undefined)?.optimizer;
    const list = checkSchedulers(schedulers, 'schedulers', name, opt, 'chained');
    super(name, opt as SchedulableOptimizer, {}, list);
    this.start();
  }

  step(): void {
    const groups = this.optimizer.paramGroups;
    checkGroupCount(groups, this.name, this.baseLrs.length);
    const saved = this.schedulers.map((s) => s.stateDict());
    const before = groups.map((g) => WRITTEN.map((k) => [k in g, (g as unknown as Record<string, unknown>)[k]] as const));
    let done = 0;
    try {
      for (const s of this.schedulers) {
        s.step();
        done++;
      }
    } catch (e) {
      for (let i = 0; i < done; i++) this.schedulers[i].loadStateDict(saved[i]);
      groups.forEach((g, i) => {
        const record = g as unknown as Record<string, unknown>;
        WRITTEN.forEach((k, j) => {
          const [had, v] = before[i][j];
          if (had) record[k] = v;
          else delete record[k];
        });
      });
      throw e;
    }
    this.epoch += 1;
    this.lastLrs = groups.map((g) => g.lr);
  }

  /** The schedulers took their initial steps when they were built: the chain only starts counting. */
  protected start(): void {
    this.epoch = 0;
    this.lastLrs = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** Unreachable: SequentialLR refuses a ChainedScheduler, and the chain takes no lastEpoch. */
  protected jumpTo(_epoch: number): void {
    throw new OptimStateError(`${this.name} cannot jump to an epoch: its schedulers compose step by step`);
  }
}
