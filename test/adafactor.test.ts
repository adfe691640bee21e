/**
 * Adafactor (src/optim/adafactor.ts) against torch 2.13's torch.optim.Adafactor
 * (test/golden/torch-2.13/adafactor.json: W 6×4 and b 4 of the two_tensor problem in one group,
 * lr 0.01, every other option torch's default, float64, 50 steps), on both backends and, on the
 * native one, every instruction set this CPU runs; then the rule for other options, shapes (a
 * batch of matrices) and float32 against a plain transcription, and the class's contract.
 *
 * Tolerances, and what was measured (max |Δ| over the 50 steps, W and b, open and closed loop;
 * the state at steps 1, 2, 3, 10 and 50 relative to max(1, |x|): the factors reach 26):
 * - where the native kernels fuse (avx512, avx2: FMA): 0, params and state, open and closed loop.
 *   The file pins torch's every rounding down: its norms sum in 4 lanes (256-bit vectors; 8 or
 *   sequential sums each leave 15 to 19 of the 1200 element-steps of W 1 ulp off), the mean of
 *   the row factor is its cascade sum, lerps over fewer than 8 elements (its scalar loop) round
 *   twice, θ − s·U is fused (src/optim/adafactor.ts).
 * - without FMA (reference backend, baseline instruction set) each fused multiply-add rounds
 *   twice: params within the file's ±1-ulp gradient sensitivity, 2.2e-16 (measured 1.1e-16 W,
 *   1.4e-17 b); state within 2^-51 ≈ 4.4e-16 (measured 0 open loop, 2.0e-16 closed).
 * - the rule against its plain transcription (30 steps; shapes 2-D to 4-D, vectors, a scalar;
 *   weight decay, maximize, d, eps, lr, beta2Decay; relative to the largest |p|): float64 ≤ 1e-15
 *   (measured 5.1e-16), float32 ≤ 2^-21 ≈ 4.8e-7, 4 ulps at 1 (measured 2.4e-7). The
 *   transcription sums in order, takes means of squares and rounds every operation apart, so
 *   they part in the last bits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../src/checkpoint.js';
import { loadNative } from '../src/backend/native.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../src/errors.js';
import { Adafactor, param } from '../src/optim/index.js';
import type { AdafactorOptions, Param, StateDict } from '../src/optim/index.js';
import { paramArena } from '../src/param.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { camelOptions, maxAbsDiff, maxScaledDiff, readGolden } from './helpers/golden.js';
import { bytesOf, errorOf, snapshot } from './helpers/snapshot.js';

interface AdafactorGolden {
  constructor_kwargs: Record<string, number>;
  hyperparameters: Record<string, unknown>;
  problem: {
    params: { W: { shape: [number, number]; w0: number[] }; b: { shape: [number]; w0: number[] } };
    A: number[];
    C: number[];
    d: number[];
    e: number[];
  };
  steps: number;
  trajectory: { W: number[][]; b: number[][] };
  grads: { W: number[][]; b: number[][] };
  state_at_checkpoints: {
    W: Record<string, { step: number; row_var: number[]; col_var: number[] }>;
    b: Record<string, { step: number; variance: number[] }>;
  };
  state_shapes: { W: Record<string, number[]>; b: Record<string, number[]> };
  sensitivity: { max_abs: number };
}

const g = readGolden<AdafactorGolden>('torch-2.13/adafactor.json');
const [ROWS, COLS] = g.problem.params.W.shape;

/** The problem's gradients (test/golden/torch-2.13/README.md), in double, left to right. */
function fillGrads(W: Param, b: Param): void {
  const { A, C, d, e } = g.problem;
  for (let k = 0; k < W.data.length; k++) W.grad[k] = A[k] * (W.data[k] - C[k]) + 0.1 * Math.cos(W.data[k]);
  for (let j = 0; j < b.data.length; j++) b.grad[j] = d[j] * (b.data[j] - e[j]);
}

interface Run {
  W: number[][];
  b: number[][];
  states: Record<string, StateDict['state']>;
}

function run(closed: boolean): Run {
  const W = param(Float64Array.from(g.problem.params.W.w0), 'W', { shape: [ROWS, COLS] });
  const b = param(Float64Array.from(g.problem.params.b.w0), 'b', { shape: g.problem.params.b.shape });
  const opt = new Adafactor([W, b], camelOptions(g.constructor_kwargs));
  const out: Run = { W: [], b: [], states: {} };
  for (let t = 1; t <= g.steps; t++) {
    if (closed) fillGrads(W, b);
    else {
      W.grad.set(g.grads.W[t - 1]);
      b.grad.set(g.grads.b[t - 1]);
    }
    opt.step();
    out.W.push(Array.from(W.data));
    out.b.push(Array.from(b.data));
    if (String(t) in g.state_at_checkpoints.W) out.states[t] = opt.stateDict().state;
  }
  return out;
}

