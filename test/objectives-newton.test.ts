/**
 * The objectives driven by the library's second-order methods reach optima that an independent
 * computation (plain loops, Gaussian elimination, float64) finds.
 */
import { describe, expect, it } from 'vitest';
import { minimize } from '../src/minimize.js';
import { linearRegression, logisticRegression } from '../src/objectives/index.js';
import { Newton } from '../src/optim/newton.js';
import { param } from '../src/param.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { linearProblem, logisticProblem } from './helpers/objective-problems.js';

const ROWS = 120;
const COLS = 6;
const L2 = 0.5;

/** Solves A x = b (n×n, row-major) by Gaussian elimination with partial pivoting. */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = c + 1; r < n; r++) {
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r][n];
    for (let k = r + 1; k < n; k++) s -= M[r][k] * x[k];
    x[r] = s / M[r][r];
  }
  return x;
}

/**
 * Iteratively reweighted least squares for J = Σ[log(1+e^z) − yz] + λ‖w‖² (intercept last,
 * unpenalized), iterated until the step stops changing anything.
 */
function irls(X: Float64Array, y: Float64Array, lambda: number): { w: number[]; J: number } {
  const d = COLS + 1;
  let w = new Array<number>(d).fill(0);
  const rows = Array.from({ length: ROWS }, (_, i) => [...Array.from(X.subarray(i * COLS, (i + 1) * COLS)), 1]);
  const objective = (v: number[]) => rows.reduce((s, x, i) => {
    const z = x.reduce((t, xj, j) => t + xj * v[j], 0);
    return s + Math.log1p(Math.exp(z)) - y[i] * z;
  }, 0) + lambda * v.slice(0, COLS).reduce((s, vj) => s + vj * vj, 0);
  for (let it = 0; it < 50; it++) {
    const H = Array.from({ length: d }, () => new Array<number>(d).fill(0));
    const g = new Array<number>(d).fill(0);
    rows.forEach((x, i) => {
      const p = 1 / (1 + Math.exp(-x.reduce((t, xj, j) => t + xj * w[j], 0)));
      for (let a = 0; a < d; a++) {
        g[a] += (p - y[i]) * x[a];
        for (let b = 0; b < d; b++) H[a][b] += p * (1 - p) * x[a] * x[b];
      }
    });
    for (let j = 0; j < COLS; j++) {
      g[j] += 2 * lambda * w[j];
      H[j][j] += 2 * lambda;
    }
    const step = solve(H, g);
    const next = w.map((v, j) => v - step[j]);
    if (next.every((v, j) => v === w[j])) break;
    w = next;
  }
  return { w, J: objective(w) };
}

describe.each(backendRows)('logistic regression + Newton (%s)', (_name, backend) => {
  useBackend(backend);
  const prob = logisticProblem(Float64Array, ROWS, COLS, 31);
  const X = prob.X as Float64Array;
  const truth = irls(X, prob.y, L2);

  it.each([0, 'adaptive'] as const)("minimize(method 'newton', damping %s) matches IRLS", (damping) => {
    const obj = logisticRegression(X, prob.y, { rows: ROWS, l2: L2, reduction: 'sum' });
    const r = minimize(obj.evaluate, new Float64Array(obj.size), { method: 'newton', damping, gtol: 1e-10 });
    expect(r.success).toBe(true);
    expect(r.nit).toBeLessThanOrEqual(10);
    expect(Math.abs(r.fun - truth.J) / truth.J).toBeLessThan(1e-14);
    for (let j = 0; j < obj.size; j++) expect(Math.abs(r.x[j] - truth.w[j])).toBeLessThan(1e-9 * (1 + Math.abs(truth.w[j])));
  });

  it('the Newton optimizer with a closure converges quadratically to the same point', () => {
    const obj = logisticRegression(X, prob.y, { rows: ROWS, l2: L2, reduction: 'sum' });
    const w = param(new Float64Array(obj.size));
    const newton = new Newton([w], { damping: 0 });
    const gaps: number[] = [];
    for (let it = 0; it < 8; it++) {
      newton.step(() => {
        const ev = obj.evaluate(w.data);
        w.grad.set(ev.grad);
        return { loss: ev.loss, hessian: ev.hessian };
      });
      gaps.push(obj.loss(w.data) - truth.J);
    }
    expect(gaps[gaps.length - 1] / truth.J).toBeLessThan(1e-14);
    // Quadratic convergence: once the gap is small, the next is at most about its square.
    const k = gaps.findIndex((g) => g < 1e-2);
    expect(k).toBeGreaterThanOrEqual(0);
    expect(gaps[k + 1]).toBeLessThan(Math.max(10 * gaps[k] ** 2, 1e-11));
  });

  it('mean reduction reaches the same weights as sum with λ scaled by 1/rows', () => {
    const obj = logisticRegression(X, prob.y, { rows: ROWS, l2: L2 / ROWS });
    const r = minimize(obj.evaluate, new Float64Array(obj.size), { method: 'newton', gtol: 1e-12 });
    for (let j = 0; j < obj.size; j++) expect(Math.abs(r.x[j] - truth.w[j])).toBeLessThan(1e-8 * (1 + Math.abs(truth.w[j])));
  });
});

describe.each(backendRows)('ridge regression + Newton (%s)', (_name, backend) => {
  useBackend(backend);
  it('one Newton step lands on the normal-equations solution', () => {
    const prob = linearProblem(Float64Array, ROWS, COLS, 32);
    const X = prob.X as Float64Array;
    const obj = linearRegression(X, prob.y, { rows: ROWS, l2: 0.3, reduction: 'sum' });
    const d = COLS + 1;
    const A = Array.from({ length: d }, () => new Array<number>(d).fill(0));
    const b = new Array<number>(d).fill(0);
    for (let i = 0; i < ROWS; i++) {
      const x = [...Array.from(X.subarray(i * COLS, (i + 1) * COLS)), 1];
      for (let a = 0; a < d; a++) {
        b[a] += x[a] * prob.y[i];
        for (let c = 0; c < d; c++) A[a][c] += x[a] * x[c];
      }
    }
    for (let j = 0; j < COLS; j++) A[j][j] += 0.3;
    const exact = solve(A, b);
    const r = minimize(obj.evaluate, new Float64Array(d), { method: 'newton', damping: 0, maxIter: 1, gtol: 0 });
    for (let j = 0; j < d; j++) expect(Math.abs(r.x[j] - exact[j])).toBeLessThan(1e-10 * (1 + Math.abs(exact[j])));
  });
});
