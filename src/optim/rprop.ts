import { defineKernel } from '../backend/kernel.js';
import type { StateArray } from '../backend/types.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { Optimizer } from './optimizer.js';
import type { GroupBase, OptimizerOptions, OptimizerSpec, ParamsInput } from './optimizer.js';
import { checkFinite, describe, path } from '../validate.js';
import type { Where } from '../validate.js';

/**
 * The Rprop kernel (native/kernels/rprop.h). State: prev (the last gradient used), stepSize.
 *
 * ```
 * g = sign·g;  f = η₊ if g·prev > 0, η₋ if < 0, 1 if = 0 (NaN stays NaN)
 * stepSize = clamp(stepSize·f, stepMin, stepMax);  g = 0 where f = η₋
 * p = p − sgn(g)·stepSize;  prev = g
 * ```
 */
export const RPROP_KERNEL = defineKernel({
  name: 'rprop',
  scalars: ['etaMinus', 'etaPlus', 'stepMin', 'stepMax', 'sign'],
  flags: [],
  state: [{ name: 'prev' }, { name: 'stepSize' }],
  reference(p, g, [prev, stepSize], s) {
    const { etaMinus, etaPlus, stepMin, stepMax, sign } = s;
    for (let i = 0; i < p.length; i++) {
      let gi = sign * g[i];
      const prod = gi * prev[i];
      const f = prod > 0 ? etaPlus : prod < 0 ? etaMinus : prod === 0 ? 1 : NaN;
      const x = stepSize[i] * f;
      stepSize[i] = x < stepMin ? stepMin : x > stepMax ? stepMax : x;
      if (f === etaMinus) gi = 0;
      const sgn = gi > 0 ? 1 : gi < 0 ? -1 : 0;
      p[i] = p[i] - sgn * stepSize[i];
      prev[i] = gi;
    }
  },
});

const K = RPROP_KERNEL;

export interface RpropOptions {
  lr?: number;
  /** (η₋, η₊): 0 < η₋ < 1 < η₊. */
  etas?: [number, number];
  /** (smallest, largest) step size. */
  stepSizes?: [number, number];
  maximize?: boolean;
}

export interface RpropGroup extends GroupBase, Required<RpropOptions> {}

const SPEC: OptimizerSpec<RpropGroup> = {
  name: 'Rprop',
  kernel: K,
  defaults: { lr: 1e-2, etas: [0.5, 1.2], stepSizes: [1e-6, 50], maximize: false },
  counters: ['step'],
};

/**
 * Rprop, as torch.optim.Rprop (torch 2.13): resilient backpropagation, a step size per element
 * that grows while the gradient keeps its sign and shrinks when it flips.
 *
 * ```
 * g_t = ∇f(θ_{t-1})                                   (−∇f when maximize)
 * η_t = η₊ if g_t·g_{t-1} > 0,  η₋ if < 0,  1 otherwise
 * Δ_t = clamp(η_t Δ_{t-1}, Δ_min, Δ_max)              (Δ_0 = γ)
 * g_t ← 0 where the sign flipped (η_t = η₋)
 * θ_t = θ_{t-1} − sign(g_t) Δ_t
 * ```
 *
 * Options (default): `lr` γ 1e-2 (the initial step size), `etas` [0.5, 1.2], `stepSizes`
 * [1e-6, 50], `maximize` false. State: `step`, `prev`, `stepSize`.
 *
 * Against the lecture-book form (Riedmiller & Braun 1993, Rprop−): the same rule; torch zeroes
 * the remembered gradient after a sign flip, so the next step neither grows nor shrinks.
 */
export class Rprop extends Optimizer<RpropGroup> {
  constructor(params: ParamsInput<RpropOptions>, options: RpropOptions & OptimizerOptions = {}) {
    super(params, options, SPEC);
  }

  protected override checkHyper(g: RpropGroup, where: Where): void {
    super.checkHyper(g, where);
    const pair = (v: unknown, key: string): [number, number] => {
      if (!Array.isArray(v) || v.length !== 2) {
        throw new OptimTypeError(`${path(where, key)} must be an array of two numbers, got ${describe(v)}`);
      }
      return [checkFinite(v[0], `${key}[0]`, where), checkFinite(v[1], `${key}[1]`, where)];
    };
    const [etaMinus, etaPlus] = pair(g.etas, 'etas');
    if (!(etaMinus > 0 && etaMinus < 1 && etaPlus > 1)) {
      throw new OptimRangeError(`Invalid eta values: ${etaMinus}, ${etaPlus} (${path(where, 'etas')} must satisfy 0 < etas[0] < 1 < etas[1])`);
    }
    const [lo, hi] = pair(g.stepSizes, 'stepSizes');
    if (!(lo >= 0 && hi >= lo)) {
      throw new OptimRangeError(`${path(where, 'stepSizes')} must satisfy 0 <= stepSizes[0] <= stepSizes[1], got ${lo}, ${hi}`);
    }
  }

  protected override initBuffer(name: string, view: StateArray, g: RpropGroup): StateArray {
    return name === 'stepSize' ? this.fillState(view, g.lr) : view;
  }

  protected override fillScalars(g: RpropGroup, _flags: number, _state: unknown, out: Float64Array): number {
    out[K.slot.etaMinus] = g.etas[0];
    out[K.slot.etaPlus] = g.etas[1];
    out[K.slot.stepMin] = g.stepSizes[0];
    out[K.slot.stepMax] = g.stepSizes[1];
    return 0;
  }
}
