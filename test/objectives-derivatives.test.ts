import { describe, expect, it } from 'vitest';
import type { FloatArray } from '../src/backend/types.js';
import { gradCheck, hessianCheck } from '../src/checks/index.js';
import { linearRegression, logisticRegression, softmaxRegression } from '../src/objectives/index.js';
import type { Objective, ObjectiveOptions } from '../src/objectives/index.js';
import { uniformStream } from '../src/data/random.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { linearProblem, logisticProblem, pointAwayFromZero, softmaxProblem } from './helpers/objective-problems.js';
import type { Ctor } from './helpers/objective-problems.js';

const ROWS = 23;
const COLS = 5;
const K = 3;

type Make = (Ctor: Ctor, options: ObjectiveOptions) => Objective<FloatArray>;

const MODELS: Array<[string, Make]> = [
  ['linearRegression', (C, o) => {
    const p = linearProblem(C, ROWS, COLS, 11);
    return linearRegression(p.X, p.y, { rows: ROWS, ...o });
  }],
  ['logisticRegression', (C, o) => {
    const p = logisticProblem(C, ROWS, COLS, 12);
    return logisticRegression(p.X, p.y, { rows: ROWS, ...o });
  }],
  ['softmaxRegression', (C, o) => {
    const p = softmaxProblem(C, ROWS, COLS, K, 13);
    return softmaxRegression(p.X, p.y, { rows: ROWS, classes: K, ...o });
  }],
];

const CONFIGS: Array<[string, ObjectiveOptions]> = [
  ['plain, intercept', {}],
  ['elastic net, unpenalized intercept', { l1: 0.05, l2: 0.3 }],
  ['elastic net, penalized intercept, sum', { l1: 0.05, l2: 0.3, penalizeIntercept: true, reduction: 'sum' }],
  ['l2, no intercept', { l2: 0.2, fitIntercept: false }],
];

const DTYPES: Array<[string, Ctor]> = [['float64', Float64Array], ['float32', Float32Array]];

/** Tolerances of the checks: float32 objectives round every product to 24 bits. */
const TOL = { float64: { rtol: 1e-6 }, float32: { rtol: 1e-2 } } as const;

function matVec(H: FloatArray, v: FloatArray, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += H[i * n + j] * v[j];
    out[i] = s;
  }
  return out;
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    d = Math.max(d, Math.abs(a[i] - b[i]));
  }
  return d / (scale || 1);
}

describe.each(backendRows)('objective derivatives (%s)', (_name, backend) => {
  useBackend(backend);
  describe.each(DTYPES)('%s', (dtype, C) => {
    const tol = TOL[dtype as keyof typeof TOL];
    describe.each(MODELS)('%s', (_model, make) => {
      it.each(CONFIGS)('%s: gradient and Hessian match central differences', (_cfg, options) => {
        const obj = make(C, options);
        const w = pointAwayFromZero(C, obj.size, uniformStream(99));
        const g = gradCheck(obj, w, tol);
        expect(g.ok, g.summary).toBe(true);
        const h = hessianCheck(obj, w, tol);
        expect(h.ok, h.summary).toBe(true);
        expect(h.asymmetry).toBe(0);
      });

      it.each(CONFIGS)('%s: hvp = H·v, evaluate and lossAndGrad agree with loss, grad, hessian', (_cfg, options) => {
        const obj = make(C, options);
        const w = pointAwayFromZero(C, obj.size, () => 0.37);
        const v = pointAwayFromZero(C, obj.size, () => 0.81);
        for (let i = 0; i < v.length; i += 2) v[i] = -v[i];
        const H = obj.hessian(w);
        const close = dtype === 'float64' ? 1e-12 : 1e-5;
        expect(maxRel(obj.hvp(w, v), matVec(H, v, obj.size))).toBeLessThan(close);
        const ev = obj.evaluate(w);
        const lg = obj.lossAndGrad(w);
        expect(ev.loss).toBe(obj.loss(w));
        expect(lg.loss).toBe(obj.loss(w));
        expect(Array.from(ev.grad)).toEqual(Array.from(obj.grad(w)));
        expect(Array.from(lg.grad)).toEqual(Array.from(obj.grad(w)));
        expect(Array.from(ev.hessian)).toEqual(Array.from(H));
      });
    });
  });
});

