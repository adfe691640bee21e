import { describe, expect, it } from 'vitest';
import {
  CosineAnnealingLR,
  CosineAnnealingWarmRestarts,
  ExponentialLR,
  InverseTimeLR,
  LambdaLR,
  LinearLR,
  MultiStepLR,
  OptimRangeError,
  OptimStateError,
  OptimTypeError,
  PolynomialLR,
  SGD,
  StepLR,
  param,
} from '../src/index.js';
import type { ScheduledGroup, SchedulableOptimizer } from '../src/index.js';

type Build = (opt: SchedulableOptimizer, options: unknown) => unknown;
type ErrorClass = typeof OptimTypeError | typeof OptimRangeError | typeof OptimStateError;

const make = {
  StepLR: (o, x) => new StepLR(o, x as never),
  MultiStepLR: (o, x) => new MultiStepLR(o, x as never),
  ExponentialLR: (o, x) => new ExponentialLR(o, x as never),
  CosineAnnealingLR: (o, x) => new CosineAnnealingLR(o, x as never),
  CosineAnnealingWarmRestarts: (o, x) => new CosineAnnealingWarmRestarts(o, x as never),
  LinearLR: (o, x) => new LinearLR(o, x as never),
  PolynomialLR: (o, x) => new PolynomialLR(o, x as never),
  LambdaLR: (o, x) => new LambdaLR(o, x as never),
  InverseTimeLR: (o, x) => new InverseTimeLR(o, x as never),
} satisfies Record<string, Build>;

function sgd(): SGD {
  return new SGD([{ params: [param(new Float64Array(1), 'a')], lr: 0.1 }, { params: [param(new Float64Array(1), 'b')], lr: 0.2 }], { lr: 1 });
}

const groupsOf = (opt: SGD) => opt.paramGroups.map((g) => ({ lr: g.lr, initialLr: (g as ScheduledGroup).initialLr }));

const CASES: Array<[keyof typeof make, unknown, ErrorClass, RegExp]> = [
  ['StepLR', { step_size: 3 }, OptimTypeError, /StepLR\(optimizer, options\): unknown option "step_size" \(known options: stepSize, gamma, lastEpoch\)/],
  ['StepLR', {}, OptimTypeError, /StepLR: options.stepSize is required/],
  ['StepLR', undefined, OptimTypeError, /StepLR: options.stepSize is required/],
  ['StepLR', 3, OptimTypeError, /options must be an object, got number/],
  ['StepLR', { stepSize: 0 }, OptimRangeError, /options.stepSize must be an integer >= 1, got 0/],
  ['StepLR', { stepSize: 1.5 }, OptimRangeError, /options.stepSize must be an integer >= 1, got 1.5/],
  ['StepLR', { stepSize: '3' }, OptimTypeError, /options.stepSize must be a number, got string/],
  ['StepLR', { stepSize: 3, gamma: -0.1 }, OptimRangeError, /options.gamma must be a finite number >= 0, got -0.1/],
  ['StepLR', { stepSize: 3, gamma: Infinity }, OptimRangeError, /options.gamma/],
  ['StepLR', { stepSize: 3, lastEpoch: -2 }, OptimRangeError, /options.lastEpoch must be an integer >= -1, got -2/],
  ['StepLR', { stepSize: 3, lastEpoch: 4 }, OptimStateError, /lastEpoch is 4 .*paramGroups\[0\]\.initialLr is not set/],
  ['MultiStepLR', { milestones: 3 }, OptimTypeError, /options.milestones must be an array of integers, got number/],
  ['MultiStepLR', { milestones: [2, -1] }, OptimRangeError, /options.milestones\[1\] must be an integer >= 0, got -1/],
  ['ExponentialLR', {}, OptimTypeError, /ExponentialLR: options.gamma is required/],
  ['ExponentialLR', { gamma: NaN }, OptimRangeError, /options.gamma must be a finite number >= 0, got NaN/],
  ['CosineAnnealingLR', { T_max: 10 }, OptimTypeError, /unknown option "T_max"/],
  ['CosineAnnealingLR', { tMax: 0 }, OptimRangeError, /options.tMax must be an integer >= 1, got 0/],
  ['CosineAnnealingLR', { tMax: 10, etaMin: -1 }, OptimRangeError, /options.etaMin must be a finite number >= 0/],
  ['CosineAnnealingWarmRestarts', { t0: 0 }, OptimRangeError, /options.t0 must be an integer >= 1, got 0/],
  ['CosineAnnealingWarmRestarts', { t0: 2, tMult: 1.5 }, OptimRangeError, /options.tMult must be an integer >= 1, got 1.5/],
  ['CosineAnnealingWarmRestarts', { T_0: 2 }, OptimTypeError, /unknown option "T_0"/],
  ['LinearLR', { startFactor: 0 }, OptimRangeError, /options.startFactor must be a finite number > 0 and <= 1, got 0/],
  ['LinearLR', { startFactor: 1.5 }, OptimRangeError, /options.startFactor must be a finite number > 0 and <= 1, got 1.5/],
  ['LinearLR', { endFactor: -0.1 }, OptimRangeError, /options.endFactor must be a finite number >= 0 and <= 1/],
  ['LinearLR', { totalIters: 0 }, OptimRangeError, /options.totalIters must be an integer >= 1/],
  ['PolynomialLR', { power: -1 }, OptimRangeError, /options.power must be a finite number >= 0/],
  ['PolynomialLR', { totalIters: 2.5 }, OptimRangeError, /options.totalIters must be an integer >= 1, got 2.5/],
  ['LambdaLR', {}, OptimTypeError, /LambdaLR: options.lrLambda is required/],
  ['LambdaLR', { lrLambda: 0.5 }, OptimTypeError, /options.lrLambda must be a function of the epoch, got number/],
  ['LambdaLR', { lrLambda: [() => 1] }, OptimRangeError, /options.lrLambda has 1 entries but the optimizer has 2 parameter groups/],
  ['LambdaLR', { lrLambda: [() => 1, null] }, OptimTypeError, /options.lrLambda\[1\] must be a function/],
  ['LambdaLR', { lrLambda: () => -1 }, OptimRangeError, /LambdaLR: lrLambda\(0\) returned -1; it must return a finite number >= 0/],
  ['InverseTimeLR', { decayRate: 1, decaySteps: 0 }, OptimRangeError, /options.decaySteps must be a finite number > 0, got 0/],
  ['InverseTimeLR', { decayRate: 1, staircase: 1 }, OptimTypeError, /options.staircase must be a boolean, got number/],
  ['InverseTimeLR', { decay_rate: 1 }, OptimTypeError, /unknown option "decay_rate"/],
];