const maxOver = (got: number[][], want: number[][]) => Math.max(...got.map((row, t) => maxAbsDiff(row, want[t])));

/** The largest state difference at the checkpoints (scaled by max(1, |x|): the factors reach 26). */
function stateDiff(states: Run['states']): number {
  let m = 0;
  for (const [t, want] of Object.entries(g.state_at_checkpoints.W)) {
    const st = states[t];
    expect(st.W.step).toBe(want.step);
    expect(st.b.step).toBe(g.state_at_checkpoints.b[t].step);
    m = Math.max(
      m,
      maxScaledDiff(st.W.rowVar as Float64Array, want.row_var),
      maxScaledDiff(st.W.colVar as Float64Array, want.col_var),
      maxScaledDiff(st.b.variance as Float64Array, g.state_at_checkpoints.b[t].variance),
    );
  }
  return m;
}

const native = loadNative();
const ISAS = native.addon ? (['avx512', 'avx2', 'baseline'] as const).filter((isa) => native.addon!.setIsa(isa)) : [];
native.addon?.setIsa('best');

it("the golden file is torch 2.13 Adafactor with torch's defaults but lr; our defaults are torch's", () => {
  const W = param(new Float64Array(24), 'W', { shape: [6, 4] });
  const b = param(new Float64Array(4), 'b');
  const { params: _p, foreach, ...ours } = new Adafactor([W, b], { lr: 0.01 }).paramGroups[0];
  const { foreach: torchForeach, ...torch } = camelOptions(g.hyperparameters);
  expect(ours).toEqual(torch);
  expect(torchForeach).toBe(false); // the recording passed foreach=False; torch's default is None
  expect(foreach).toBe(null);
  expect(new Adafactor([W]).paramGroups[0]).toMatchObject({ lr: 1e-2, beta2Decay: -0.8, eps: [null, 1e-3], d: 1, weightDecay: 0, maximize: false });
  // torch's state shapes, flattened: W (6, 1) and (1, 4); b (4,).
  expect(g.state_shapes).toEqual({ W: { step: [], row_var: [6, 1], col_var: [1, 4] }, b: { step: [], variance: [4] } });
});

