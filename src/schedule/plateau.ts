import { OptimStateError, OptimTypeError } from '../errors.js';
import { checkChoice, checkInRange, checkInteger, checkNonNegative, checkOptions, describe } from '../validate.js';
import { nonNegative, perGroupList } from './options.js';
import type { SchedulableOptimizer } from './scheduler.js';
import { checkGroupCount, checkOptimizer, checkSavedInteger, checkSavedKind, checkSavedLrs, perGroup } from './validate.js';

export interface ReduceLROnPlateauOptions {
  /** 'min': the metric should fall (a loss); 'max': it should rise (an accuracy). Default 'min'. */
  mode?: 'min' | 'max';
  /** New lr = lr · factor, in [0, 1) (default 0.1). */
  factor?: number;
  /** Epochs without improvement tolerated before a cut (default 10). */
  patience?: number;
  /** How much better than the best counts as an improvement (default 1e-4). */
  threshold?: number;
  /** 'rel': relative to the best; 'abs': absolute (default 'rel'). */
  thresholdMode?: 'rel' | 'abs';
  /** Epochs after a cut during which bad epochs are not counted (default 0). */
  cooldown?: number;
  /** Lower bound on the lr: one for all groups or one per group (default 0). */
  minLr?: number | readonly number[];
  /** A cut smaller than eps is skipped (default 1e-8). */
  eps?: number;
}

/** The state of a ReduceLROnPlateau; `best` is null before the first metric (JSON has no ±∞). */
export interface PlateauStateDict {
  scheduler: 'ReduceLROnPlateau';
  lastEpoch: number;
  lastLr: number[];
  best: number | null;
  numBadEpochs: number;
  cooldownCounter: number;
}

/**
 * Cuts the lr when a metric stops improving, as torch.optim.lr_scheduler.ReduceLROnPlateau.
 * `step(metric)` once per epoch:
 *
 * ```
 * better(a) = a < best·(1 − threshold)   mode 'min', 'rel'     a < best − threshold   'min', 'abs'
 *             a > best·(1 + threshold)   mode 'max', 'rel'     a > best + threshold   'max', 'abs'
 * if better(metric): best ← metric, bad ← 0   else bad ← bad + 1
 * if cooldown > 0:   cooldown ← cooldown − 1, bad ← 0
 * if bad > patience: for each group, lr' = max(lr · factor, minLr);
 *                    lr ← lr' if lr − lr' > eps;  cooldown ← cooldownOption, bad ← 0
 * ```
 *
 * A NaN metric is never an improvement (a bad epoch), as in torch. `best` starts at +∞ ('min')
 * or −∞ ('max'), so the first finite metric is always an improvement.
 */
export class ReduceLROnPlateau {
  readonly optimizer: SchedulableOptimizer;
  readonly mode: 'min' | 'max';
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly thresholdMode: 'rel' | 'abs';
  readonly cooldown: number;
  readonly minLrs: readonly number[];
  readonly eps: number;
  private epoch = 0;
  private bestValue: number;
  private bad = 0;
  private cooldownLeft = 0;
  private lastLrs: number[];

  constructor(optimizer: SchedulableOptimizer, options: ReduceLROnPlateauOptions = {}) {
    const name = 'ReduceLROnPlateau';
    const keys = ['mode', 'factor', 'patience', 'threshold', 'thresholdMode', 'cooldown', 'minLr', 'eps'];
    const at = 'ReduceLROnPlateau: options.';
    const o = checkOptions<ReduceLROnPlateauOptions>(options, keys, `${name}(optimizer, options)`);
    const groups = checkOptimizer(optimizer, name);
    this.mode = checkChoice(o.mode ?? 'min', 'mode', at, ['min', 'max'] as const);
    this.factor = checkInRange(o.factor ?? 0.1, 'factor', at, 0, 1, { maxOpen: true });
    this.patience = checkInteger(o.patience ?? 10, 'patience', at, 0);
    this.threshold = checkNonNegative(o.threshold ?? 1e-4, 'threshold', at);
    this.thresholdMode = checkChoice(o.thresholdMode ?? 'rel', 'thresholdMode', at, ['rel', 'abs'] as const);
    this.cooldown = checkInteger(o.cooldown ?? 0, 'cooldown', at, 0);
    this.minLrs = perGroup(perGroupList(nonNegative(), 0)(o.minLr, 'minLr', at), 'options.minLr', name, groups.length);
    this.eps = checkNonNegative(o.eps ?? 1e-8, 'eps', at);
    this.optimizer = optimizer;
    this.bestValue = this.worst();
    this.lastLrs = groups.map((g) => g.lr);
  }

