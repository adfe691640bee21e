import { describe, expect, it } from 'vitest';
import {
  Adagrad,
  Adam,
  ChainedScheduler,
  ConstantLR,
  CyclicLR,
  ExponentialLR,
  LinearLR,
  MultiplicativeLR,
  OneCycleLR,
  OptimRangeError,
  OptimStateError,
  OptimTypeError,
  ReduceLROnPlateau,
  SequentialLR,
  SGD,
  StepLR,
  SWALR,
  param,
} from '../src/index.js';
import type { LRScheduler, ScheduledGroup, SchedulableOptimizer, SchedulerStateDict } from '../src/index.js';
import { readGolden } from './helpers/golden.js';

/** A torch 2.13 `sched_*.json` file (test/golden/torch-2.13/README.md, "lr_schedule"). */
interface ScheduleGolden {
  id: string;
  kind: string;
  scheduler: string;
  torch_call: string;
  optimizer_call: string;
  formula: string;
  steps: number;
  lr: number[];
  momentum?: number[];
  state_dict_at_30: Record<string, unknown>;
}

/** A group as the schedulers here write it. */
type Group = ScheduledGroup & { momentum?: number; betas?: [number, number] };

const groupOf = (opt: SchedulableOptimizer, i = 0): Group => opt.paramGroups[i] as Group;

/** The optimizer each file was recorded on: `SGD([p], lr=..., momentum=0.9)`, p without a gradient. */
function sgdFor(optimizerCall: string): SGD {
  const m = /^torch\.optim\.SGD\(\[p\], lr=([0-9.]+), momentum=([0-9.]+)\)$/.exec(optimizerCall);
  if (m === null) throw new Error(`unexpected optimizer_call ${optimizerCall}`);
  return new SGD([param(Float64Array.from([1, -2, 3]), 'p')], { lr: Number(m[1]), momentum: Number(m[2]) });
}

/** Each file's torch call, and the same scheduler built through this library. */
const CASES: Array<[string, string, (opt: SGD) => LRScheduler]> = [
  ['sched_one_cycle', 'OneCycleLR(opt, max_lr=1.0, total_steps=60)', (o) => new OneCycleLR(o, { maxLr: 1.0, totalSteps: 60 })],
  [
    'sched_cyclic_triangular',
    'CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=10)',
    (o) => new CyclicLR(o, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 10 }),
  ],
  ['sched_constant', 'ConstantLR(opt, factor=0.5, total_iters=10)', (o) => new ConstantLR(o, { factor: 0.5, totalIters: 10 })],
  [
    'sched_multiplicative',
    'MultiplicativeLR(opt, lr_lambda=<factor 0.95 each epoch>)',
    (o) => new MultiplicativeLR(o, { lrLambda: () => 0.95 }),
  ],
  [
    'sched_chained',
    'ChainedScheduler([ConstantLR(opt, factor=0.1, total_iters=5), ExponentialLR(opt, gamma=0.9)])',
    (o) => new ChainedScheduler([new ConstantLR(o, { factor: 0.1, totalIters: 5 }), new ExponentialLR(o, { gamma: 0.9 })]),
  ],
  [
    'sched_swalr',
    "SWALR(opt, swa_lr=0.01, anneal_epochs=10, anneal_strategy='cos')",
    (o) => new SWALR(o, { swaLr: 0.01, annealEpochs: 10, annealStrategy: 'cos' }),
  ],
];

const load = (id: string) => readGolden<ScheduleGolden>(`torch-2.13/${id}.json`);

/** torch's state-dict fields that this library keeps, under its names (options are not saved). */
function ourFields(torch: Record<string, unknown>): Record<string, unknown> {
  const names: Record<string, string> = { last_epoch: 'lastEpoch', base_lrs: 'baseLrs', _last_lr: 'lastLr' };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(torch)) {
    if (k in names) out[names[k]] = v;
    if (k === '_schedulers') out.schedulers = (v as Array<Record<string, unknown>>).map(ourFields);
  }
  return out;
}

/**
 * Where Math.cos is not glibc's. torch's schedulers call Python's math.cos (glibc), which is
 * correctly rounded at every argument these files use; V8's Math.cos (fdlibm) is 1 ulp off at
 * three of OneCycleLR's, pct = (s − 17)/(59 − 17) for steps s = 36, 49, 50:
 *   cos(π·19/42) = 0.14904226617617444 (V8) vs 0.14904226617617441 (glibc, correctly rounded)
 *   cos(π·32/42) = -0.733051871829826 vs -0.7330518718298261
 *   cos(π·33/42) = -0.7818314824680297 vs -0.7818314824680298
 * Those cosines are in [0.125, 1), where an ulp is at most 2^-53; the value is
 * end + (start − end)/2 · (cos + 1) with |start − end| <= 1, so the lr and momentum of those steps
 * may differ from torch's by 2^-54 plus their own rounding. Measured: the lr by 1.1e-16 at step 36
 * and 5.6e-17 at steps 49 and 50 (1, 2 and 4 ulps), the momentum not at all. Every other value,
 * and every other file, is reproduced exactly.
 */
const MATH_COS_OFF: Record<string, readonly number[]> = { sched_one_cycle: [36, 49, 50] };

