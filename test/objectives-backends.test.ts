/**
 * The objectives on each backend against a plain-loop float64 oracle written from the
 * formulas, and the backends against each other. Stated tolerances (relative to the largest
 * magnitude of each quantity): float64 1e-12, float32 2e-5 (products of 40 float32 terms).
 */
import { describe, expect, it } from 'vitest';
import type { FloatArray } from '../src/backend/types.js';
import { getBackend, setBackend } from '../src/backend/select.js';
import { linearRegression, logisticRegression, softmaxRegression } from '../src/objectives/index.js';
import type { Objective } from '../src/objectives/index.js';
import { uniformStream } from '../src/data/random.js';
import { backendRows, backends, useBackend } from './helpers/backends.js';
import { linearProblem, logisticProblem, pointAwayFromZero, softmaxProblem } from './helpers/objective-problems.js';
import type { Ctor } from './helpers/objective-problems.js';

const ROWS = 61;
const COLS = 40;
const K = 4;
const L1 = 0.01;
const L2 = 0.2;

interface Oracle {
  loss: number;
  grad: Float64Array;
  hessian: Float64Array;
}

/** x̃ᵢ = [xᵢ, 1] in float64. */
function rowOf(X: FloatArray, i: number): number[] {
  return [...Array.from(X.subarray(i * COLS, (i + 1) * COLS)), 1];
}

/** Adds the elastic-net penalty on the first `count` entries (the intercept left out). */
function penalize(o: Oracle, w: FloatArray, count: number, size: number): Oracle {
  for (let j = 0; j < count; j++) {
    o.loss += L1 * Math.abs(w[j]) + L2 * w[j] * w[j];
    o.grad[j] += L1 * Math.sign(w[j]) + 2 * L2 * w[j];
    o.hessian[j * size + j] += 2 * L2;
  }
  return o;
}

function logisticOracle(X: FloatArray, y: Float64Array, w: FloatArray): Oracle {
  const d = COLS + 1;
  const o: Oracle = { loss: 0, grad: new Float64Array(d), hessian: new Float64Array(d * d) };
  for (let i = 0; i < ROWS; i++) {
    const x = rowOf(X, i);
    const z = x.reduce((s, v, j) => s + v * w[j], 0);
    const p = 1 / (1 + Math.exp(-z));
    o.loss += (Math.log(1 + Math.exp(z)) - y[i] * z) / ROWS;
    for (let a = 0; a < d; a++) {
      o.grad[a] += ((p - y[i]) * x[a]) / ROWS;
      for (let b = 0; b < d; b++) o.hessian[a * d + b] += (p * (1 - p) * x[a] * x[b]) / ROWS;
    }
  }
  return penalize(o, w, COLS, d);
}

function linearOracle(X: FloatArray, y: Float64Array, w: FloatArray): Oracle {
  const d = COLS + 1;
  const o: Oracle = { loss: 0, grad: new Float64Array(d), hessian: new Float64Array(d * d) };
  for (let i = 0; i < ROWS; i++) {
    const x = rowOf(X, i);
    const r = x.reduce((s, v, j) => s + v * w[j], 0) - y[i];
    o.loss += (r * r) / ROWS;
    for (let a = 0; a < d; a++) {
      o.grad[a] += (2 * r * x[a]) / ROWS;
      for (let b = 0; b < d; b++) o.hessian[a * d + b] += (2 * x[a] * x[b]) / ROWS;
    }
  }
  return penalize(o, w, COLS, d);
}

function softmaxOracle(X: FloatArray, y: Float64Array, w: FloatArray): Oracle {
  const d = COLS + 1;
  const n = d * K;
  const o: Oracle = { loss: 0, grad: new Float64Array(n), hessian: new Float64Array(n * n) };
  for (let i = 0; i < ROWS; i++) {
    const x = rowOf(X, i);
    const z = Array.from({ length: K }, (_, k) => x.reduce((s, v, j) => s + v * w[j * K + k], 0));
    const e = z.map(Math.exp);
    const total = e.reduce((s, v) => s + v, 0);
    const p = e.map((v) => v / total);
    o.loss += (Math.log(total) - z[y[i]]) / ROWS;
    for (let a = 0; a < d; a++) {
      for (let k = 0; k < K; k++) {
        o.grad[a * K + k] += ((p[k] - (y[i] === k ? 1 : 0)) * x[a]) / ROWS;
        for (let b = 0; b < d; b++) {
          for (let k2 = 0; k2 < K; k2++) {
            o.hessian[(a * K + k) * n + b * K + k2] += (x[a] * x[b] * p[k] * ((k === k2 ? 1 : 0) - p[k2])) / ROWS;
          }
        }
      }
    }
  }
  return penalize(o, w, COLS * K, n);
}

