/**
 * The closure-optimizer contract (src/optim/closure-optimizer.ts) as L-BFGS and Newton follow it,
 * and the transaction helper it rests on (src/optim/transaction.ts): state dicts that round-trip
 * (state, hyperparameters, skippedSteps) and are checked whole before anything is applied; a
 * refused or failed step that leaves params and state exactly as they were.
 */
import { describe, expect, it } from 'vitest';
import { LBFGS } from '../src/optim/lbfgs.js';
import type { LBFGSStateDict } from '../src/optim/lbfgs.js';
import { Newton } from '../src/optim/newton.js';
import type { NewtonEvaluation, NewtonStateDict } from '../src/optim/newton.js';
import { Transaction } from '../src/optim/transaction.js';
import { param } from '../src/param.js';
import type { Param } from '../src/param.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../src/errors.js';
import { StepLR } from '../src/schedule/index.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { bytesOf } from './helpers/snapshot.js';

/** Every number and typed array reachable from `v`, typed arrays as bytes: compares bit for bit. */
function bits(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return [v.constructor.name, bytesOf(v as Float64Array)];
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : v;
  if (Array.isArray(v)) return v.map(bits);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, bits(x)]));
  }
  return v;
}

/** Params, grads and the whole state dict, bit for bit. */
function snap(ps: Param[], opt: { stateDict(): unknown; state: unknown }): unknown {
  return bits({ data: ps.map((p) => p.data), grad: ps.map((p) => p.grad), dict: opt.stateDict(), state: opt.state });
}

/** What the state-dict refusal tests need of L-BFGS and Newton. */
interface ClosureOptimizer {
  paramGroups: object[];
  state: unknown;
  stateDict(): unknown;
  loadStateDict(sd: never): void;
}

/**
 * Corrupts `source`'s state dict with `corrupt`, loads it into `opt` (over `ps`), and expects
 * OptimStateError matching `message` with params, state and hyperparameters unchanged.
 */
function expectLoadRefused(source: ClosureOptimizer, corrupt: (sd: Record<string, any>) => void, ps: Param[], opt: ClosureOptimizer, message: RegExp): void {
  const saved = source.stateDict() as Record<string, any>;
  corrupt(saved);
  const before = snap(ps, opt);
  const hyper = { ...opt.paramGroups[0] };
  expect(() => opt.loadStateDict(saved as never)).toThrow(OptimStateError);
  expect(() => opt.loadStateDict(saved as never)).toThrow(message);
  expect(snap(ps, opt)).toEqual(before);
  expect(opt.paramGroups[0]).toEqual(hyper);
}

/** Two params, one with -0 in it (a restore through arithmetic would lose its sign). */
function lbfgsModel(dtype: 'f32' | 'f64' = 'f64'): Param[] {
  const C = dtype === 'f32' ? Float32Array : Float64Array;
  return [param(C.from([5, -0, 2]), 'a'), param(C.from([8, 0.5, -1, 3]), 'b')];
}

/** Σ c_k (x_k − k)⁴ + (x_k − k)² over both params; `poison(evals)` may spoil an evaluation. */
function quartic(ps: Param[], poison: (evals: number, ps: Param[]) => number | undefined = () => undefined) {
  let evals = 0;
  const closure = (): number => {
    evals++;
    let loss = 0;
    let k = 0;
    for (const p of ps) {
      for (let i = 0; i < p.data.length; i++, k++) {
        const r = p.data[i] - k;
        const c = 1 + (k % 4) * 5;
        loss += c * r ** 4 + r * r;
        p.grad[i] = 4 * c * r ** 3 + 2 * r;
      }
    }
    return poison(evals, ps) ?? loss;
  };
  return { closure, evals: () => evals };
}