/** The distance between x and the next double away from zero. */
const ulp = (x: number) => 2 ** (Math.floor(Math.log2(Math.abs(x))) - 52);

/** `actual` is torch's value: exactly, or within the cosine's error at an epoch listed in MATH_COS_OFF. */
function expectTorch(actual: number | undefined, expected: number, what: string, id: string, e: number): void {
  if (MATH_COS_OFF[id]?.includes(e)) {
    expect(Math.abs((actual as number) - expected), `${what}: ${actual} vs torch ${expected}`).toBeLessThanOrEqual(2 ** -54 + ulp(expected));
  } else {
    expect(actual, what).toBe(expected);
  }
}

/** lr (and momentum, where the file records it) of group 0 after each epoch, epochs from..to. */
function replay(opt: SGD, sched: LRScheduler, from: number, to: number, golden: ScheduleGolden): void {
  for (let e = from; e <= to; e++) {
    if (e > from) {
      opt.step();
      sched.step();
    }
    expectTorch(opt.paramGroups[0].lr, golden.lr[e], `lr[${e}]`, golden.id, e);
    if (golden.momentum) expectTorch(groupOf(opt).momentum, golden.momentum[e], `momentum[${e}]`, golden.id, e);
  }
}

/*
 * The schedules are scalar double arithmetic, done here in torch's order, so the recorded values
 * are reproduced exactly (toBe), but for the one Math.cos above.
 */
describe.each(CASES)('%s (torch 2.13)', (id, torchCall, build) => {
  const golden = load(id);

  it('is the torch call this case builds', () => {
    expect(golden.kind).toBe('lr_schedule');
    expect(golden.torch_call).toBe(torchCall);
    expect(golden.lr.length).toBe(golden.steps + 1);
    if (golden.momentum) expect(golden.momentum.length).toBe(golden.steps + 1);
  });

  it('gives torch’s lr (and momentum) after construction and after each opt.step(); sched.step()', () => {
    const opt = sgdFor(golden.optimizer_call);
    const sched = build(opt);
    expect(sched.getLastLr()).toEqual([opt.paramGroups[0].lr]);
    replay(opt, sched, 0, golden.steps, golden);
    expect(sched.lastEpoch).toBe(golden.steps);
  });

  it('has torch’s state after 30 steps, in its own names', () => {
    const opt = sgdFor(golden.optimizer_call);
    const sched = build(opt);
    for (let e = 0; e < 30; e++) sched.step();
    const want = ourFields(golden.state_dict_at_30);
    expect(Object.keys(want)).toEqual(expect.arrayContaining(['lastLr']));
    expect(sched.stateDict()).toMatchObject(want);
  });

  it.each([
    ['scheduler first', true],
    ['optimizer first', false],
  ])('resumes from a state dict after 30 steps exactly as torch runs on (%s)', (_order, schedulerFirst) => {
    const opt1 = sgdFor(golden.optimizer_call);
    const sched1 = build(opt1);
    for (let e = 0; e < 30; e++) {
      opt1.step();
      sched1.step();
    }
    const savedSched = JSON.parse(JSON.stringify(sched1.stateDict())) as SchedulerStateDict;
    const savedOpt = opt1.stateDict();

    const opt2 = sgdFor(golden.optimizer_call);
    const sched2 = build(opt2);
    if (schedulerFirst) {
      sched2.loadStateDict(savedSched);
      opt2.loadStateDict(savedOpt);
    } else {
      opt2.loadStateDict(savedOpt);
      sched2.loadStateDict(savedSched);
    }
    expect(sched2.lastEpoch).toBe(30);
    expect(sched2.stateDict()).toEqual(savedSched);
    replay(opt2, sched2, 30, golden.steps, golden);
  });
});

