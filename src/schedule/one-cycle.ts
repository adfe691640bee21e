import { OptimRangeError, OptimStateError, OptimTypeError } from '../errors.js';
import { MomentumScheduler, readMomentumCycle } from './momentum.js';
import { choice, flag, inRange, integer, nonNegative, optional, perGroupList, readOptions } from './options.js';
import type { SchedulableOptimizer, SchedulerOptions } from './scheduler.js';
import { checkOptimizer, perGroup } from './validate.js';

export interface OneCycleLROptions extends SchedulerOptions {
  /** The peak lr, one for every group or one per group (required). */
  maxLr: number | readonly number[];
  /** Steps in the cycle; or give epochs and stepsPerEpoch (totalSteps = their product). */
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** The fraction of the steps spent rising, in [0, 1] (default 0.3). */
  pctStart?: number;
  /** 'cos' or 'linear' (default 'cos'). */
  annealStrategy?: 'cos' | 'linear';
  /** Cycle the momentum inversely to the lr (default true). */
  cycleMomentum?: boolean;
  /** The momentum at the lr's peak, one for every group or one per group (default 0.85). */
  baseMomentum?: number | readonly number[];
  /** The momentum at the start and the end, one for every group or one per group (default 0.95). */
  maxMomentum?: number | readonly number[];
  /** The starting lr is maxLr / divFactor (default 25). */
  divFactor?: number;
  /** The final lr is the starting lr / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
  /** Three phases (up, back down to the start, then to the final lr) instead of two (default false). */
  threePhase?: boolean;
}

type LrPoint = 'initial' | 'max' | 'min';
type MomentumPoint = 'base' | 'max';

/** A phase ends at step `end` (a double, as torch computes it); the lr and momentum move between two points. */
interface Phase {
  readonly end: number;
  readonly lr: readonly [LrPoint, LrPoint];
  readonly momentum: readonly [MomentumPoint, MomentumPoint];
}

/** torch's annealing from `start` to `end` at fraction `pct`. */
const ANNEAL = {
  cos: (start: number, end: number, pct: number) => end + ((start - end) / 2.0) * (Math.cos(Math.PI * pct) + 1),
  linear: (start: number, end: number, pct: number) => (end - start) * pct + start,
} as const;

/** torch's phases for `pct` = pctStart of `T` total steps. */
function phasesOf(pct: number, T: number, threePhase: boolean): Phase[] {
  if (threePhase) {
    return [
      { end: pct * T - 1, lr: ['initial', 'max'], momentum: ['max', 'base'] },
      { end: 2 * pct * T - 2, lr: ['max', 'initial'], momentum: ['base', 'max'] },
      { end: T - 1, lr: ['initial', 'min'], momentum: ['max', 'max'] },
    ];
  }
  return [
    { end: pct * T - 1, lr: ['initial', 'max'], momentum: ['max', 'base'] },
    { end: T - 1, lr: ['max', 'min'], momentum: ['base', 'max'] },
  ];
}

/**
 * Refuses phases that some step 0..T would enter with zero length (torch divides by zero
 * there: pctStart · totalSteps = 1, or pctStart = 1 with two phases).
 */
function checkPhases(phases: readonly Phase[], T: number, pct: number): void {
  let prevMax = -Infinity;
  phases.forEach((phase, i) => {
    const start = i === 0 ? 0 : phases[i - 1].end;
    const first = i === 0 ? 0 : Math.max(0, Math.floor(prevMax) + 1);
    const entered = first <= T && (i === phases.length - 1 || first <= phase.end);
    if (entered && phase.end - start === 0) {
      throw new OptimRangeError(
        `OneCycleLR: options.pctStart ${pct} with ${T} total steps gives phase ${i + 1} of the schedule zero length (it starts and ends at step ${start}); choose another pctStart`,
      );
    }
    prevMax = Math.max(prevMax, phase.end);
  });
}

/**
 * The 1cycle policy (Smith & Topin, 2018), as torch.optim.lr_scheduler.OneCycleLR (torch 2.13):
 * the lr rises from maxLr/divFactor to maxLr over the first pctStart of totalSteps, then falls
 * to maxLr/(divFactor · finalDivFactor); the momentum moves the other way. At step s:
 *
 * ```
 * η_init = maxLr / divFactor,   η_min = η_init / finalDivFactor,   T = totalSteps
 * phases (end step, lr from → to, momentum from → to):
 *   two:   pctStart·T − 1: η_init → maxLr, m_max → m_base;    T − 1: maxLr → η_min, m_base → m_max
 *   three: pctStart·T − 1: η_init → maxLr, m_max → m_base;    2·pctStart·T − 2: maxLr → η_init, m_base → m_max;
 *          T − 1: η_init → η_min, m_max → m_max
 * the first phase with s <= its end (else the last), from the previous end (0 for the first):
 *   p = (s − start) / (end − start)
 *   cos:    a(x → y) = y + (x − y)/2 · (cos(π p) + 1)
 *   linear: a(x → y) = (y − x) · p + x
 * η_s = a(lr from → to),   m_s = a(momentum from → to)
 * ```
 *
 * Not chainable. Each group's `initialLr` is set to η_init (torch overwrites `initial_lr`).
 * Step T is allowed and extrapolates (p > 1; with 'linear' the lr there is below η_min, and
 * can be negative, as in torch); a step past T throws OptimRangeError and changes nothing. With
 * cycleMomentum the momentum goes into `momentum` (SGD, RMSprop) or `betas[0]` (the Adam
 * family); an optimizer with neither is refused. totalSteps, when given with epochs and
 * stepsPerEpoch, must equal their product; a pctStart that makes an entered phase empty
 * (where torch divides by zero) is refused.
 */
