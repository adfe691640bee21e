import { describe, expect, it } from 'vitest';
import { Adagrad, Adam, AdamW, NAdam, RAdam, RMSprop, SGD, param } from '../src/optim/index.js';
import type { GroupBase, Optimizer, Param, StateDict } from '../src/optim/index.js';
import { OptimStateError } from '../src/errors.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { fillGrad, loadGolden } from './helpers/golden.js';
import { snapshot } from './helpers/snapshot.js';

type AnyOptimizer = Optimizer<GroupBase>;
type Make = (params: Param[]) => AnyOptimizer;

const PROBLEM = loadGolden('adam').problem;

const combo = (name: string, make: (ps: Param[]) => object): [string, Make] => [name, make as Make];

/** Every optimizer with the option combinations that change its state layout or arithmetic. */
const COMBOS: Array<[string, Make]> = [
  combo('SGD', (ps) => new SGD(ps, { lr: 0.01 })),
  combo('SGD momentum', (ps) => new SGD(ps, { lr: 0.01, momentum: 0.9 })),
  combo('SGD nesterov', (ps) => new SGD(ps, { lr: 0.01, momentum: 0.9, nesterov: true })),
  combo('SGD dampening + weightDecay', (ps) => new SGD(ps, { lr: 0.01, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 })),
  combo('SGD emaMomentum', (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, emaMomentum: true })),
  combo('Adagrad', (ps) => new Adagrad(ps, { lr: 0.1 })),
  combo('Adagrad lrDecay + weightDecay + init', (ps) => new Adagrad(ps, { lr: 0.1, lrDecay: 0.01, weightDecay: 0.01, initialAccumulatorValue: 0.1 })),
  combo('RMSprop', (ps) => new RMSprop(ps, { lr: 0.01 })),
  combo('RMSprop centered', (ps) => new RMSprop(ps, { lr: 0.01, centered: true })),
  combo('RMSprop momentum', (ps) => new RMSprop(ps, { lr: 0.01, momentum: 0.9 })),
  combo('RMSprop centered + momentum + weightDecay', (ps) => new RMSprop(ps, { lr: 0.01, centered: true, momentum: 0.5, weightDecay: 0.01 })),
  combo('RMSprop epsInsideSqrt', (ps) => new RMSprop(ps, { lr: 0.01, epsInsideSqrt: true })),
  combo('Adam', (ps) => new Adam(ps, { lr: 0.01 })),
  combo('Adam amsgrad', (ps) => new Adam(ps, { lr: 0.01, amsgrad: true })),
  combo('Adam weightDecay', (ps) => new Adam(ps, { lr: 0.01, weightDecay: 0.1 })),
  combo('Adam biasCorrection false', (ps) => new Adam(ps, { lr: 0.01, biasCorrection: false })),
  combo('AdamW', (ps) => new AdamW(ps, { lr: 0.01 })),
  combo('AdamW amsgrad', (ps) => new AdamW(ps, { lr: 0.01, amsgrad: true, weightDecay: 0.1 })),
  combo('NAdam', (ps) => new NAdam(ps, { lr: 0.01 })),
  combo('NAdam decoupled weightDecay', (ps) => new NAdam(ps, { lr: 0.01, weightDecay: 0.1, decoupledWeightDecay: true })),
  combo('RAdam', (ps) => new RAdam(ps, { lr: 0.01 })),
  combo('RAdam weightDecay', (ps) => new RAdam(ps, { lr: 0.01, weightDecay: 0.1 })),
];

/** A float64 parameter on the golden problem and a float32 one on a small quadratic: two calls. */
function model(): Param[] {
  return [param(Float64Array.from(PROBLEM.w0), 'w'), param(Float32Array.from([1, -2, 3, 0.5, -0.25]), 'v')];
}

function copyModel(ps: Param[]): Param[] {
  return ps.map((p) => param(p.data.slice(), p.name));
}

function fillGrads(ps: Param[]): void {
  fillGrad(PROBLEM, ps[0].data, ps[0].grad);
  const v = ps[1];
  for (let i = 0; i < v.data.length; i++) v.grad[i] = (i + 1) * v.data[i] - 0.5;
}

function run(opt: AnyOptimizer, ps: Param[], steps: number): void {
  for (let t = 0; t < steps; t++) {
    fillGrads(ps);
    opt.step();
  }
}

describe.each(backendRows)('state dict, %s backend', (_name, backend) => {
  useBackend(backend);

  it.each(COMBOS)('%s: save at 30, load into a new optimizer, 20 more steps = 50 uninterrupted, bit for bit', (_n, make) => {
    const a = model();
    const optA = make(a);
    run(optA, a, 50);

    const b = model();
    const optB = make(b);
    run(optB, b, 30);
    const saved = optB.stateDict();
    const c = copyModel(b);
    const optC = make(c);
    const report = optC.loadStateDict(saved);
    expect(report).toEqual({ matched: ['w', 'v'], missing: [], unexpected: [] });
    run(optC, c, 20);

    expect(c.map((p) => Array.from(p.data))).toEqual(a.map((p) => Array.from(p.data)));
    expect(snapshot(c, optC)).toEqual(snapshot(a, optA));
  });

  it.each(COMBOS)('%s: the saved dict is a deep copy, in both directions', (_n, make) => {
    const ps = model();
    const opt = make(ps);
    run(opt, ps, 3);
    const saved = opt.stateDict();
    const frozen = structuredClone(saved);
    run(opt, ps, 2);
    expect(saved).toEqual(frozen);

    const before = snapshot(ps, opt);
    const fresh = make(copyModel(ps));
    fresh.loadStateDict(saved);
    for (const st of Object.values(saved.state)) {
      for (const v of Object.values(st)) if (typeof v !== 'number') v.fill(123);
    }
    saved.paramGroups[0].lr = 42;
    expect(fresh.stateDict()).toEqual(frozen);
    expect(snapshot(ps, opt)).toEqual(before);
  });
});