describe('momentum cycling', () => {
  const cyclic = load('sched_cyclic_triangular');
  const oneCycle = load('sched_one_cycle');

  function adam(): Adam {
    return new Adam([param(Float64Array.from([1, 2]), 'w')], { lr: 0.1, betas: [0.9, 0.999] });
  }

  it.each([
    ['CyclicLR', cyclic, (o: Adam) => new CyclicLR(o, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 10 })],
    ['OneCycleLR', oneCycle, (o: Adam) => new OneCycleLR(o, { maxLr: 1.0, totalSteps: 60 })],
  ] as const)('%s on Adam cycles betas[0] as torch cycles it on SGD’s momentum, betas[1] untouched', (_name, golden, build) => {
    const opt = adam();
    const sched = build(opt);
    const g = groupOf(opt);
    expect(g).not.toHaveProperty('momentum');
    expect(sched.momentumKey).toBe('betas');
    for (let e = 0; e <= golden.steps; e++) {
      if (e > 0) {
        for (const p of opt.paramGroups[0].params) p.grad.fill(0.25);
        opt.step();
        sched.step();
      }
      expectTorch(g.lr, golden.lr[e], `lr[${e}]`, golden.id, e);
      expectTorch(g.betas![0], golden.momentum![e], `betas[${e}][0]`, golden.id, e);
      expect(g.betas![1]).toBe(0.999);
    }
  });

  it('SGD: the momentum, not betas; the same run as the recording', () => {
    const opt = sgdFor(cyclic.optimizer_call);
    const sched = new CyclicLR(opt, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 10 });
    expect(sched.momentumKey).toBe('momentum');
    expect(groupOf(opt)).not.toHaveProperty('betas');
    expect(groupOf(opt).momentum).toBe(0.9);
  });

  it('a state dict loaded into an Adam run sets betas[0] of the saved epoch', () => {
    const opt1 = adam();
    const sched1 = new CyclicLR(opt1, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 10 });
    for (let e = 0; e < 13; e++) sched1.step();
    const opt2 = adam();
    const sched2 = new CyclicLR(opt2, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 10 });
    sched2.loadStateDict(sched1.stateDict());
    expect(groupOf(opt2).betas).toEqual([cyclic.momentum![13], 0.999]);
    expect(groupOf(opt2).lr).toBe(cyclic.lr[13]);
  });

  it('cycleMomentum: false leaves the momentum alone', () => {
    const opt = sgdFor(cyclic.optimizer_call);
    const sched = new OneCycleLR(opt, { maxLr: 1, totalSteps: 60, cycleMomentum: false });
    for (let e = 0; e < 10; e++) sched.step();
    expect(groupOf(opt).momentum).toBe(0.9);
    expect(opt.paramGroups[0].lr).toBe(oneCycle.lr[10]);
    expect(sched.momentumKey).toBeNull();
  });

  it.each([
    ['CyclicLR', (o: SchedulableOptimizer) => new CyclicLR(o, { baseLr: 0.01, maxLr: 0.1 })],
    ['OneCycleLR', (o: SchedulableOptimizer) => new OneCycleLR(o, { maxLr: 0.1, totalSteps: 10 })],
  ] as const)('%s refuses an optimizer with neither momentum nor betas (Adagrad), as torch does; cycleMomentum: false takes it', (name, build) => {
    const opt = new Adagrad([param(Float64Array.from([1]), 'w')], { lr: 0.3 });
    expect(() => build(opt)).toThrow(OptimTypeError);
    expect(() => build(opt)).toThrow(
      new RegExp(`${name}: options.cycleMomentum is true but the optimizer's parameter groups have neither momentum \\(SGD, RMSprop\\) nor betas`),
    );
    expect(opt.paramGroups[0]).toMatchObject({ lr: 0.3 });
    expect(opt.paramGroups[0]).not.toHaveProperty('initialLr');
    const sched =
      name === 'CyclicLR'
        ? new CyclicLR(opt, { baseLr: 0.01, maxLr: 0.1, cycleMomentum: false })
        : new OneCycleLR(opt, { maxLr: 0.1, totalSteps: 10, cycleMomentum: false });
    sched.step();
    expect(opt.paramGroups[0].lr).toBeGreaterThan(0);
  });
});

describe('OneCycleLR past totalSteps', () => {
  it('step totalSteps is allowed (torch extrapolates), the next throws and changes nothing', () => {
    const golden = load('sched_one_cycle');
    const opt = sgdFor(golden.optimizer_call);
    const sched = new OneCycleLR(opt, { maxLr: 1.0, totalSteps: 60 });
    for (let e = 0; e < 60; e++) sched.step();
    expect(opt.paramGroups[0].lr).toBe(golden.lr[60]);
    const before = { group: { ...groupOf(opt) }, sd: sched.stateDict() };
    expect(() => sched.step()).toThrow(OptimRangeError);
    expect(() => sched.step()).toThrow(/OneCycleLR: step 61 is past options.totalSteps \(60\)/);
    expect({ group: { ...groupOf(opt) }, sd: sched.stateDict() }).toEqual(before);
    expect(sched.lastEpoch).toBe(60);
  });

  it('refuses lastEpoch and state dicts past the end', () => {
    const opt = sgdFor('torch.optim.SGD([p], lr=0.1, momentum=0.9)');
    const sched = new OneCycleLR(opt, { maxLr: 1.0, totalSteps: 10 });
    const sd = sched.stateDict();
    expect(() => sched.loadStateDict({ ...sd, lastEpoch: 11 })).toThrow(OptimStateError);
    expect(() => sched.loadStateDict({ ...sd, lastEpoch: 11 })).toThrow(/lastEpoch \(11\) is past options.totalSteps \(10\)/);
    expect(sched.stateDict()).toEqual(sd);
    expect(() => new OneCycleLR(opt, { maxLr: 1.0, totalSteps: 10, lastEpoch: 10 })).toThrow(/step 11 is past options.totalSteps \(10\)/);
    expect(sched.stateDict()).toEqual(sd);
  });
});

