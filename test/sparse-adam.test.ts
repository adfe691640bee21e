/**
 * SparseAdam (src/optim/sparse-adam.ts) and the row-sparse gradient `p.sparseGrad`, against torch
 * 2.13's torch.optim.SparseAdam (test/golden/torch-2.13/sparse_adam.json: a 10×3 float64 table E,
 * lr 0.01, every other option torch's default, 100 steps of three row indices each, a row
 * repeated at every fifth step, fed as an uncoalesced sparse_coo_tensor).
 *
 * Tolerances, and what was measured:
 * - open loop (the recorded indices and values, duplicates included): the moments expAvg and
 *   expAvgSq depend on the gradients alone and take no square root, so they equal torch's at
 *   every checkpoint bit for bit (step counts too). E is within the file's own sensitivity to a
 *   1-ulp change of every gradient, 1.7e-16 (measured: 5.6e-17; 58 of the 3000 element-steps
 *   differ). The whole difference is torch's square root (MKL's, not always correctly rounded):
 *   replayed a step at a time from torch's table, 2 of the 840 touched element-steps differ, and
 *   each equals torch's with √v taken 1 ulp away.
 * - closed loop (our gradients, from E, as the problem defines them): the same bound (measured:
 *   5.6e-17).
 * - float32 params (no recording): equal bit for bit to a float32 transcription of the rule in
 *   this file (every operation and scalar rounded to float32, as torch computes a float32 tensor),
 *   and within 2.5e-7 of torch's float64 run (measured: 1.3e-7).
 * Pure TypeScript: the backend does not enter the step, but everything runs on both.
 */
import { describe, expect, it } from 'vitest';
import { NonFiniteError, OptimRangeError, OptimStateError, OptimTypeError } from '../src/errors.js';
import { Adam, Lookahead, MultiSteps, SGD, SparseAdam, param } from '../src/optim/index.js';
import type { Param, SparseAdamOptions, SparseGrad, StateDict } from '../src/optim/index.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { camelOptions, camelState, maxAbsDiff, readGolden } from './helpers/golden.js';
import { bytesOf, errorOf, snapshot } from './helpers/snapshot.js';

interface SparseGolden {
  constructor_kwargs: Record<string, number>;
  hyperparameters: Record<string, unknown>;
  problem: { params: { E: { shape: [number, number]; w0: number[] } }; duplicate_steps: number[] };
  steps: number;
  trajectory: number[][];
  indices: number[][];
  values: number[][][];
  state_at_checkpoints: Record<string, { step: number; exp_avg: number[]; exp_avg_sq: number[] }>;
  sensitivity: { max_abs: number };
}

const g = readGolden<SparseGolden>('torch-2.13/sparse_adam.json');
const [ROWS, COLS] = g.problem.params.E.shape;

/** The recorded gradient of step t (1-based): indices as given (number[] or Uint32Array) and the values flat. */
function recorded(t: number, f32 = false, uint32 = false): SparseGrad {
  const flat = g.values[t - 1].flat();
  return {
    indices: uint32 ? Uint32Array.from(g.indices[t - 1]) : g.indices[t - 1].slice(),
    values: f32 ? Float32Array.from(flat) : Float64Array.from(flat),
  };
}

/** The problem's gradient at step t from the current E (test/golden/torch-2.13/README.md, embedding_rows). */
function problemGrad(e: ArrayLike<number>, t: number): SparseGrad<Float64Array> {
  const rows = [(3 * t) % 10, (3 * t + 1) % 10, (7 * t) % 10];
  const values = new Float64Array(rows.length * COLS);
  rows.forEach((r, k) => {
    for (let c = 0; c < COLS; c++) values[k * COLS + c] = (e[r * COLS + c] - 0.5 * Math.sin(r + c)) * (1 + 0.1 * t);
  });
  return { indices: rows, values };
}

const table = (f32 = false): Param => param(f32 ? Float32Array.from(g.problem.params.E.w0) : Float64Array.from(g.problem.params.E.w0), 'E', { shape: [ROWS, COLS] });

/** Which rows of an n-row table `indices` touch. */
function touched(indices: ArrayLike<number>, n: number): boolean[] {
  const out = new Array<boolean>(n).fill(false);
  for (let k = 0; k < indices.length; k++) out[indices[k]] = true;
  return out;
}