describe('loadStateDict', () => {
  function trained(): { ps: Param[]; opt: Adam; saved: StateDict } {
    const ps = model();
    const opt = new Adam(ps, { lr: 0.01 });
    run(opt, ps, 5);
    return { ps, opt, saved: opt.stateDict() };
  }

  it('reports matched, missing and unexpected names; missing params start afresh', () => {
    const { saved } = trained();
    const w = param(Float64Array.from(PROBLEM.w0), 'w');
    const u = param(new Float64Array(3), 'u');
    const opt = new Adam([w, u], { lr: 0.01 });
    expect(opt.loadStateDict(saved)).toEqual({ matched: ['w'], missing: ['u'], unexpected: ['v'] });
    expect(opt.stateDict().state.w.step).toBe(5);
    expect(opt.stateDict().state.u).toBeUndefined();
  });

  it('tensors with different step counts are stepped as torch would step them one by one', () => {
    const { saved } = trained();
    const w = param(Float64Array.from(PROBLEM.w0), 'w');
    const fresh = param(Float32Array.from([1, -2, 3, 0.5, -0.25]), 'v');
    const together = new Adam([w, fresh], { lr: 0.01 });
    together.loadStateDict({ ...saved, state: { w: saved.state.w } });

    const w1 = param(Float64Array.from(PROBLEM.w0), 'w');
    const alone1 = new Adam([w1], { lr: 0.01 });
    alone1.loadStateDict({ ...saved, state: { w: saved.state.w } });
    const v1 = param(Float32Array.from([1, -2, 3, 0.5, -0.25]), 'v');
    const alone2 = new Adam([v1], { lr: 0.01 });

    for (let t = 0; t < 10; t++) {
      fillGrads([w, fresh]);
      fillGrads([w1, v1]);
      together.step();
      alone1.step();
      alone2.step();
    }
    expect(Array.from(w.data)).toEqual(Array.from(w1.data));
    expect(Array.from(fresh.data)).toEqual(Array.from(v1.data));
    expect(together.stateDict().state.w.step).toBe(15);
    expect(together.stateDict().state.v.step).toBe(10);
  });

  it('replaces group hyperparameters (torch semantics)', () => {
    const { saved } = trained();
    saved.paramGroups[0].lr = 0.5;
    saved.paramGroups[0].betas = [0.8, 0.9];
    const opt = new Adam(model(), { lr: 0.01 });
    opt.loadStateDict(saved);
    expect(opt.paramGroups[0].lr).toBe(0.5);
    expect(opt.paramGroups[0].betas).toEqual([0.8, 0.9]);
  });

  const refusals: Array<[string, (sd: StateDict) => void, RegExp]> = [
    ['a dtype mismatch', (sd) => (sd.state.w.expAvg = new Float32Array(7)), /expAvg is a Float32Array but param "w" is a Float64Array/],
    ['a length mismatch', (sd) => (sd.state.v.expAvgSq = new Float32Array(4)), /expAvgSq has length 4 but param "v" has length 5/],
    ['a missing buffer', (sd) => delete sd.state.w.expAvg, /missing "expAvg"/],
    ['an unknown state key', (sd) => (sd.state.w.momentumBuffer = new Float64Array(7)), /unknown state "momentumBuffer"/],
    ['a fractional step', (sd) => (sd.state.w.step = 2.5), /step must be a whole number/],
    ['a NaN lr', (sd) => (sd.paramGroups[0].lr = NaN), /Invalid learning rate: NaN/],
    ['betas out of range', (sd) => (sd.paramGroups[0].betas = [1.2, 0.9]), /Invalid beta parameter at index 0: 1.2/],
    ['an unknown hyperparameter', (sd) => (sd.paramGroups[0].momentum = 0.9), /unknown option "momentum"/],
    ['a different group count', (sd) => sd.paramGroups.push({ ...sd.paramGroups[0] }), /2 parameter groups, this optimizer has 1/],
    ['a non-object state', (sd) => ((sd as { state: unknown }).state = []), /stateDict.state must be an object/],
  ];

  it.each(refusals)('refuses %s with OptimStateError and changes nothing', (_n, corrupt, message) => {
    const { saved } = trained();
    const ps = model();
    const opt = new Adam(ps, { lr: 0.01 });
    run(opt, ps, 2);
    const before = snapshot(ps, opt);
    const groupsBefore = structuredClone(opt.stateDict().paramGroups);
    corrupt(saved);
    expect(() => opt.loadStateDict(saved)).toThrow(OptimStateError);
    expect(() => opt.loadStateDict(saved)).toThrow(message);
    expect(snapshot(ps, opt)).toEqual(before);
    expect(opt.stateDict().paramGroups).toEqual(groupsBefore);
  });
});
