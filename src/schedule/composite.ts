import { OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import { describe } from '../validate.js';
import { LRScheduler } from './scheduler.js';
import type { SchedulableOptimizer } from './scheduler.js';

/**
 * A list of schedulers given to SequentialLR or ChainedScheduler: a non-empty array of
 * LRSchedulers (not ReduceLROnPlateau, whose step takes a metric), all on `optimizer`.
 * `key` names the argument (`options.schedulers`), `verb` what is done with them (`sequenced`).
 */
export function checkSchedulers(v: unknown, key: string, name: string, optimizer: unknown, verb: string): LRScheduler[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw new OptimTypeError(`${name}: ${key} must be a non-empty array of schedulers, got ${describe(v)}`);
  }
  v.forEach((s: unknown, i) => {
    if (!(s instanceof LRScheduler)) {
      throw new OptimTypeError(
        `${name}: ${key}[${i}] must be a scheduler such as StepLR (ReduceLROnPlateau cannot be ${verb}: its step takes a metric), got ${describe(s)}`,
      );
    }
    if (s.optimizer !== optimizer) {
      throw new OptimRangeError(`${name}: ${key}[${i}] is built on another optimizer; all must use this one`);
    }
  });
  return [...(v as LRScheduler[])];
}

/**
 * A scheduler made of others (SequentialLR, ChainedScheduler): their state dicts nest in its
 * own, under `schedulers`, and a load checks all of them before restoring any.
 */
export abstract class CompositeScheduler extends LRScheduler {
  readonly schedulers: readonly LRScheduler[];

  protected constructor(
    name: string,
    optimizer: SchedulableOptimizer,
    options: { readonly lastEpoch?: unknown },
    schedulers: readonly LRScheduler[],
  ) {
    super(name, optimizer, options);
    this.schedulers = [...schedulers];
  }

  protected override prepareLoad(stateDict: unknown): () => void {
    const restoreOwn = super.prepareLoad(stateDict);
    const saved = (stateDict as { schedulers?: unknown }).schedulers;
    if (!Array.isArray(saved) || saved.length !== this.schedulers.length) {
      throw new OptimStateError(
        `${this.name}.loadStateDict: schedulers must be an array of ${this.schedulers.length} state dicts, got ${Array.isArray(saved) ? `an Array of length ${saved.length}` : describe(saved)}`,
      );
    }
    const restoreSubs = this.schedulers.map((s, i) => LRScheduler.prepareLoadOf(s, saved[i]));
    return () => {
      for (const restore of restoreSubs) restore();
      restoreOwn();
    };
  }

  protected override extraState(): Record<string, unknown> {
    return { schedulers: this.schedulers.map((s) => s.stateDict()) };
  }
}
