import { describe, expect, it } from 'vitest';
import {
  CosineAnnealingLR,
  CosineAnnealingWarmRestarts,
  ExponentialLR,
  InverseTimeLR,
  LambdaLR,
  LBFGS,
  LinearLR,
  MultiStepLR,
  Newton,
  PolynomialLR,
  SGD,
  StepLR,
  Adam,
  param,
} from '../src/index.js';
import type { LRScheduler, SchedulableOptimizer, ScheduledGroup } from '../src/index.js';

const BASES = [0.1, 0.02, 3];

/** SGD with one group per base lr. */
function groups(bases: readonly number[] = BASES): SGD {
  return new SGD(
    bases.map((lr, i) => ({ params: [param(new Float64Array(2), `g${i}`)], lr })),
    { lr: 1 },
  );
}

/** The lrs of every group after each of `epochs` steps (row 0: after construction). */
function run(opt: SchedulableOptimizer, sched: LRScheduler, epochs: number): number[][] {
  const rows = [opt.paramGroups.map((g) => g.lr)];
  for (let e = 1; e <= epochs; e++) {
    sched.step();
    rows.push(opt.paramGroups.map((g) => g.lr));
  }
  return rows;
}

/** Every row against `formula(base, t)`, within `rel` of the base lr. */
function expectSchedule(rows: number[][], formula: (base: number, t: number) => number, rel: number, bases = BASES): void {
  rows.forEach((row, t) => {
    row.forEach((lr, i) => {
      const want = formula(bases[i], t);
      expect(Math.abs(lr - want), `group ${i}, epoch ${t}: ${lr} vs ${want}`).toBeLessThanOrEqual(rel * bases[i]);
    });
  });
}