/** (x² − 1)² per coordinate plus 0.3·x_i·x_{i+1}, with its Hessian: indefinite away from the minima. */
function doubleWell(ps: Param[], poison: (evals: number, ps: Param[]) => number | undefined = () => undefined) {
  let evals = 0;
  const closure = (): NewtonEvaluation => {
    evals++;
    const x = ps.flatMap((p) => Array.from(p.data));
    const n = x.length;
    const g = new Array<number>(n).fill(0);
    const hessian = ps[0].data instanceof Float32Array ? new Float32Array(n * n) : new Float64Array(n * n);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      loss += (x[i] ** 2 - 1) ** 2;
      g[i] += 4 * x[i] * (x[i] ** 2 - 1);
      hessian[i * n + i] += 12 * x[i] ** 2 - 4;
      if (i + 1 < n) {
        loss += 0.3 * x[i] * x[i + 1];
        g[i] += 0.3 * x[i + 1];
        g[i + 1] += 0.3 * x[i];
        hessian[i * n + i + 1] += 0.3;
        hessian[(i + 1) * n + i] += 0.3;
      }
    }
    let o = 0;
    for (const p of ps) {
      p.grad.set(g.slice(o, o + p.grad.length));
      o += p.grad.length;
    }
    return { loss: poison(evals, ps) ?? loss, hessian };
  };
  return { closure, evals: () => evals };
}

const newtonModel = (): Param[] => [param(Float64Array.from([1.5, -0.3]), 'a'), param(Float64Array.from([0.2, 2]), 'b')];

describe('Transaction', () => {
  it('saveArray restores typed arrays bit for bit (NaN payloads, -0) into the same object, and plain arrays with their holes', () => {
    const f = Float64Array.from([1, -0, 3]);
    new DataView(f.buffer).setBigUint64(16, 0x7ff8_0000_dead_beefn, true); // a NaN with a payload
    const before = bytesOf(f);
    const list: unknown[] = [1, , 3]; // eslint-disable-line no-sparse-arrays
    const tx = new Transaction();
    expect(tx.saveArray(f)).toBe(f);
    tx.saveArray(list);
    f.fill(7);
    list.push(4);
    list[1] = 'x';
    list.shift();
    expect(tx.size).toBe(2);
    tx.rollback();
    expect(bytesOf(f)).toEqual(before);
    expect(list.length).toBe(3);
    expect(1 in list).toBe(false);
    expect([list[0], list[2]]).toEqual([1, 3]);
    expect(tx.size).toBe(0);
  });

  it('saveEntry/saveEntries restore values and delete what was added, on objects and Maps; undo runs newest first', () => {
    const obj: Record<string, unknown> = { a: 1, b: [1] };
    const map = new Map<string, number>([['k', 1]]);
    const order: string[] = [];
    const tx = new Transaction();
    tx.saveEntries(obj);
    tx.saveEntry(map, 'k');
    tx.saveEntry(map, 'new');
    tx.saveEntry(obj, 'a');
    tx.onRollback(() => order.push('first'));
    tx.onRollback(() => order.push('second'));
    const b = obj.b;
    obj.a = 2;
    obj.b = [];
    obj.c = 3;
    map.set('k', 5).set('new', 6);
    tx.rollback();
    expect(obj).toEqual({ a: 1, b: [1] });
    expect(obj.b).toBe(b);
    expect([...map]).toEqual([['k', 1]]);
    expect(order).toEqual(['second', 'first']);
  });

  it('commit drops the snapshots; run commits on return, rolls back and rethrows on a throw', () => {
    const a = Float32Array.from([1, 2]);
    const tx = new Transaction();
    tx.saveArray(a);
    a[0] = 9;
    tx.commit();
    tx.rollback();
    expect(Array.from(a)).toEqual([9, 2]);

    expect(Transaction.run((t) => (t.saveArray(a), (a[1] = 5), 'ok'))).toBe('ok');
    expect(Array.from(a)).toEqual([9, 5]);
    const boom = new Error('boom');
    expect(() => Transaction.run((t) => {
      t.saveArray(a);
      a.fill(0);
      throw boom;
    })).toThrow(boom);
    expect(Array.from(a)).toEqual([9, 5]);
  });
});

