/**
 * Non-finite gradients: the kernels' CHECK_FINITE scan (every backend and instruction set, any
 * NaN or infinity bit pattern, anywhere in a multi-tensor call) and the optimizers' `nonFinite`
 * policy: 'error' and 'skip' change nothing (params, state, step counts, byte for byte), 'skip'
 * counts, 'ignore' applies the update as torch does; a run with skipped steps continues exactly
 * as a run that never saw them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadNative } from '../src/backend/native.js';
import { referenceBackend } from '../src/backend/reference.js';
import { CHECK_FINITE, CHECK_ONLY } from '../src/backend/types.js';
import type { Backend, FloatArray } from '../src/backend/types.js';
import { NonFiniteError, OptimRangeError, OptimTypeError } from '../src/errors.js';
import { AdaBelief, Adadelta, Adafactor, Adagrad, ASGD, Adam, Adamax, AdamW, Lion, NAdam, RAdam, RMSprop, Rprop, SGD as SGDOpt, Yogi, param } from '../src/optim/index.js';
import { LAMB, LARS, ScheduleFreeAdamW, ScheduleFreeSGD } from '../src/optim/index.js';
import type { Optimizer, Param, StateDict } from '../src/optim/index.js';
import { LBFGS } from '../src/optim/lbfgs.js';
import { Newton } from '../src/optim/newton.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { KERNEL_CASES, OPTIMIZER_CLASSES } from './helpers/kernels.js';
import type { KernelCase } from './helpers/kernels.js';
import { bytesOf, snapshot } from './helpers/snapshot.js';

const native = loadNative();
const SEED = Number(process.env.FC_SEED ?? (process.env.CI === 'true' ? 20261123 : Date.now() % 2 ** 31));
console.log(`nonfinite: fast-check seed ${SEED} (FC_SEED=${SEED} reproduces)`);

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;

/** Bit patterns of every kind of non-finite value: quiet and signalling NaNs with payloads, ±Inf. */
const BAD32 = [0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, 0xffffffff, 0x7fffffff];
const BAD64: Array<[number, number]> = [
  [0x7ff00000, 0], [0xfff00000, 0], [0x7ff80000, 0], [0xfff80000, 0], [0x7ff00000, 1], [0x7ff7ffff, 0xffffffff],
  [0xffffffff, 0xffffffff], [0x7fffffff, 0xffffffff],
];
/** Finite values at the edges, which must not be taken for non-finite. */
const EDGE32 = [3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45, -0, 1.1754943508222875e-38];
const EDGE64 = [Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, -0, 2.2250738585072014e-308];

function poison(a: FloatArray, i: number, pattern: number): void {
  const dv = new DataView(a.buffer, a.byteOffset, a.byteLength);
  if (a instanceof Float32Array) dv.setUint32(i * 4, BAD32[pattern % BAD32.length], true);
  else {
    const [hi, lo] = BAD64[pattern % BAD64.length];
    dv.setUint32(i * 8, lo, true);
    dv.setUint32(i * 8 + 4, hi, true);
  }
}

interface ScanCase {
  lengths: number[];
  /** [tensor, element (mod length), pattern] */
  bad: Array<[number, number, number]>;
  edges: number;
  seed: number;
}

/**
 * Lengths around the scan's block widths (1 KB: 256 floats, 128 doubles; then one 64-byte
 * vector: 16 floats, 8 doubles), the SIMD widths, and the 128 elements from which a tensor is
 * scanned from its first cache-line boundary.
 */
const lengthArb = fc.oneof(
  fc.constantFrom(0, 1, 2, 7, 8, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 257, 271, 272, 273, 511, 512, 513, 1000, 1023, 1024, 1025, 1041),
  fc.integer({ min: 0, max: 2100 }),
);
const scanArb: fc.Arbitrary<ScanCase> = fc.record({
  lengths: fc.array(lengthArb, { minLength: 1, maxLength: 5 }),
  bad: fc.array(fc.tuple(fc.nat(4), fc.nat(1 << 20), fc.nat(7)), { maxLength: 3 }),
  edges: fc.nat(8),
  seed: fc.nat(),
});