describe('closed forms, three groups with different base lrs', () => {
  it('StepLR: η₀ γ^⌊t/stepSize⌋', () => {
    const opt = groups();
    const rows = run(opt, new StepLR(opt, { stepSize: 3, gamma: 0.5 }), 20);
    expectSchedule(rows, (b, t) => b * 0.5 ** Math.floor(t / 3), 1e-15);
  });

  it('StepLR: gamma defaults to 0.1', () => {
    const opt = groups();
    const rows = run(opt, new StepLR(opt, { stepSize: 2 }), 6);
    expectSchedule(rows, (b, t) => b * 0.1 ** Math.floor(t / 2), 1e-15);
  });

  it('MultiStepLR: η₀ γ^#{m <= t}, milestones in any order, repeats counted', () => {
    const opt = groups();
    const rows = run(opt, new MultiStepLR(opt, { milestones: [9, 2, 5, 5], gamma: 0.3 }), 12);
    const count = (t: number) => [2, 5, 5, 9].filter((m) => m <= t).length;
    expectSchedule(rows, (b, t) => b * 0.3 ** count(t), 1e-15);
  });

  it('ExponentialLR: η₀ γ^t', () => {
    const opt = groups();
    const rows = run(opt, new ExponentialLR(opt, { gamma: 0.9 }), 50);
    expectSchedule(rows, (b, t) => b * 0.9 ** t, 1e-14);
  });

  it('CosineAnnealingLR: η_min + (η₀ − η_min)(1 + cos(πt/T))/2, climbing back after T', () => {
    const opt = groups();
    const rows = run(opt, new CosineAnnealingLR(opt, { tMax: 7, etaMin: 0.001 }), 40);
    expectSchedule(rows, (b, t) => 0.001 + ((b - 0.001) * (1 + Math.cos((Math.PI * t) / 7))) / 2, 1e-13);
  });

  it('CosineAnnealingLR: etaMin defaults to 0, and the lr reaches 0 at tMax', () => {
    const opt = groups();
    const rows = run(opt, new CosineAnnealingLR(opt, { tMax: 4 }), 8);
    expectSchedule(rows, (b, t) => (b * (1 + Math.cos((Math.PI * t) / 4))) / 2, 1e-14);
    expect(rows[4]).toEqual([0, 0, 0]);
  });

  it('CosineAnnealingWarmRestarts: periods t0, t0·tMult, t0·tMult², ...', () => {
    const opt = groups();
    const rows = run(opt, new CosineAnnealingWarmRestarts(opt, { t0: 3, tMult: 2, etaMin: 0.001 }), 30);
    // Periods of 3, 6, 12, 24 epochs start at epochs 0, 3, 9, 21.
    const phase = (t: number): [number, number] => (t < 3 ? [t, 3] : t < 9 ? [t - 3, 6] : t < 21 ? [t - 9, 12] : [t - 21, 24]);
    expectSchedule(rows, (b, t) => {
      const [cur, period] = phase(t);
      return 0.001 + ((b - 0.001) * (1 + Math.cos((Math.PI * cur) / period))) / 2;
    }, 1e-15);
    for (const t of [0, 3, 9, 21]) expect(rows[t]).toEqual(BASES);
  });

  it('CosineAnnealingWarmRestarts: tMult 1 restarts every t0 epochs', () => {
    const opt = groups();
    const rows = run(opt, new CosineAnnealingWarmRestarts(opt, { t0: 4 }), 13);
    expectSchedule(rows, (b, t) => (b * (1 + Math.cos((Math.PI * (t % 4)) / 4))) / 2, 1e-15);
  });

  it('LinearLR: η₀ (s + (e − s) min(t, T)/T), up or down', () => {
    for (const [s, e] of [
      [0.25, 0.75],
      [1, 0.1],
    ]) {
      const opt = groups();
      const rows = run(opt, new LinearLR(opt, { startFactor: s, endFactor: e, totalIters: 4 }), 9);
      expectSchedule(rows, (b, t) => b * (s + ((e - s) * Math.min(t, 4)) / 4), 1e-15);
    }
  });

  it('LinearLR: defaults 1/3 → 1 over 5 epochs', () => {
    const opt = groups();
    const rows = run(opt, new LinearLR(opt), 7);
    expectSchedule(rows, (b, t) => b * (1 / 3 + ((2 / 3) * Math.min(t, 5)) / 5), 1e-15);
    expect(rows[7]).toEqual(rows[5]);
  });

  it('PolynomialLR: η₀ (1 − min(t, T)/T)^p, 0 from T on', () => {
    const opt = groups();
    const rows = run(opt, new PolynomialLR(opt, { totalIters: 6, power: 2 }), 9);
    expectSchedule(rows, (b, t) => b * (1 - Math.min(t, 6) / 6) ** 2, 1e-15);
    expect(rows[8]).toEqual([0, 0, 0]);
  });

  it('PolynomialLR: defaults T = 5, p = 1 (linear decay)', () => {
    const opt = groups();
    const rows = run(opt, new PolynomialLR(opt), 6);
    expectSchedule(rows, (b, t) => b * (1 - Math.min(t, 5) / 5), 1e-15);
  });

  it('LambdaLR: η₀ λ(t), one function for all groups', () => {
    const opt = groups();
    const rows = run(opt, new LambdaLR(opt, { lrLambda: (t) => 1 / (1 + t) }), 10);
    expectSchedule(rows, (b, t) => b * (1 / (1 + t)), 0);
  });

  it('LambdaLR: one function per group', () => {
    const opt = groups();
    const fs = [(t: number) => 0.5 ** t, (t: number) => t + 1, () => 0.25];
    const rows = run(opt, new LambdaLR(opt, { lrLambda: fs }), 6);
    rows.forEach((row, t) => expect(row).toEqual(BASES.map((b, i) => b * fs[i](t))));
  });

  it('InverseTimeLR: η₀ / (1 + k·t/decaySteps)', () => {
    const opt = groups();
    const rows = run(opt, new InverseTimeLR(opt, { decayRate: 0.5, decaySteps: 2 }), 10);
    expectSchedule(rows, (b, t) => b / (1 + (0.5 * t) / 2), 1e-15);
  });

  it('InverseTimeLR: staircase decays in whole units of decaySteps; decaySteps defaults to 1', () => {
    const opt = groups();
    const rows = run(opt, new InverseTimeLR(opt, { decayRate: 1, decaySteps: 3, staircase: true }), 10);
    expectSchedule(rows, (b, t) => b / (1 + Math.floor(t / 3)), 0);
    const opt2 = groups();
    const rows2 = run(opt2, new InverseTimeLR(opt2, { decayRate: 0.1 }), 10);
    expectSchedule(rows2, (b, t) => b / (1 + 0.1 * t), 1e-15);
  });
});