describe('ChainedScheduler', () => {
  function sgd(): SGD {
    return new SGD(
      [
        { params: [param(new Float64Array(1), 'a')], lr: 0.1 },
        { params: [param(new Float64Array(1), 'b')], lr: 0.4 },
      ],
      { lr: 1, momentum: 0.5 },
    );
  }

  it('composes chainable factors in order, per group: ConstantLR warm-up × MultiplicativeLR × StepLR', () => {
    const opt = sgd();
    const chain = new ChainedScheduler([
      new ConstantLR(opt, { factor: 0.25, totalIters: 3 }),
      new MultiplicativeLR(opt, { lrLambda: [() => 0.5, (t) => 1 / (t + 1)] }),
      new StepLR(opt, { stepSize: 4, gamma: 0.1 }),
    ]);
    expect(chain.schedulers.length).toBe(3);
    const lr = [0.1 * 0.25, 0.4 * 0.25];
    expect(opt.paramGroups.map((g) => g.lr)).toEqual(lr);
    for (let t = 1; t <= 10; t++) {
      chain.step();
      if (t === 3) for (let i = 0; i < 2; i++) lr[i] *= 1 / 0.25;
      lr[0] *= 0.5;
      lr[1] *= 1 / (t + 1);
      if (t % 4 === 0) for (let i = 0; i < 2; i++) lr[i] *= 0.1;
      expect(opt.paramGroups.map((g) => g.lr), `epoch ${t}`).toEqual(lr);
      expect(chain.getLastLr()).toEqual(lr);
      expect(chain.lastEpoch).toBe(t);
    }
  });

  it('a chain step is all or nothing: a OneCycleLR past its end puts back the schedulers stepped before it', () => {
    const opt = sgd();
    const exp = new ExponentialLR(opt, { gamma: 0.5 });
    const chain = new ChainedScheduler([exp, new OneCycleLR(opt, { maxLr: 1, totalSteps: 3 })], opt);
    for (let t = 0; t < 3; t++) chain.step();
    const before = { groups: opt.paramGroups.map((g) => ({ ...g })), sd: chain.stateDict() };
    expect(() => chain.step()).toThrow(/OneCycleLR: step 4 is past options.totalSteps \(3\)/);
    expect({ groups: opt.paramGroups.map((g) => ({ ...g })), sd: chain.stateDict() }).toEqual(before);
    expect(exp.lastEpoch).toBe(3);
  });

  it('nests a SequentialLR; refuses to be sequenced itself', () => {
    const opt = sgd();
    const seq = new SequentialLR(opt, {
      schedulers: [new LinearLR(opt, { startFactor: 0.5, totalIters: 2 }), new ExponentialLR(opt, { gamma: 0.5 })],
      milestones: [2],
    });
    const chain = new ChainedScheduler([seq, new MultiplicativeLR(opt, { lrLambda: () => 0.9 })]);
    const rows = [opt.paramGroups[0].lr];
    for (let t = 0; t < 4; t++) {
      chain.step();
      rows.push(opt.paramGroups[0].lr);
    }
    // LinearLR 0.05 → 0.075 → (milestone: ExponentialLR restarts at the base) 0.1 → ×0.5 ...; then ×0.9 each step.
    expect(rows).toEqual([0.05, 0.05 * (1 + 0.5 / (2 * 0.5)) * 0.9, 0.1 * 0.9, 0.1 * 0.9 * 0.5 * 0.9, 0.1 * 0.9 * 0.5 * 0.9 * 0.5 * 0.9]);
    const other = new ChainedScheduler([new StepLR(opt, { stepSize: 2 })]);
    expect(() => new SequentialLR(opt, { schedulers: [new StepLR(opt, { stepSize: 1 }), other], milestones: [2] })).toThrow(
      /options.schedulers\[1\] is a ChainedScheduler, which cannot be sequenced/,
    );
  });

  it.each([
    ['no schedulers', () => [], OptimTypeError, /ChainedScheduler: schedulers must be a non-empty array of schedulers, got Array/],
    ['not an array', () => 'x', OptimTypeError, /schedulers must be a non-empty array of schedulers, got string/],
    ['a ReduceLROnPlateau', (o: SGD) => [new StepLR(o, { stepSize: 1 }), new ReduceLROnPlateau(o)], OptimTypeError, /schedulers\[1\] .*ReduceLROnPlateau cannot be chained/],
    ['another optimizer', (o: SGD) => [new StepLR(o, { stepSize: 1 }), new StepLR(sgd(), { stepSize: 1 })], OptimRangeError, /schedulers\[1\] is built on another optimizer/],
  ] as const)('refuses %s', (_name, list, cls, pattern) => {
    const opt = sgd();
    const schedulers = list(opt) as unknown as LRScheduler[];
    const before = opt.paramGroups.map((g) => ({ ...g }));
    expect(() => new ChainedScheduler(schedulers)).toThrow(cls);
    expect(() => new ChainedScheduler(schedulers)).toThrow(pattern);
    expect(opt.paramGroups.map((g) => ({ ...g }))).toEqual(before);
  });

  it('refuses schedulers on another optimizer than the one given', () => {
    const opt = sgd();
    expect(() => new ChainedScheduler([new StepLR(opt, { stepSize: 1 })], sgd())).toThrow(/schedulers\[0\] is built on another optimizer/);
  });
});