function buildList(k: KernelCase, C: Ctor, c: ScanCase): { list: FloatArray[]; firstBad: number | undefined } {
  const { stride } = k;
  const list: FloatArray[] = [];
  let x = c.seed | 1;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) / 2 ** 32) * 2 - 1;
  };
  for (const n of c.lengths) {
    for (let j = 0; j < stride; j++) {
      const a = new C(n);
      for (let i = 0; i < n; i++) a[i] = j >= 2 ? Math.abs(rnd()) : rnd();
      list.push(a);
    }
  }
  const edges = C === Float32Array ? EDGE32 : EDGE64;
  for (let e = 0; e < c.edges; e++) {
    const t = e % c.lengths.length;
    const g = list[t * stride + 1];
    if (g.length > 0) g[(e * 7919) % g.length] = edges[e % edges.length];
  }
  let firstBad: number | undefined;
  for (const [t0, i0, pattern] of c.bad) {
    const t = t0 % c.lengths.length;
    const g = list[t * stride + 1];
    if (g.length === 0) continue;
    poison(g, i0 % g.length, pattern);
    if (firstBad === undefined || t < firstBad) firstBad = t;
  }
  return { list, firstBad };
}

const clone = (list: FloatArray[]) => list.map((a) => a.slice());
const bytes = (list: FloatArray[]) => list.map(bytesOf);
/** Byte equality of two lists (Buffer.compare: fast on the long arrays of the property). */
const same = (a: Uint8Array[], b: Uint8Array[]) =>
  a.length === b.length && a.every((x, i) => Buffer.compare(x, b[i]) === 0);

function scanProperty(backend: Backend, k: KernelCase, C: Ctor) {
  return fc.property(scanArb, (c) => {
    const { list, firstBad } = buildList(k, C, c);
    const before = bytes(list);
    const { kernel, scalars: s, flags } = k;
    // CHECK_ONLY never writes, whatever it finds.
    expect(backend.step(kernel, list, s, flags | CHECK_FINITE | CHECK_ONLY)).toBe(firstBad);
    expect(same(bytes(list), before)).toBe(true);
    // Through a prepared list, as the optimizers call it.
    const expected = clone(list);
    if (firstBad === undefined) backend.step(kernel, expected, s, flags);
    const got = backend.step(kernel, backend.prepare(list, k.stride), s, flags | CHECK_FINITE);
    expect(got).toBe(firstBad);
    // Refused: every buffer unchanged. Accepted: exactly the unchecked update.
    expect(same(bytes(list), firstBad === undefined ? bytes(expected) : before)).toBe(true);
  });
}

const ISAS = native.addon ? (['avx512', 'avx2', 'baseline'] as const).filter((isa) => native.addon!.setIsa(isa)) : [];
native.addon?.setIsa('best');

const SCAN_BACKENDS: Array<[string, Backend, string | undefined]> = [
  ['reference', referenceBackend, undefined],
  ...ISAS.map((isa): [string, Backend, string] => [`native ${isa}`, native.backend!, isa]),
];

