import { OptimRangeError, OptimTypeError } from '../errors.js';
import { checkInteger, checkOptions, checkRequired, describe } from '../validate.js';
import { ChainedScheduler } from './chained.js';
import { CompositeScheduler, checkSchedulers } from './composite.js';
import { LRScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';

export interface SequentialLROptions extends SchedulerOptions {
  /** The schedulers to run one after another, all built on this optimizer (required). */
  schedulers: readonly LRScheduler[];
  /** The epochs at which the next scheduler takes over: one fewer than schedulers, increasing (required). */
  milestones: readonly number[];
}

/**
 * Runs schedulers one after another, as torch.optim.lr_scheduler.SequentialLR: scheduler i
 * drives the epochs from milestone i−1 to milestone i, and at its milestone it restarts at its
 * own epoch 0 from the base lrs (closed form), as torch's `step(0)`.
 *
 * ```
 * t < m₁:        the first scheduler at epoch t
 * mᵢ <= t < mᵢ₊₁:  scheduler i at epoch t − mᵢ
 * ```
 *
 * Built as torch ≥ 2.0 does (1.13 did not undo the sub-schedulers' initial steps): each group's
 * lr returns to its `initialLr`, every scheduler's initial step is taken back, and the first one
 * takes its initial step again. Typical use, a warm-up then a cosine decay:
 *
 *   const warmup = new LinearLR(opt, { startFactor: 0.1, totalIters: 5 });
 *   const decay = new CosineAnnealingLR(opt, { tMax: 95 });
 *   const sched = new SequentialLR(opt, { schedulers: [warmup, decay], milestones: [5] });
 */
export class SequentialLR extends CompositeScheduler {
  readonly milestones: readonly number[];

  constructor(optimizer: SchedulableOptimizer, options: SequentialLROptions) {
    const name = 'SequentialLR';
    const at = 'SequentialLR: options.';
    const o = checkOptions<SequentialLROptions>(options, ['schedulers', 'milestones', 'lastEpoch'], `${name}(optimizer, options)`);
    const schedulers = checkSchedulers(checkRequired(o.schedulers, 'schedulers', at), 'options.schedulers', name, optimizer, 'sequenced');
    const milestones = checkRequired(o.milestones, 'milestones', at);
    schedulers.forEach((s, i) => {
      if (s instanceof ChainedScheduler) {
        throw new OptimTypeError(
          `${name}: options.schedulers[${i}] is a ChainedScheduler, which cannot be sequenced (torch's SequentialLR fails to restart one at a milestone); put the SequentialLR in the chain instead`,
        );
      }
    });
    if (!Array.isArray(milestones)) {
      throw new OptimTypeError(`${name}: options.milestones must be an array of integers, got ${describe(milestones)}`);
    }
    if (milestones.length !== schedulers.length - 1) {
      throw new OptimRangeError(
        `${name}: options.milestones must have one entry fewer than options.schedulers (${schedulers.length - 1}), got ${milestones.length}`,
      );
    }
    milestones.forEach((m: unknown, i) => {
      checkInteger(m, `milestones[${i}]`, at, i === 0 ? 1 : (milestones[i - 1] as number) + 1);
    });
    super(name, optimizer, { lastEpoch: o.lastEpoch }, schedulers);
    this.milestones = [...milestones];
    if (this.epoch === -1) {
      this.optimizer.paramGroups.forEach((g, i) => {
        g.lr = this.baseLrs[i];
      });
      for (const s of this.schedulers) LRScheduler.undoStartOf(s);
    }
    this.start();
  }

  step(): void {
    this.currentLrs();
    const epoch = this.epoch + 1;
    const i = this.indexAt(epoch);
    const s = this.schedulers[i];
    if (i > 0 && this.milestones[i - 1] === epoch) {
      LRScheduler.jumpOf(s, 0);
    } else {
      s.step();
    }
    this.epoch = epoch;
    this.lastLrs = s.getLastLr();
  }

  protected start(): void {
    if (this.epoch !== -1) {
      this.jumpTo(this.epoch + 1);
      return;
    }
    const first = this.schedulers[0];
    LRScheduler.startOf(first);
    this.epoch = 0;
    this.lastLrs = first.getLastLr();
  }

  protected jumpTo(epoch: number): void {
    const i = this.indexAt(epoch);
    const s = this.schedulers[i];
    LRScheduler.jumpOf(s, i > 0 ? epoch - this.milestones[i - 1] : epoch);
    this.epoch = epoch;
    this.lastLrs = s.getLastLr();
  }

  protected override undoStart(): void {
    super.undoStart();
    for (const s of this.schedulers) LRScheduler.undoStartOf(s);
  }

  /** Which scheduler drives `epoch` (bisect right over the milestones). */
  private indexAt(epoch: number): number {
    let i = 0;
    while (i < this.milestones.length && this.milestones[i] <= epoch) i++;
    return i;
  }
}