describe('constructors refuse bad options, changing no group', () => {
  function sgd2(): SGD {
    return new SGD(
      [
        { params: [param(new Float64Array(1), 'a')], lr: 0.1 },
        { params: [param(new Float64Array(1), 'b')], lr: 0.2 },
      ],
      { lr: 1, momentum: 0.9 },
    );
  }
  function adam2(): Adam {
    return new Adam([{ params: [param(new Float64Array(1), 'a')] }, { params: [param(new Float64Array(1), 'b')], lr: 0.2 }], { lr: 0.1 });
  }
  const groupsOf = (opt: SchedulableOptimizer) =>
    opt.paramGroups.map((g) => {
      const { lr, initialLr, momentum, betas } = g as Group;
      return { lr, initialLr, momentum, betas };
    });

  type Make = (opt: SchedulableOptimizer, options: unknown) => unknown;
  const make = {
    OneCycleLR: (o, x) => new OneCycleLR(o, x as never),
    CyclicLR: (o, x) => new CyclicLR(o, x as never),
    ConstantLR: (o, x) => new ConstantLR(o, x as never),
    MultiplicativeLR: (o, x) => new MultiplicativeLR(o, x as never),
    SWALR: (o, x) => new SWALR(o, x as never),
  } satisfies Record<string, Make>;

  const CASES: Array<[keyof typeof make, unknown, typeof OptimTypeError | typeof OptimRangeError | typeof OptimStateError, RegExp, (() => SchedulableOptimizer)?]> = [
    ['OneCycleLR', {}, OptimTypeError, /^OneCycleLR: options.maxLr is required$/],
    ['OneCycleLR', { maxLr: 1 }, OptimTypeError, /OneCycleLR: options.totalSteps is required, or both options.epochs and options.stepsPerEpoch$/],
    ['OneCycleLR', { maxLr: 1, epochs: 3 }, OptimTypeError, /totalSteps is required, or both .* \(only options.epochs was given\)/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 0 }, OptimRangeError, /options.totalSteps must be an integer >= 1, got 0/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 2.5 }, OptimRangeError, /options.totalSteps must be an integer >= 1, got 2.5/],
    ['OneCycleLR', { maxLr: 1, epochs: 2, stepsPerEpoch: 0 }, OptimRangeError, /options.stepsPerEpoch must be an integer >= 1, got 0/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, epochs: 2, stepsPerEpoch: 4 }, OptimRangeError, /totalSteps \(10\) must equal epochs × stepsPerEpoch \(2 × 4 = 8\)/],
    ['OneCycleLR', { maxLr: -1, totalSteps: 10 }, OptimRangeError, /OneCycleLR: options.maxLr must be a finite number >= 0, got -1/],
    ['OneCycleLR', { maxLr: '1', totalSteps: 10 }, OptimTypeError, /options.maxLr must be a number or an array of numbers \(one per group\), got string/],
    ['OneCycleLR', { maxLr: [1], totalSteps: 10 }, OptimRangeError, /options.maxLr has 1 entries but the optimizer has 2 parameter groups/],
    ['OneCycleLR', { maxLr: [1, NaN], totalSteps: 10 }, OptimRangeError, /options.maxLr\[1\] must be a finite number >= 0, got NaN/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, pctStart: 1.5 }, OptimRangeError, /options.pctStart must be a finite number >= 0 and <= 1, got 1.5/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, pctStart: 0.1 }, OptimRangeError, /pctStart 0.1 with 10 total steps gives phase 1 of the schedule zero length/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, pctStart: 1 }, OptimRangeError, /pctStart 1 with 10 total steps gives phase 2 of the schedule zero length/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, annealStrategy: 'cosine' }, OptimRangeError, /options.annealStrategy must be one of 'cos', 'linear', got "cosine"/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, divFactor: 0 }, OptimRangeError, /options.divFactor must be a finite number > 0, got 0/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, finalDivFactor: Infinity }, OptimRangeError, /options.finalDivFactor must be a finite number > 0, got Infinity/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, threePhase: 'yes' }, OptimTypeError, /options.threePhase must be a boolean, got string/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, cycleMomentum: 1 }, OptimTypeError, /options.cycleMomentum must be a boolean, got number/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, baseMomentum: -0.1 }, OptimRangeError, /options.baseMomentum must be a finite number >= 0, got -0.1/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, maxMomentum: [0.9] }, OptimRangeError, /options.maxMomentum has 1 entries but the optimizer has 2 parameter groups/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, maxMomentum: 1 }, OptimRangeError, /OneCycleLR: options.maxMomentum must be a finite number >= 0 and < 1, got 1/, adam2],
    ['OneCycleLR', { max_lr: 1, total_steps: 10 }, OptimTypeError, /OneCycleLR\(optimizer, options\): unknown option "max_lr"/],
    ['OneCycleLR', { maxLr: 1, totalSteps: 10, lastEpoch: 3 }, OptimStateError, /lastEpoch is 3 .*paramGroups\[0\]\.initialLr is not set/],
    ['CyclicLR', {}, OptimTypeError, /^CyclicLR: options.baseLr is required$/],
    ['CyclicLR', { baseLr: 0.01 }, OptimTypeError, /^CyclicLR: options.maxLr is required$/],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 0 }, OptimRangeError, /options.stepSizeUp must be a finite number > 0, got 0/],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, stepSizeDown: -1 }, OptimRangeError, /options.stepSizeDown must be a finite number >= 0, got -1/],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, mode: 'exp' }, OptimRangeError, /options.mode must be one of 'triangular', 'triangular2', 'exp_range', got "exp"/],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, gamma: -1 }, OptimRangeError, /options.gamma must be a finite number >= 0, got -1/],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, scaleFn: 3 }, OptimTypeError, /options.scaleFn must be a function, got number/],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, scaleMode: 'epoch' }, OptimRangeError, /options.scaleMode must be one of 'cycle', 'iterations', got "epoch"/],
    ['CyclicLR', { baseLr: [0.01, 0.02, 0.03], maxLr: 0.1 }, OptimRangeError, /options.baseLr has 3 entries but the optimizer has 2 parameter groups/],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, baseMomentum: [0.8, '0.7'] }, OptimTypeError, /options.baseMomentum\[1\] must be a number, got string/],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, baseMomentum: [0.8, 1.2] }, OptimRangeError, /options.baseMomentum\[1\] must be a finite number >= 0 and < 1, got 1.2/, adam2],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, scaleFn: () => -1 }, OptimRangeError, /CyclicLR: scaleFn\(1\) returned -1; it must return a finite number >= 0/],
    ['CyclicLR', { baseLr: 0.01, maxLr: 0.1, scaleFn: () => 'x' }, OptimRangeError, /CyclicLR: scaleFn\(1\) returned string/],
    ['CyclicLR', { base_lr: 0.01, maxLr: 0.1 }, OptimTypeError, /unknown option "base_lr"/],
    ['ConstantLR', { factor: 0 }, OptimRangeError, /ConstantLR: options.factor must be a finite number > 0 and <= 1, got 0/],
    ['ConstantLR', { factor: 1.5 }, OptimRangeError, /options.factor must be a finite number > 0 and <= 1, got 1.5/],
    ['ConstantLR', { totalIters: 0 }, OptimRangeError, /options.totalIters must be an integer >= 1, got 0/],
    ['ConstantLR', { total_iters: 3 }, OptimTypeError, /unknown option "total_iters"/],
    ['MultiplicativeLR', {}, OptimTypeError, /^MultiplicativeLR: options.lrLambda is required$/],
    ['MultiplicativeLR', { lrLambda: 0.9 }, OptimTypeError, /options.lrLambda must be a function of the epoch, got number/],
    ['MultiplicativeLR', { lrLambda: [() => 1] }, OptimRangeError, /options.lrLambda has 1 entries but the optimizer has 2 parameter groups/],
    ['MultiplicativeLR', { lrLambda: [() => 1, 'f'] }, OptimTypeError, /options.lrLambda\[1\] must be a function of the epoch, got string/],
    ['SWALR', {}, OptimTypeError, /^SWALR: options.swaLr is required$/],
    ['SWALR', { swaLr: -0.1 }, OptimRangeError, /SWALR: options.swaLr must be a finite number >= 0, got -0.1/],
    ['SWALR', { swaLr: [0.1] }, OptimRangeError, /options.swaLr has 1 entries but the optimizer has 2 parameter groups/],
    ['SWALR', { swaLr: 0.1, annealEpochs: -1 }, OptimRangeError, /options.annealEpochs must be an integer >= 0, got -1/],
    ['SWALR', { swaLr: 0.1, annealEpochs: 2.5 }, OptimRangeError, /options.annealEpochs must be an integer >= 0, got 2.5/],
    ['SWALR', { swaLr: 0.1, annealStrategy: 'exp' }, OptimRangeError, /options.annealStrategy must be one of 'cos', 'linear', got "exp"/],
    ['SWALR', { swa_lr: 0.1 }, OptimTypeError, /unknown option "swa_lr"/],
  ];

  it.each(CASES)('%s %o', (name, options, cls, pattern, optimizer = sgd2) => {
    const opt = optimizer();
    const before = groupsOf(opt);
    expect(() => make[name](opt, options)).toThrow(cls);
    expect(() => make[name](opt, options)).toThrow(pattern);
    expect(groupsOf(opt)).toEqual(before);
  });

  it('a MultiplicativeLR factor that is not a finite number >= 0 refuses the step, changing nothing', () => {
    const opt = sgd2();
    const sched = new MultiplicativeLR(opt, { lrLambda: [(t) => (t === 2 ? Infinity : 0.5), () => 1] });
    sched.step();
    const before = groupsOf(opt);
    expect(() => sched.step()).toThrow(OptimRangeError);
    expect(() => sched.step()).toThrow(/MultiplicativeLR: lrLambda\[0\]\(2\) returned Infinity; it must return a finite number >= 0/);
    expect(groupsOf(opt)).toEqual(before);
    expect(sched.lastEpoch).toBe(1);
  });

  it('a CyclicLR scaleFn that fails at a later step refuses it, lr and momentum unchanged', () => {
    const opt = sgd2();
    const sched = new CyclicLR(opt, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 2, scaleFn: (x) => (x === 3 ? NaN : 1), scaleMode: 'iterations' });
    for (let t = 0; t < 2; t++) sched.step();
    const before = groupsOf(opt);
    expect(() => sched.step()).toThrow(/CyclicLR: scaleFn\(3\) returned NaN/);
    expect(groupsOf(opt)).toEqual(before);
    expect(sched.lastEpoch).toBe(2);
  });
});

