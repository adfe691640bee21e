import { describe, expect, it } from 'vitest';
import {
  CosineAnnealingLR,
  ExponentialLR,
  LinearLR,
  OptimRangeError,
  OptimTypeError,
  ReduceLROnPlateau,
  SequentialLR,
  SGD,
  StepLR,
  param,
} from '../src/index.js';
import type { LRScheduler, SequentialLROptions } from '../src/index.js';

function sgd(...lrs: number[]): SGD {
  return new SGD(
    lrs.map((lr, i) => ({ params: [param(new Float64Array(1), `p${i}`)], lr })),
    { lr: 1 },
  );
}

function lrs(opt: SGD, sched: LRScheduler, epochs: number): number[][] {
  const rows = [opt.paramGroups.map((g) => g.lr)];
  for (let e = 0; e < epochs; e++) {
    sched.step();
    rows.push(opt.paramGroups.map((g) => g.lr));
  }
  return rows;
}

function expectRows(actual: number[][], expected: number[][]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, t) => row.forEach((v, i) => expect(v, `epoch ${t}, group ${i}`).toBeCloseTo(expected[t][i], 14)));
}

describe('SequentialLR', () => {
  it('warm-up then exponential decay; the second restarts from the base lr at its milestone', () => {
    const opt = sgd(1);
    const warmup = new LinearLR(opt, { startFactor: 0.1, totalIters: 3 });
    const decay = new ExponentialLR(opt, { gamma: 0.5 });
    const sched = new SequentialLR(opt, { schedulers: [warmup, decay], milestones: [3] });
    expect(sched.getLastLr()).toEqual([0.1]);
    expectRows(lrs(opt, sched, 6), [[0.1], [0.4], [0.7], [1], [0.5], [0.25], [0.125]]);
    expect(sched.lastEpoch).toBe(6);
    expect(decay.lastEpoch).toBe(3);
  });

  it('undoes every sub-scheduler’s initial step (torch ≥ 2.0; 1.13 started at 0.5 here)', () => {
    const opt = sgd(1);
    const first = new ExponentialLR(opt, { gamma: 0.9 });
    const second = new LinearLR(opt, { startFactor: 0.5, totalIters: 2 });
    expect(opt.paramGroups[0].lr).toBe(0.5);
    const sched = new SequentialLR(opt, { schedulers: [first, second], milestones: [2] });
    expectRows(lrs(opt, sched, 5), [[1], [0.9], [0.5], [0.75], [1], [1]]);
  });

  it('three schedulers over two groups, each phase a closed form of its own epoch', () => {
    const opt = sgd(0.2, 1);
    const sched = new SequentialLR(opt, {
      schedulers: [
        new LinearLR(opt, { startFactor: 0.5, totalIters: 2 }),
        new StepLR(opt, { stepSize: 2, gamma: 0.1 }),
        new CosineAnnealingLR(opt, { tMax: 4, etaMin: 0.01 }),
      ],
      milestones: [2, 6],
    });
    const phase = (b: number, t: number) =>
      t < 2
        ? b * (0.5 + (0.5 * t) / 2)
        : t < 6
          ? b * 0.1 ** Math.floor((t - 2) / 2)
          : 0.01 + ((b - 0.01) * (1 + Math.cos((Math.PI * (t - 6)) / 4))) / 2;
    const rows = lrs(opt, sched, 12);
    expectRows(rows, rows.map((_, t) => [phase(0.2, t), phase(1, t)]));
  });

  it('nests: a SequentialLR inside a SequentialLR', () => {
    const opt = sgd(1);
    const inner = new SequentialLR(opt, {
      schedulers: [new LinearLR(opt, { startFactor: 0.25, totalIters: 1 }), new ExponentialLR(opt, { gamma: 0.5 })],
      milestones: [1],
    });
    const outer = new SequentialLR(opt, {
      schedulers: [inner, new StepLR(opt, { stepSize: 1, gamma: 0.1 })],
      milestones: [3],
    });
    expectRows(lrs(opt, outer, 5), [[0.25], [1], [0.5], [1], [0.1], [0.01]]);
  });

  it('lastEpoch resumes inside the right phase', () => {
    const build = (opt: SGD, lastEpoch?: number) =>
      new SequentialLR(opt, {
        schedulers: [new LinearLR(opt, { startFactor: 0.1, totalIters: 2 }), new ExponentialLR(opt, { gamma: 0.5 })],
        milestones: [2],
        lastEpoch,
      });
    const a = sgd(1);
    const whole = lrs(a, build(a), 5);
    const b = sgd(1);
    const resumed = build(b, 3);
    expect(resumed.lastEpoch).toBe(4);
    expect(b.paramGroups[0].lr).toBeCloseTo(whole[4][0], 15);
  });
});

describe('SequentialLR refuses', () => {
  const opt = sgd(1);
  const a = new StepLR(opt, { stepSize: 1 });
  const b = new ExponentialLR(opt, { gamma: 0.9 });
  const other = new ExponentialLR(sgd(1), { gamma: 0.9 });
  it.each([
    ['no schedulers', { schedulers: [], milestones: [] }, OptimTypeError, /options.schedulers must be a non-empty array/],
    ['a ReduceLROnPlateau', { schedulers: [a, new ReduceLROnPlateau(opt)], milestones: [2] }, OptimTypeError, /schedulers\[1\].*ReduceLROnPlateau cannot be sequenced/],
    ['another optimizer', { schedulers: [a, other], milestones: [2] }, OptimRangeError, /schedulers\[1\] is built on another optimizer/],
    ['too many milestones', { schedulers: [a, b], milestones: [2, 4] }, OptimRangeError, /one entry fewer than options.schedulers \(1\), got 2/],
    ['milestones not increasing', { schedulers: [a, b, a], milestones: [4, 4] }, OptimRangeError, /milestones\[1\] must be an integer >= 5/],
    ['a milestone at 0', { schedulers: [a, b], milestones: [0] }, OptimRangeError, /milestones\[0\] must be an integer >= 1/],
    ['a missing key', { schedulers: [a, b] }, OptimTypeError, /options.milestones is required/],
    ['an unknown key', { schedulers: [a], milestones: [], warmup: 3 }, OptimTypeError, /unknown option "warmup"/],
  ])('%s', (_name, options, cls, pattern) => {
    const before = opt.paramGroups[0].lr;
    expect(() => new SequentialLR(opt, options as unknown as SequentialLROptions)).toThrow(cls);
    expect(() => new SequentialLR(opt, options as unknown as SequentialLROptions)).toThrow(pattern);
    expect(opt.paramGroups[0].lr).toBe(before);
  });
});