type Case = [string, (C: Ctor) => { obj: Objective<FloatArray>; oracle: (w: FloatArray) => Oracle }];

const CASES: Case[] = [
  ['linearRegression', (C) => {
    const p = linearProblem(C, ROWS, COLS, 21);
    return { obj: linearRegression(p.X, p.y, { rows: ROWS, l1: L1, l2: L2 }), oracle: (w) => linearOracle(p.X, p.y, w) };
  }],
  ['logisticRegression', (C) => {
    const p = logisticProblem(C, ROWS, COLS, 22);
    return { obj: logisticRegression(p.X, p.y, { rows: ROWS, l1: L1, l2: L2 }), oracle: (w) => logisticOracle(p.X, p.y, w) };
  }],
  ['softmaxRegression', (C) => {
    const p = softmaxProblem(C, ROWS, COLS, K, 23);
    return { obj: softmaxRegression(p.X, p.y, { rows: ROWS, classes: K, l1: L1, l2: L2 }), oracle: (w) => softmaxOracle(p.X, p.y, w) };
  }],
];

const TOL = { float64: 1e-12, float32: 2e-5 } as const;

/** max|a − b| / max|b|. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / (s || 1);
}

function point(C: Ctor, n: number): FloatArray {
  const w = pointAwayFromZero(C, n, uniformStream(5));
  for (let i = 0; i < n; i++) w[i] *= 0.3;
  return w;
}

describe.each(backendRows)('objectives against a float64 oracle (%s)', (_name, backend) => {
  useBackend(backend);
  describe.each([['float64', Float64Array], ['float32', Float32Array]] as Array<[keyof typeof TOL, Ctor]>)('%s', (dtype, C) => {
    it.each(CASES)('%s: loss, gradient, Hessian and Hessian-vector product', (_n, make) => {
      const { obj, oracle } = make(C);
      const w = point(C, obj.size);
      const want = oracle(w);
      const got = obj.evaluate(w);
      const tol = TOL[dtype];
      expect(Math.abs(got.loss - want.loss) / Math.abs(want.loss)).toBeLessThan(tol);
      expect(relDiff(got.grad, want.grad)).toBeLessThan(tol);
      expect(relDiff(got.hessian, want.hessian)).toBeLessThan(tol);
      const v = point(C, obj.size).reverse();
      const Hv = new Float64Array(obj.size);
      for (let i = 0; i < obj.size; i++) for (let j = 0; j < obj.size; j++) Hv[i] += want.hessian[i * obj.size + j] * v[j];
      expect(relDiff(obj.hvp(w, v), Hv)).toBeLessThan(tol);
    });
  });
});

describe('native and reference backends agree', () => {
  it.each(CASES)('%s (float64 within 1e-12, float32 within 2e-5)', (_n, make) => {
    for (const [dtype, C] of [['float64', Float64Array], ['float32', Float32Array]] as Array<[keyof typeof TOL, Ctor]>) {
      const { obj } = make(C);
      const w = point(C, obj.size);
      const previous = getBackend().name;
      const results = backends.map((b) => {
        setBackend(b.name);
        return obj.evaluate(w);
      });
      setBackend(previous);
      for (const r of results.slice(1)) {
        expect(Math.abs(r.loss - results[0].loss) / Math.abs(results[0].loss)).toBeLessThan(TOL[dtype]);
        expect(relDiff(r.grad, results[0].grad)).toBeLessThan(TOL[dtype]);
        expect(relDiff(r.hessian, results[0].hessian)).toBeLessThan(TOL[dtype]);
      }
      expect(results.length).toBe(backends.length);
    }
  });
});