describe('objective structure', () => {
  it('penalty: L − L_data = λ1Σ|w| + λ2Σw² over the weights, the intercept left out unless penalized', () => {
    const p = logisticProblem(Float64Array, ROWS, COLS, 3);
    const w = pointAwayFromZero(Float64Array, COLS + 1, p.rnd);
    const plain = logisticRegression(p.X, p.y, { rows: ROWS });
    const pen = logisticRegression(p.X, p.y, { rows: ROWS, l1: 0.1, l2: 0.7 });
    const penB = logisticRegression(p.X, p.y, { rows: ROWS, l1: 0.1, l2: 0.7, penalizeIntercept: true });
    let a = 0, s = 0;
    for (let j = 0; j < COLS; j++) {
      a += Math.abs(w[j]);
      s += w[j] * w[j];
    }
    expect(pen.loss(w) - plain.loss(w)).toBeCloseTo(0.1 * a + 0.7 * s, 12);
    const b = w[COLS];
    expect(penB.loss(w) - plain.loss(w)).toBeCloseTo(0.1 * (a + Math.abs(b)) + 0.7 * (s + b * b), 12);
    expect(pen.grad(w)[COLS]).toBe(plain.grad(w)[COLS]);
    expect(penB.grad(w)[COLS] - plain.grad(w)[COLS]).toBeCloseTo(0.1 * Math.sign(b) + 1.4 * b, 12);
  });

  it("'mean' is 'sum' divided by the rows (for the data term)", () => {
    const p = softmaxProblem(Float64Array, ROWS, COLS, K, 4);
    const w = pointAwayFromZero(Float64Array, (COLS + 1) * K, p.rnd);
    const mean = softmaxRegression(p.X, p.y, { rows: ROWS });
    const sum = softmaxRegression(p.X, p.y, { rows: ROWS, reduction: 'sum' });
    expect(mean.loss(w) * ROWS).toBeCloseTo(sum.loss(w), 10);
    expect(maxRel(mean.grad(w).map((v) => v * ROWS), sum.grad(w))).toBeLessThan(1e-13);
  });

  it('batch(indices) equals the objective built on those rows', () => {
    const p = linearProblem(Float64Array, ROWS, COLS, 5);
    const idx = [7, 2, 2, 19, 0];
    const obj = linearRegression(p.X, p.y, { rows: ROWS, l2: 0.1 });
    const sub = new Float64Array(idx.length * COLS);
    idx.forEach((r, i) => sub.set(p.X.subarray(r * COLS, (r + 1) * COLS), i * COLS));
    const direct = linearRegression(sub, idx.map((r) => p.y[r]), { cols: COLS, l2: 0.1 });
    const w = pointAwayFromZero(Float64Array, COLS + 1, p.rnd);
    const b = obj.batch(Uint32Array.from(idx));
    expect(b.rows).toBe(5);
    expect(b.loss(w)).toBe(direct.loss(w));
    expect(Array.from(b.grad(w))).toEqual(Array.from(direct.grad(w)));
    expect(Array.from(b.hessian(w))).toEqual(Array.from(direct.hessian(w)));
    // A batch of a batch indexes the batch's rows.
    expect(b.batch([3, 0]).loss(w)).toBe(obj.batch([19, 7]).loss(w));
    expect(b.predict(w)[3]).toBe(obj.predict(w)[19]);
  });

  it('log-loss and cross-entropy stay finite and exact for huge scores', () => {
    const X = Float64Array.from([1000, -1000, 800, -800]);
    const logistic = logisticRegression(X, [0, 1, 1, 0], { cols: 1, fitIntercept: false, reduction: 'sum' });
    const w = Float64Array.from([1]);
    // log(1 + e^1000) − 0 + log(1 + e^−1000) + 1000 + log(1 + e^800) − 800 + log(1 + e^−800) = 1000 + 1000 + 0 + 0 (to rounding)
    expect(logistic.loss(w)).toBeCloseTo(2000, 9);
    const g = logistic.grad(w);
    expect(g[0]).toBeCloseTo(1000 + 1000, 9);
    expect(Number.isFinite(logistic.hessian(w)[0])).toBe(true);
    const softmax = softmaxRegression(Float64Array.from([1, 2]), [0, 2], { cols: 1, classes: 3, fitIntercept: false, reduction: 'sum' });
    const W = Float64Array.from([800, -900, 1000]);
    // Row 1 (x=1): lse = 1000 + log(1 + e^−200 + …) ≈ 1000, label 0 → 1000 − 800 = 200. Row 2 (x=2): label 2 is the max → 0.
    expect(softmax.loss(W)).toBeCloseTo(200, 9);
    expect(softmax.grad(W).every(Number.isFinite)).toBe(true);
  });

  it('predict and accuracy', () => {
    const X = Float64Array.from([2, -1, -3, 0.5]);
    const obj = logisticRegression(X, [1, 0, 0, 0], { cols: 1 });
    expect(Array.from(obj.predict(Float64Array.from([1, 0])))).toEqual([1, 0, 0, 1]);
    expect(obj.accuracy(Float64Array.from([1, 0]))).toBe(0.75);
    const sm = softmaxRegression(Float64Array.from([1, -1]), [0, 1], { cols: 1, fitIntercept: false });
    expect(Array.from(sm.predict(Float64Array.from([1, -1])))).toEqual([0, 1]);
    expect(sm.accuracy(Float64Array.from([-1, 1]))).toBe(0);
  });
});
