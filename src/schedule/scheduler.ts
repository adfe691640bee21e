import { OptimStateError } from '../errors.js';
import { checkInteger, checkNonNegative } from '../validate.js';
import { checkGroupCount, checkOptimizer, checkSavedInteger, checkSavedKind, checkSavedLrs } from './validate.js';

/** A parameter group as a scheduler sees it: the `lr` it sets, and torch's `initial_lr`. */
export interface ScheduledGroup {
  lr: number;
  /** The lr the schedule started from (torch's `initial_lr`), set by the first scheduler built on the group. */
  initialLr?: number;
}

/** Anything with parameter groups: the first-order optimizers, Newton, LBFGS. */
export interface SchedulableOptimizer {
  readonly paramGroups: ScheduledGroup[];
}

/** The option every scheduler takes. */
export interface SchedulerOptions {
  /**
   * The index of the last epoch done (default -1: a fresh schedule). A value k >= 0 resumes a
   * schedule: each group must hold `initialLr`, and the lr is set to the schedule's closed form
   * at epoch k + 1, as torch's constructor ends one epoch further on.
   */
  lastEpoch?: number;
}

/**
 * A scheduler's state: plain numbers and arrays (JSON-safe). The options are not in it: build
 * the scheduler with the same options, then load.
 */
export interface SchedulerStateDict {
  /** The class that saved it; loading into another kind of scheduler is refused. */
  scheduler: string;
  lastEpoch: number;
  baseLrs: number[];
  lastLr: number[];
  [key: string]: unknown;
}

/**
 * What every learning-rate scheduler shares, as torch.optim.lr_scheduler.LRScheduler: the base
 * lrs (each group's `initialLr`, recorded at construction when absent), the epoch counter
 * (`lastEpoch`, -1 before the constructor's initial step, then the number of `step()` calls),
 * the last lrs set, and a state dict.
 *
 * Against torch: `loadStateDict` also writes the saved lrs into the optimizer's groups (torch
 * leaves that to the optimizer's own state dict), so the order of loading optimizer and
 * scheduler does not matter.
 */
export abstract class LRScheduler {
  readonly optimizer: SchedulableOptimizer;
  protected readonly name: string;
  protected epoch: number;
  protected baseLrs: number[];
  protected lastLrs: number[];

  /**
   * `options` holds `lastEpoch` and the subclass's options as read (readOptions), which become
   * the subclass's readonly fields once everything is checked.
   */
  protected constructor(name: string, optimizer: SchedulableOptimizer, options: { readonly lastEpoch?: unknown }) {
    const { lastEpoch, ...fields } = options;
    const groups = checkOptimizer(optimizer, name);
    const last = lastEpoch === undefined ? -1 : checkInteger(lastEpoch, 'options.lastEpoch', `${name}: `, -1);
    groups.forEach((g, i) => {
      if (g.initialLr === undefined) {
        if (last !== -1) {
          throw new OptimStateError(
            `${name}: options.lastEpoch is ${last} (resuming a schedule) but optimizer.paramGroups[${i}].initialLr is not set; set it to the lr the schedule started from, or build with lastEpoch -1 and call loadStateDict()`,
          );
        }
      } else {
        checkNonNegative(g.initialLr, `optimizer.paramGroups[${i}].initialLr`, `${name}: `);
      }
    });
    this.name = name;
    this.optimizer = optimizer;
    this.epoch = last;
    this.baseLrs = groups.map((g) => g.initialLr ?? g.lr);
    this.lastLrs = groups.map((g) => g.lr);
    Object.assign(this, fields);
  }

  /** The number of `step()` calls since the schedule started (torch's `last_epoch`). */
  get lastEpoch(): number {
    return this.epoch;
  }

  /** The lr of each group as this scheduler last set it. */
  getLastLr(): number[] {
    return [...this.lastLrs];
  }

  /** Advances the schedule by one epoch and sets every group's lr. */
  abstract step(): void;

  /** A copy of the state; later steps do not change it. */
  stateDict(): SchedulerStateDict {
    return {
      scheduler: this.name,
      lastEpoch: this.epoch,
      baseLrs: [...this.baseLrs],
      lastLr: [...this.lastLrs],
      ...this.extraState(),
    };
  }

  /**
   * Restores a `stateDict()` of the same kind of scheduler, and sets each group's lr and
   * `initialLr` to the saved ones. Checks everything first; throws OptimStateError when the
   * dict does not fit, changing nothing.
   */
  loadStateDict(stateDict: SchedulerStateDict): void {
    this.prepareLoad(stateDict)();
  }