describe.each(backendRows)('Adafactor against torch 2.13 (%s backend)', (name, backend) => {
  useBackend(backend);
  const isas = name === 'native' ? ISAS : [undefined];
  for (const isa of isas) {
    describe(isa ? `instruction set ${isa}` : 'TypeScript', () => {
      let fma = false;
      beforeAll(() => {
        if (isa) {
          native.addon!.setIsa(isa);
          fma = native.addon!.info().fma;
        }
      });
      afterAll(() => {
        native.addon?.setIsa('best');
      });
      for (const closed of [false, true]) {
        it(`${closed ? 'closed loop (our gradients)' : 'open loop (the recorded gradients)'}, W and b, 50 steps, and the state at the checkpoints`, () => {
          const r = run(closed);
          const dW = maxOver(r.W, g.trajectory.W);
          const db = maxOver(r.b, g.trajectory.b);
          const ds = stateDiff(r.states);
          expect(dW).toBeLessThanOrEqual(fma ? 0 : g.sensitivity.max_abs);
          expect(db).toBeLessThanOrEqual(fma ? 0 : g.sensitivity.max_abs);
          expect(ds).toBeLessThanOrEqual(fma ? 0 : 2 ** -51);
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The rule for every option and shape, against a plain statement of it

interface Rule {
  lr: number;
  beta2Decay: number;
  eps: [number | null, number];
  d: number;
  weightDecay: number;
  maximize: boolean;
}

const DEFAULT_RULE: Rule = { lr: 1e-2, beta2Decay: -0.8, eps: [null, 1e-3], d: 1, weightDecay: 0, maximize: false };

/**
 * The rule of the class comment, as plainly as it reads: means of squares (not torch's norms
 * squared back), sums in order, lerp as a + w(b − a), Math.max/min; every result rounded to the
 * dtype (`f32`: Math.fround), nothing fused.
 */
function plainAdafactor(shape: number[], w0: number[], grads: number[][], r: Rule, f32: boolean): number[][] {
  const R = f32 ? Math.fround : (x: number) => x;
  const n = w0.length;
  let p = w0.map(R);
  const factored = shape.length >= 2;
  const rows = factored ? shape[shape.length - 2] : 1;
  const cols = factored ? shape[shape.length - 1] : n;
  const batch = factored ? n / (rows * cols) : 1;
  const rowVar = new Array<number>(batch * rows).fill(0);
  const colVar = new Array<number>(batch * cols).fill(0);
  let variance = new Array<number>(n).fill(0);
  const eps1 = r.eps[0] ?? (f32 ? 2 ** -23 : 2 ** -52);
  const sumOf = (xs: number[]) => xs.reduce((s, x) => R(s + x), 0);
  const out: number[][] = [];
  grads.forEach((grad, idx) => {
    const t = idx + 1;
    const G = grad.map((x) => R(r.maximize ? -x : x));
    const w = R(t ** r.beta2Decay);
    const lerp = (a: number, b: number) => R(a + R(w * R(b - a)));
    const rho = Math.min(r.lr, 1 / Math.sqrt(t));
    const rms = R(Math.sqrt(sumOf(p.map((x) => R(x * x))))) / Math.sqrt(n);
    const alpha = Math.max(r.eps[1], rms) * rho;
    if (r.weightDecay !== 0) p = p.map((x) => R(x * R(1 - r.lr * r.weightDecay)));
    const G2 = G.map((x) => R(x * x));
    let V: number[];
    if (factored) {
      V = new Array<number>(n);
      for (let b = 0; b < batch; b++) {
        const at = (i: number, j: number) => b * rows * cols + i * cols + j;
        for (let i = 0; i < rows; i++) {
          const mean = R(sumOf(Array.from({ length: cols }, (_, j) => G2[at(i, j)])) / cols);
          rowVar[b * rows + i] = lerp(rowVar[b * rows + i], mean);
        }
        for (let j = 0; j < cols; j++) {
          const mean = R(sumOf(Array.from({ length: rows }, (_, i) => G2[at(i, j)])) / rows);
          colVar[b * cols + j] = lerp(colVar[b * cols + j], mean);
        }
        const rowMean = R(sumOf(rowVar.slice(b * rows, (b + 1) * rows)) / rows);
        const denom = Math.max(rowMean, R(eps1));
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) V[at(i, j)] = R(R(rowVar[b * rows + i] * colVar[b * cols + j]) / denom);
      }
    } else {
      variance = variance.map((v, k) => lerp(v, G2[k]));
      V = variance.slice();
    }
    const U = V.map((v, k) => R(G[k] * R(1 / R(Math.sqrt(Math.max(v, R(eps1 * eps1)))))));
    const rmsU = R(Math.sqrt(sumOf(U.map((x) => R(x * x))))) / Math.sqrt(n);
    const scale = R(alpha / Math.max(1, rmsU / r.d));
    p = p.map((x, k) => R(x - R(scale * U[k])));
    out.push(p.slice());
  });
  return out;
}

/** Deterministic gradients for n elements, steps 1..steps, of varied scale across rows and columns. */
function someGrads(n: number, steps: number, cols: number): number[][] {
  return Array.from({ length: steps }, (_, t) =>
    Array.from({ length: n }, (_, k) => Math.sin(0.7 * k + 1.3 * t + 0.2) * (1 + (k % 3)) * (1 + 2 * (Math.floor(k / cols) % 4))),
  );
}

function someWeights(n: number): number[] {
  return Array.from({ length: n }, (_, k) => 0.5 * Math.cos(1.7 * k + 0.3));
}

/** Our trajectory for one param of `shape` on the recorded-style gradients. */
function ours(shape: number[], w0: number[], grads: number[][], options: AdafactorOptions, f32: boolean, withShape = true): number[][] {
  const C = f32 ? Float32Array : Float64Array;
  const p = withShape ? param(C.from(w0), 'p', { shape }) : ({ name: 'p', data: C.from(w0), grad: new C(w0.length) } as unknown as Param);
  const opt = new Adafactor([p], options);
  return grads.map((grad) => {
    p.grad.set(grad);
    opt.step();
    return Array.from(p.data);
  });
}

const RULE_CASES: Array<[string, number[], Partial<Rule>]> = [
  ['a 6×4 matrix, torch defaults', [6, 4], {}],
  ['a batch of matrices 3×5×4 (factored over the last two dims)', [3, 5, 4], {}],
  ['a 2×2×3×2 batch, weight decay, maximize, d 1.5', [2, 2, 3, 2], { weightDecay: 0.3, maximize: true, d: 1.5 }],
  ['a tall 9×2 matrix, lr 0.5 (ρ = 1/√t once t > 4), eps1 1e-6, eps2 0.1', [9, 2], { lr: 0.5, eps: [1e-6, 0.1] }],
  ['a 1×7 matrix, beta2Decay −0.5, weight decay', [1, 7], { beta2Decay: -0.5, weightDecay: 0.1 }],
  ['a vector of 11 (unfactored)', [11], { lr: 0.05 }],
  ['a vector, beta2Decay 0 (the variance is the last g²), maximize', [5], { beta2Decay: 0, maximize: true }],
  ['a scalar (shape [])', [], { weightDecay: 0.5, lr: 0.1 }],
];

describe.each(backendRows)('the rule (%s backend)', (_name, backend) => {
  useBackend(backend);
  for (const f32 of [false, true]) {
    it.each(RULE_CASES)(`${f32 ? 'float32' : 'float64'}: %s, 30 steps, against the transcription`, (_n, shape, rule) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const w0 = someWeights(n);
      const grads = someGrads(n, 30, shape.length >= 2 ? shape[shape.length - 1] : n);
      const want = plainAdafactor(shape, w0, grads, { ...DEFAULT_RULE, ...rule }, f32);
      const got = ours(shape, w0, grads, rule, f32);
      const scale = Math.max(...want.flat().map(Math.abs));
      expect(maxOver(got, want) / scale).toBeLessThanOrEqual(f32 ? 2 ** -21 : 1e-15);
    });
  }

  it('a param without a shape is a vector; a 1-D shape is too', () => {
    const w0 = someWeights(12);
    const grads = someGrads(12, 5, 12);
    const bare = ours([12], w0, grads, {}, false, false);
    const vector = ours([12], w0, grads, {}, false);
    const matrix = ours([3, 4], w0, grads, {}, false);
    expect(bare).toEqual(vector);
    expect(maxOver(matrix, vector)).toBeGreaterThan(1e-6); // factored: another rule
  });
});

// ---------------------------------------------------------------------------------------------
// The class's contract

function matrix(name: string, rows = 3, cols = 2, dtype: 'f64' | 'f32' = 'f64'): Param {
  const C = dtype === 'f32' ? Float32Array : Float64Array;
  return param(C.from({ length: rows * cols }, (_, k) => 0.3 * Math.sin(k + 1)), name, { shape: [rows, cols] });
}

function vector(name: string, n = 4, dtype: 'f64' | 'f32' = 'f64'): Param {
  const C = dtype === 'f32' ? Float32Array : Float64Array;
  return param(C.from({ length: n }, (_, k) => 0.2 * Math.cos(k + 1)), name);
}

function fill(ps: Param[], t: number): void {
  for (const p of ps) for (let k = 0; k < p.grad.length; k++) p.grad[k] = Math.sin(0.37 * k + 1.3 * t) * (1 + (k % 3));
}

describe.each(backendRows)('Adafactor (%s backend)', (_name, backend) => {
  useBackend(backend);

  describe('params and state', () => {
    it("keeps torch's state: step, rowVar (batch·rows), colVar (batch·cols) for 2 dims or more; step, variance otherwise", () => {
      const { w, b, e } = paramArena({ w: [5, 3], b: 3, e: [2, 4, 3] }, { dtype: 'float64' });
      const s = param(Float32Array.of(0.5), 's', { shape: [] });
      const opt = new Adafactor([w, b, e, s]);
      fill([w, b, e, s], 0);
      opt.step();
      const { state } = opt.stateDict();
      expect(Object.keys(state.w)).toEqual(['step', 'rowVar', 'colVar']);
      expect([(state.w.rowVar as Float64Array).length, (state.w.colVar as Float64Array).length]).toEqual([5, 3]);
      expect(Object.keys(state.b)).toEqual(['step', 'variance']);
      expect((state.b.variance as Float64Array).length).toBe(3);
      expect([(state.e.rowVar as Float64Array).length, (state.e.colVar as Float64Array).length]).toEqual([8, 6]);
      expect(state.s.variance).toBeInstanceOf(Float32Array);
      expect(state.e.step).toBe(1);
    });

    it('refuses a param whose shape does not describe its data, when made and at a step, changing nothing', () => {
      const bad = { name: 'x', data: new Float64Array(6), grad: new Float64Array(6), shape: [4, 2] } as unknown as Param;
      expect(() => new Adafactor([bad])).toThrow(OptimRangeError);
      expect(() => new Adafactor([bad])).toThrow(/paramGroups\[0\]\.params\[0\]: param "x" has shape \[4, 2\] \(8 elements\) but its data has length 6/);
      const odd = { name: 'y', data: new Float64Array(6), grad: new Float64Array(6), shape: '6' } as unknown as Param;
      expect(() => new Adafactor([odd])).toThrow(OptimTypeError);
      const w = matrix('w');
      const opt = new Adafactor([w]);
      expect(() => opt.addParamGroup({ params: [matrix('v'), bad] })).toThrow(/param "x" has shape \[4, 2\]/);
      expect(opt.paramGroups.length).toBe(1);
      fill([w], 0);
      opt.step();
      (w as { shape: number[] }).shape = [2, 3];
      const before = snapshot([w], opt);
      expect(() => opt.step()).toThrow(/param "w" of shape \[2, 3\] needs a rowVar of 2 elements, but its state has 3/);
      expect(snapshot([w], opt)).toEqual(before);
    });

    it('leaves an empty param as it is (torch divides by zero on one) and steps the others', () => {
      const empty = param(new Float64Array(0), 'e');
      const b = vector('b');
      const opt = new Adafactor([empty, b]);
      fill([b], 1);
      const b0 = b.data.slice();
      opt.step();
      expect(opt.stateDict().state.e).toEqual({ step: 1, variance: new Float64Array(0) });
      expect(maxAbsDiff(b.data, b0)).toBeGreaterThan(0);
    });

    it('refuses at a step a param whose data changed length, changing nothing', () => {
      const ps = [matrix('w'), vector('b')];
      const opt = new Adafactor(ps);
      fill(ps, 0);
      opt.step();
      ps[1].data = new Float64Array(5);
      ps[1].grad = new Float64Array(5);
      const before = snapshot(ps, opt);
      expect(() => opt.step()).toThrow(/param "b": data has length 5 but had length 4 at its first step/);
      expect(snapshot(ps, opt)).toEqual(before);
    });

    it('takes float32 and float64 params in one group, each with the machine epsilon of its own dtype', () => {
      // Tiny gradients: the mean of the row factor (~1e-12) falls below float32's epsilon (1.2e-7)
      // but not float64's, so ε₁ decides the float32 matrix's update. torch would take the first
      // param's (b: float64) for the whole group; here each param takes its own.
      const make = () => [vector('b', 4, 'f64'), matrix('w', 3, 2, 'f32')];
      const tiny = (ps: Param[], t: number) => {
        fill(ps, t);
        for (const p of ps) p.grad.set(p.grad.map((x) => x * 1e-6));
      };
      const ps = make();
      const alone = make();
      const f64Eps = make();
      const opt = new Adafactor(ps, { lr: 0.1 });
      const a = new Adafactor([alone[0]], { lr: 0.1 });
      const c = new Adafactor([alone[1]], { lr: 0.1 });
      const e = new Adafactor([f64Eps[1]], { lr: 0.1, eps: [2 ** -52, 1e-3] });
      for (let t = 0; t < 4; t++) {
        for (const set of [ps, alone, f64Eps]) tiny(set, t);
        opt.step();
        a.step();
        c.step();
        e.step();
      }
      expect(bytesOf(ps[0].data)).toEqual(bytesOf(alone[0].data));
      expect(bytesOf(ps[1].data)).toEqual(bytesOf(alone[1].data));
      expect(maxAbsDiff(ps[1].data, f64Eps[1].data)).toBeGreaterThan(1e-4);
    });
  });

  describe('options', () => {
    const bad: Array<[string, Record<string, unknown>, typeof OptimTypeError | typeof OptimRangeError, RegExp]> = [
      ['a negative lr', { lr: -1 }, OptimRangeError, /Invalid learning rate: -1 \(options\.lr must be a finite number >= 0\)/],
      ['a positive beta2Decay', { beta2Decay: 0.5 }, OptimRangeError, /Invalid beta2_decay value: 0\.5 \(options\.beta2Decay must be a finite number <= 0\)/],
      ['a NaN beta2Decay', { beta2Decay: NaN }, OptimRangeError, /Invalid beta2_decay value: NaN/],
      ['a string beta2Decay', { beta2Decay: '-0.8' }, OptimTypeError, /options\.beta2Decay must be a number, got string/],
      ['eps not a pair', { eps: 1e-3 }, OptimTypeError, /options\.eps must be an array \[eps1, eps2\] \(eps1 null: the dtype's machine epsilon\), got number/],
      ['eps of three', { eps: [null, 1e-3, 1] }, OptimTypeError, /options\.eps must be an array \[eps1, eps2\].*got an Array of length 3/],
      ['a negative eps1', { eps: [-1, 1e-3] }, OptimRangeError, /Invalid epsilon value: -1 \(options\.eps\[0\] must be null or a finite number >= 0\)/],
      ['an undefined eps1', { eps: [undefined, 1e-3] }, OptimTypeError, /options\.eps\[0\] must be null or a number, got undefined/],
      ['a negative eps2', { eps: [null, -1e-3] }, OptimRangeError, /Invalid epsilon value: -0\.001 \(options\.eps\[1\] must be a finite number >= 0\)/],
      ['a null eps2', { eps: [null, null] }, OptimTypeError, /options\.eps\[1\] must be a number, got null/],
      ['d below 1', { d: 0.5 }, OptimRangeError, /Invalid clipping threshold d: 0\.5 \(options\.d must be a number >= 1\)/],
      ['a NaN d', { d: NaN }, OptimRangeError, /Invalid clipping threshold d: NaN/],
      ['a negative weight decay', { weightDecay: -0.1 }, OptimRangeError, /Invalid weight_decay value: -0\.1 \(options\.weightDecay/],
      ['a string foreach', { foreach: 'yes' }, OptimTypeError, /options\.foreach must be null or a boolean/],
      ['a numeric maximize', { maximize: 1 }, OptimTypeError, /options\.maximize must be a boolean, got number/],
      ['a snake_case option', { beta2_decay: -0.8 }, OptimTypeError, /unknown option "beta2_decay"/],
      ['a bad nonFinite policy', { nonFinite: 'warn' }, OptimRangeError, /options\.nonFinite must be 'error', 'skip' or 'ignore'/],
      ['bfloat16 state storage', { stateDtype: 'bfloat16' }, OptimRangeError, /options\.stateDtype must be 'param' \(Adafactor keeps its factors in the param's dtype\), got "bfloat16"/],
    ];

    it.each(bad)('refuses %s in the constructor', (_n, options, cls, message) => {
      const err = errorOf(() => new Adafactor([matrix('w')], options as AdafactorOptions));
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message).toMatch(message);
    });

    it.each(bad.filter(([, o]) => !('beta2_decay' in o) && !('nonFinite' in o) && !('stateDtype' in o)))(
      'refuses %s set on a group between steps, naming the group, with nothing changed',
      (_n, options, cls) => {
        const ps = [matrix('w'), vector('b')];
        const opt = new Adafactor([{ params: [ps[0]] }, { params: [ps[1]] }]);
        fill(ps, 0);
        opt.step();
        Object.assign(opt.paramGroups[1], options);
        fill(ps, 1);
        const before = snapshot(ps, opt);
        const err = errorOf(() => opt.step());
        expect(err).toBeInstanceOf(cls);
        expect((err as Error).message).toMatch(/paramGroups\[1\]\./);
        expect(snapshot(ps, opt)).toEqual(before);
      },
    );

    it('accepts the edges: eps1 0, eps2 0, d Infinity (no clipping), beta2Decay 0, foreach true and false', () => {
      for (const options of [{ eps: [0, 0] }, { d: Infinity }, { beta2Decay: 0 }, { foreach: true }, { foreach: false }] as AdafactorOptions[]) {
        const ps = [matrix('w'), vector('b')];
        const opt = new Adafactor(ps, options);
        fill(ps, 1);
        opt.step();
        expect(ps.every((p) => p.data.every(Number.isFinite))).toBe(true);
      }
      // eps1 0 leaves a zero gradient element 0·∞ = NaN in a vector, as in torch (ε₁ is what keeps it away).
      const b = vector('b');
      const opt = new Adafactor([b], { eps: [0, 1e-3] });
      fill([b], 1);
      b.grad[2] = 0;
      opt.step();
      expect(Array.from(b.data, Number.isNaN)).toEqual([false, false, true, false]);
    });

    it('a zero gradient from the start leaves the params (ε₁ keeps 0/0 away); weight decay alone moves them', () => {
      const ps = [matrix('w'), vector('b')];
      const w0 = ps.map((p) => p.data.slice());
      new Adafactor(ps).step();
      expect(ps.map((p) => Array.from(p.data))).toEqual(w0.map((d) => Array.from(d)));
      new Adafactor(ps, { lr: 0.1, weightDecay: 0.5 }).step();
      expect(Array.from(ps[0].data)).toEqual(Array.from(w0[0], (x) => x * (1 - 0.1 * 0.5)));
    });
  });

  describe('non-finite gradients', () => {
    it("'error' (default) throws NonFiniteError naming the param and element, and changes nothing, also on the first step", () => {
      for (const warm of [0, 2]) {
        const ps = [matrix('w'), vector('b', 4, 'f32')];
        const opt = new Adafactor(ps, { lr: 0.1 });
        for (let t = 0; t < warm; t++) {
          fill(ps, t);
          opt.step();
        }
        fill(ps, warm);
        ps[1].grad[3] = Number.NEGATIVE_INFINITY;
        const before = snapshot(ps, opt);
        const err = errorOf(() => opt.step()) as NonFiniteError;
        expect(err).toBeInstanceOf(NonFiniteError);
        expect([err.param, err.index, err.value]).toEqual(['b', 3, Number.NEGATIVE_INFINITY]);
        expect(err.message).toMatch(/Adafactor\.step\(\): the grad of param "b" holds -Infinity at index 3; nothing was updated/);
        expect(snapshot(ps, opt)).toEqual(before);
        if (warm === 0) expect(opt.stateDict().state).toEqual({});
      }
    });

    it("'skip' changes nothing, counts, returns the closure's value, and the run goes on as if the step never came", () => {
      const ps = [matrix('w'), vector('b')];
      const clean = [matrix('w'), vector('b')];
      const opt = new Adafactor(ps, { lr: 0.1, nonFinite: 'skip' });
      const ref = new Adafactor(clean, { lr: 0.1 });
      let skipped = 0;
      for (let t = 0; t < 8; t++) {
        fill(ps, t);
        if (t === 0 || t === 3 || t === 4) {
          ps[t % 2].grad[1] = NaN;
          const before = snapshot(ps, opt);
          expect(opt.step(() => 42)).toBe(42);
          expect(opt.skippedSteps).toBe(++skipped);
          expect(snapshot(ps, opt)).toEqual(before);
          continue;
        }
        fill(clean, t);
        opt.step();
        ref.step();
      }
      for (let j = 0; j < ps.length; j++) expect(bytesOf(ps[j].data)).toEqual(bytesOf(clean[j].data));
      const { skippedSteps, ...rest } = opt.stateDict();
      expect(skippedSteps).toBe(3);
      const { skippedSteps: _s, ...restRef } = ref.stateDict();
      expect(rest).toEqual(restRef);
    });

    it("'ignore' applies the step as torch does: a NaN in a vector's gradient stays in its element; in a matrix's it spreads along its row and column", () => {
      const w = matrix('w', 3, 4);
      const b = vector('b', 5);
      const opt = new Adafactor([w, b], { nonFinite: 'ignore' });
      fill([w, b], 0);
      b.grad[2] = NaN;
      w.grad[5] = NaN; // row 1, column 1
      opt.step();
      expect(Array.from(b.data, Number.isNaN)).toEqual([false, false, true, false, false]);
      // Every element of row 1 and of column 1 reads a NaN factor; the row means divide every
      // element (NaN): torch's var_estimate is NaN wherever the row mean enters, i.e. everywhere.
      expect(Array.from(w.data).every(Number.isNaN)).toBe(true);
    });
  });

  describe('state', () => {
    it('stateDict() round-trips bit for bit (matrix, batch, vector; float32 and float64; two groups)', () => {
      const make = () => {
        const { w, e } = paramArena({ w: [5, 3], e: [2, 3, 2] }, { dtype: 'float64' });
        w.data.set(Float64Array.from({ length: 15 }, (_, k) => Math.sin(k)));
        e.data.set(Float64Array.from({ length: 12 }, (_, k) => Math.cos(k)));
        return [w, e, vector('b', 4, 'f32')];
      };
      const ps = make();
      const opt = new Adafactor([{ params: [ps[0], ps[1]] }, { params: [ps[2]], lr: 0.05, weightDecay: 0.1, eps: [1e-8, 1e-2] }], { lr: 0.02 });
      for (let t = 0; t < 4; t++) {
        fill(ps, t);
        opt.step();
      }
      const sd = opt.stateDict();
      expect(sd.paramGroups[1]).toMatchObject({ lr: 0.05, weightDecay: 0.1, eps: [1e-8, 1e-2], beta2Decay: -0.8, params: ['b'] });
      (sd.state.w.rowVar as Float64Array)[0] = 99; // a deep copy
      expect((opt.stateDict().state.w.rowVar as Float64Array)[0]).not.toBe(99);
      (sd.paramGroups[1].eps as number[])[0] = 5;
      expect(opt.paramGroups[1].eps[0]).toBe(1e-8);

      const copy = make();
      copy.forEach((p, j) => p.data.set(ps[j].data));
      const resumed = new Adafactor([{ params: [copy[0], copy[1]] }, { params: [copy[2]] }], { lr: 0.5 });
      expect(resumed.loadStateDict(opt.stateDict())).toEqual({ matched: ['w', 'e', 'b'], missing: [], unexpected: [] });
      expect(resumed.paramGroups[1]).toMatchObject({ lr: 0.05, weightDecay: 0.1, eps: [1e-8, 1e-2] });
      expect(snapshot([], resumed)).toEqual(snapshot([], opt));
      for (let t = 4; t < 10; t++) {
        fill(ps, t);
        fill(copy, t);
        opt.step();
        resumed.step();
      }
      for (let j = 0; j < ps.length; j++) expect(bytesOf(copy[j].data)).toEqual(bytesOf(ps[j].data));
      expect(snapshot(copy, resumed)).toEqual(snapshot(ps, opt));
    });

    it('round-trips through a checkpoint', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'optim-adafactor-'));
      try {
        const w = matrix('w', 6, 4);
        const b = vector('b');
        const opt = new Adafactor([w, b], { lr: 0.02 });
        for (let t = 0; t < 3; t++) {
          fill([w, b], t);
          opt.step();
        }
        const file = path.join(dir, 'adafactor.safetensors');
        await saveCheckpoint(file, { tensors: { w, b }, optimizer: opt.stateDict() });
        const w2 = param(new Float64Array(24), 'w', { shape: [6, 4] });
        const b2 = param(new Float64Array(4), 'b');
        const opt2 = new Adafactor([w2, b2]);
        await loadCheckpoint(file, { into: { tensors: { w: w2, b: b2 }, optimizer: opt2 } });
        for (let t = 3; t < 6; t++) {
          fill([w, b], t);
          fill([w2, b2], t);
          opt.step();
          opt2.step();
        }
        expect(bytesOf(w2.data)).toEqual(bytesOf(w.data));
        expect(bytesOf(b2.data)).toEqual(bytesOf(b.data));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('loadStateDict refuses factors of another length or dtype, the wrong kind, an unknown key or a bad step, with nothing changed', () => {
      const w = matrix('w', 3, 2);
      const b = vector('b');
      const opt = new Adafactor([w, b]);
      fill([w, b], 0);
      opt.step();
      const good = opt.stateDict();
      const before = snapshot([w, b], opt);
      const W = good.state.w;
      const cases: Array<[string, unknown, RegExp]> = [
        ['w', { ...W, rowVar: new Float64Array(2) }, /state\["w"\]\.rowVar has length 2 but param "w" of shape \[3, 2\] needs 3 \(3 rows\)/],
        ['w', { ...W, colVar: new Float64Array(3) }, /colVar has length 3 but param "w" of shape \[3, 2\] needs 2 \(2 columns\)/],
        ['w', { ...W, rowVar: new Float32Array(3) }, /rowVar is a Float32Array but param "w" is a Float64Array/],
        ['w', { step: 1, rowVar: W.rowVar }, /state\["w"\]: missing "colVar"/],
        ['w', { ...W, variance: new Float64Array(6) }, /unknown state "variance" for Adafactor \(param "w" of shape \[3, 2\] keeps step, rowVar, colVar\)/],
        ['b', { step: 1, rowVar: new Float64Array(1), colVar: new Float64Array(4) }, /unknown state "rowVar" for Adafactor \(param "b" of shape \[4\] keeps step, variance\)/],
        ['b', { step: 1, variance: new Float64Array(3) }, /variance has length 3 but param "b" of shape \[4\] needs 4 \(its length\)/],
        ['b', { variance: new Float64Array(4) }, /state\["b"\]: missing "step"/],
        ['b', { step: -1, variance: new Float64Array(4) }, /step must be a whole number >= 0, got -1/],
      ];
      for (const [pname, st, message] of cases) {
        const sd = { ...good, state: { ...good.state, [pname]: st } } as StateDict;
        const err = errorOf(() => opt.loadStateDict(sd));
        expect(err).toBeInstanceOf(OptimStateError);
        expect((err as Error).message).toMatch(message);
      }
      expect(() => opt.loadStateDict({ ...good, stateDtype: 'bfloat16' })).toThrow(/stateDict\.stateDtype must be absent \(Adafactor keeps its state in the param's dtype\)/);
      expect(() => opt.loadStateDict({ ...good, paramGroups: [{ ...good.paramGroups[0], d: 0 }] })).toThrow(/Invalid clipping threshold d: 0/);
      expect(snapshot([w, b], opt)).toEqual(before);
      expect(opt.loadStateDict({ ...good, state: { ...good.state, x: {} } }).unexpected).toEqual(['x']);
    });
  });

  it('groups take their own options; a group equals a separate optimizer with those options, bit for bit', () => {
    const a = [matrix('w', 4, 3), vector('v', 5)];
    const b = [matrix('w', 4, 3), vector('v', 5)];
    const both = new Adafactor([{ params: [a[0]] }, { params: [a[1]], lr: 0.2, d: 2, maximize: true }], { lr: 0.05 });
    const first = new Adafactor([b[0]], { lr: 0.05 });
    const second = new Adafactor([b[1]], { lr: 0.2, d: 2, maximize: true });
    for (let t = 0; t < 5; t++) {
      fill(a, t);
      fill(b, t);
      both.step();
      first.step();
      second.step();
    }
    expect(bytesOf(a[0].data)).toEqual(bytesOf(b[0].data));
    expect(bytesOf(a[1].data)).toEqual(bytesOf(b[1].data));
  });

  it('step(closure) calls the closure first and returns its value; hooks run around the step, not after a refused one', () => {
    const w = matrix('w');
    const opt = new Adafactor([w], { lr: 0.1 });
    const events: string[] = [];
    const pre = opt.registerStepPreHook((o, args) => void events.push(`pre ${o === opt} ${args.length}`));
    opt.registerStepPostHook(() => void events.push('post'));
    const loss = opt.step(() => {
      events.push('closure');
      fill([w], 0);
      return 7;
    });
    expect(loss).toBe(7);
    expect(events).toEqual(['pre true 1', 'closure', 'post']);
    events.length = 0;
    w.grad[0] = NaN;
    expect(() => opt.step()).toThrow(NonFiniteError);
    expect(events).toEqual(['pre true 0']);
    pre.remove();
    events.length = 0;
    fill([w], 1);
    opt.step();
    expect(events).toEqual(['post']);
    expect(() => opt.step(3 as never)).toThrow(/Adafactor\.step\(closure\): closure must be a function, got number/);
  });

  it('the same param twice, or two params of one name, are refused; zeroGrad zeroes the grads', () => {
    const w = matrix('w');
    expect(() => new Adafactor([w, w])).toThrow(/appears in more than one parameter group \(or twice in one\)/);
    const opt = new Adafactor([{ params: [w] }, { params: [matrix('v')] }]);
    opt.paramGroups[1].params.push(w);
    fill([w], 0);
    expect(() => opt.step()).toThrow(/paramGroups\[1\]\.params\[1\]: param "w" appears twice/);
    opt.zeroGrad();
    expect(Array.from(w.grad).every((x) => x === 0)).toBe(true);
  });
});
