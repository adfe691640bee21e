/**
 * Muon (src/optim/muon.ts) against torch 2.13's torch.optim.Muon (test/golden/torch-2.13/muon.json:
 * a 6×4 W, lr 0.02, every other option torch's default, 50 steps), on both backends and, on the
 * native one, on every instruction set this CPU runs and every BLAS path of the build. The file
 * holds three runs, each with its own gradients: `trajectory` (Newton–Schulz in bfloat16, as
 * torch ships it), `trajectory_ns_float32` and `trajectory_ns_float64` (the same code with the
 * iteration patched to float32 / float64).
 *
 * Tolerances, and what was measured (max |ΔW| over the 50 steps, open and closed loop):
 * - bfloat16: the iteration's every rounding is torch's, so where the elementwise multiply-adds
 *   are fused as torch's (native backend, FMA) W equals torch's bit for bit, open and closed
 *   loop, and the momentum buffer at every checkpoint too. Without FMA (reference backend,
 *   baseline instruction set) each of them rounds twice: ≤ 1e-15 (measured 2.2e-16). For scale:
 *   a 1-bfloat16-ulp nudge of the iteration's input moves torch's own run by 7.4e-3.
 * - float32: the products are summed in another order than MKL's: ≤ 2× the file's sensitivity to
 *   a 1-float32-ulp nudge of the iteration's input (2.1e-7), so 4.3e-7 (measured 1.6e-7 open loop,
 *   2.1e-7 closed loop, OpenBLAS, built-in and reference alike).
 * - float64: ≤ 1e-14 (measured 5.6e-16, built-in baseline closed loop; 4.4e-16 on OpenBLAS; the
 *   file's ±1-ulp gradient sensitivity is 8.9e-16).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from '../src/checkpoint.js';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../src/errors.js';
import { Adam, Muon, param } from '../src/optim/index.js';
import type { MuonOptions, Param } from '../src/optim/index.js';
import { adjustedLr } from '../src/optim/muon.js';
import { paramArena } from '../src/param.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backendRows, useBackend } from './helpers/backends.js';
import { camelOptions, maxAbsDiff, maxScaledDiff, readGolden } from './helpers/golden.js';
import { linalgAddon } from './helpers/linalg.js';
import { bytesOf, errorOf, snapshot } from './helpers/snapshot.js';

interface MuonGolden {
  constructor_kwargs: Record<string, number>;
  hyperparameters: Record<string, unknown>;
  problem: { params: { W: { shape: [number, number]; w0: number[] } }; A: number[]; C: number[] };
  trajectory: { W: number[][] };
  grads: { W: number[][] };
  state_at_checkpoints: { W: Record<string, { momentum_buffer: number[] }> };
  adjusted_lr: number;
  sensitivity_ns_input: { max_abs: number };
  trajectory_ns_float32: number[][];
  grads_ns_float32: number[][];
  sensitivity_ns_input_ns_float32: { max_abs: number };
  trajectory_ns_float64: number[][];
  grads_ns_float64: number[][];
  sensitivity_ns_float64: { max_abs: number };
}

const g = readGolden<MuonGolden>('torch-2.13/muon.json');
const [ROWS, COLS] = g.problem.params.W.shape;

interface Variant {
  nsDtype: 'bfloat16' | 'float32' | 'float64';
  trajectory: number[][];
  grads: number[][];
  /** The bound on max |ΔW|, given whether the elementwise multiply-adds are fused. */
  bound(fma: boolean): number;
}

const VARIANTS: Variant[] = [
  { nsDtype: 'bfloat16', trajectory: g.trajectory.W, grads: g.grads.W, bound: (fma) => (fma ? 0 : 1e-15) },
  {
    nsDtype: 'float32',
    trajectory: g.trajectory_ns_float32,
    grads: g.grads_ns_float32,
    bound: () => 2 * g.sensitivity_ns_input_ns_float32.max_abs,
  },
  { nsDtype: 'float64', trajectory: g.trajectory_ns_float64, grads: g.grads_ns_float64, bound: () => 1e-14 },
];

/** The problem's gradient in W (b stays at b0 and does not enter it), in double, left to right. */
function fillGrad(w: ArrayLike<number>, out: Float64Array | Float32Array): void {
  const { A, C } = g.problem;
  for (let k = 0; k < w.length; k++) out[k] = A[k] * (w[k] - C[k]) + 0.1 * Math.cos(w[k]);
}