/** |a − b| within a few roundings of `scale`: for formulas computed here another way. */
function expectNear(actual: number, expected: number, scale: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(4e-16 * scale);
}

/** Group i's lr (and momentum, betas[0] or momentum) after each of `epochs` steps, row 0 after construction. */
function rowsOf(opt: SchedulableOptimizer, sched: LRScheduler, epochs: number): Array<Array<{ lr: number; m: number | undefined }>> {
  const row = () => opt.paramGroups.map((g) => ({ lr: g.lr, m: (g as Group).betas?.[0] ?? (g as Group).momentum }));
  const rows = [row()];
  for (let t = 1; t <= epochs; t++) {
    sched.step();
    rows.push(row());
  }
  return rows;
}

describe('the modes the recordings lack, against their formulas computed another way', () => {
  function sgd2(momentum = 0.9): SGD {
    return new SGD(
      [
        { params: [param(new Float64Array(1), 'a')], lr: 0.5 },
        { params: [param(new Float64Array(1), 'b')], lr: 0.5 },
      ],
      { lr: 1, momentum },
    );
  }

  /** CyclicLR's triangle: 0 at the cycle's start, 1 after `up` epochs, 0 again after `down` more; c counts cycles from 1. */
  function triangle(t: number, up: number, down: number): { s: number; c: number } {
    const L = up + down;
    const c = Math.floor(t / L) + 1;
    const into = t - (c - 1) * L;
    return { s: into <= up ? into / up : (L - into) / down, c };
  }

  it.each([
    ['triangular2', { mode: 'triangular2' as const }, (c: number, _t: number) => 0.5 ** (c - 1)],
    ['exp_range', { mode: 'exp_range' as const, gamma: 0.97 }, (_c: number, t: number) => 0.97 ** t],
    ['scaleFn of the cycle', { scaleFn: (c: number) => 1 / c }, (c: number, _t: number) => 1 / c],
    ['scaleFn of the iterations', { scaleFn: (t: number) => 1 / (1 + t / 10), scaleMode: 'iterations' as const }, (_c: number, t: number) => 1 / (1 + t / 10)],
  ])('CyclicLR %s, steps 3 up and 5 down, per-group bounds', (_name, extra, f) => {
    const opt = sgd2();
    const sched = new CyclicLR(opt, {
      baseLr: [0.01, 0.2],
      maxLr: [0.1, 0.6],
      stepSizeUp: 3,
      stepSizeDown: 5,
      baseMomentum: [0.8, 0.5],
      maxMomentum: [0.9, 0.7],
      ...extra,
    });
    const bounds = [
      { lo: 0.01, hi: 0.1, mLo: 0.8, mHi: 0.9 },
      { lo: 0.2, hi: 0.6, mLo: 0.5, mHi: 0.7 },
    ];
    rowsOf(opt, sched, 40).forEach((row, t) => {
      const { s, c } = triangle(t, 3, 5);
      row.forEach(({ lr, m }, i) => {
        const b = bounds[i];
        expectNear(lr, b.lo + (b.hi - b.lo) * s * f(c, t), 1, `lr, group ${i}, t ${t}`);
        expectNear(m as number, b.mHi - (b.mHi - b.mLo) * s * f(c, t), 1, `momentum, group ${i}, t ${t}`);
      });
    });
  });

  /** OneCycleLR's lr and momentum from a list of (end step, lr from → to, momentum from → to) pieces. */
  function pieces(
    t: number,
    list: Array<[number, number, number, number, number]>,
    anneal: 'cos' | 'linear',
  ): { lr: number; m: number } {
    let from = 0;
    for (let k = 0; k < list.length; k++) {
      const [end, a, b, ma, mb] = list[k];
      if (t <= end || k === list.length - 1) {
        const p = (t - from) / (end - from);
        const w = anneal === 'cos' ? (1 - Math.cos(Math.PI * p)) / 2 : p;
        return { lr: a + (b - a) * w, m: ma + (mb - ma) * w };
      }
      from = end;
    }
    throw new Error('unreachable');
  }

  it.each(['cos', 'linear'] as const)('OneCycleLR three phases, %s: up, back to the start, down to the floor', (anneal) => {
    const opt = sgd2();
    const sched = new OneCycleLR(opt, { maxLr: [2, 0.5], totalSteps: 20, pctStart: 0.25, divFactor: 10, finalDivFactor: 100, threePhase: true, annealStrategy: anneal, baseMomentum: 0.8, maxMomentum: 0.9 });
    // Ends: 0.25·20 − 1 = 4, 2·0.25·20 − 2 = 8, 20 − 1 = 19.
    const rows = rowsOf(opt, sched, 20);
    [2, 0.5].forEach((max, i) => {
      const init = max / 10;
      const floor = init / 100;
      const list: Array<[number, number, number, number, number]> = [
        [4, init, max, 0.9, 0.8],
        [8, max, init, 0.8, 0.9],
        [19, init, floor, 0.9, 0.9],
      ];
      rows.forEach((row, t) => {
        const want = pieces(t, list, anneal);
        expectNear(row[i].lr, want.lr, max, `lr, group ${i}, t ${t}`);
        expectNear(row[i].m as number, want.m, 1, `momentum, group ${i}, t ${t}`);
      });
      expect(groupOf(opt, i).initialLr).toBe(init);
    });
    expectNear(rows[4][0].lr, 2, 2, 'the peak');
    expectNear(rows[8][0].lr, 0.2, 2, 'back at the start');
    expectNear(rows[19][1].lr, 0.05 / 100, 0.5, 'the floor');
  });

  it('OneCycleLR linear, two phases: step totalSteps extrapolates below the floor, negative here as in torch', () => {
    const opt = sgd2();
    const sched = new OneCycleLR(opt, { maxLr: 1, epochs: 4, stepsPerEpoch: 5, annealStrategy: 'linear' });
    expect(sched.totalSteps).toBe(20);
    // Ends: 0.3·20 − 1 = 5, 19.
    const list: Array<[number, number, number, number, number]> = [
      [5, 0.04, 1, 0.95, 0.85],
      [19, 1, 4e-6, 0.85, 0.95],
    ];
    const rows = rowsOf(opt, sched, 20);
    rows.forEach((row, t) => {
      const want = pieces(t, list, 'linear');
      expectNear(row[0].lr, want.lr, 1, `lr, t ${t}`);
      expectNear(row[0].m as number, want.m, 1, `momentum, t ${t}`);
    });
    expect(rows[20][0].lr).toBeLessThan(0);
    expect(() => sched.step()).toThrow(/step 21 is past options.totalSteps \(20\)/);
  });

  it.each([
    ['linear', 4, (t: number): number => Math.min(t / 4, 1)],
    ['cos', 3, (t: number): number => (t >= 3 ? 1 : (1 - Math.cos((Math.PI * t) / 3)) / 2)],
    ['linear', 0, (_t: number): number => 1],
  ] as const)('SWALR %s over %i epochs, per-group swaLr', (strategy, annealEpochs, alpha) => {
    const opt = sgd2();
    opt.paramGroups[1].lr = 0.05;
    const sched = new SWALR(opt, { swaLr: [0.1, 0.2], annealEpochs, annealStrategy: strategy });
    const rows = rowsOf(opt, sched, 8);
    rows.forEach((row, t) => {
      expectNear(row[0].lr, 0.5 + (0.1 - 0.5) * alpha(t), 1, `group 0, t ${t}`);
      expectNear(row[1].lr, 0.05 + (0.2 - 0.05) * alpha(t), 1, `group 1, t ${t}`);
    });
    expect(rows[8].map((r) => r.lr)).toEqual([0.1, 0.2]);
  });
});