  /** torch's initial step, run once by each subclass when its options are set. */
  protected abstract start(): void;

  /** Sets the schedule to `epoch` by its closed form (torch's `step(epoch)`). */
  protected abstract jumpTo(epoch: number): void;

  /**
   * Takes back the constructor's initial step (SequentialLR restarts its schedulers). A
   * scheduler that never started stays at -1: a milestone restarts it at epoch 0 anyway.
   */
  protected undoStart(): void {
    this.epoch = Math.max(-1, this.epoch - 1);
  }

  /** State beyond the epoch and lrs, for the state dict. */
  protected extraState(): Record<string, unknown> {
    return {};
  }

  /** Checks the extra state of a saved dict; returns what restores it. */
  protected prepareExtra(_saved: Record<string, unknown>): () => void {
    return () => undefined;
  }

  /** Checks a saved dict completely; returns what restores it (SequentialLR checks all first). */
  protected prepareLoad(stateDict: unknown): () => void {
    const saved = checkSavedKind(stateDict, this.name);
    const groups = this.optimizer.paramGroups;
    checkGroupCount(groups, this.name, this.baseLrs.length);
    const lastEpoch = checkSavedInteger(saved.lastEpoch, 'lastEpoch', this.name, -1);
    const baseLrs = checkSavedLrs(saved.baseLrs, 'baseLrs', this.name, groups.length);
    const lastLr = checkSavedLrs(saved.lastLr, 'lastLr', this.name, groups.length);
    const restoreExtra = this.prepareExtra(saved);
    return () => {
      restoreExtra();
      this.baseLrs = baseLrs;
      groups.forEach((g, i) => {
        g.initialLr = baseLrs[i];
      });
      this.apply(lastEpoch, lastLr);
    };
  }

  /** Writes the lrs into the groups and records the epoch. */
  protected apply(epoch: number, lrs: readonly number[]): void {
    const groups = this.optimizer.paramGroups;
    for (let i = 0; i < groups.length; i++) groups[i].lr = lrs[i];
    this.epoch = epoch;
    this.lastLrs = [...lrs];
  }

  /** The groups' current lrs, checked (a chainable step multiplies them). */
  protected currentLrs(): number[] {
    const groups = this.optimizer.paramGroups;
    checkGroupCount(groups, this.name, this.baseLrs.length);
    const where = `${this.name}: `;
    return groups.map((g, i) => checkNonNegative(g.lr, `optimizer.paramGroups[${i}].lr`, where));
  }

  /** Records `initialLr` on the groups that have none (torch's `setdefault('initial_lr', lr)`). */
  protected recordInitialLrs(): void {
    for (const g of this.optimizer.paramGroups) if (g.initialLr === undefined) g.initialLr = g.lr;
  }

  /**
   * SequentialLR drives other schedulers through these: TypeScript lets a subclass reach the
   * protected members of its own kind only, but the base class reaches those of any scheduler.
   */
  protected static startOf(s: LRScheduler): void {
    s.start();
  }

  protected static jumpOf(s: LRScheduler, epoch: number): void {
    s.jumpTo(epoch);
  }

  protected static undoStartOf(s: LRScheduler): void {
    s.undoStart();
  }

  protected static prepareLoadOf(s: LRScheduler, stateDict: unknown): () => void {
    return s.prepareLoad(stateDict);
  }
}

/**
 * A schedule given per epoch by a formula: a step (torch's chainable `get_lr`, which may read
 * the groups' current lrs, so several schedulers compose) and a closed form from the base lrs.
 */
export abstract class FormulaScheduler extends LRScheduler {
  step(): void {
    const current = this.currentLrs();
    const epoch = this.epoch + 1;
    this.apply(epoch, this.lrsAt(epoch, current));
  }

  /** The lrs at `epoch` reached by one step from the groups' `current` lrs. */
  protected abstract lrsAt(epoch: number, current: readonly number[]): number[];

  /** The lrs at `epoch` from the base lrs alone. */
  protected abstract closedForm(epoch: number): number[];

  protected start(): void {
    const epoch = this.epoch + 1;
    if (this.epoch !== -1) {
      this.jumpTo(epoch);
      return;
    }
    const lrs = this.lrsAt(epoch, this.currentLrs());
    this.recordInitialLrs();
    this.apply(epoch, lrs);
  }

  protected jumpTo(epoch: number): void {
    const lrs = this.closedForm(epoch);
    this.recordInitialLrs();
    this.apply(epoch, lrs);
  }
}