function run(v: Variant, closed: boolean) {
  const w = param(Float64Array.from(g.problem.params.W.w0), 'W', { shape: [ROWS, COLS] });
  const opt = new Muon([w], { ...camelOptions(g.constructor_kwargs), nsDtype: v.nsDtype });
  const trajectory: number[][] = [];
  const buffers: Record<string, Float64Array> = {};
  for (let t = 1; t <= v.trajectory.length; t++) {
    if (closed) fillGrad(w.data, w.grad);
    else w.grad.set(v.grads[t - 1]);
    opt.step();
    trajectory.push(Array.from(w.data));
    if (String(t) in g.state_at_checkpoints.W) buffers[t] = opt.stateDict().state.W.momentumBuffer as Float64Array;
  }
  return { trajectory, buffers };
}

const maxOver = (got: number[][], want: number[][]) => Math.max(...got.map((row, t) => maxAbsDiff(row, want[t])));

/** The native configurations: every instruction set this CPU runs × every BLAS path of the build. */
const NATIVE_CONFIGS: Array<{ isa: 'avx512' | 'avx2' | 'baseline'; blas: 'openblas' | 'builtin' }> = [];
if (linalgAddon) {
  const blases = linalgAddon.info().openblasAvailable ? (['openblas', 'builtin'] as const) : (['builtin'] as const);
  for (const isa of ['avx512', 'avx2', 'baseline'] as const) {
    if (!linalgAddon.setIsa(isa)) continue;
    for (const blas of blases) NATIVE_CONFIGS.push({ isa, blas });
  }
  linalgAddon.setIsa('best');
}

it('the golden file is torch 2.13 Muon with torch defaults but lr, and our defaults are torch\'s', () => {
  const w = param(new Float64Array(24), 'W', { shape: [6, 4] });
  const { params: _p, nsDtype, ...ours } = new Muon([w], { lr: 0.02 }).paramGroups[0];
  expect(ours).toEqual(camelOptions(g.hyperparameters));
  expect(nsDtype).toBe('float32');
  expect(new Muon([w]).paramGroups[0].lr).toBe(1e-3);
  // torch's adjusted lr, to the bit: lr·√max(1, rows/cols).
  expect(adjustedLr(0.02, null, ROWS, COLS)).toBe(g.adjusted_lr);
  expect(adjustedLr(0.02, 'original', ROWS, COLS)).toBe(g.adjusted_lr);
  expect(adjustedLr(0.02, 'match_rms_adamw', ROWS, COLS)).toBe(0.02 * (0.2 * Math.sqrt(6)));
  expect(adjustedLr(0.02, null, 4, 6)).toBe(0.02);
});

