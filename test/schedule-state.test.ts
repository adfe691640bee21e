import { describe, expect, it } from 'vitest';
import {
  CosineAnnealingLR,
  CosineAnnealingWarmRestarts,
  ExponentialLR,
  InverseTimeLR,
  LambdaLR,
  LinearLR,
  MultiStepLR,
  OptimStateError,
  PolynomialLR,
  ReduceLROnPlateau,
  SequentialLR,
  SGD,
  StepLR,
  param,
} from '../src/index.js';
import type { LRScheduler, ScheduledGroup, SchedulerStateDict } from '../src/index.js';

/** A fresh SGD with two groups; the same names every time, so optimizer state dicts load. */
function makeOpt(): SGD {
  return new SGD(
    [
      { params: [param(Float64Array.from([1, 2]), 'w')], lr: 0.1 },
      { params: [param(Float64Array.from([3]), 'b')], lr: 0.5 },
    ],
    { lr: 0.1, momentum: 0.9 },
  );
}

const BUILDERS: Array<[string, (opt: SGD) => LRScheduler]> = [
  ['StepLR', (o) => new StepLR(o, { stepSize: 3, gamma: 0.5 })],
  ['MultiStepLR', (o) => new MultiStepLR(o, { milestones: [2, 7, 9], gamma: 0.2 })],
  ['ExponentialLR', (o) => new ExponentialLR(o, { gamma: 0.8 })],
  ['CosineAnnealingLR', (o) => new CosineAnnealingLR(o, { tMax: 5, etaMin: 0.01 })],
  ['CosineAnnealingWarmRestarts', (o) => new CosineAnnealingWarmRestarts(o, { t0: 2, tMult: 2, etaMin: 0.001 })],
  ['LinearLR', (o) => new LinearLR(o, { startFactor: 0.2, totalIters: 8 })],
  ['PolynomialLR', (o) => new PolynomialLR(o, { totalIters: 10, power: 1.5 })],
  ['LambdaLR', (o) => new LambdaLR(o, { lrLambda: [(t) => 0.9 ** t, (t) => 1 / (t + 1)] })],
  ['InverseTimeLR', (o) => new InverseTimeLR(o, { decayRate: 0.5, decaySteps: 3, staircase: true })],
  [
    'SequentialLR',
    (o) =>
      new SequentialLR(o, {
        schedulers: [
          new LinearLR(o, { startFactor: 0.1, totalIters: 3 }),
          new CosineAnnealingWarmRestarts(o, { t0: 3 }),
          new ExponentialLR(o, { gamma: 0.7 }),
        ],
        milestones: [3, 8],
      }),
  ],
];

const TOTAL = 14;

/** Steps the optimizer (so it has momentum state) and the scheduler; returns the lrs per epoch. */
function train(opt: SGD, sched: LRScheduler, from: number, to: number): number[][] {
  const rows: number[][] = [];
  for (let e = from; e < to; e++) {
    for (const g of opt.paramGroups) for (const p of g.params) p.grad.fill(e + 1);
    opt.step();
    sched.step();
    rows.push(opt.paramGroups.map((g) => g.lr));
  }
  return rows;
}

/** A JSON round trip: state dicts hold plain numbers and arrays only. */
function viaJson<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

describe.each(BUILDERS)('%s state dict', (_name, build) => {
  it.each([
    ['scheduler first', true],
    ['optimizer first', false],
  ])('resuming after 5 epochs equals the uninterrupted run, bit for bit (%s)', (_order, schedulerFirst) => {
    const opt = makeOpt();
    const sched = build(opt);
    const whole = train(opt, sched, 0, TOTAL);

    const opt1 = makeOpt();
    const sched1 = build(opt1);
    const head = train(opt1, sched1, 0, 5);
    const savedOpt = opt1.stateDict();
    const savedSched = viaJson(sched1.stateDict());

    const opt2 = makeOpt();
    const sched2 = build(opt2);
    if (schedulerFirst) {
      sched2.loadStateDict(savedSched);
      opt2.loadStateDict(savedOpt);
    } else {
      opt2.loadStateDict(savedOpt);
      sched2.loadStateDict(savedSched);
    }
    expect(sched2.lastEpoch).toBe(5);
    expect(sched2.getLastLr()).toEqual(head[4]);
    const tail = train(opt2, sched2, 5, TOTAL);
    expect([...head, ...tail]).toEqual(whole);
    expect(opt2.paramGroups.map((g) => (g as ScheduledGroup).initialLr)).toEqual([0.1, 0.5]);
  });

  it('is a copy: later steps do not change it', () => {
    const opt = makeOpt();
    const sched = build(opt);
    train(opt, sched, 0, 2);
    const sd = sched.stateDict();
    const before = viaJson(sd);
    train(opt, sched, 2, 6);
    expect(sd).toEqual(before);
  });
});

