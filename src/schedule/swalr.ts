import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { choice, integer, nonNegative, perGroupList, readOptions } from './options.js';
import { perGroup } from './validate.js';

export interface SWALROptions extends SchedulerOptions {
  /** The lr annealed to: one for every group or one per group (required). */
  swaLr: number | readonly number[];
  /** Epochs of annealing, an integer >= 0 (default 10; 0: the lr is swaLr from the start). */
  annealEpochs?: number;
  /** The annealing curve, 'cos' or 'linear' (default 'cos'). */
  annealStrategy?: 'cos' | 'linear';
}

/** The weight α(t) of swaLr at progress t in [0, 1]. */
const ALPHA = {
  cos: (t: number) => (1 - Math.cos(Math.PI * t)) / 2,
  linear: (t: number) => t,
} as const;

/**
 * Anneals every group's lr from its value to swaLr over annealEpochs epochs, then holds it: the
 * lr schedule of stochastic weight averaging, as torch.optim.swa_utils.SWALR (torch 2.13).
 *
 * ```
 * t_k = clamp(k / max(1, A), 0, 1)     (k the epoch, A = annealEpochs; k is at least 1 when A = 0)
 * α(t) = (1 − cos(π t)) / 2  ('cos'),   t  ('linear')
 * η_k = swaLr · α(t_k) + η₀ · (1 − α(t_k))                                            (closed form)
 * η_k = swaLr · α(t_k) + p · (1 − α(t_k)),  p = (η_{k-1} − α(t_{k-1}) swaLr) / (1 − α(t_{k-1}))
 *       (p = swaLr when α(t_{k-1}) = 1)                                           (the step taken)
 * ```
 *
 * The step recovers the lr the annealing started from (p) out of the group's current lr, so it
 * is chainable as torch's. torch counts k in `step()` calls since construction (its
 * `_step_count − 1`); here k is the epoch (`lastEpoch`), the same number unless the scheduler
 * is built with `lastEpoch`, which resumes the annealing where that epoch has it.
 */
export class SWALR extends FormulaScheduler {
  declare readonly annealEpochs: number;
  declare readonly annealStrategy: 'cos' | 'linear';
  /** Each group's swaLr. */
  readonly swaLrs: readonly number[];

  constructor(optimizer: SchedulableOptimizer, options: SWALROptions) {
    const { swaLr, ...rest } = readOptions('SWALR', options, {
      swaLr: perGroupList(nonNegative()),
      annealEpochs: integer(0, 10),
      annealStrategy: choice(['cos', 'linear'] as const, 'cos'),
    });
    super('SWALR', optimizer, rest);
    this.swaLrs = perGroup(swaLr, 'options.swaLr', 'SWALR', this.baseLrs.length);
    this.start();
  }

  protected lrsAt(epoch: number, current: readonly number[]): number[] {
    const prevAlpha = this.alphaAt(epoch, -1);
    const alpha = this.alphaAt(epoch, 0);
    return current.map((lr, i) => {
      const swa = this.swaLrs[i];
      const prev = prevAlpha === 1 ? swa : (lr - prevAlpha * swa) / (1 - prevAlpha);
      return swa * alpha + prev * (1 - alpha);
    });
  }

  protected closedForm(epoch: number): number[] {
    const alpha = this.alphaAt(epoch, 0);
    return this.baseLrs.map((lr, i) => this.swaLrs[i] * alpha + lr * (1 - alpha));
  }

  /** α at step k + `offset` (torch's t and prev_t). */
  private alphaAt(epoch: number, offset: number): number {
    const k = this.annealEpochs === 0 ? Math.max(1, epoch) : epoch;
    const t = Math.max(0, Math.min(1, (k + offset) / Math.max(1, this.annealEpochs)));
    return ALPHA[this.annealStrategy](t);
  }
}