describe.each(backendRows)('Muon against torch 2.13 (%s backend)', (name, backend) => {
  useBackend(backend);
  const configs = name === 'native' ? NATIVE_CONFIGS : [undefined];
  for (const config of configs) {
    describe(config ? `instruction set ${config.isa}, ${config.blas} BLAS` : 'TypeScript', () => {
      let fma = false;
      beforeAll(() => {
        if (config && linalgAddon) {
          linalgAddon.setBlas(config.blas);
          linalgAddon.setIsa(config.isa);
          fma = linalgAddon.info().fma;
        }
      });
      afterAll(() => {
        linalgAddon?.setBlas('best');
        linalgAddon?.setIsa('best');
      });
      for (const v of VARIANTS) {
        it(`nsDtype ${v.nsDtype}: open loop (the recorded gradients), 50 steps`, () => {
          const { trajectory, buffers } = run(v, false);
          expect(maxOver(trajectory, v.trajectory)).toBeLessThanOrEqual(v.bound(fma));
          if (v.nsDtype === 'bfloat16') {
            // The buffer depends on the gradients alone: torch's, up to the fused lerp.
            for (const [t, want] of Object.entries(g.state_at_checkpoints.W)) {
              expect(maxScaledDiff(buffers[t], want.momentum_buffer), `momentum_buffer at step ${t}`).toBeLessThanOrEqual(fma ? 0 : 1e-15);
            }
          }
        });
        it(`nsDtype ${v.nsDtype}: closed loop (our gradients), 50 steps`, () => {
          const { trajectory } = run(v, true);
          expect(maxOver(trajectory, v.trajectory)).toBeLessThanOrEqual(v.bound(fma));
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The rule for every option, against a plain float64 statement of it

interface Rule {
  lr: number;
  weightDecay: number;
  momentum: number;
  nesterov: boolean;
  nsCoefficients: [number, number, number];
  eps: number;
  nsSteps: number;
  adjustLrFn: 'original' | 'match_rms_adamw' | null;
}

const DEFAULT_RULE: Rule = {
  lr: 1e-3, weightDecay: 0.1, momentum: 0.95, nesterov: true, nsCoefficients: [3.4445, -4.775, 2.0315], eps: 1e-7, nsSteps: 5, adjustLrFn: null,
};

const lerp = (a: number, b: number, w: number) => (Math.abs(w) < 0.5 ? a + w * (b - a) : b - (b - a) * (1 - w));

/** C = A·B for row-major A (m×k), B (k×n). */
function mm(a: number[], b: number[], m: number, k: number, n: number): number[] {
  const c = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) c[i * n + j] += a[i * k + p] * b[p * n + j];
  return c;
}

function transpose(a: number[], m: number, n: number): number[] {
  const t = new Array<number>(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/** The rule of the class comment, in float64 and as plainly as it reads. */
function plainMuon(w0: number[], rows: number, cols: number, grads: number[][], r: Rule): number[][] {
  const p = w0.slice();
  let buf = new Array<number>(p.length).fill(0);
  const out: number[][] = [];
  const [a, b, c] = r.nsCoefficients;
  for (const grad of grads) {
    buf = buf.map((x, i) => lerp(x, grad[i], 1 - r.momentum));
    const u = r.nesterov ? grad.map((x, i) => lerp(x, buf[i], r.momentum)) : buf.slice();
    const tall = rows > cols;
    const [m, n] = tall ? [cols, rows] : [rows, cols];
    let x = tall ? transpose(u, rows, cols) : u;
    const norm = Math.max(Math.sqrt(x.reduce((s, v) => s + v * v, 0)), r.eps);
    x = x.map((v) => v / norm);
    for (let s = 0; s < r.nsSteps; s++) {
      const A = mm(x, transpose(x, m, n), m, n, m);
      const AA = mm(A, A, m, m, m);
      const B = A.map((v, i) => b * v + c * AA[i]);
      const BX = mm(B, x, m, m, n);
      x = x.map((v, i) => a * v + BX[i]);
    }
    const o = tall ? transpose(x, m, n) : x;
    const ratio = r.adjustLrFn === 'match_rms_adamw' ? 0.2 * Math.sqrt(Math.max(rows, cols)) : Math.sqrt(Math.max(1, rows / cols));
    for (let i = 0; i < p.length; i++) p[i] = p[i] * (1 - r.lr * r.weightDecay) - r.lr * ratio * o[i];
    out.push(p.slice());
  }
  return out;
}

/** Deterministic gradients for a rows×cols param, steps 1..n. */
function someGrads(rows: number, cols: number, n: number): number[][] {
  return Array.from({ length: n }, (_, t) => Array.from({ length: rows * cols }, (_, k) => Math.sin(0.7 * k + 1.3 * t + 0.2) * (1 + (k % 3))));
}

const RULE_CASES: Array<[string, number, number, Partial<Rule>]> = [
  ['tall 5×3, torch defaults', 5, 3, {}],
  ['wide 3×5 (no transpose), nesterov false', 3, 5, { nesterov: false, lr: 0.01 }],
  ['square 4×4, match_rms_adamw', 4, 4, { adjustLrFn: 'match_rms_adamw', lr: 0.02 }],
  ['tall 6×2, momentum 0.3 (both lerp branches), original, no weight decay', 6, 2, { momentum: 0.3, adjustLrFn: 'original', weightDecay: 0, lr: 0.05 }],
  ['wide 2×7, nsSteps 0 (the normalized momentum)', 2, 7, { nsSteps: 0, lr: 0.03 }],
  ['tall 7×4, nsSteps 3, other coefficients, eps 1e-3, momentum 0', 7, 4, { nsSteps: 3, nsCoefficients: [2, -1.5, 0.5], eps: 1e-3, momentum: 0, lr: 0.02 }],
];

describe.each(backendRows)('Muon: the rule for every option (%s backend)', (_name, backend) => {
  useBackend(backend);

  it.each(RULE_CASES)('%s: nsDtype float64 equals the plain float64 rule within 1e-14', (_n, rows, cols, over) => {
    const rule = { ...DEFAULT_RULE, ...over };
    const w0 = Array.from({ length: rows * cols }, (_, k) => 0.5 * Math.cos(k + 1));
    const grads = someGrads(rows, cols, 12);
    const want = plainMuon(w0, rows, cols, grads, rule);
    const w = param(Float64Array.from(w0), 'w', { shape: [rows, cols] });
    const opt = new Muon([w], { ...rule, nsDtype: 'float64' });
    grads.forEach((gr, t) => {
      w.grad.set(gr);
      opt.step();
      expect(maxAbsDiff(w.data, want[t]), `step ${t + 1}`).toBeLessThanOrEqual(1e-14);
    });
  });

  it('float32 params (nsDtype float32 and bfloat16) follow the float64 rule within float32 precision', () => {
    const rule = { ...DEFAULT_RULE, lr: 0.02 };
    const w0 = Array.from({ length: 24 }, (_, k) => 0.5 * Math.sin(k + 1));
    const grads = someGrads(6, 4, 20).map((gr) => gr.map(Math.fround));
    const want = plainMuon(w0.map(Math.fround), 6, 4, grads, rule);
    for (const nsDtype of ['float32', 'bfloat16'] as const) {
      const w = param(Float32Array.from(w0), 'w', { shape: [6, 4] });
      const opt = new Muon([w], { ...rule, nsDtype });
      for (const gr of grads) {
        w.grad.set(gr);
        opt.step();
      }
      expect(opt.stateDict().state.w.momentumBuffer).toBeInstanceOf(Float32Array);
      // bfloat16 keeps 8 significant bits: each step moves W by up to lr·√1.5·2⁻⁸ relative to O.
      expect(maxAbsDiff(w.data, want[want.length - 1])).toBeLessThanOrEqual(nsDtype === 'float32' ? 1e-5 : 2e-2);
      expect(maxAbsDiff(w.data, want[want.length - 1])).toBeGreaterThan(0);
    }
  });

  it('nsDtype bfloat16 rounds: its update is a bfloat16 matrix (times the step size), float32 and float64 are not', () => {
    const w0 = Array.from({ length: 12 }, (_, k) => Math.cos(k));
    const grad = Array.from({ length: 12 }, (_, k) => Math.sin(3 * k + 1));
    const updates: Record<string, number[]> = {};
    for (const nsDtype of ['bfloat16', 'float32', 'float64'] as const) {
      const w = param(Float64Array.from(w0), 'w', { shape: [4, 3] });
      // lr 2⁻⁴, weight decay 0: p − p' = 2⁻⁴·√(4/3)·O, so O = (p − p') / that, exactly enough to see the rounding.
      const opt = new Muon([w], { lr: 1, weightDecay: 0, nsDtype, adjustLrFn: 'match_rms_adamw' });
      w.grad.set(grad);
      opt.step();
      const scale = 0.2 * Math.sqrt(4);
      updates[nsDtype] = w0.map((x, i) => (x - w.data[i]) / scale);
    }
    const isBf16 = (x: number) => {
      const b = new Float32Array([x]);
      return (new Uint32Array(b.buffer)[0] & 0xffff) === 0;
    };
    // O·0.4 and back loses at most a bit or two of a double: round to float32 and check the low half.
    expect(updates.bfloat16.every((x) => isBf16(Math.fround(x)))).toBe(true);
    expect(updates.float32.every((x) => isBf16(Math.fround(x)))).toBe(false);
    // Five iterations amplify the input's rounding: float32 ends 1.2e-5 from float64, bfloat16 much further.
    const f32 = maxAbsDiff(updates.float32, updates.float64);
    expect(f32).toBeLessThan(1e-4);
    expect(maxAbsDiff(updates.bfloat16, updates.float64)).toBeGreaterThan(10 * f32);
  });
});

// ---------------------------------------------------------------------------------------------
// Shapes, validation, non-finite gradients, state, groups, hooks

const matrix = (name: string, rows = 3, cols = 2, dtype: 'f32' | 'f64' = 'f64'): Param => {
  const n = rows * cols;
  const data = dtype === 'f32' ? new Float32Array(n) : new Float64Array(n);
  for (let k = 0; k < n; k++) data[k] = Math.sin(k + name.length);
  return param(data, name, { shape: [rows, cols] });
};

function fillGrads(ps: Param[], t: number): void {
  for (const p of ps) for (let k = 0; k < p.grad.length; k++) p.grad[k] = Math.cos(0.37 * k + 1.1 * t) * (1 + (k % 2));
}

describe.each(backendRows)('Muon: params, options, policies and state (%s backend)', (_name, backend) => {
  useBackend(backend);

  describe('2-D params only', () => {
    it.each([
      ['a vector (the default shape)', () => param(new Float64Array(6), 'v'), /paramGroups\[0\]\.params\[1\]: Muon updates 2-D params only, but param "v" has shape \[6\]/],
      ['a 3-D param', () => param(new Float64Array(24), 'cube', { shape: [2, 3, 4] }), /param "cube" has shape \[2, 3, 4\]/],
      ['a scalar', () => param(new Float64Array(1), 's', { shape: [] }), /param "s" has shape \[\]/],
    ])('refuses %s when the optimizer is made, naming it', (_n, make, message) => {
      const err = errorOf(() => new Muon([matrix('w'), make()]));
      expect(err).toBeInstanceOf(OptimRangeError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/param\(data, name, \{ shape: \[rows, cols\] \}\)/);
    });

    it('refuses a param without a shape (made by hand) with OptimTypeError', () => {
      const raw = { name: 'raw', data: new Float64Array(4), grad: new Float64Array(4) } as unknown as Param;
      const err = errorOf(() => new Muon([raw]));
      expect(err).toBeInstanceOf(OptimTypeError);
      expect((err as Error).message).toMatch(/param "raw"\) has no shape \(got undefined\); Muon updates 2-D params only/);
    });

    it('addParamGroup refuses a group with a vector and leaves the groups as they were', () => {
      const opt = new Muon([matrix('w')]);
      expect(() => opt.addParamGroup({ params: [matrix('x'), param(new Float64Array(3), 'b')] })).toThrow(/paramGroups\[1\]\.params\[1\]: Muon updates 2-D params only, but param "b"/);
      expect(opt.paramGroups.length).toBe(1);
      opt.addParamGroup({ params: [matrix('x', 2, 5)], lr: 0.5 });
      expect(opt.paramGroups.map((gr) => gr.lr)).toEqual([1e-3, 0.5]);
    });

    it('takes matrices from paramArena, float32 and float64', () => {
      for (const dtype of ['float32', 'float64'] as const) {
        const { w1, w2 } = paramArena({ w1: [4, 3], b1: 3, w2: [3, 2] }, { dtype });
        fillGrads([w1, w2], 0);
        const before = [w1.data.slice(), w2.data.slice()];
        new Muon([w1, w2], { lr: 0.1 }).step();
        // From zero: only the update moves them, by ±lr·ratio·O with O ≠ 0.
        expect(maxAbsDiff(w1.data, before[0])).toBeGreaterThan(0);
        expect(maxAbsDiff(w2.data, before[1])).toBeGreaterThan(0);
      }
    });

    it('refuses at a step a param whose data no longer has rows·cols elements, changing nothing', () => {
      const w = matrix('w');
      const opt = new Muon([w]);
      fillGrads([w], 0);
      opt.step();
      w.data = new Float64Array(8);
      w.grad = new Float64Array(8);
      const before = snapshot([w], opt);
      expect(() => opt.step()).toThrow(OptimRangeError);
      expect(() => opt.step()).toThrow(/param "w" has length 8 but its momentumBuffer 6|param "w" has shape \[3, 2\] \(6 elements\) but its data has length 8/);
      expect(snapshot([w], opt)).toEqual(before);
    });
  });

  describe('options', () => {
    const bad: Array<[string, Record<string, unknown>, typeof OptimTypeError | typeof OptimRangeError, RegExp]> = [
      ['a negative lr', { lr: -1 }, OptimRangeError, /Invalid learning rate: -1 \(options\.lr must be a finite number >= 0\)/],
      ['a NaN weight decay', { weightDecay: NaN }, OptimRangeError, /options\.weightDecay must be a finite number >= 0/],
      ['a negative momentum', { momentum: -0.1 }, OptimRangeError, /Invalid momentum value: -0\.1/],
      ['a string nesterov', { nesterov: 'yes' }, OptimTypeError, /options\.nesterov must be a boolean, got string/],
      ['two coefficients', { nsCoefficients: [1, 2] }, OptimTypeError, /options\.nsCoefficients must be an array of three numbers \(a, b, c\), got an Array of length 2/],
      ['a NaN coefficient', { nsCoefficients: [1, 2, NaN] }, OptimRangeError, /options\.nsCoefficients\[2\] must be a finite number, got NaN/],
      ['a string coefficient', { nsCoefficients: [1, '2', 3] }, OptimTypeError, /options\.nsCoefficients\[1\] must be a number, got string/],
      ['a negative eps', { eps: -1e-7 }, OptimRangeError, /Invalid epsilon value/],
      ['100 Newton–Schulz steps', { nsSteps: 100 }, OptimRangeError, /options\.nsSteps must be an integer in \[0, 99\] \(torch: Number of steps must be less than 100/],
      ['a fractional number of steps', { nsSteps: 2.5 }, OptimRangeError, /options\.nsSteps must be an integer in \[0, 99\]/],
      ['a string number of steps', { nsSteps: '5' }, OptimTypeError, /options\.nsSteps must be a number, got string/],
      ['an unknown adjustLrFn', { adjustLrFn: 'sqrt' }, OptimRangeError, /Adjust learning rate function "sqrt" is not supported \(options\.adjustLrFn must be null, 'original' or 'match_rms_adamw'\)/],
      ['an unknown nsDtype', { nsDtype: 'float16' }, OptimRangeError, /options\.nsDtype must be one of 'float32', 'bfloat16', 'float64', got "float16"/],
      ['a snake_case option', { weight_decay: 0 }, OptimTypeError, /unknown option "weight_decay"/],
      ['a bad nonFinite policy', { nonFinite: 'warn' }, OptimRangeError, /options\.nonFinite must be 'error', 'skip' or 'ignore'/],
      ['bfloat16 state storage', { stateDtype: 'bfloat16' }, OptimRangeError, /options\.stateDtype must be 'param' \(Muon keeps its momentum buffer in the param's dtype\), got "bfloat16"/],
    ];

    it.each(bad)('refuses %s in the constructor', (_n, options, cls, message) => {
      const err = errorOf(() => new Muon([matrix('w')], options as MuonOptions));
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message).toMatch(message);
    });

    it.each(bad.filter(([, o]) => !('weight_decay' in o) && !('nonFinite' in o) && !('stateDtype' in o)))(
      'refuses %s set on a group between steps, naming the group, with nothing changed',
      (_n, options, cls) => {
        const ps = [matrix('w'), matrix('v', 2, 4)];
        const opt = new Muon([{ params: [ps[0]] }, { params: [ps[1]] }]);
        fillGrads(ps, 0);
        opt.step();
        Object.assign(opt.paramGroups[1], options);
        fillGrads(ps, 1);
        const before = snapshot(ps, opt);
        const err = errorOf(() => opt.step());
        expect(err).toBeInstanceOf(cls);
        expect((err as Error).message).toMatch(/paramGroups\[1\]\./);
        expect(snapshot(ps, opt)).toEqual(before);
      },
    );

    it('accepts every documented value', () => {
      for (const adjustLrFn of [null, 'original', 'match_rms_adamw'] as const) {
        for (const nsDtype of ['float32', 'bfloat16', 'float64'] as const) {
          const w = matrix('w');
          const opt = new Muon([w], { adjustLrFn, nsDtype, nsSteps: 0, eps: 0.5, momentum: 0, nesterov: false, weightDecay: 0 });
          fillGrads([w], 0);
          opt.step();
          expect(w.data.every(Number.isFinite)).toBe(true);
        }
      }
    });

    it('a zero gradient from the start gives a zero update (ε keeps 0/0 away): only the weight decay moves W', () => {
      const w = matrix('w');
      const w0 = w.data.slice();
      new Muon([w], { lr: 0.1, weightDecay: 0.5 }).step();
      expect(Array.from(w.data)).toEqual(Array.from(w0, (x) => x * (1 - 0.1 * 0.5)));
    });
  });

  describe('non-finite gradients', () => {
    it("'error' (default) throws NonFiniteError naming the param and element, and changes nothing, also on the first step", () => {
      for (const warm of [0, 2]) {
        const ps = [matrix('w'), matrix('v', 2, 3, 'f32')];
        const opt = new Muon(ps, { lr: 0.1 });
        for (let t = 0; t < warm; t++) {
          fillGrads(ps, t);
          opt.step();
        }
        fillGrads(ps, warm);
        ps[1].grad[4] = Number.NEGATIVE_INFINITY;
        const before = snapshot(ps, opt);
        const err = errorOf(() => opt.step()) as NonFiniteError;
        expect(err).toBeInstanceOf(NonFiniteError);
        expect([err.param, err.index, err.value]).toEqual(['v', 4, Number.NEGATIVE_INFINITY]);
        expect(err.message).toMatch(/Muon\.step\(\): the grad of param "v" holds -Infinity at index 4; nothing was updated/);
        expect(snapshot(ps, opt)).toEqual(before);
        if (warm === 0) expect(opt.stateDict().state).toEqual({});
      }
    });

    it("'skip' changes nothing, counts, returns the closure's value, and the run goes on as if the step never came", () => {
      const ps = [matrix('w'), matrix('v', 2, 3)];
      const clean = [matrix('w'), matrix('v', 2, 3)];
      const opt = new Muon(ps, { lr: 0.1, nonFinite: 'skip' });
      const ref = new Muon(clean, { lr: 0.1 });
      let skipped = 0;
      for (let t = 0; t < 8; t++) {
        fillGrads(ps, t);
        if (t === 0 || t === 3 || t === 4) {
          ps[t % 2].grad[1] = NaN;
          const before = snapshot(ps, opt);
          expect(opt.step(() => 42)).toBe(42);
          expect(opt.skippedSteps).toBe(++skipped);
          expect(snapshot(ps, opt)).toEqual(before);
          continue;
        }
        fillGrads(clean, t);
        opt.step();
        ref.step();
      }
      for (let j = 0; j < ps.length; j++) expect(bytesOf(ps[j].data)).toEqual(bytesOf(clean[j].data));
      const { skippedSteps, ...rest } = opt.stateDict();
      expect(skippedSteps).toBe(3);
      const { skippedSteps: _s, ...restRef } = ref.stateDict();
      expect(rest).toEqual(restRef);
    });

    it("'ignore' applies the step: the NaN spreads through the orthogonalization into the whole matrix", () => {
      const w = matrix('w');
      const opt = new Muon([w], { nonFinite: 'ignore' });
      fillGrads([w], 0);
      w.grad[0] = NaN;
      opt.step();
      expect(Array.from(w.data).every(Number.isNaN)).toBe(true);
    });
  });

  describe('state', () => {
    it('stateDict() holds the momentum buffer per param (no step count) and round-trips bit for bit', () => {
      const make = () => [matrix('w', 5, 3), matrix('v', 2, 4, 'f32')];
      const ps = make();
      const opt = new Muon([{ params: [ps[0]] }, { params: [ps[1]], lr: 0.05, nesterov: false, nsDtype: 'bfloat16' }], { lr: 0.02 });
      for (let t = 0; t < 4; t++) {
        fillGrads(ps, t);
        opt.step();
      }
      const sd = opt.stateDict();
      expect(Object.keys(sd.state.w)).toEqual(['momentumBuffer']);
      expect(sd.state.v.momentumBuffer).toBeInstanceOf(Float32Array);
      expect(sd.paramGroups[1]).toMatchObject({ lr: 0.05, nesterov: false, nsDtype: 'bfloat16', adjustLrFn: null, params: ['v'] });
      (sd.state.w.momentumBuffer as Float64Array)[0] = 99; // a deep copy
      expect((opt.stateDict().state.w.momentumBuffer as Float64Array)[0]).not.toBe(99);

      const copy = make();
      copy.forEach((p, j) => p.data.set(ps[j].data));
      const resumed = new Muon([{ params: [copy[0]] }, { params: [copy[1]] }], { lr: 0.5 });
      expect(resumed.loadStateDict(opt.stateDict())).toEqual({ matched: ['w', 'v'], missing: [], unexpected: [] });
      expect(resumed.paramGroups[1]).toMatchObject({ lr: 0.05, nesterov: false, nsDtype: 'bfloat16' });
      for (let t = 4; t < 10; t++) {
        fillGrads(ps, t);
        fillGrads(copy, t);
        opt.step();
        resumed.step();
      }
      for (let j = 0; j < ps.length; j++) expect(bytesOf(copy[j].data)).toEqual(bytesOf(ps[j].data));
      expect(snapshot(copy, resumed)).toEqual(snapshot(ps, opt));
    });

    it('round-trips through a checkpoint with the params saved as matrices', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'optim-muon-'));
      try {
        const w = matrix('w', 6, 4);
        const opt = new Muon([w], { lr: 0.02, nsDtype: 'bfloat16' });
        for (let t = 0; t < 3; t++) {
          fillGrads([w], t);
          opt.step();
        }
        const file = path.join(dir, 'muon.safetensors');
        await saveCheckpoint(file, { tensors: { w }, optimizer: opt.stateDict() });
        const w2 = param(new Float64Array(24), 'w', { shape: [6, 4] });
        const opt2 = new Muon([w2]);
        const loaded = await loadCheckpoint(file, { into: { tensors: { w: w2 }, optimizer: opt2 } });
        expect(loaded.shapes).toEqual({ w: [6, 4] });
        for (let t = 3; t < 6; t++) {
          fillGrads([w], t);
          fillGrads([w2], t);
          opt.step();
          opt2.step();
        }
        expect(bytesOf(w2.data)).toEqual(bytesOf(w.data));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('loadStateDict refuses a buffer of another length or dtype, or an unknown key, with nothing changed', () => {
      const w = matrix('w');
      const opt = new Muon([w]);
      fillGrads([w], 0);
      opt.step();
      const good = opt.stateDict();
      const before = snapshot([w], opt);
      const cases: Array<[unknown, RegExp]> = [
        [{ momentumBuffer: new Float64Array(5) }, /momentumBuffer has length 5 but param "w" has length 6/],
        [{ momentumBuffer: new Float32Array(6) }, /momentumBuffer is a Float32Array but param "w" is a Float64Array/],
        [{ momentumBuffer: new Float64Array(6), step: 3 }, /unknown state "step" for Muon \(expected momentumBuffer\)/],
        [{}, /missing "momentumBuffer"/],
      ];
      for (const [st, message] of cases) {
        expect(() => opt.loadStateDict({ ...good, state: { w: st } } as never)).toThrow(OptimStateError);
        expect(() => opt.loadStateDict({ ...good, state: { w: st } } as never)).toThrow(message);
      }
      expect(() => opt.loadStateDict({ ...good, paramGroups: [{ ...good.paramGroups[0], nsDtype: 'half' }] })).toThrow(/nsDtype must be one of/);
      expect(snapshot([w], opt)).toEqual(before);
    });
  });

  it('groups take their own options; a group equals a separate optimizer with those options, bit for bit', () => {
    const a = [matrix('w', 4, 3), matrix('v', 2, 5)];
    const b = [matrix('w', 4, 3), matrix('v', 2, 5)];
    const both = new Muon([{ params: [a[0]] }, { params: [a[1]], lr: 0.2, adjustLrFn: 'match_rms_adamw', nsDtype: 'float64' }], { lr: 0.05 });
    const first = new Muon([b[0]], { lr: 0.05 });
    const second = new Muon([b[1]], { lr: 0.2, adjustLrFn: 'match_rms_adamw', nsDtype: 'float64' });
    for (let t = 0; t < 5; t++) {
      fillGrads(a, t);
      fillGrads(b, t);
      both.step();
      first.step();
      second.step();
    }
    expect(bytesOf(a[0].data)).toEqual(bytesOf(b[0].data));
    expect(bytesOf(a[1].data)).toEqual(bytesOf(b[1].data));
  });

  it('step(closure) calls the closure first and returns its value; hooks run around the step, not after a refused one', () => {
    const w = matrix('w');
    const opt = new Muon([w], { lr: 0.1 });
    const events: string[] = [];
    const pre = opt.registerStepPreHook((o, args) => void events.push(`pre ${o === opt} ${args.length}`));
    opt.registerStepPostHook(() => void events.push('post'));
    const loss = opt.step(() => {
      events.push('closure');
      fillGrads([w], 0);
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
    fillGrads([w], 1);
    opt.step();
    expect(events).toEqual(['post']);
    expect(() => opt.step(3 as never)).toThrow(/Muon\.step\(closure\): closure must be a function, got number/);
  });

  it('the same param twice, or two params of one name, are refused', () => {
    const w = matrix('w');
    expect(() => new Muon([w, w])).toThrow(/appears in more than one parameter group \(or twice in one\)/);
    const opt = new Muon([{ params: [w] }, { params: [matrix('v')] }]);
    opt.paramGroups[1].params.push(w);
    fillGrads([w], 0);
    expect(() => opt.step()).toThrow(/paramGroups\[1\]\.params\[1\]: param "w" appears twice/);
  });

  it('zeroGrad zeroes the grads; an elementwise optimizer (Adam) beside it takes the vectors', () => {
    const { w, b } = paramArena({ w: [3, 4], b: 4 }, { dtype: 'float64' });
    const muon = new Muon([w], { lr: 0.02 });
    const adam = new Adam([b], { lr: 0.01 });
    fillGrads([w, b], 0);
    muon.step();
    adam.step();
    muon.zeroGrad();
    expect(Array.from(w.grad).every((x) => x === 0)).toBe(true);
    expect(Array.from(b.grad).every((x) => x === 0)).toBe(false);
  });
});
