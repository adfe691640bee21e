import { OptimRangeError } from '../errors.js';
import { describe } from '../validate.js';
import { MomentumScheduler, readMomentumCycle } from './momentum.js';
import { callable, choice, flag, inRange, nonNegative, optional, perGroupList, readOptions } from './options.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { checkOptimizer, perGroup } from './validate.js';

export type CyclicMode = 'triangular' | 'triangular2' | 'exp_range';

export interface CyclicLROptions extends SchedulerOptions {
  /** The lower bound of the cycle, one for every group or one per group (required). */
  baseLr: number | readonly number[];
  /** The upper bound of the cycle's amplitude, one for every group or one per group (required). */
  maxLr: number | readonly number[];
  /** Epochs (in practice, batches) of the rising half, > 0 (default 2000). */
  stepSizeUp?: number;
  /** Epochs of the falling half, >= 0 (default stepSizeUp). */
  stepSizeDown?: number;
  /** The amplitude's scaling: 'triangular' (1), 'triangular2' (halved each cycle), 'exp_range' (γ^t) (default 'triangular'). */
  mode?: CyclicMode;
  /** γ of 'exp_range' (default 1). */
  gamma?: number;
  /** A custom scaling of the amplitude, in place of mode's: a finite number >= 0 of the cycle or the epoch. */
  scaleFn?: (x: number) => number;
  /** What scaleFn is given: 'cycle' (the cycle number, from 1) or 'iterations' (the epoch) (default 'cycle'). */
  scaleMode?: 'cycle' | 'iterations';
  /** Cycle the momentum inversely to the lr (default true). */
  cycleMomentum?: boolean;
  /** The momentum at the lr's peak, one for every group or one per group (default 0.8). */
  baseMomentum?: number | readonly number[];
  /** The momentum at the lr's trough, one for every group or one per group (default 0.9). */
  maxMomentum?: number | readonly number[];
}

/** The built-in amplitude scalings and what they are a function of. */
const MODES = {
  triangular: { scale: (_x: number, _gamma: number) => 1.0, of: 'cycle' },
  triangular2: { scale: (x: number, _gamma: number) => 1 / 2.0 ** (x - 1), of: 'cycle' },
  exp_range: { scale: (x: number, gamma: number) => gamma ** x, of: 'iterations' },
} as const;

/**
 * Cycles every group's lr between baseLr and maxLr (cyclical learning rates, Smith 2017), and
 * the momentum inversely, as torch.optim.lr_scheduler.CyclicLR (torch 2.13). At epoch t
 * (torch's step count, one per batch in its documentation):
 *
 * ```
 * L = up + down,   r = up / L,   c = ⌊1 + t / L⌋,   x = 1 + t / L − c
 * s = x / r  if x <= r,  else (x − 1) / (r − 1)                 (0 → 1 → 0 over a cycle)
 * η_t = baseLr + (maxLr − baseLr) · s · f
 * m_t = maxMomentum − (maxMomentum − baseMomentum) · s · f     (with cycleMomentum)
 * f = 1 ('triangular'),  1 / 2^(c−1) ('triangular2'),  γ^t ('exp_range'),  or scaleFn(c or t)
 * ```
 *
 * Not chainable: each step computes from the options. The group's lr is set to baseLr and its
 * `initialLr` (when absent) too. With cycleMomentum the momentum goes into `momentum` (SGD,
 * RMSprop) or `betas[0]` (the Adam family); an optimizer with neither is refused. scaleFn is
 * called once per step and is not part of the state dict; `mode` and `gamma` are ignored when
 * it is given, and `scaleMode` is used only with it.
 */
export class CyclicLR extends MomentumScheduler {
  declare readonly stepSizeUp: number;
  declare readonly stepSizeDown: number;
  declare readonly mode: CyclicMode;
  declare readonly gamma: number;
  declare readonly cycleMomentum: boolean;
  /** What the scaling is a function of: scaleMode with scaleFn, else the mode's own. */
  readonly scaleMode: 'cycle' | 'iterations';
  /** Each group's maxLr. */
  readonly maxLrs: readonly number[];
  private readonly scaleFn: ((x: number) => number) | undefined;

  constructor(optimizer: SchedulableOptimizer, options: CyclicLROptions) {
    const name = 'CyclicLR';
    const { baseLr, maxLr, baseMomentum, maxMomentum, scaleFn, scaleMode, stepSizeDown, ...rest } = readOptions(name, options, {
      baseLr: perGroupList(nonNegative()),
      maxLr: perGroupList(nonNegative()),
      stepSizeUp: inRange(0, Infinity, { minOpen: true }, 2000),
      stepSizeDown: optional(nonNegative()),
      mode: choice(['triangular', 'triangular2', 'exp_range'] as const, 'triangular'),
      gamma: nonNegative(1),
      scaleFn: callable<(x: number) => number>(),
      scaleMode: choice(['cycle', 'iterations'] as const, 'cycle'),
      cycleMomentum: flag(true),
      baseMomentum: perGroupList(nonNegative(), 0.8),
      maxMomentum: perGroupList(nonNegative(), 0.9),
    });
    const groups = checkOptimizer(optimizer, name);
    const baseLrs = perGroup(baseLr, 'options.baseLr', name, groups.length);
    const maxLrs = perGroup(maxLr, 'options.maxLr', name, groups.length);
    const cycle = readMomentumCycle(name, groups, rest.cycleMomentum, baseMomentum, maxMomentum);
    const fields = { ...rest, stepSizeDown: stepSizeDown ?? rest.stepSizeUp };
    super(name, optimizer, fields, cycle);
    this.baseLrs = baseLrs;
    this.maxLrs = maxLrs;
    this.scaleFn = scaleFn;
    this.scaleMode = scaleFn === undefined ? MODES[this.mode].of : scaleMode;
    this.start();
  }

  protected lrsAt(epoch: number, _current: readonly number[]): number[] {
    return this.closedForm(epoch);
  }

  protected closedForm(epoch: number): number[] {
    const { s, f } = this.position(epoch);
    return this.baseLrs.map((base, i) => base + (this.maxLrs[i] - base) * s * f);
  }

  protected momentaAt(epoch: number): number[] {
    const { s, f } = this.position(epoch);
    const { base, max } = this.cycle!;
    return max.map((m, i) => m - (m - base[i]) * s * f);
  }

  /** torch sets `initial_lr` to baseLr where the group has none. */
  protected override recordInitialLrs(): void {
    this.optimizer.paramGroups.forEach((g, i) => {
      if (g.initialLr === undefined) g.initialLr = this.baseLrs[i];
    });
  }

  /** Where epoch t is in its cycle (s) and the amplitude's scale there (f). */
  private position(epoch: number): { s: number; f: number } {
    const total = this.stepSizeUp + this.stepSizeDown;
    const ratio = this.stepSizeUp / total;
    const cycle = Math.floor(1 + epoch / total);
    const x = 1.0 + epoch / total - cycle;
    const s = x <= ratio ? x / ratio : (x - 1) / (ratio - 1);
    const at = this.scaleMode === 'cycle' ? cycle : epoch;
    if (this.scaleFn === undefined) return { s, f: MODES[this.mode].scale(at, this.gamma) };
    const f: unknown = this.scaleFn(at);
    if (typeof f !== 'number' || !(f >= 0 && f < Infinity)) {
      throw new OptimRangeError(`CyclicLR: scaleFn(${at}) returned ${typeof f === 'number' ? f : describe(f)}; it must return a finite number >= 0`);
    }
    return { s, f };
  }
}