describe.each(SCAN_BACKENDS)('CHECK_FINITE scan, %s', (_name, backend, isa) => {
  beforeAll(() => {
    if (isa) expect(native.addon!.setIsa(isa as 'avx512')).toBe(true);
  });
  afterAll(() => {
    native.addon?.setIsa('best');
  });
  for (const k of KERNEL_CASES) {
    for (const C of [Float32Array, Float64Array] as const) {
      it(`${k.kernel.exportName} ${C.name}: reports the first tensor with a NaN/Inf and writes nothing; else steps exactly`, () => {
        fc.assert(scanProperty(backend, k, C), { seed: SEED, numRuns: 25 });
      }, 60_000);
    }
  }

  it.each(KERNEL_CASES)('$kernel.exportName: CHECK_ONLY without CHECK_FINITE is refused', ({ kernel, stride, scalars }) => {
    const list = Array.from({ length: stride }, () => new Float64Array(3));
    expect(() => backend.step(kernel, list, scalars, CHECK_ONLY)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Optimizers

type Make = (params: Param[], nonFinite?: 'error' | 'skip' | 'ignore') => Optimizer<never>;

const OPTIMIZERS: Array<[string, Make]> = [
  ['SGD momentum+dampening', (p, nf) => new SGDOpt(p, { lr: 0.1, momentum: 0.9, dampening: 0.3, weightDecay: 0.01, nonFinite: nf }) as never],
  ['Adagrad', (p, nf) => new Adagrad(p, { lr: 0.1, lrDecay: 0.01, nonFinite: nf }) as never],
  ['RMSprop centered', (p, nf) => new RMSprop(p, { lr: 0.01, momentum: 0.5, centered: true, nonFinite: nf }) as never],
  ['Adam amsgrad', (p, nf) => new Adam(p, { lr: 0.01, amsgrad: true, nonFinite: nf }) as never],
  ['AdamW', (p, nf) => new AdamW(p, { lr: 0.01, nonFinite: nf }) as never],
  ['NAdam', (p, nf) => new NAdam(p, { lr: 0.01, nonFinite: nf }) as never],
  ['RAdam', (p, nf) => new RAdam(p, { lr: 0.01, nonFinite: nf }) as never],
  ['Adamax', (p, nf) => new Adamax(p, { lr: 0.01, weightDecay: 0.01, nonFinite: nf }) as never],
  ['Adadelta', (p, nf) => new Adadelta(p, { lr: 0.5, weightDecay: 0.01, nonFinite: nf }) as never],
  ['Rprop', (p, nf) => new Rprop(p, { lr: 0.01, nonFinite: nf }) as never],
  ['ASGD averaging', (p, nf) => new ASGD(p, { lr: 0.01, t0: 0, weightDecay: 0.01, nonFinite: nf }) as never],
  ['Lion', (p, nf) => new Lion(p, { lr: 0.01, weightDecay: 0.01, nonFinite: nf }) as never],
  ['AdaBelief nesterov', (p, nf) => new AdaBelief(p, { lr: 0.01, nesterov: true, nonFinite: nf }) as never],
  ['Yogi', (p, nf) => new Yogi(p, { lr: 0.01, nonFinite: nf }) as never],
  ['LAMB', (p, nf) => new LAMB(p, { lr: 0.01, weightDecay: 0.01, nonFinite: nf }) as never],
  ['LARS nesterov', (p, nf) => new LARS(p, { lr: 0.1, weightDecay: 0.01, nesterov: true, nonFinite: nf }) as never],
  ['ScheduleFreeAdamW', (p, nf) => new ScheduleFreeAdamW(p, { lr: 0.01, warmupSteps: 2, weightDecay: 0.01, nonFinite: nf }) as never],
  ['ScheduleFreeSGD', (p, nf) => new ScheduleFreeSGD(p, { lr: 0.01, weightDecay: 0.01, nonFinite: nf }) as never],
  ['Adafactor', (p, nf) => new Adafactor(p, { lr: 0.1, weightDecay: 0.01, nonFinite: nf }) as never],
];

/** Trust-ratio optimizers: a NaN gradient makes the param's norm NaN, so under 'ignore' the whole param (as in optax). */
const WHOLE_PARAM = new Set(['LAMB', 'LARS nesterov']);

it('the policy table covers every optimizer class src/optim exports', () => {
  const covered = OPTIMIZERS.map(([, make]) => make(model()).constructor);
  expect(covered).toEqual(expect.arrayContaining(OPTIMIZER_CLASSES.map(([, C]) => C)));
});

/** Params of both dtypes: w (f64, 300) and b (f32, 7), so a step is two backend calls. */
function model(): Param[] {
  const w = param(new Float64Array(300), 'w');
  const b = param(new Float32Array(7), 'b');
  for (let i = 0; i < 300; i++) w.data[i] = Math.sin(i + 1);
  for (let i = 0; i < 7; i++) b.data[i] = Math.cos(i + 1);
  return [w, b];
}

/** Deterministic grads for step t. */
function fillGrads(ps: Param[], t: number): void {
  for (const p of ps) for (let i = 0; i < p.grad.length; i++) p.grad[i] = Math.sin(0.37 * i + 1.3 * t) * (1 + (i % 3));
}

describe.each(backendRows)('nonFinite policy, %s backend', (_name, backend) => {
  useBackend(backend);

  for (const [name, make] of OPTIMIZERS) {
    for (const oneParam of [true, false]) {
      const layout = oneParam ? 'one call' : 'two calls (f64 + f32)';
      it(`${name}, ${layout}: 'error' throws NonFiniteError and changes nothing`, () => {
        const ps = oneParam ? model().slice(0, 1) : model();
        const opt = make(ps);
        expect(opt.nonFinite).toBe('error');
        for (let t = 0; t < 3; t++) {
          fillGrads(ps, t);
          opt.step();
        }
        fillGrads(ps, 3);
        const victim = ps[ps.length - 1];
        victim.grad[5] = Number.NEGATIVE_INFINITY;
        const before = snapshot(ps, opt);
        let err: unknown;
        try {
          opt.step();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(NonFiniteError);
        expect(err).toBeInstanceOf(OptimRangeError);
        const e = err as NonFiniteError;
        expect([e.param, e.index, e.value]).toEqual([victim.name, 5, Number.NEGATIVE_INFINITY]);
        expect(e.message).toContain(`"${victim.name}"`);
        expect(snapshot(ps, opt)).toEqual(before);
      });

      it(`${name}, ${layout}: 'skip' changes nothing, counts, and the run goes on as if the step never came`, () => {
        const ps = oneParam ? model().slice(0, 1) : model();
        const clean = oneParam ? model().slice(0, 1) : model();
        const opt = make(ps, 'skip');
        const ref = make(clean, 'skip');
        let skipped = 0;
        for (let t = 0; t < 12; t++) {
          if (t === 0 || t === 4 || t === 5 || t === 9) {
            // A skipped step, the very first one included: no state may be created by it.
            fillGrads(ps, t);
            ps[0].grad[t % ps[0].grad.length] = Number.NaN;
            const before = snapshot(ps, opt);
            expect(opt.step(() => 42)).toBe(42);
            skipped++;
            expect(opt.skippedSteps).toBe(skipped);
            expect(snapshot(ps, opt)).toEqual(before);
            if (t === 0) expect(opt.stateDict().state).toEqual({});
            continue;
          }
          fillGrads(ps, t);
          fillGrads(clean, t);
          opt.step();
          ref.step();
        }
        for (let j = 0; j < ps.length; j++) expect(bytesOf(ps[j].data)).toEqual(bytesOf(clean[j].data));
        const sd = opt.stateDict();
        expect(sd.skippedSteps).toBe(4);
        const { skippedSteps: _a, ...rest } = sd;
        const { skippedSteps: _b, ...restRef } = ref.stateDict();
        expect(rest).toEqual(restRef);
      });
    }

    it(`${name}: 'ignore' applies the update, and NaN spreads as in torch`, () => {
      const ps = model().slice(0, 1);
      const opt = make(ps, 'ignore');
      fillGrads(ps, 0);
      ps[0].grad[3] = Number.NaN;
      opt.step();
      expect(Number.isNaN(ps[0].data[3])).toBe(true);
      if (WHOLE_PARAM.has(name)) expect(Array.from(ps[0].data).every(Number.isNaN)).toBe(true);
      else expect(Number.isFinite(ps[0].data[4])).toBe(true);
      expect(opt.skippedSteps).toBe(0);
    });
  }

  it('skippedSteps survives stateDict/loadStateDict; a bad value is refused', () => {
    const ps = model();
    const opt = new Adam(ps, { nonFinite: 'skip' });
    fillGrads(ps, 0);
    ps[1].grad[0] = Number.POSITIVE_INFINITY;
    opt.step();
    fillGrads(ps, 1);
    opt.step();
    const sd = opt.stateDict();
    const other = new Adam(model(), { nonFinite: 'skip' });
    other.loadStateDict(sd);
    expect(other.skippedSteps).toBe(1);
    expect(() => other.loadStateDict({ ...sd, skippedSteps: -1 } as StateDict)).toThrow(/skippedSteps/);
    expect(other.skippedSteps).toBe(1);
  });

  it('SGD with lookahead: a refused step undoes the look-ahead move exactly', () => {
    for (const policy of ['error', 'skip'] as const) {
      const ps = model();
      const opt = new SGDOpt(ps, { lr: 0.1, momentum: 0.9, lookahead: true, nonFinite: policy });
      const closure = (t: number, bad: boolean) => () => {
        fillGrads(ps, t);
        if (bad) ps[1].grad[2] = Number.NaN;
        return 1;
      };
      opt.step(closure(0, false));
      opt.step(closure(1, false));
      const before = snapshot(ps, opt);
      if (policy === 'error') expect(() => opt.step(closure(2, true))).toThrow(NonFiniteError);
      else expect(opt.step(closure(2, true))).toBe(1);
      // The closure overwrote the grads; params and state must be as before.
      const after = snapshot(ps, opt) as { data: unknown; state: unknown };
      const prev = before as { data: unknown; state: unknown };
      expect(after.data).toEqual(prev.data);
      expect(after.state).toEqual(prev.state);
    }
  });

  it('the policy is checked, and it is optimizer-wide (refused in a group)', () => {
    expect(() => new Adam(model(), { nonFinite: 'warn' as never })).toThrow(OptimRangeError);
    expect(() => new Adam(model(), { nonFinite: 1 as never })).toThrow(OptimTypeError);
    expect(() => new Adam([{ params: model(), nonFinite: 'skip' } as never])).toThrow(/optimizer-wide/);
    expect(() => new LBFGS(model(), { nonFinite: 'nope' as never })).toThrow(OptimRangeError);
    expect(() => new Newton(model(), { nonFinite: null as never })).toThrow(OptimTypeError);
  });
});

describe.each(backendRows)('nonFinite in L-BFGS and Newton, %s backend', (_name, backend) => {
  useBackend(backend);

  /** f(x) = Σ c_i (x_i − i)⁴ + (x_i − i)², with a NaN gradient after `poisonAfter` evaluations. */
  function quadratic(x: Param, poisonAfter: number) {
    let evals = 0;
    const c = [1, 10, 100, 3];
    return {
      closure: () => {
        evals++;
        let loss = 0;
        for (let i = 0; i < x.data.length; i++) {
          const r = x.data[i] - i;
          loss += c[i % 4] * r ** 4 + r * r;
          x.grad[i] = 4 * c[i % 4] * r ** 3 + 2 * r;
        }
        if (evals > poisonAfter) x.grad[1] = Number.NaN;
        return loss;
      },
      evals: () => evals,
    };
  }

  for (const poisonAfter of [0, 3]) {
    it(`L-BFGS: a NaN gradient at evaluation ${poisonAfter + 1} restores params and state exactly ('error', 'skip')`, () => {
      for (const policy of ['error', 'skip'] as const) {
        const x = param(Float64Array.from([5, -3, 2, 8]), 'x');
        const opt = new LBFGS([x], { lineSearchFn: 'strong_wolfe', maxIter: 2, nonFinite: policy });
        opt.step(quadratic(x, Infinity).closure);
        opt.paramGroups[0].maxIter = 20;
        opt.paramGroups[0].maxEval = 25;
        const data = bytesOf(x.data);
        const state = structuredClone(opt.state);
        const q = quadratic(x, poisonAfter);
        if (policy === 'error') expect(() => opt.step(q.closure)).toThrow(NonFiniteError);
        else {
          opt.step(q.closure);
          expect(opt.skippedSteps).toBe(1);
        }
        expect(q.evals()).toBe(poisonAfter + 1);
        expect(bytesOf(x.data)).toEqual(data);
        expect(opt.state).toEqual(state);
      }
    });
  }

  it("L-BFGS 'ignore' does not look", () => {
    const x = param(Float64Array.from([5, -3, 2, 8]), 'x');
    const opt = new LBFGS([x], { maxIter: 2, nonFinite: 'ignore' });
    opt.step(quadratic(x, 0).closure);
    expect(Number.isNaN(x.data[1])).toBe(true);
  });

  it("Newton: a non-finite start is refused ('error') or skipped ('skip') with nothing moved; a non-finite trial point is rejected", () => {
    const n = 3;
    const hess = new Float64Array(n * n);
    for (let i = 0; i < n; i++) hess[i * n + i] = 2;
    const x = param(Float64Array.from([1, 2, 3]), 'x');
    const start = (bad: boolean) => () => {
      for (let i = 0; i < n; i++) x.grad[i] = 2 * (x.data[i] - 10);
      if (bad) x.grad[2] = Number.POSITIVE_INFINITY;
      return { loss: 1, hessian: hess };
    };
    const err = new Newton([x], {});
    expect(() => err.step(start(true))).toThrow(NonFiniteError);
    expect(Array.from(x.data)).toEqual([1, 2, 3]);
    const skip = new Newton([x], { nonFinite: 'skip' });
    const info = skip.step(start(true));
    expect(info.skipped).toBe(true);
    expect(info.moved).toBe(false);
    expect(skip.skippedSteps).toBe(1);
    expect(Array.from(x.data)).toEqual([1, 2, 3]);
    expect(skip.state.step).toBe(0);

    // Adaptive damping: the first trial point returns NaN everywhere; λ grows and the next
    // (finite) trial is accepted.
    let calls = 0;
    const lm = new Newton([x], { damping: 'adaptive' });
    const r = lm.step(() => {
      calls++;
      let loss = 0;
      for (let i = 0; i < n; i++) {
        loss += (x.data[i] - 10) ** 2;
        x.grad[i] = 2 * (x.data[i] - 10);
      }
      if (calls === 2) {
        x.grad.fill(Number.NaN);
        return { loss: Number.NaN, hessian: hess };
      }
      return { loss, hessian: hess };
    });
    expect(r.moved).toBe(true);
    expect(r.evaluations).toBe(3);
    expect(r.lambda).toBeGreaterThan(1e-3);
  });
});
