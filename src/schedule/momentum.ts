/**
 * Momentum cycling (torch's `cycle_momentum`, OneCycleLR and CyclicLR): the momentum moves
 * against the lr, written into SGD's and RMSprop's `momentum`, or into `betas[0]` of the Adam
 * family (torch's `use_beta1`).
 */
import { OptimTypeError } from '../errors.js';
import { checkBetas, checkInRange } from '../validate.js';
import { FormulaScheduler } from './scheduler.js';
import type { ScheduledGroup, SchedulableOptimizer } from './scheduler.js';
import { perGroup } from './validate.js';

/** The group keys momentum cycling writes. */
export const MOMENTUM_KEYS = ['momentum', 'betas'] as const;
export type MomentumKey = (typeof MOMENTUM_KEYS)[number];

/** Where the cycled momentum goes, and each group's bounds. */
export interface MomentumCycle {
  /** `'betas'` when the groups have betas (betas[0] is cycled), else `'momentum'`. */
  readonly key: MomentumKey;
  readonly base: readonly number[];
  readonly max: readonly number[];
}

type MomentumGroup = ScheduledGroup & { momentum?: unknown; betas?: unknown };

/**
 * The momentum bounds of a scheduler with `cycleMomentum`, checked against the optimizer's
 * groups: betas (Adam family, each bound in [0, 1)) or momentum (SGD, RMSprop); an optimizer
 * with neither is refused, as torch refuses it. Null when not cycling.
 */
export function readMomentumCycle(
  name: string,
  groups: readonly ScheduledGroup[],
  cycle: boolean,
  base: number | readonly number[],
  max: number | readonly number[],
): MomentumCycle | null {
  if (!cycle) return null;
  const gs = groups as readonly MomentumGroup[];
  let key: MomentumKey;
  if (gs.every((g) => g.betas !== undefined)) {
    gs.forEach((g, i) => checkBetas(g.betas, 'betas', `${name}: optimizer.paramGroups[${i}].`));
    key = 'betas';
  } else if (gs.every((g) => typeof g.momentum === 'number')) {
    key = 'momentum';
  } else {
    throw new OptimTypeError(
      `${name}: options.cycleMomentum is true but the optimizer's parameter groups have neither momentum (SGD, RMSprop) nor betas (the Adam family); pass cycleMomentum: false`,
    );
  }
  const bounds = (v: number | readonly number[], option: string): number[] => {
    const list = perGroup(v, `options.${option}`, name, groups.length);
    if (key === 'betas') {
      list.forEach((m, i) => checkInRange(m, Array.isArray(v) ? `${option}[${i}]` : option, `${name}: options.`, 0, 1, { maxOpen: true }));
    }
    return list;
  };
  return { key, base: bounds(base, 'baseMomentum'), max: bounds(max, 'maxMomentum') };
}

/** Writes each group's momentum (or betas[0], as a new pair: the old array is not changed). */
export function writeMomenta(groups: readonly ScheduledGroup[], key: MomentumKey, values: readonly number[]): void {
  const gs = groups as MomentumGroup[];
  for (let i = 0; i < gs.length; i++) {
    if (key === 'betas') gs[i].betas = [values[i], (gs[i].betas as readonly number[])[1]];
    else gs[i].momentum = values[i];
  }
}

/**
 * A schedule that may cycle the momentum with the lr: wherever it sets the lrs (a step, a jump,
 * a loaded state dict) it sets the momentum of the same epoch, computed before anything is
 * written. The momentum is not in the state dict: it follows from the epoch.
 */
export abstract class MomentumScheduler extends FormulaScheduler {
  /** Where the momentum goes and its bounds; null when cycleMomentum is false. */
  protected readonly cycle: MomentumCycle | null;

  protected constructor(
    name: string,
    optimizer: SchedulableOptimizer,
    options: { readonly lastEpoch?: unknown },
    cycle: MomentumCycle | null,
  ) {
    super(name, optimizer, options);
    this.cycle = cycle;
  }

  /** `'betas'` when betas[0] is cycled, `'momentum'` when momentum is, null when not cycling (torch's use_beta1). */
  get momentumKey(): MomentumKey | null {
    return this.cycle === null ? null : this.cycle.key;
  }

  /** Each group's momentum at `epoch` (only called when cycling). */
  protected abstract momentaAt(epoch: number): number[];

  protected override apply(epoch: number, lrs: readonly number[]): void {
    const momenta = this.cycle !== null && epoch >= 0 ? this.momentaAt(epoch) : null;
    super.apply(epoch, lrs);
    if (momenta !== null) writeMomenta(this.optimizer.paramGroups, (this.cycle as MomentumCycle).key, momenta);
  }

  protected override prepareExtra(saved: Record<string, unknown>): () => void {
    const epoch = saved.lastEpoch as number;
    if (this.cycle !== null && epoch >= 0) this.momentaAt(epoch);
    return super.prepareExtra(saved);
  }
}