describe('resuming with lastEpoch sets the closed form at lastEpoch + 1 (torch’s values)', () => {
  it.each([
    ['sched_constant', (o: SGD, k: number) => new ConstantLR(o, { factor: 0.5, totalIters: 10, lastEpoch: k })],
    ['sched_multiplicative', (o: SGD, k: number) => new MultiplicativeLR(o, { lrLambda: () => 0.95, lastEpoch: k })],
    ['sched_cyclic_triangular', (o: SGD, k: number) => new CyclicLR(o, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 10, lastEpoch: k })],
    ['sched_one_cycle', (o: SGD, k: number) => new OneCycleLR(o, { maxLr: 1.0, totalSteps: 60, lastEpoch: k })],
    ['sched_swalr', (o: SGD, k: number) => new SWALR(o, { swaLr: 0.01, annealEpochs: 10, lastEpoch: k })],
  ])('%s', (id, build) => {
    const golden = load(id);
    for (const k of [0, 4, 9, 10, 25]) {
      const opt = sgdFor(golden.optimizer_call);
      // The state a run at epoch k leaves: the recorded lr, and the base lr the schedule started from.
      Object.assign(opt.paramGroups[0], { lr: golden.lr[k], initialLr: (golden.state_dict_at_30.base_lrs as number[])[0] });
      const sched = build(opt, k);
      expect(sched.lastEpoch).toBe(k + 1);
      expectNear(opt.paramGroups[0].lr, golden.lr[k + 1], golden.lr[k + 1], `lr at ${k + 1}`);
      if (golden.momentum) expectNear(groupOf(opt).momentum as number, golden.momentum[k + 1], 1, `momentum at ${k + 1}`);
    }
  });
});

describe('in a SequentialLR', () => {
  it('a CyclicLR restarted at its milestone sets lr and momentum of its epoch 0', () => {
    const opt = sgdFor('torch.optim.SGD([p], lr=0.1, momentum=0.9)');
    const seq = new SequentialLR(opt, {
      schedulers: [new ConstantLR(opt, { factor: 0.5, totalIters: 10 }), new CyclicLR(opt, { baseLr: 0.01, maxLr: 0.1, stepSizeUp: 10 })],
      milestones: [3],
    });
    const cyclic = load('sched_cyclic_triangular');
    const rows = rowsOf(opt, seq, 15);
    expect(rows.slice(0, 3).map((r) => r[0].lr)).toEqual([0.05, 0.05, 0.05]);
    rows.slice(3).forEach((r, t) => {
      expect(r[0].lr, `cyclic epoch ${t}`).toBe(cyclic.lr[t]);
      expect(r[0].m, `cyclic epoch ${t}`).toBe(cyclic.momentum![t]);
    });
  });
});