describe('LBFGS and Newton: options and params (one contract)', () => {
  it('refuse unknown options, bad policies and bad params alike', () => {
    for (const Ctor of [LBFGS, Newton] as const) {
      const make = (ps: unknown, o: unknown) => new (Ctor as new (p: unknown, o: unknown) => unknown)(ps, o);
      expect(() => make(lbfgsModel(), { momentum: 1 })).toThrow(/unknown option "momentum"/);
      expect(() => make(lbfgsModel(), [])).toThrow(OptimTypeError);
      expect(() => make(lbfgsModel(), { nonFinite: 'warn' })).toThrow(OptimRangeError);
      expect(() => make([], {})).toThrow(OptimTypeError);
      const [a] = lbfgsModel();
      expect(() => make([a, param(new Float64Array(2), 'a')], {})).toThrow(/two params share the name "a"/);
      expect(() => make([{ ...a, name: 3 }], {})).toThrow(/params\[0\]\.name must be a string/);
      expect(() => make(lbfgsModel(), { lr: -1 })).toThrow(new RegExp(`${Ctor.name}: lr must be > 0, got -1`));
    }
  });
});

describe.each(backendRows)('Newton state dict (%s backend)', (_name, backend) => {
  useBackend(backend);

  /** A trained adaptive Newton with one skipped step and non-default hyperparameters. */
  function trained() {
    const ps = newtonModel();
    const opt = new Newton(ps, { damping: 'adaptive', lambda0: 0.25, lambdaFactor: 4, lineSearch: 'backtracking', c1: 1e-3, nonFinite: 'skip' });
    const { closure } = doubleWell(ps, (e) => (e === 4 ? Number.NaN : undefined));
    for (let s = 0; s < 4; s++) opt.step(closure);
    expect(opt.skippedSteps).toBe(1);
    return { ps, opt };
  }

  it('round-trips λ, the step count, skippedSteps and the hyperparameters; the resumed run equals the uninterrupted one bit for bit', () => {
    const { ps, opt } = trained();
    const sd: NewtonStateDict = opt.stateDict();
    expect(sd.skippedSteps).toBe(1);
    expect(sd.paramGroups).toEqual([{
      lr: 1, damping: 'adaptive', lambda0: 0.25, lambdaFactor: 4, maxDampingTries: 40, lineSearch: 'backtracking', c1: 1e-3,
      maxBacktracks: 30, pinvRtol: null, params: ['a', 'b'],
    }]);
    expect(Object.keys(sd.state).sort()).toEqual(['lambda', 'step']);

    const qs = ps.map((p) => param(p.data.slice(), p.name));
    const fresh = new Newton(qs, { nonFinite: 'skip' });
    expect(fresh.loadStateDict(sd)).toEqual({ matched: ['a', 'b'], missing: [], unexpected: [] });
    expect(bits(fresh.stateDict())).toEqual(bits(sd));
    expect(fresh.skippedSteps).toBe(1);
    expect(fresh.paramGroups[0].damping).toBe('adaptive');
    expect(fresh.paramGroups[0].params).toBe(qs);

    const a = doubleWell(ps).closure;
    const b = doubleWell(qs).closure;
    for (let s = 0; s < 5; s++) expect(bits(fresh.step(b))).toEqual(bits(opt.step(a)));
    expect(bits(qs.map((p) => p.data))).toEqual(bits(ps.map((p) => p.data)));
    expect(bits(fresh.stateDict())).toEqual(bits(opt.stateDict()));
  });

  it('the dict is a deep copy in both directions', () => {
    const { opt } = trained();
    const sd = opt.stateDict();
    const frozen = structuredClone(sd);
    opt.step(doubleWell(opt.paramGroups[0].params).closure);
    expect(sd).toEqual(frozen);
    const fresh = new Newton(newtonModel());
    fresh.loadStateDict(sd);
    sd.state.lambda = 99;
    sd.paramGroups[0].lr = 0.5;
    sd.paramGroups[0].params.push('zzz');
    expect(fresh.stateDict()).toEqual(frozen);
  });

  const refusals: Array<[string, (sd: Record<string, any>) => void, RegExp]> = [
    ['a wrong hyperparameter (lr)', (sd) => (sd.paramGroups[0].lr = -1), /stateDict\.paramGroups\[0\]\.lr must be > 0, got -1/],
    ['a wrong hyperparameter (damping)', (sd) => (sd.paramGroups[0].damping = 'lm'), /paramGroups\[0\]\.damping must be a number >= 0/],
    ['a wrong hyperparameter (lambdaFactor)', (sd) => (sd.paramGroups[0].lambdaFactor = 1), /paramGroups\[0\]\.lambdaFactor must be > 1/],
    ['an unknown hyperparameter', (sd) => (sd.paramGroups[0].momentum = 0.9), /paramGroups\[0\]\.momentum: unknown hyperparameter/],
    ['nonFinite in the group (optimizer-wide, not saved)', (sd) => (sd.paramGroups[0].nonFinite = 'error'), /nonFinite: unknown hyperparameter/],
    ['λ = 0', (sd) => (sd.state.lambda = 0), /state\.lambda must be a finite number > 0, got 0/],
    ['λ < 0', (sd) => (sd.state.lambda = -1), /state\.lambda must be a finite number > 0, got -1/],
    ['λ = NaN', (sd) => (sd.state.lambda = Number.NaN), /state\.lambda must be a finite number > 0, got NaN/],
    ['λ = Infinity', (sd) => (sd.state.lambda = Infinity), /state\.lambda must be a finite number > 0, got Infinity/],
    ['λ a string', (sd) => (sd.state.lambda = '1'), /state\.lambda must be a finite number > 0, got "1"/],
    ['a fractional step', (sd) => (sd.state.step = 1.5), /state\.step must be a whole number >= 0, got 1.5/],
    ['a missing step', (sd) => delete sd.state.step, /state\.step is missing/],
    ['an unknown state key', (sd) => (sd.state.expAvg = new Float64Array(4)), /state\.expAvg: unknown state/],
    ['other param names', (sd) => (sd.paramGroups[0].params = ['b', 'a']), /params is \["b","a"\] but this optimizer has \["a","b"\]/],
    ['a bad skippedSteps', (sd) => (sd.skippedSteps = -1), /skippedSteps must be a whole number >= 0, got -1/],
    ['two groups', (sd) => sd.paramGroups.push({ ...sd.paramGroups[0] }), /paramGroups must be an array of one group/],
    ['a non-object state', (sd) => (sd.state = [1]), /stateDict\.state must be an object/],
  ];

  it.each(refusals)('refuses %s with OptimStateError naming it, changing nothing', (_n, corrupt, message) => {
    const ps = newtonModel();
    const opt = new Newton(ps, { damping: 5 });
    opt.step(doubleWell(ps).closure);
    expectLoadRefused(trained().opt, corrupt, ps, opt, message);
    expect(opt.skippedSteps).toBe(0);
  });

  it('a dict of the old shape ({ state, paramGroups } without skippedSteps) still loads, as 0 skipped', () => {
    const { opt } = trained();
    const { skippedSteps: _, ...old } = opt.stateDict();
    const fresh = new Newton(newtonModel(), { nonFinite: 'skip' });
    fresh.loadStateDict(old as NewtonStateDict);
    expect(fresh.skippedSteps).toBe(0);
    expect(fresh.state).toEqual(opt.state);
  });
});