export class OneCycleLR extends MomentumScheduler {
  declare readonly totalSteps: number;
  declare readonly pctStart: number;
  declare readonly annealStrategy: 'cos' | 'linear';
  declare readonly cycleMomentum: boolean;
  declare readonly divFactor: number;
  declare readonly finalDivFactor: number;
  declare readonly threePhase: boolean;
  /** Each group's maxLr. */
  readonly maxLrs: readonly number[];
  private readonly phases: readonly Phase[];

  constructor(optimizer: SchedulableOptimizer, options: OneCycleLROptions) {
    const name = 'OneCycleLR';
    const { maxLr, baseMomentum, maxMomentum, totalSteps, epochs, stepsPerEpoch, ...rest } = readOptions(name, options, {
      maxLr: perGroupList(nonNegative()),
      totalSteps: optional(integer(1)),
      epochs: optional(integer(1)),
      stepsPerEpoch: optional(integer(1)),
      pctStart: inRange(0, 1, {}, 0.3),
      annealStrategy: choice(['cos', 'linear'] as const, 'cos'),
      cycleMomentum: flag(true),
      baseMomentum: perGroupList(nonNegative(), 0.85),
      maxMomentum: perGroupList(nonNegative(), 0.95),
      divFactor: inRange(0, Infinity, { minOpen: true }, 25),
      finalDivFactor: inRange(0, Infinity, { minOpen: true }, 1e4),
      threePhase: flag(false),
    });
    const T = totalStepsOf(totalSteps, epochs, stepsPerEpoch);
    const phases = phasesOf(rest.pctStart, T, rest.threePhase);
    checkPhases(phases, T, rest.pctStart);
    const groups = checkOptimizer(optimizer, name);
    const maxLrs = perGroup(maxLr, 'options.maxLr', name, groups.length);
    const cycle = readMomentumCycle(name, groups, rest.cycleMomentum, baseMomentum, maxMomentum);
    const fields = { ...rest, totalSteps: T };
    super(name, optimizer, fields, cycle);
    this.maxLrs = maxLrs;
    this.phases = phases;
    if (this.epoch === -1) {
      this.baseLrs = maxLrs.map((m) => m / this.divFactor);
      this.optimizer.paramGroups.forEach((g, i) => {
        g.initialLr = this.baseLrs[i];
      });
    }
    this.start();
  }

  override step(): void {
    this.checkStep(this.epoch + 1);
    super.step();
  }

  protected lrsAt(epoch: number, _current: readonly number[]): number[] {
    return this.closedForm(epoch);
  }

  protected closedForm(epoch: number): number[] {
    const { phase, pct } = this.phaseAt(epoch);
    const anneal = ANNEAL[this.annealStrategy];
    return this.baseLrs.map((initial, i) => {
      const at = { initial, max: this.maxLrs[i], min: initial / this.finalDivFactor };
      return anneal(at[phase.lr[0]], at[phase.lr[1]], pct);
    });
  }

  protected momentaAt(epoch: number): number[] {
    const { phase, pct } = this.phaseAt(epoch);
    const anneal = ANNEAL[this.annealStrategy];
    const { base, max } = this.cycle!;
    return base.map((b, i) => {
      const at = { base: b, max: max[i] };
      return anneal(at[phase.momentum[0]], at[phase.momentum[1]], pct);
    });
  }

  protected override prepareExtra(saved: Record<string, unknown>): () => void {
    const epoch = saved.lastEpoch as number;
    if (epoch > this.totalSteps) {
      throw new OptimStateError(`OneCycleLR.loadStateDict: lastEpoch (${epoch}) is past options.totalSteps (${this.totalSteps})`);
    }
    return super.prepareExtra(saved);
  }

  /** The phase step s falls in and the fraction p of it done. */
  private phaseAt(step: number): { phase: Phase; pct: number } {
    this.checkStep(step);
    const phases = this.phases;
    let start = 0.0;
    for (let i = 0; ; i++) {
      const phase = phases[i];
      if (step <= phase.end || i === phases.length - 1) return { phase, pct: (step - start) / (phase.end - start) };
      start = phase.end;
    }
  }

  private checkStep(step: number): void {
    if (step > this.totalSteps) {
      throw new OptimRangeError(
        `OneCycleLR: step ${step} is past options.totalSteps (${this.totalSteps}); the schedule ends there (torch allows step totalSteps itself, and raises after it)`,
      );
    }
  }
}

/** totalSteps, or epochs × stepsPerEpoch (both then required); all three given must agree. */
function totalStepsOf(totalSteps: number | undefined, epochs: number | undefined, stepsPerEpoch: number | undefined): number {
  const at = 'OneCycleLR: options.';
  if (epochs !== undefined && stepsPerEpoch !== undefined) {
    const product = epochs * stepsPerEpoch;
    if (!Number.isSafeInteger(product)) {
      throw new OptimRangeError(`${at}epochs × stepsPerEpoch must be a safe integer, got ${product}`);
    }
    if (totalSteps !== undefined && totalSteps !== product) {
      throw new OptimRangeError(`${at}totalSteps (${totalSteps}) must equal epochs × stepsPerEpoch (${epochs} × ${stepsPerEpoch} = ${product}) when all three are given`);
    }
    return product;
  }
  if (totalSteps !== undefined) return totalSteps;
  const given = epochs !== undefined ? ' (only options.epochs was given)' : stepsPerEpoch !== undefined ? ' (only options.stepsPerEpoch was given)' : '';
  throw new OptimTypeError(`${at}totalSteps is required, or both options.epochs and options.stepsPerEpoch${given}`);
}
