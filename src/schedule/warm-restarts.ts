import { OptimStateError } from '../errors.js';
import { FormulaScheduler } from './scheduler.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { integer, nonNegative, readOptions } from './options.js';
import { checkSavedInteger } from './validate.js';

export interface CosineAnnealingWarmRestartsOptions extends SchedulerOptions {
  /** Epochs in the first period (torch's `T_0`, required). */
  t0: number;
  /** Growth of the period at each restart (torch's `T_mult`, an integer, default 1). */
  tMult?: number;
  /** The lowest lr (default 0). */
  etaMin?: number;
}

/**
 * Cosine annealing with warm restarts (SGDR), as torch.optim.lr_scheduler.CosineAnnealingWarmRestarts.
 *
 * ```
 * η_t = η_min + (η₀ − η_min) · (1 + cos(π T_cur / T_i)) / 2
 * ```
 * T_cur counts epochs since the last restart; a period lasts T_i epochs, T_0 at first, and
 * T_i ← T_i · T_mult at each restart (where T_cur returns to 0 and the lr to η₀).
 *
 * Not chainable: each step computes from the base lrs. `step()` advances one whole epoch;
 * torch's fractional `step(epoch + i/n)` is not offered.
 */
export class CosineAnnealingWarmRestarts extends FormulaScheduler {
  declare readonly t0: number;
  declare readonly tMult: number;
  declare readonly etaMin: number;
  private tCur = 0;
  private tI: number;

  constructor(optimizer: SchedulableOptimizer, options: CosineAnnealingWarmRestartsOptions) {
    super('CosineAnnealingWarmRestarts', optimizer, readOptions('CosineAnnealingWarmRestarts', options, { t0: integer(1), tMult: integer(1, 1), etaMin: nonNegative(0) }));
    this.tI = this.t0;
    this.start();
  }

  protected lrsAt(epoch: number, _current: readonly number[]): number[] {
    if (epoch === 0) {
      this.tCur = 0;
      this.tI = this.t0;
    } else {
      this.tCur += 1;
      if (this.tCur >= this.tI) {
        this.tCur -= this.tI;
        this.tI *= this.tMult;
      }
    }
    return this.lrsFor(this.tCur, this.tI);
  }

  protected closedForm(epoch: number): number[] {
    const { tCur, tI } = this.phase(epoch);
    return this.lrsFor(tCur, tI);
  }

  protected override jumpTo(epoch: number): void {
    const { tCur, tI } = this.phase(epoch);
    this.tCur = tCur;
    this.tI = tI;
    super.jumpTo(epoch);
  }

  protected override extraState(): Record<string, unknown> {
    return { tCur: this.tCur, tI: this.tI };
  }

  protected override prepareExtra(saved: Record<string, unknown>): () => void {
    const tCur = checkSavedInteger(saved.tCur, 'tCur', this.name, 0);
    const tI = checkSavedInteger(saved.tI, 'tI', this.name, 1);
    if (tCur >= tI) throw new OptimStateError(`${this.name}.loadStateDict: tCur (${tCur}) must be less than tI (${tI})`);
    return () => {
      this.tCur = tCur;
      this.tI = tI;
    };
  }

  private lrsFor(tCur: number, tI: number): number[] {
    const c = 1 + Math.cos((Math.PI * tCur) / tI);
    return this.baseLrs.map((lr) => this.etaMin + ((lr - this.etaMin) * c) / 2);
  }

  /**
   * Where epoch t falls: whole periods are taken off in integers (torch takes a floating-point
   * logarithm, which can land one period short at a boundary).
   */
  private phase(epoch: number): { tCur: number; tI: number } {
    if (this.tMult === 1) return { tCur: epoch % this.t0, tI: this.t0 };
    let tCur = epoch;
    let tI = this.t0;
    while (tCur >= tI) {
      tCur -= tI;
      tI *= this.tMult;
    }
    return { tCur, tI };
  }
}