describe('loadStateDict refuses, changing nothing', () => {
  function refused(sd: unknown, pattern: RegExp): void {
    const opt = makeOpt();
    const sched = new CosineAnnealingWarmRestarts(opt, { t0: 3 });
    train(opt, sched, 0, 2);
    const before = { sched: sched.stateDict(), lrs: opt.paramGroups.map((g) => g.lr) };
    expect(() => sched.loadStateDict(sd as SchedulerStateDict)).toThrow(OptimStateError);
    expect(() => sched.loadStateDict(sd as SchedulerStateDict)).toThrow(pattern);
    expect({ sched: sched.stateDict(), lrs: opt.paramGroups.map((g) => g.lr) }).toEqual(before);
  }

  function good(): SchedulerStateDict {
    const opt = makeOpt();
    const sched = new CosineAnnealingWarmRestarts(opt, { t0: 3 });
    train(opt, sched, 0, 4);
    return sched.stateDict();
  }

  it('a dict of another scheduler', () => {
    const opt = makeOpt();
    refused(new StepLR(opt, { stepSize: 2 }).stateDict(), /saved by "StepLR", not by CosineAnnealingWarmRestarts/);
  });

  it('not an object', () => refused(null, /expected an object, got null/));
  it('a wrong group count', () => refused({ ...good(), baseLrs: [0.1] }, /baseLrs must be an array of 2 numbers/));
  it('a negative lr', () => refused({ ...good(), lastLr: [0.1, -1] }, /lastLr\[1\] must be a finite number >= 0/));
  it('a fractional epoch', () => refused({ ...good(), lastEpoch: 2.5 }, /lastEpoch must be an integer >= -1/));
  it('a missing extra field', () => refused({ ...good(), tCur: undefined }, /tCur must be an integer >= 0/));
  it('an inconsistent phase', () => refused({ ...good(), tCur: 3, tI: 3 }, /tCur \(3\) must be less than tI \(3\)/));

  it('SequentialLR: a bad nested dict, before restoring anything', () => {
    const build = BUILDERS.find(([n]) => n === 'SequentialLR')![1];
    const opt = makeOpt();
    const sched = build(opt) as SequentialLR;
    train(opt, sched, 0, 4);
    const saved = sched.stateDict();
    train(opt, sched, 4, 9);
    const before = sched.stateDict();
    const bad = { ...saved, schedulers: [...(saved.schedulers as SchedulerStateDict[])] };
    bad.schedulers[2] = { ...bad.schedulers[2], lastEpoch: -3 };
    expect(() => sched.loadStateDict(bad)).toThrow(/ExponentialLR.loadStateDict: lastEpoch must be an integer >= -1/);
    expect(sched.stateDict()).toEqual(before);
    expect(() => sched.loadStateDict({ ...saved, schedulers: [] })).toThrow(/schedulers must be an array of 3 state dicts/);
    expect(sched.stateDict()).toEqual(before);
  });
});

describe('ReduceLROnPlateau state dict', () => {
  const metrics = [5, 4, 4, 4.5, 4.2, 4, 3, 3, 3.1, 3.05, 3, 3, 2.9, 2.95, 3];

  function build(opt: SGD): ReduceLROnPlateau {
    return new ReduceLROnPlateau(opt, { patience: 1, cooldown: 1, factor: 0.5, minLr: [0.01, 0.1] });
  }

  it('resuming mid-run equals the uninterrupted run, through JSON (best as null before any metric)', () => {
    const opt = makeOpt();
    const sched = build(opt);
    const whole = metrics.map((m) => {
      sched.step(m);
      return opt.paramGroups.map((g) => g.lr);
    });

    const fresh = build(makeOpt()).stateDict();
    expect(fresh.best).toBeNull();
    expect(JSON.parse(JSON.stringify(fresh))).toEqual(fresh);

    const opt1 = makeOpt();
    const sched1 = build(opt1);
    const head = metrics.slice(0, 7).map((m) => {
      sched1.step(m);
      return opt1.paramGroups.map((g) => g.lr);
    });
    const saved = viaJson(sched1.stateDict());
    const opt2 = makeOpt();
    const sched2 = build(opt2);
    sched2.loadStateDict(saved);
    expect(sched2.lastEpoch).toBe(7);
    expect(sched2.best).toBe(3);
    const tail = metrics.slice(7).map((m) => {
      sched2.step(m);
      return opt2.paramGroups.map((g) => g.lr);
    });
    expect([...head, ...tail]).toEqual(whole);
  });

  it('refuses a dict of another kind', () => {
    const opt = makeOpt();
    const sched = build(opt);
    expect(() => sched.loadStateDict(new StepLR(opt, { stepSize: 1 }).stateDict() as never)).toThrow(OptimStateError);
  });
});
