import { describe, expect, it } from 'vitest';
import { CosineAnnealingLR, ExponentialLR, LinearLR, SGD, StepLR, param } from '../src/index.js';
import type { LRScheduler, SchedulableOptimizer } from '../src/index.js';
import { readGolden } from './helpers/golden.js';

/** A `sched_*.json` file (see test/golden/README.md). */
interface ScheduleGolden {
  kind: string;
  torch_call: string;
  base_lr: number;
  lr: number[];
}

function load(id: string): ScheduleGolden {
  return readGolden<ScheduleGolden>(`torch-1.13/${id}.json`);
}

/** Each file's torch call, and the same scheduler built through this library. */
const CASES: Array<[string, string, (opt: SchedulableOptimizer) => LRScheduler]> = [
  ['sched_step_lr', 'StepLR(opt, step_size=3, gamma=0.5)', (opt) => new StepLR(opt, { stepSize: 3, gamma: 0.5 })],
  ['sched_exponential_lr', 'ExponentialLR(opt, gamma=0.9)', (opt) => new ExponentialLR(opt, { gamma: 0.9 })],
  [
    'sched_cosine_annealing_lr',
    'CosineAnnealingLR(opt, T_max=10, eta_min=0.001)',
    (opt) => new CosineAnnealingLR(opt, { tMax: 10, etaMin: 0.001 }),
  ],
  [
    'sched_linear_lr_warmup',
    'LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=5)',
    (opt) => new LinearLR(opt, { startFactor: 0.1, endFactor: 1.0, totalIters: 5 }),
  ],
];

function expectClose(actual: number, expected: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs torch ${expected}`).toBeLessThanOrEqual(1e-15 * Math.abs(expected));
}

describe.each(CASES)('%s', (id, torchCall, build) => {
  const golden = load(id);

  it('is the torch call this case builds', () => {
    expect(golden.kind).toBe('lr_schedule');
    expect(golden.torch_call).toBe(torchCall);
  });

  it('gives torch 1.13 lr after each opt.step(); sched.step()', () => {
    const p = param(Float64Array.from([1, -2, 3]));
    const opt = new SGD([p], { lr: golden.base_lr });
    const sched = build(opt);
    expectClose(opt.paramGroups[0].lr, golden.lr[0], 'lr[0]');
    expect(sched.getLastLr()).toEqual([opt.paramGroups[0].lr]);
    for (let e = 1; e < golden.lr.length; e++) {
      p.grad.fill(0.5);
      opt.step();
      sched.step();
      expectClose(opt.paramGroups[0].lr, golden.lr[e], `lr[${e}]`);
      expect(sched.lastEpoch).toBe(e);
    }
  });

  it('moves the parameters by the scheduled lr', () => {
    const p = param(Float64Array.from([0]));
    const opt = new SGD([p], { lr: golden.base_lr });
    const sched = build(opt);
    let expected = 0;
    for (let e = 0; e < golden.lr.length - 1; e++) {
      p.grad[0] = 1;
      expected -= opt.paramGroups[0].lr;
      opt.step();
      sched.step();
    }
    expect(p.data[0]).toBeCloseTo(expected, 14);
  });
});