describe('constructors refuse bad options, changing no group', () => {
  it.each(CASES)('%s %o', (name, options, cls, pattern) => {
    const opt = sgd();
    const before = groupsOf(opt);
    expect(() => make[name](opt, options)).toThrow(cls);
    expect(() => make[name](opt, options)).toThrow(pattern);
    expect(groupsOf(opt)).toEqual(before);
  });

  it.each([
    ['null', null, OptimTypeError, /optimizer must be an optimizer, got null/],
    ['no groups', { paramGroups: [] }, OptimTypeError, /optimizer.paramGroups must be a non-empty array/],
    ['a negative lr', { paramGroups: [{ lr: -1 }] }, OptimRangeError, /optimizer.paramGroups\[0\].lr must be a finite number >= 0, got -1/],
    ['a bad initialLr', { paramGroups: [{ lr: 1, initialLr: NaN }] }, OptimRangeError, /paramGroups\[0\].initialLr must be a finite number >= 0/],
  ])('an optimizer with %s', (_n, optimizer, cls, pattern) => {
    expect(() => new StepLR(optimizer as unknown as SchedulableOptimizer, { stepSize: 1 })).toThrow(cls);
    expect(() => new StepLR(optimizer as unknown as SchedulableOptimizer, { stepSize: 1 })).toThrow(pattern);
  });
});

describe('step() refuses, changing nothing', () => {
  it('a group added after the scheduler was built', () => {
    const opt = sgd();
    const sched = new ExponentialLR(opt, { gamma: 0.5 });
    opt.addParamGroup({ params: [param(new Float64Array(1), 'late')], lr: 1 });
    const before = groupsOf(opt);
    expect(() => sched.step()).toThrow(OptimStateError);
    expect(() => sched.step()).toThrow(/the optimizer has 3 parameter groups but the scheduler was built for 2/);
    expect(groupsOf(opt)).toEqual(before);
    expect(sched.lastEpoch).toBe(0);
  });

  it('an lr set to something that is not a number', () => {
    const opt = sgd();
    const sched = new StepLR(opt, { stepSize: 1 });
    (opt.paramGroups[1] as { lr: unknown }).lr = '0.1';
    expect(() => sched.step()).toThrow(/optimizer.paramGroups\[1\].lr must be a number, got string/);
    expect(opt.paramGroups[0].lr).toBe(0.1);
    expect(sched.lastEpoch).toBe(0);
  });

  it('a lambda that returns a bad factor at some epoch', () => {
    const opt = sgd();
    const sched = new LambdaLR(opt, { lrLambda: [(t) => (t === 2 ? NaN : 1), () => 1] });
    sched.step();
    const before = groupsOf(opt);
    expect(() => sched.step()).toThrow(/lrLambda\[0\]\(2\) returned NaN/);
    expect(groupsOf(opt)).toEqual(before);
    expect(sched.lastEpoch).toBe(1);
  });
});