/** Rows of `a` and `b` (row length L) that differ in any byte. */
function changedRows(a: Float32Array | Float64Array, b: Float32Array | Float64Array, L: number): number[] {
  const x = bytesOf(a);
  const y = bytesOf(b);
  const rowBytes = L * a.BYTES_PER_ELEMENT;
  const out: number[] = [];
  for (let r = 0; r * rowBytes < x.length; r++) {
    for (let i = r * rowBytes; i < (r + 1) * rowBytes; i++) {
      if (x[i] !== y[i]) {
        out.push(r);
        break;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A plain transcription of the rule (the class comment), dense and row by row, for the checks
// that have no recording: float32, other shapes, options.

interface Rule {
  lr: number;
  betas: [number, number];
  eps: number;
  maximize: boolean;
}

const DEFAULT_RULE: Rule = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, maximize: false };

/**
 * Steps `data` (rows of length L) with each gradient in turn, in torch's own sequence of
 * operations (`sparse_adam`: dm, dv, numer = dm + m, denom = √(dv + v) + ε): the duplicates
 * summed into a dense table in the order they come, then every touched row updated, each
 * operation and scalar rounded by `r` (Math.fround for float32, identity for float64); β^t as
 * C's pow (cPow below, not V8's `**`). Returns the params after each step.
 */
function plainSparseAdam(data0: ArrayLike<number>, L: number, grads: SparseGrad[], rule: Rule, f32: boolean): number[][] {
  const r = f32 ? Math.fround : (x: number) => x;
  const n = data0.length;
  const p = Array.from(data0, r);
  const m = new Array<number>(n).fill(0);
  const v = new Array<number>(n).fill(0);
  const out: number[][] = [];
  grads.forEach((sg, i) => {
    const t = i + 1;
    const dense = new Array<number>(n).fill(0);
    const hit = touched(sg.indices, n / L);
    const seen = new Array<boolean>(n / L).fill(false);
    for (let k = 0; k < sg.indices.length; k++) {
      const row = sg.indices[k];
      for (let c = 0; c < L; c++) {
        const x = rule.maximize ? -sg.values[k * L + c] : sg.values[k * L + c];
        dense[row * L + c] = seen[row] ? r(dense[row * L + c] + x) : x;
      }
      seen[row] = true;
    }
    const stepSize = (rule.lr * Math.sqrt(1 - cPow(rule.betas[1], t))) / (1 - cPow(rule.betas[0], t));
    const omb1 = r(1 - rule.betas[0]);
    const omb2 = r(1 - rule.betas[1]);
    const eps = r(rule.eps);
    const negStep = r(-stepSize);
    for (let row = 0; row < n / L; row++) {
      if (!hit[row]) continue;
      for (let c = 0; c < L; c++) {
        const j = row * L + c;
        const gr = dense[j];
        const dm = r(r(gr - m[j]) * omb1);
        const dv = r(r(r(gr * gr) - v[j]) * omb2);
        const numer = r(dm + m[j]);
        const denom = r(r(Math.sqrt(r(dv + v[j]))) + eps);
        m[j] = numer;
        v[j] = r(v[j] + dv);
        p[j] = r(p[j] + r(negStep * r(numer / denom)));
      }
    }
    out.push(p.slice());
  });
  return out;
}

/**
 * x^n as C's pow returns it for these arguments (correctly rounded): the product in
 * double-double, rounded once. Written apart from src/optim/powi.ts.
 */
function cPow(x: number, n: number): number {
  let hi = 1;
  let lo = 0;
  for (let i = 0; i < n; i++) {
    const p = hi * x;
    const e = twoProductError(hi, x, p) + lo * x;
    hi = p + e;
    lo = e - (hi - p);
  }
  return hi;
}

/** The neighbouring double of x towards +∞ (dir 1) or −∞ (dir −1), for positive x. */
function nextAfter(x: number, dir: 1 | -1): number {
  const b = new Float64Array([x]);
  const u = new BigUint64Array(b.buffer);
  u[0] += BigInt(dir);
  return b[0];
}

function twoProductError(a: number, b: number, p: number): number {
  const split = (v: number) => {
    const t = 134217729 * v;
    const h = t - (t - v);
    return [h, v - h];
  };
  const [ah, al] = split(a);
  const [bh, bl] = split(b);
  return ah * bh - p + ah * bl + al * bh + al * bl;
}

/** Deterministic sparse gradients for a table of `rows` rows of length L, steps 1..n, with repeats and an empty step. */
function someGrads(rows: number, L: number, n: number, f32: boolean): SparseGrad[] {
  return Array.from({ length: n }, (_, i) => {
    const t = i + 1;
    const indices = t === 4 ? [] : [(5 * t) % rows, (2 * t + 1) % rows, (5 * t) % rows, (t * t) % rows];
    const values = (f32 ? Float32Array : Float64Array).from({ length: indices.length * L }, (_, k) => Math.sin(0.7 * k + 1.3 * t + 0.2) * (1 + (k % 3)));
    return { indices, values };
  });
}

// ---------------------------------------------------------------------------------------------

it('the golden file is torch 2.13 SparseAdam with lr 0.01, and our defaults are torch\'s', () => {
  const { params: _p, ...ours } = new SparseAdam([table()], camelOptions(g.constructor_kwargs)).paramGroups[0];
  expect(ours).toEqual(camelOptions(g.hyperparameters));
  const { params: _q, ...defaults } = new SparseAdam([table()]).paramGroups[0];
  expect(defaults).toEqual({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, maximize: false });
  // The file's gradients repeat a row at every fifth step: the coalescing is exercised.
  expect(g.problem.duplicate_steps).toEqual(Array.from({ length: 20 }, (_, i) => 5 * (i + 1)));
  for (const t of g.problem.duplicate_steps) expect(new Set(g.indices[t - 1]).size).toBeLessThan(3);
});

describe.each(backendRows)('SparseAdam against torch 2.13 (%s backend)', (_name, backend) => {
  useBackend(backend);

  function replay(closed: boolean, uint32: (t: number) => boolean) {
    const e = table();
    const opt = new SparseAdam([e], camelOptions(g.constructor_kwargs));
    let worst = 0;
    const untouchedChanged: number[] = [];
    for (let t = 1; t <= g.steps; t++) {
      e.sparseGrad = closed ? problemGrad(e.data, t) : recorded(t, false, uint32(t));
      const rowsHit = touched(e.sparseGrad.indices, ROWS);
      const before = { data: e.data.slice(), st: opt.stateDict().state.E };
      opt.step();
      worst = Math.max(worst, maxAbsDiff(e.data, g.trajectory[t - 1]));
      // Untouched rows, of the table and of both moments, keep every byte.
      const after = opt.stateDict().state.E;
      const moved = new Set([
        ...changedRows(before.data, e.data, COLS),
        ...(before.st ? changedRows(before.st.expAvg as Float64Array, after.expAvg as Float64Array, COLS) : []),
        ...(before.st ? changedRows(before.st.expAvgSq as Float64Array, after.expAvgSq as Float64Array, COLS) : []),
      ]);
      for (const r of moved) if (!rowsHit[r]) untouchedChanged.push(t * 100 + r);
      if (!closed && String(t) in g.state_at_checkpoints) {
        const want = g.state_at_checkpoints[String(t)];
        expect(Object.keys(after).sort()).toEqual(['expAvg', 'expAvgSq', 'step']);
        expect(after.step, `step at ${t}`).toBe(want.step);
        for (const key of ['exp_avg', 'exp_avg_sq'] as const) {
          expect(Array.from(after[camelState(key)] as Float64Array), `${key} at step ${t}`).toEqual(want[key]);
        }
      }
    }
    return { worst, untouchedChanged };
  }

  it('open loop: the recorded indices and values (duplicates included), 100 steps; moments bit for bit', () => {
    const { worst, untouchedChanged } = replay(false, () => false);
    expect(worst).toBeLessThanOrEqual(g.sensitivity.max_abs);
    expect(untouchedChanged).toEqual([]);
  });

  it("one step at a time from torch's table: every difference is torch's square root, 1 ulp away", () => {
    const e = table();
    const opt = new SparseAdam([e], { lr: 0.01 });
    let touchedSteps = 0;
    const unexplained: string[] = [];
    let differing = 0;
    for (let t = 1; t <= g.steps; t++) {
      if (t > 1) e.data.set(g.trajectory[t - 2]);
      const prev = e.data.slice();
      e.sparseGrad = recorded(t);
      opt.step();
      const st = opt.stateDict().state.E;
      const m = st.expAvg as Float64Array;
      const v = st.expAvgSq as Float64Array;
      const stepSize = (0.01 * Math.sqrt(1 - cPow(0.999, t))) / (1 - cPow(0.9, t));
      const want = g.trajectory[t - 1];
      for (const r of new Set(g.indices[t - 1])) {
        for (let c = 0; c < COLS; c++) {
          const j = r * COLS + c;
          touchedSteps++;
          if (e.data[j] === want[j]) continue;
          differing++;
          const root = Math.sqrt(v[j]);
          const other = [nextAfter(root, -1), nextAfter(root, 1)].map((s) => prev[j] + (m[j] / (s + 1e-8)) * -stepSize);
          if (!other.includes(want[j])) unexplained.push(`step ${t} row ${r} column ${c}`);
        }
      }
    }
    expect(touchedSteps).toBe(840);
    expect(unexplained).toEqual([]);
    expect(differing).toBeLessThanOrEqual(2);
  });

  it('open loop with Uint32Array indices (every other step) gives the same bits', () => {
    const a = replay(false, () => false);
    const b = replay(false, (t) => t % 2 === 0);
    expect(b.worst).toBe(a.worst);
    const e1 = table();
    const e2 = table();
    const o1 = new SparseAdam([e1], { lr: 0.01 });
    const o2 = new SparseAdam([e2], { lr: 0.01 });
    for (let t = 1; t <= g.steps; t++) {
      e1.sparseGrad = recorded(t);
      e2.sparseGrad = recorded(t, false, true);
      o1.step();
      o2.step();
    }
    expect(bytesOf(e2.data)).toEqual(bytesOf(e1.data));
  });

  it('closed loop: our gradients from E, 100 steps', () => {
    const { worst, untouchedChanged } = replay(true, () => false);
    expect(worst).toBeLessThanOrEqual(g.sensitivity.max_abs);
    expect(untouchedChanged).toEqual([]);
  });

  it('float32: the float32 rule bit for bit, and within float32 precision of torch\'s float64 run', () => {
    const e = table(true);
    const opt = new SparseAdam([e], { lr: 0.01 });
    const grads = Array.from({ length: g.steps }, (_, i) => recorded(i + 1, true));
    const want = plainSparseAdam(g.problem.params.E.w0, COLS, grads, { ...DEFAULT_RULE, lr: 0.01 }, true);
    let worst = 0;
    grads.forEach((sg, i) => {
      e.sparseGrad = sg;
      opt.step();
      expect(maxAbsDiff(e.data, want[i]), `step ${i + 1}`).toBe(0);
      worst = Math.max(worst, maxAbsDiff(e.data, g.trajectory[i]));
    });
    const st = opt.stateDict().state.E;
    expect(st.expAvg).toBeInstanceOf(Float32Array);
    expect(st.expAvgSq).toBeInstanceOf(Float32Array);
    expect(worst).toBeLessThanOrEqual(2.5e-7);
    // float32 arithmetic, not float64 rounded at the end: it does differ from torch's float64 run.
    expect(worst).toBeGreaterThan(1e-9);
  });
});

// ---------------------------------------------------------------------------------------------

describe.each(backendRows)('SparseAdam: the rule, shapes and options (%s backend)', (_name, backend) => {
  useBackend(backend);

  const CASES: Array<[string, number[], Partial<Rule>]> = [
    ['a vector (rows of length 1)', [7], {}],
    ['a matrix 6×4, lr 0.05, betas (0.8, 0.99)', [6, 4], { lr: 0.05, betas: [0.8, 0.99] }],
    ['a 3-D param 5×2×3 (rows of length 6), eps 1e-3, maximize', [5, 2, 3], { lr: 0.02, eps: 1e-3, maximize: true }],
    ['a 1×5 matrix, betas (0, 0)', [1, 5], { lr: 0.03, betas: [0, 0] }],
  ];

  it.each(CASES)('%s: float64 and float32 equal the transcribed rule bit for bit', (_n, shape, over) => {
    const rule = { ...DEFAULT_RULE, ...over };
    const rows = shape[0];
    const n = shape.reduce((a, b) => a * b, 1);
    const L = n / rows;
    for (const f32 of [false, true]) {
      const data0 = Array.from({ length: n }, (_, k) => 0.5 * Math.cos(k + 1));
      const grads = someGrads(rows, L, 12, f32);
      const want = plainSparseAdam(data0, L, grads, rule, f32);
      const p = param(f32 ? Float32Array.from(data0) : Float64Array.from(data0), 'p', { shape });
      const opt = new SparseAdam([p], rule);
      grads.forEach((sg, i) => {
        p.sparseGrad = sg;
        opt.step();
        expect(maxAbsDiff(p.data, want[i]), `${f32 ? 'float32' : 'float64'} step ${i + 1}`).toBe(0);
      });
      expect(opt.stateDict().state.p.step).toBe(12);
    }
  });

  it('groups with their own options, float32 and float64 params together', () => {
    const a = param(Float64Array.from({ length: 12 }, (_, k) => Math.sin(k)), 'a', { shape: [4, 3] });
    const b = param(Float32Array.from({ length: 10 }, (_, k) => Math.cos(k)), 'b', { shape: [5, 2] });
    const opt = new SparseAdam([{ params: [a] }, { params: [b], lr: 0.1, betas: [0.5, 0.9] }], { lr: 0.01 });
    const ga = someGrads(4, 3, 6, false);
    const gb = someGrads(5, 2, 6, true);
    const wantA = plainSparseAdam(Array.from({ length: 12 }, (_, k) => Math.sin(k)), 3, ga, { ...DEFAULT_RULE, lr: 0.01 }, false);
    const wantB = plainSparseAdam(Array.from({ length: 10 }, (_, k) => Math.cos(k)), 2, gb, { ...DEFAULT_RULE, lr: 0.1, betas: [0.5, 0.9] }, true);
    for (let i = 0; i < 6; i++) {
      a.sparseGrad = ga[i];
      b.sparseGrad = gb[i];
      opt.step();
    }
    expect(maxAbsDiff(a.data, wantA[5])).toBe(0);
    expect(maxAbsDiff(b.data, wantB[5])).toBe(0);
  });

  it('maximize equals the run with every value negated, bit for bit', () => {
    const p1 = table();
    const p2 = table();
    const o1 = new SparseAdam([p1], { lr: 0.01, maximize: true });
    const o2 = new SparseAdam([p2], { lr: 0.01 });
    for (let t = 1; t <= 20; t++) {
      p1.sparseGrad = recorded(t);
      const neg = recorded(t);
      for (let k = 0; k < neg.values.length; k++) neg.values[k] = -neg.values[k];
      p2.sparseGrad = neg;
      o1.step();
      o2.step();
    }
    expect(bytesOf(p1.data)).toEqual(bytesOf(p2.data));
    expect(maxAbsDiff(p1.data, g.problem.params.E.w0)).toBeGreaterThan(0);
  });

  it('duplicates are summed in the order they come', () => {
    // Row 1 three times: (1 + 2^-53) − 1 = 0 in that order, 2^-53 in another.
    const run = (values: number[]) => {
      const p = param(new Float64Array(4), 'p', { shape: [2, 2] });
      const opt = new SparseAdam([p], { lr: 0.1 });
      p.sparseGrad = { indices: [1, 1, 1], values: Float64Array.from(values.flatMap((x) => [x, 2 * x])) };
      opt.step();
      return opt.stateDict().state.p.expAvg as Float64Array;
    };
    expect(Array.from(run([1, 2 ** -53, -1]))).toEqual([0, 0, 0, 0]);
    const other = run([1, -1, 2 ** -53]);
    expect(other[2]).toBe(2 ** -53 * (1 - 0.9));
    expect(other[0]).toBe(0);
  });

  it('an empty sparseGrad counts the step and changes nothing else (as torch with an empty sparse gradient)', () => {
    const p = table();
    const opt = new SparseAdam([p], { lr: 0.01 });
    p.sparseGrad = recorded(1);
    opt.step();
    const before = snapshot([p], opt) as { data: Uint8Array[]; state: Record<string, Record<string, unknown>> };
    p.sparseGrad = { indices: new Uint32Array(0), values: new Float64Array(0) };
    opt.step();
    const after = snapshot([p], opt) as typeof before;
    expect(after.data).toEqual(before.data);
    expect(after.state.E.expAvg).toEqual(before.state.E.expAvg);
    expect(after.state.E.expAvgSq).toEqual(before.state.E.expAvgSq);
    expect(after.state.E.step).toBe(2);
    // The next step's bias correction uses t = 3.
    const q = table();
    const o2 = new SparseAdam([q], { lr: 0.01 });
    q.sparseGrad = recorded(1);
    o2.step();
    o2.loadStateDict({ ...o2.stateDict(), state: { E: { ...o2.stateDict().state.E, step: 2 } } });
    p.sparseGrad = recorded(2);
    q.sparseGrad = recorded(2);
    opt.step();
    o2.step();
    expect(bytesOf(p.data)).toEqual(bytesOf(q.data));
  });

  describe('options', () => {
    const bad: Array<[string, Record<string, unknown>, typeof OptimTypeError | typeof OptimRangeError, RegExp]> = [
      ['lr 0 (torch refuses it)', { lr: 0 }, OptimRangeError, /Invalid learning rate: 0 \(options\.lr must be > 0/],
      ['a negative lr', { lr: -1 }, OptimRangeError, /Invalid learning rate: -1/],
      ['eps 0 (torch refuses it)', { eps: 0 }, OptimRangeError, /Invalid epsilon value: 0 \(options\.eps must be > 0/],
      ['beta1 = 1', { betas: [1, 0.999] }, OptimRangeError, /betas/],
      ['a single beta', { betas: [0.9] }, OptimTypeError, /betas/],
      ['a string maximize', { maximize: 'yes' }, OptimTypeError, /options\.maximize must be a boolean/],
      ['weightDecay (SparseAdam has none)', { weightDecay: 0 }, OptimTypeError, /unknown option "weightDecay"/],
      ['bfloat16 state storage', { stateDtype: 'bfloat16' }, OptimRangeError, /options\.stateDtype must be 'param' \(SparseAdam keeps its moments in the param's dtype\), got "bfloat16"/],
      ['a bad nonFinite policy', { nonFinite: 'warn' }, OptimRangeError, /options\.nonFinite must be 'error', 'skip' or 'ignore'/],
    ];
    it.each(bad)('refuses %s in the constructor', (_n, options, cls, message) => {
      const err = errorOf(() => new SparseAdam([table()], options as SparseAdamOptions));
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message).toMatch(message);
    });

    it('a group may set lr to 0 later (a schedule that anneals to 0): the table does not move', () => {
      const p = table();
      const opt = new SparseAdam([p], { lr: 0.01 });
      opt.paramGroups[0].lr = 0;
      p.sparseGrad = recorded(1);
      opt.step();
      expect(Array.from(p.data)).toEqual(g.problem.params.E.w0);
      expect(opt.stateDict().state.E.step).toBe(1);
    });

    it('refuses a bad hyperparameter set between steps, naming the group, with nothing changed', () => {
      const p = table();
      const opt = new SparseAdam([p], { lr: 0.01 });
      p.sparseGrad = recorded(1);
      opt.step();
      opt.paramGroups[0].betas = [0.9, 1.5];
      p.sparseGrad = recorded(2);
      const before = snapshot([p], opt);
      expect(() => opt.step()).toThrow(/paramGroups\[0\]\.betas/);
      expect(snapshot([p], opt)).toEqual(before);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe.each(backendRows)('SparseAdam: O(rows touched) (%s backend)', (_name, backend) => {
  useBackend(backend);

  it('a 1e6-row table stepping a few rows: only those rows of the table and the moments change, and they equal a 3-row table\'s', () => {
    const ROWS_BIG = 1_000_000;
    const L = 2;
    const big = param(new Float32Array(ROWS_BIG * L), 'emb', { shape: [ROWS_BIG, L] });
    for (let k = 0; k < big.data.length; k++) big.data[k] = Math.fround(Math.sin(k));
    // The dense gradient is never read: a zero-length one stands in for it.
    big.grad = new Float32Array(0);
    const start = big.data.slice();
    const hits = [17, 999_999, 523_411];
    const small = param(Float32Array.from(hits.flatMap((r) => [start[r * L], start[r * L + 1]])), 'emb', { shape: [3, L] });
    const ob = new SparseAdam([big], { lr: 0.05 });
    const os = new SparseAdam([small], { lr: 0.05 });
    for (let t = 1; t <= 300; t++) {
      const pick = [t % 3, (t * 7) % 3, (t + 1) % 3];
      const values = Float32Array.from({ length: 3 * L }, (_, k) => Math.cos(t + k));
      big.sparseGrad = { indices: Uint32Array.from(pick, (i) => hits[i]), values };
      small.sparseGrad = { indices: pick, values };
      ob.step();
      os.step();
      ob.zeroGrad();
      os.zeroGrad();
      expect(big.sparseGrad).toBeUndefined();
    }
    expect(changedRows(start, big.data, L).sort((a, b) => a - b)).toEqual([...hits].sort((a, b) => a - b));
    const st = ob.stateDict().state.emb;
    for (const key of ['expAvg', 'expAvgSq'] as const) {
      const buf = st[key] as Float32Array;
      expect(changedRows(new Float32Array(buf.length), buf, L).sort((a, b) => a - b)).toEqual([...hits].sort((a, b) => a - b));
    }
    hits.forEach((r, i) => {
      expect(Array.from(big.data.subarray(r * L, r * L + L))).toEqual(Array.from(small.data.subarray(i * L, i * L + L)));
    });
    expect(big.grad.length).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe.each(backendRows)('SparseAdam: validation, refusals, state (%s backend)', (_name, backend) => {
  useBackend(backend);

  function setup(): { ps: Param[]; opt: SparseAdam } {
    const e = table();
    const v = param(Float32Array.from([1, 2, 3, 4]), 'v');
    const opt = new SparseAdam([{ params: [e] }, { params: [v], lr: 0.1 }], { lr: 0.01 });
    e.sparseGrad = recorded(1);
    v.sparseGrad = { indices: [0, 3], values: Float32Array.from([0.5, -0.5]) };
    opt.step();
    e.sparseGrad = recorded(2);
    v.sparseGrad = { indices: [1], values: Float32Array.from([0.25]) };
    return { ps: [e, v], opt };
  }

  const BAD: Array<[string, (ps: Param[]) => void, typeof OptimTypeError | typeof OptimRangeError, RegExp]> = [
    ['no sparseGrad (a dense gradient only)', (ps) => (ps[1].sparseGrad = undefined), OptimTypeError,
      /SparseAdam\.step\(\): param "v" has no sparseGrad \(got undefined\): SparseAdam takes row-sparse gradients only.*torch: SparseAdam does not support dense gradients, please consider Adam instead/],
    ['a null sparseGrad', (ps) => (ps[0].sparseGrad = null as never), OptimTypeError, /param "E" has no sparseGrad \(got null\)/],
    ['a sparseGrad that is a typed array', (ps) => (ps[0].sparseGrad = new Float64Array(3) as never), OptimTypeError, /param "E": p\.sparseGrad must be an object \{ indices, values \}, got Float64Array/],
    ['Int32Array indices', (ps) => (ps[0].sparseGrad = { indices: Int32Array.from([1]) as never, values: new Float64Array(3) }), OptimTypeError,
      /param "E": p\.sparseGrad\.indices must be a Uint32Array or an Array of row numbers, got Int32Array/],
    ['missing indices', (ps) => (ps[0].sparseGrad = { values: new Float64Array(3) } as never), OptimTypeError, /p\.sparseGrad\.indices must be a Uint32Array or an Array of row numbers, got undefined/],
    ['a string index', (ps) => (ps[0].sparseGrad = { indices: [0, '1'] as never, values: new Float64Array(6) }), OptimTypeError, /param "E": p\.sparseGrad\.indices\[1\] must be a number \(a row\), got string/],
    ['an index past the last row', (ps) => (ps[0].sparseGrad = { indices: [0, 10], values: new Float64Array(6) }), OptimRangeError,
      /param "E": p\.sparseGrad\.indices\[1\] must be an integer in \[0, 10\) \(a row of shape \[10, 3\]\), got 10/],
    ['a negative index', (ps) => (ps[0].sparseGrad = { indices: [-1], values: new Float64Array(3) }), OptimRangeError, /p\.sparseGrad\.indices\[0\] must be an integer in \[0, 10\).*got -1/],
    ['a fractional index', (ps) => (ps[0].sparseGrad = { indices: [2, 1.5], values: new Float64Array(6) }), OptimRangeError, /p\.sparseGrad\.indices\[1\] must be an integer.*got 1\.5/],
    ['a NaN index', (ps) => (ps[0].sparseGrad = { indices: [NaN], values: new Float64Array(3) }), OptimRangeError, /p\.sparseGrad\.indices\[0\] must be an integer.*got NaN/],
    ['a Uint32Array index past the last row', (ps) => (ps[1].sparseGrad = { indices: Uint32Array.from([3, 4]), values: new Float32Array(2) }), OptimRangeError,
      /param "v": p\.sparseGrad\.indices\[1\] must be an integer in \[0, 4\) \(a row of shape \[4\]\), got 4/],
    ['values of the other dtype', (ps) => (ps[0].sparseGrad = { indices: [1], values: new Float32Array(3) as never }), OptimTypeError,
      /param "E": p\.sparseGrad\.values must be a Float64Array \(the param's dtype\), got Float32Array/],
    ['values as a plain array', (ps) => (ps[1].sparseGrad = { indices: [1], values: [0.5] as never }), OptimTypeError, /param "v": p\.sparseGrad\.values must be a Float32Array \(the param's dtype\), got Array/],
    ['too few values', (ps) => (ps[0].sparseGrad = { indices: [1, 2], values: new Float64Array(5) }), OptimRangeError,
      /param "E": p\.sparseGrad\.values has length 5 but must hold one row of 3 per index: indices\.length × 3 = 6/],
    ['values with indices empty', (ps) => (ps[1].sparseGrad = { indices: [], values: new Float32Array(1) }), OptimRangeError, /param "v": p\.sparseGrad\.values has length 1 but .* = 0/],
    ['data replaced by an array of another length', (ps) => {
      ps[0].data = new Float64Array(33);
    }, OptimRangeError, /param "E": p\.shape \[10, 3\] holds 30 elements but data has length 33/],
  ];

  it.each(BAD)('refuses %s, naming it, with nothing changed (the other group\'s valid gradient included)', (_n, spoil, cls, message) => {
    const { ps, opt } = setup();
    spoil(ps);
    const before = snapshot(ps, opt);
    const grads = ps.map((p) => p.sparseGrad);
    const err = errorOf(() => opt.step());
    expect(err).toBeInstanceOf(cls);
    expect((err as Error).message).toMatch(message);
    expect(snapshot(ps, opt)).toEqual(before);
    expect(ps.map((p) => p.sparseGrad)).toEqual(grads);
  });

  it('refuses a param listed twice and two params sharing a name', () => {
    const e = table();
    const opt = new SparseAdam([e]);
    opt.paramGroups[0].params.push(e);
    e.sparseGrad = recorded(1);
    expect(() => opt.step()).toThrow(/paramGroups\[0\]\.params\[1\]: param "E" appears twice/);
    expect(opt.stateDict().state).toEqual({});
  });

  describe('non-finite values', () => {
    it.each([NaN, Infinity, -Infinity])("'error' refuses %s with NonFiniteError naming the param and the element, changing nothing", (bad) => {
      const { ps, opt } = setup();
      (ps[0].sparseGrad!.values as Float64Array)[4] = bad;
      const before = snapshot(ps, opt);
      const err = errorOf(() => opt.step());
      expect(err).toBeInstanceOf(NonFiniteError);
      expect(err).toMatchObject({ param: 'E', index: 4, value: bad });
      expect((err as Error).message).toMatch(
        new RegExp(`p\\.sparseGrad\\.values of param "E" holds ${bad} at index 4 \\(row ${g.indices[1][1]} = indices\\[1\\], column 1\\); nothing was updated`),
      );
      expect(snapshot(ps, opt)).toEqual(before);
      expect(opt.skippedSteps).toBe(0);
    });

    it("'error' refuses duplicates whose sum overflows (float32), changing nothing", () => {
      const p = param(new Float32Array(6), 'w', { shape: [3, 2] });
      const opt = new SparseAdam([p], { lr: 0.1 });
      p.sparseGrad = { indices: [2, 0, 2], values: Float32Array.from([3e38, 1, 0, 0, 3e38, 1]) };
      const before = snapshot([p], opt);
      const err = errorOf(() => opt.step());
      expect(err).toBeInstanceOf(NonFiniteError);
      expect(err).toMatchObject({ param: 'w', index: 0, value: Infinity });
      expect((err as Error).message).toMatch(/the duplicates of row 2 in p\.sparseGrad of param "w" sum to Infinity at column 0 \(float overflow; first at values\[0\]\)/);
      expect(snapshot([p], opt)).toEqual(before);
      expect(opt.stateDict().state).toEqual({});
    });

    it("'skip' counts the step and changes nothing; the run equals one that never saw that step, bit for bit", () => {
      const e1 = table();
      const e2 = table();
      const o1 = new SparseAdam([e1], { lr: 0.01, nonFinite: 'skip' });
      const o2 = new SparseAdam([e2], { lr: 0.01 });
      for (let t = 1; t <= 20; t++) {
        if (t === 7 || t === 1) {
          const sg = recorded(t);
          sg.values[2] = NaN;
          e1.sparseGrad = sg;
          const before = snapshot([e1], o1);
          expect(o1.step()).toBeUndefined();
          expect(snapshot([e1], o1)).toEqual(before);
          continue;
        }
        e1.sparseGrad = recorded(t);
        e2.sparseGrad = recorded(t);
        o1.step();
        o2.step();
      }
      expect(o1.skippedSteps).toBe(2);
      expect(bytesOf(e1.data)).toEqual(bytesOf(e2.data));
      const { skippedSteps: s1, ...d1 } = o1.stateDict();
      const { skippedSteps: s2, ...d2 } = o2.stateDict();
      expect([s1, s2]).toEqual([2, 0]);
      expect(d1).toEqual(d2);
    });

    it("'ignore' applies it, as torch: NaN reaches the touched row only", () => {
      const e = table();
      const opt = new SparseAdam([e], { lr: 0.01, nonFinite: 'ignore' });
      const sg = recorded(1);
      sg.values[0] = NaN;
      e.sparseGrad = sg;
      opt.step();
      const row = g.indices[0][0];
      for (let r = 0; r < ROWS; r++) {
        for (let c = 0; c < COLS; c++) expect(Number.isNaN(e.data[r * COLS + c]), `row ${r} col ${c}`).toBe(r === row && c === 0);
      }
    });
  });

  it('stateDict round trip: a resumed run equals the uninterrupted one bit for bit (float64 and float32)', () => {
    for (const f32 of [false, true]) {
      const a = table(f32);
      const oa = new SparseAdam([a], { lr: 0.01 });
      for (let t = 1; t <= 10; t++) {
        a.sparseGrad = recorded(t, f32);
        oa.step();
      }
      const saved: StateDict = oa.stateDict();
      expect(saved.state.E.step).toBe(10);
      expect(saved.state.E.expAvg).toBeInstanceOf(f32 ? Float32Array : Float64Array);
      const b = param(a.data.slice(), 'E', { shape: [ROWS, COLS] });
      const ob = new SparseAdam([b], { lr: 0.5 });
      expect(ob.loadStateDict(saved)).toEqual({ matched: ['E'], missing: [], unexpected: [] });
      expect(ob.paramGroups[0].lr).toBe(0.01);
      for (let t = 11; t <= 30; t++) {
        a.sparseGrad = recorded(t, f32);
        b.sparseGrad = recorded(t, f32);
        oa.step();
        ob.step();
      }
      expect(bytesOf(b.data)).toEqual(bytesOf(a.data));
      expect(ob.stateDict()).toEqual(oa.stateDict());
      // The saved dict is a copy: the later steps did not change it.
      expect(saved.state.E.step).toBe(10);
    }
  });

  it('loadStateDict refuses a state that does not fit, changing nothing', () => {
    const { ps, opt } = setup();
    const sd = opt.stateDict();
    const short = { ...sd, state: { ...sd.state, E: { ...sd.state.E, expAvg: new Float64Array(29) } } };
    const before = snapshot(ps, opt);
    expect(() => opt.loadStateDict(short)).toThrow(OptimStateError);
    expect(() => opt.loadStateDict({ ...sd, state: { ...sd.state, E: { step: 1, expAvg: new Float64Array(30) } } })).toThrow(/missing "expAvgSq"/);
    expect(snapshot(ps, opt)).toEqual(before);
  });

  it('the dense optimizers refuse a set sparseGrad, and MultiSteps refuses SparseAdam, changing nothing', () => {
    const p = param(new Float64Array(6).fill(0.5), 'e', { shape: [3, 2] });
    const opt = new SGD([p], { lr: 0.1 });
    p.grad.fill(1);
    opt.step();
    p.sparseGrad = { indices: [1], values: new Float64Array([1, 1]) };
    const before = Array.from(p.data);
    expect(() => opt.step()).toThrow(OptimTypeError);
    expect(() => opt.step()).toThrow(/SGD does not support sparse gradients \(p\.sparseGrad is set\)/);
    expect(Array.from(p.data)).toEqual(before);
    opt.zeroGrad();
    expect(p.sparseGrad).toBeUndefined();
    opt.step();
    const q = param(new Float64Array(6), 'q', { shape: [3, 2] });
    expect(() => new MultiSteps(new SparseAdam([q]), { everyKSchedule: 2 })).toThrow(/SparseAdam takes row-sparse gradients/);
    expect(() => new MultiSteps(new Lookahead(new SparseAdam([q]), { syncPeriod: 2, slowStepSize: 0.5 }), { everyKSchedule: 2 })).toThrow(/SparseAdam/);
  });

  it('zeroGrad clears every sparseGrad; SparseAdam leaves the dense grad, the dense optimizers zero it and clear sparseGrad too', () => {
    const { ps, opt } = setup();
    ps[0].grad.fill(2);
    opt.zeroGrad();
    expect(ps.map((p) => p.sparseGrad)).toEqual([undefined, undefined]);
    expect(Array.from(ps[0].grad)).toEqual(new Array(30).fill(2));
    expect(() => opt.step()).toThrow(/has no sparseGrad/);
    const w = param(Float64Array.from([1, 2]), 'w');
    const adam = new Adam([w]);
    w.grad.fill(3);
    w.sparseGrad = { indices: [0], values: Float64Array.from([1]) };
    adam.zeroGrad();
    expect(w.sparseGrad).toBeUndefined();
    expect(Array.from(w.grad)).toEqual([0, 0]);
    // A param that never had one keeps no sparseGrad key.
    const u = param(Float64Array.from([1]), 'u');
    new Adam([u]).zeroGrad();
    expect('sparseGrad' in u).toBe(false);
  });

  it('step(closure) calls the closure first (it may set sparseGrad) and returns its value; hooks run around a step that updated only', () => {
    const e = table();
    const opt = new SparseAdam([e], { lr: 0.01 });
    const calls: string[] = [];
    opt.registerStepPreHook(() => void calls.push('pre'));
    opt.registerStepPostHook(() => void calls.push('post'));
    const loss = opt.step(() => {
      calls.push('closure');
      e.sparseGrad = recorded(1);
      return 4.5;
    });
    expect(loss).toBe(4.5);
    expect(calls).toEqual(['pre', 'closure', 'post']);
    expect(maxAbsDiff(e.data, g.trajectory[0])).toBe(0);
    e.sparseGrad = undefined;
    expect(() => opt.step()).toThrow(OptimTypeError);
    expect(calls).toEqual(['pre', 'closure', 'post', 'pre']);
  });
});