  /** The number of `step()` calls. */
  get lastEpoch(): number {
    return this.epoch;
  }

  /** The best metric so far (±∞ before the first). */
  get best(): number {
    return this.bestValue;
  }

  /** Epochs since the last improvement, not counting cooldown. */
  get numBadEpochs(): number {
    return this.bad;
  }

  /** Epochs of cooldown left. */
  get cooldownCounter(): number {
    return this.cooldownLeft;
  }

  get inCooldown(): boolean {
    return this.cooldownLeft > 0;
  }

  getLastLr(): number[] {
    return [...this.lastLrs];
  }

  /** Records this epoch's metric and cuts the lr after `patience` epochs without improvement. */
  step(metric: number): void {
    if (typeof metric !== 'number') {
      throw new OptimTypeError(`ReduceLROnPlateau.step(metric): metric must be a number, got ${describe(metric)}`);
    }
    const groups = this.optimizer.paramGroups;
    checkGroupCount(groups, 'ReduceLROnPlateau', this.minLrs.length);
    const lrs = groups.map((g, i) => checkNonNegative(g.lr, `optimizer.paramGroups[${i}].lr`, 'ReduceLROnPlateau: '));
    this.epoch += 1;
    if (this.isBetter(metric)) {
      this.bestValue = metric;
      this.bad = 0;
    } else {
      this.bad += 1;
    }
    if (this.cooldownLeft > 0) {
      this.cooldownLeft -= 1;
      this.bad = 0;
    }
    if (this.bad > this.patience) {
      lrs.forEach((lr, i) => {
        const cut = Math.max(lr * this.factor, this.minLrs[i]);
        if (lr - cut > this.eps) groups[i].lr = cut;
      });
      this.cooldownLeft = this.cooldown;
      this.bad = 0;
    }
    this.lastLrs = groups.map((g) => g.lr);
  }

  stateDict(): PlateauStateDict {
    return {
      scheduler: 'ReduceLROnPlateau',
      lastEpoch: this.epoch,
      lastLr: [...this.lastLrs],
      best: this.bestValue === this.worst() ? null : this.bestValue,
      numBadEpochs: this.bad,
      cooldownCounter: this.cooldownLeft,
    };
  }

  /** Restores a `stateDict()` and sets each group's lr to the saved one; checks everything first. */
  loadStateDict(stateDict: PlateauStateDict): void {
    const name = 'ReduceLROnPlateau';
    const saved = checkSavedKind(stateDict, name);
    const groups = this.optimizer.paramGroups;
    checkGroupCount(groups, name, this.minLrs.length);
    const lastEpoch = checkSavedInteger(saved.lastEpoch, 'lastEpoch', name, 0);
    const lastLr = checkSavedLrs(saved.lastLr, 'lastLr', name, groups.length);
    const numBadEpochs = checkSavedInteger(saved.numBadEpochs, 'numBadEpochs', name, 0);
    const cooldownCounter = checkSavedInteger(saved.cooldownCounter, 'cooldownCounter', name, 0);
    const best = saved.best;
    if (best !== null && typeof best !== 'number') {
      throw new OptimStateError(`${name}.loadStateDict: best must be a number or null, got ${describe(best)}`);
    }
    this.epoch = lastEpoch;
    this.bestValue = best === null ? this.worst() : best;
    this.bad = numBadEpochs;
    this.cooldownLeft = cooldownCounter;
    this.lastLrs = lastLr;
    groups.forEach((g, i) => {
      g.lr = lastLr[i];
    });
  }

  private worst(): number {
    return this.mode === 'min' ? Infinity : -Infinity;
  }

  private isBetter(a: number): boolean {
    const best = this.bestValue;
    if (this.mode === 'min') {
      return this.thresholdMode === 'rel' ? a < best * (1 - this.threshold) : a < best - this.threshold;
    }
    return this.thresholdMode === 'rel' ? a > best * (1 + this.threshold) : a > best + this.threshold;
  }
}