describe.each(backendRows)('Newton: a refused or failed step changes nothing (%s backend)', (_name, backend) => {
  useBackend(backend);

  it("a non-finite start ('error', 'skip') and a closure that throws at a trial point leave params and state bit for bit", () => {
    for (const policy of ['error', 'skip'] as const) {
      const ps = newtonModel();
      const opt = new Newton(ps, { damping: 'adaptive', nonFinite: policy });
      opt.step(doubleWell(ps).closure);
      const before = bits({ data: ps.map((p) => p.data), dict: opt.stateDict() });
      const bad = doubleWell(ps, (_e, qs) => ((qs[1].grad[0] = Number.NaN), undefined)).closure;
      if (policy === 'error') {
        expect(() => opt.step(bad)).toThrow(NonFiniteError);
        try {
          opt.step(bad);
        } catch (e) {
          expect([(e as NonFiniteError).param, (e as NonFiniteError).index]).toEqual(['b', 0]);
        }
      } else {
        expect(opt.step(bad)).toMatchObject({ skipped: true, moved: false });
      }
      expect(bits({ data: ps.map((p) => p.data), dict: { ...opt.stateDict(), skippedSteps: 0 } })).toEqual(before);
      expect(opt.skippedSteps).toBe(policy === 'skip' ? 1 : 0);
    }

    const ps = newtonModel();
    const opt = new Newton(ps, { damping: 'adaptive' });
    const before = bits({ data: ps.map((p) => p.data), dict: opt.stateDict() });
    const boom = new Error('the model failed');
    const inner = doubleWell(ps).closure;
    let calls = 0;
    expect(() => opt.step(() => {
      if (++calls === 2) throw boom; // at the first trial point: the params have moved there
      return inner();
    })).toThrow(boom);
    expect(bits({ data: ps.map((p) => p.data), dict: opt.stateDict() })).toEqual(before);
  });

  it('a step that does not move (every trial non-finite) restores the params and the grads of the start bit for bit', () => {
    const ps = [param(Float64Array.from([1.5, -0]), 'a'), param(Float64Array.from([0.2, 2]), 'b')];
    // λ = 5, 50, 500 all factor; each trial point evaluates to an infinite loss.
    const opt = new Newton(ps, { damping: 'adaptive', lambda0: 5, maxDampingTries: 3 });
    const { closure, evals } = doubleWell(ps, (e) => (e > 1 ? Infinity : undefined));
    const info = opt.step(closure);
    expect(info.moved).toBe(false);
    expect(evals()).toBe(4);
    expect(opt.state.step).toBe(1);
    expect(opt.state.lambda).toBe(5000);
    expect(bits(ps.map((p) => p.data))).toEqual(bits([Float64Array.from([1.5, -0]), Float64Array.from([0.2, 2])]));
    // The grads are those of the starting point, as the closure left them after the first call.
    const ref = [param(Float64Array.from([1.5, -0]), 'a'), param(Float64Array.from([0.2, 2]), 'b')];
    doubleWell(ref).closure();
    expect(bits(ps.map((p) => p.grad))).toEqual(bits(ref.map((p) => p.grad)));
  });
});