describe('base lrs and composition', () => {
  it('records each base lr as the group initialLr and returns the last lrs', () => {
    const opt = groups();
    const sched = new ExponentialLR(opt, { gamma: 0.5 });
    expect(opt.paramGroups.map((g) => (g as ScheduledGroup).initialLr)).toEqual(BASES);
    sched.step();
    expect(sched.getLastLr()).toEqual(BASES.map((b) => b * 0.5));
    expect(sched.stateDict().baseLrs).toEqual(BASES);
    expect(sched.lastEpoch).toBe(1);
  });

  it('chainable schedulers on one optimizer multiply: StepLR then ExponentialLR', () => {
    const opt = groups();
    const a = new StepLR(opt, { stepSize: 2, gamma: 0.5 });
    const b = new ExponentialLR(opt, { gamma: 0.9 });
    const rows = [opt.paramGroups.map((g) => g.lr)];
    for (let t = 1; t <= 10; t++) {
      a.step();
      b.step();
      rows.push(opt.paramGroups.map((g) => g.lr));
    }
    expectSchedule(rows, (base, t) => base * 0.5 ** Math.floor(t / 2) * 0.9 ** t, 1e-14);
  });

  it('a chainable step keeps an outside change to the lr; LambdaLR overwrites it', () => {
    const opt = groups([1]);
    const step = new StepLR(opt, { stepSize: 3, gamma: 0.5 });
    opt.paramGroups[0].lr = 0.4;
    step.step();
    expect(opt.paramGroups[0].lr).toBe(0.4);
    step.step();
    step.step();
    expect(opt.paramGroups[0].lr).toBe(0.2);

    const opt2 = groups([1]);
    const lambda = new LambdaLR(opt2, { lrLambda: () => 0.5 });
    opt2.paramGroups[0].lr = 0.4;
    lambda.step();
    expect(opt2.paramGroups[0].lr).toBe(0.5);
  });

  it('a second scheduler keeps the initialLr the first one recorded (torch setdefault)', () => {
    const opt = groups([1]);
    new LinearLR(opt, { startFactor: 0.5 });
    expect(opt.paramGroups[0].lr).toBe(0.5);
    const exp = new ExponentialLR(opt, { gamma: 0.5 });
    expect(exp.stateDict().baseLrs).toEqual([1]);
    expect((opt.paramGroups[0] as ScheduledGroup).initialLr).toBe(1);
  });

  it('lastEpoch k resumes at the closed form of epoch k + 1 from each group initialLr', () => {
    const cases: Array<[string, (opt: SchedulableOptimizer, lastEpoch: number) => LRScheduler]> = [
      ['StepLR', (o, k) => new StepLR(o, { stepSize: 3, gamma: 0.5, lastEpoch: k })],
      ['ExponentialLR', (o, k) => new ExponentialLR(o, { gamma: 0.9, lastEpoch: k })],
      ['CosineAnnealingLR', (o, k) => new CosineAnnealingLR(o, { tMax: 10, etaMin: 0.001, lastEpoch: k })],
      ['CosineAnnealingWarmRestarts', (o, k) => new CosineAnnealingWarmRestarts(o, { t0: 2, tMult: 3, lastEpoch: k })],
      ['LinearLR', (o, k) => new LinearLR(o, { startFactor: 0.1, lastEpoch: k })],
      ['PolynomialLR', (o, k) => new PolynomialLR(o, { totalIters: 9, power: 0.5, lastEpoch: k })],
      ['MultiStepLR', (o, k) => new MultiStepLR(o, { milestones: [2, 4], lastEpoch: k })],
      ['LambdaLR', (o, k) => new LambdaLR(o, { lrLambda: (t) => 0.8 ** t, lastEpoch: k })],
      ['InverseTimeLR', (o, k) => new InverseTimeLR(o, { decayRate: 0.3, lastEpoch: k })],
    ];
    for (const [name, build] of cases) {
      const fresh = groups();
      const reference = build(fresh, -1);
      for (let t = 0; t < 7; t++) reference.step();
      const resumed = groups();
      resumed.paramGroups.forEach((g, i) => {
        (g as ScheduledGroup).initialLr = BASES[i];
      });
      const sched = build(resumed, 6);
      expect(sched.lastEpoch, name).toBe(7);
      resumed.paramGroups.forEach((g, i) => {
        const want = fresh.paramGroups[i].lr;
        expect(Math.abs(g.lr - want), `${name} group ${i}`).toBeLessThanOrEqual(1e-14 * BASES[i]);
      });
    }
  });
});

describe('any optimizer with paramGroups', () => {
  it('drives Adam, Newton and LBFGS', () => {
    const adam = new Adam([param(new Float32Array(3))], { lr: 0.01 });
    const newton = new Newton([param(new Float64Array(2))], { lr: 1 });
    const lbfgs = new LBFGS([param(new Float64Array(2))], { lr: 0.5 });
    for (const opt of [adam, newton, lbfgs]) {
      const base = opt.paramGroups[0].lr;
      const sched = new StepLR(opt, { stepSize: 1, gamma: 0.5 });
      sched.step();
      sched.step();
      expect(opt.paramGroups[0].lr).toBe(base * 0.25);
    }
  });

  it('an Adam step uses the scheduled lr', () => {
    const p = param(Float64Array.from([1]));
    const q = param(Float64Array.from([1]));
    const scheduled = new Adam([p], { lr: 0.1 });
    const fixed = new Adam([q], { lr: 0.1 });
    const sched = new LinearLR(scheduled, { startFactor: 0.5, totalIters: 2 });
    expect(scheduled.paramGroups[0].lr).toBe(0.05);
    fixed.paramGroups[0].lr = 0.05;
    p.grad[0] = 1;
    q.grad[0] = 1;
    scheduled.step();
    fixed.step();
    expect(p.data[0]).toBe(q.data[0]);
    sched.step();
    expect(scheduled.paramGroups[0].lr).toBeCloseTo(0.075, 15);
  });
});