describe('LBFGS state dict', () => {
  function trained(dtype: 'f32' | 'f64' = 'f64') {
    const ps = lbfgsModel(dtype);
    const opt = new LBFGS(ps, { lineSearchFn: 'strong_wolfe', maxIter: 3, historySize: 4, lr: 0.8, nonFinite: 'skip' });
    const { closure } = quartic(ps, (e) => (e === 12 ? Number.NaN : undefined));
    for (let s = 0; s < 5; s++) opt.step(closure);
    expect(opt.skippedSteps).toBe(1);
    expect(opt.state.oldDirs.length).toBeGreaterThan(0);
    return { ps, opt };
  }

  it('round-trips state, hyperparameters and skippedSteps; the resumed run equals the uninterrupted one bit for bit (float32 params)', () => {
    const { ps, opt } = trained('f32');
    const sd: LBFGSStateDict = opt.stateDict();
    expect(sd.paramGroups).toEqual([{
      lr: 0.8, maxIter: 3, maxEval: 3, toleranceGrad: 1e-7, toleranceChange: 1e-9, historySize: 4, lineSearchFn: 'strong_wolfe', params: ['a', 'b'],
    }]);
    const qs = ps.map((p) => param(p.data.slice(), p.name));
    const fresh = new LBFGS(qs, { nonFinite: 'skip' });
    expect(fresh.loadStateDict(sd)).toEqual({ matched: ['a', 'b'], missing: [], unexpected: [] });
    expect(fresh.skippedSteps).toBe(1);
    expect(fresh.paramGroups[0].historySize).toBe(4);
    expect(bits(fresh.stateDict())).toEqual(bits(sd));
    const a = quartic(ps).closure;
    const b = quartic(qs).closure;
    for (let s = 0; s < 4; s++) expect(Object.is(fresh.step(b), opt.step(a))).toBe(true);
    expect(bits(qs.map((p) => p.data))).toEqual(bits(ps.map((p) => p.data)));
    expect(bits(fresh.stateDict())).toEqual(bits(opt.stateDict()));
  });

  it('a scheduler on the group (initialLr) does not leak into the dict, which loads back', () => {
    const { opt } = trained();
    const sched = new StepLR(opt, { stepSize: 1, gamma: 0.5 });
    sched.step();
    const sd = opt.stateDict();
    expect('initialLr' in sd.paramGroups[0]).toBe(false);
    expect(sd.paramGroups[0].lr).toBe(0.4);
    const fresh = new LBFGS(lbfgsModel());
    fresh.loadStateDict(sd);
    expect(fresh.paramGroups[0].lr).toBe(0.4);
  });

  const refusals: Array<[string, (sd: Record<string, any>) => void, RegExp]> = [
    ['a wrong hyperparameter (historySize)', (sd) => (sd.paramGroups[0].historySize = 0), /paramGroups\[0\]\.historySize must be an integer >= 1, got 0/],
    ['a wrong hyperparameter (lineSearchFn)', (sd) => (sd.paramGroups[0].lineSearchFn = 'armijo'), /paramGroups\[0\]\.lineSearchFn must be 'strong_wolfe' or null/],
    ['a NaN lr', (sd) => (sd.paramGroups[0].lr = Number.NaN), /paramGroups\[0\]\.lr must be .*finite.*NaN/],
    ['an unknown hyperparameter', (sd) => (sd.paramGroups[0].betas = [0.9, 0.99]), /betas: unknown hyperparameter/],
    ['a direction of the wrong length', (sd) => (sd.state.d = new Float64Array(3)), /state\.d must be a Float64Array of length 7 .* got Float64Array of length 3/],
    ['a direction of the wrong dtype', (sd) => (sd.state.d = new Float32Array(7)), /state\.d must be a Float64Array of length 7 .* got Float32Array/],
    ['a curvature pair of the wrong dtype', (sd) => (sd.state.oldDirs[0] = new Float32Array(7)), /state\.oldDirs\[0\] must be a Float64Array/],
    ['a previous gradient of the wrong length', (sd) => (sd.state.prevFlatGrad = new Float64Array(8)), /state\.prevFlatGrad must be a Float64Array of length 7/],
    ['pairs of different counts', (sd) => sd.state.ro.push(1), /oldDirs, oldStps and ro must have one length/],
    ['more pairs than historySize', (sd) => (sd.paramGroups[0].historySize = 1), /holds \d+ pairs, more than historySize \(1\)/],
    ['a non-finite ro', (sd) => (sd.state.ro[0] = Infinity), /state\.ro\[0\] must be a finite number, got Infinity/],
    ['a negative nIter', (sd) => (sd.state.nIter = -1), /state\.nIter must be a whole number >= 0, got -1/],
    ['a missing hDiag', (sd) => delete sd.state.hDiag, /state\.hDiag is missing/],
    ['an unknown state key', (sd) => (sd.state.bogus = 1), /state\.bogus: unknown state/],
    ['other param names', (sd) => (sd.paramGroups[0].params = ['a', 'c']), /names and order must match/],
    ['a fractional skippedSteps', (sd) => (sd.skippedSteps = 0.5), /skippedSteps must be a whole number >= 0/],
  ];

  it.each(refusals)('refuses %s with OptimStateError naming it, changing nothing', (_n, corrupt, message) => {
    const ps = lbfgsModel();
    const opt = new LBFGS(ps, { maxIter: 2, historySize: 7 });
    opt.step(quartic(ps).closure);
    expectLoadRefused(trained().opt, corrupt, ps, opt, message);
  });
});

describe('LBFGS: a refused or failed step changes nothing', () => {
  for (const dtype of ['f64', 'f32'] as const) {
    for (const at of [1, 2, 5]) {
      it(`a non-finite evaluation ${at} of the step (${dtype}; loss and gradient; 'error' and 'skip') restores params and state bit for bit`, () => {
        for (const policy of ['error', 'skip'] as const) {
          for (const what of ['loss', 'grad'] as const) {
            const ps = lbfgsModel(dtype);
            const opt = new LBFGS(ps, { lineSearchFn: 'strong_wolfe', maxIter: 2, historySize: 3, nonFinite: policy });
            opt.step(quartic(ps).closure);
            opt.step(quartic(ps).closure);
            opt.paramGroups[0].maxIter = 20;
            opt.paramGroups[0].maxEval = 25;
            const state = opt.state;
            const lists = [state.oldDirs, state.oldStps, state.ro];
            const before = bits({ data: ps.map((p) => p.data), state: opt.state });
            const q = quartic(ps, (e, qs) => {
              if (e !== at) return undefined;
              if (what === 'loss') return Number.NaN;
              qs[1].grad[2] = -Infinity;
              return undefined;
            });
            if (policy === 'error') expect(() => opt.step(q.closure)).toThrow(NonFiniteError);
            else opt.step(q.closure);
            expect(q.evals()).toBe(at);
            expect(bits({ data: ps.map((p) => p.data), state: opt.state })).toEqual(before);
            expect(opt.state).toBe(state);
            expect([opt.state.oldDirs, opt.state.oldStps, opt.state.ro]).toEqual(lists);
            expect(opt.skippedSteps).toBe(policy === 'skip' ? 1 : 0);
          }
        }
      });
    }
  }

  it('a closure that throws mid-step leaves params and state as they were', () => {
    const ps = lbfgsModel();
    const opt = new LBFGS(ps, { lineSearchFn: 'strong_wolfe', maxIter: 5 });
    opt.step(quartic(ps).closure);
    const before = bits({ data: ps.map((p) => p.data), state: opt.state });
    const inner = quartic(ps).closure;
    let calls = 0;
    const boom = new Error('data loader failed');
    expect(() => opt.step(() => {
      if (++calls === 4) throw boom;
      return inner();
    })).toThrow(boom);
    expect(bits({ data: ps.map((p) => p.data), state: opt.state })).toEqual(before);
  });

  it('a skipped run continues exactly as a run that never saw the bad step', () => {
    const ps = lbfgsModel();
    const qs = lbfgsModel();
    const skipping = new LBFGS(ps, { historySize: 3, maxIter: 4, nonFinite: 'skip' });
    const clean = new LBFGS(qs, { historySize: 3, maxIter: 4 });
    for (let s = 0; s < 6; s++) {
      if (s === 2) skipping.step(quartic(ps, (e) => (e === 3 ? Infinity : undefined)).closure);
      expect(Object.is(skipping.step(quartic(ps).closure), clean.step(quartic(qs).closure))).toBe(true);
    }
    expect(skipping.skippedSteps).toBe(1);
    expect(bits(ps.map((p) => p.data))).toEqual(bits(qs.map((p) => p.data)));
    expect(bits(skipping.state)).toEqual(bits(clean.state));
  });
});
