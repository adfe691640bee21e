import { describe, expect, it } from 'vitest';
import { minimize } from '../src/minimize.js';
import type { Evaluation } from '../src/minimize.js';
import { LBFGS } from '../src/optim/lbfgs.js';
import { param } from '../src/param.js';
import { backendRows, useBackend } from './helpers/backends.js';

/** The n-dimensional Rosenbrock function with its gradient and (dense) Hessian. */
function rosenbrock(withHessian: boolean) {
  return (x: Float32Array | Float64Array): Evaluation => {
    const n = x.length;
    let loss = 0;
    const grad = new Float64Array(n);
    const hessian = withHessian ? new Float64Array(n * n) : undefined;
    for (let i = 0; i < n - 1; i++) {
      const a = x[i + 1] - x[i] * x[i];
      const b = 1 - x[i];
      loss += 100 * a * a + b * b;
      grad[i] += -400 * x[i] * a - 2 * b;
      grad[i + 1] += 200 * a;
      if (hessian) {
        hessian[i * n + i] += 1200 * x[i] * x[i] - 400 * x[i + 1] + 2;
        hessian[i * n + i + 1] += -400 * x[i];
        hessian[(i + 1) * n + i] += -400 * x[i];
        hessian[(i + 1) * n + i + 1] += 200;
      }
    }
    return { loss, grad, hessian };
  };
}

describe.each(backendRows)('minimize (%s)', (_name, backend) => {
  useBackend(backend);
  // Chained Rosenbrock in 6 dimensions has a second local minimum near x₀ = −1; from 0 both
  // methods must find the global one at (1, …, 1).
  const x0 = new Float64Array(6);

  it("'newton' (Levenberg–Marquardt) reaches Rosenbrock's minimum with quadratic convergence", () => {
    const r = minimize(rosenbrock(true), x0, { method: 'newton', gtol: 1e-10 });
    expect(r.success).toBe(true);
    r.x.forEach((v) => expect(Math.abs(v - 1)).toBeLessThan(1e-9));
    expect(r.nit).toBeLessThan(60);
    expect(r.history.length).toBe(r.nit + 1);
    expect(r.gradNorm).toBeLessThanOrEqual(1e-10);
    expect(Array.from(x0)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it.each(['newton', 'lbfgs', 'bfgs', 'adam'] as const)("'%s': onIteration gets the iterate its row describes (loss = f(x))", (method) => {
    const f = rosenbrock(true);
    let rows = 0;
    minimize(f, x0, {
      method,
      maxIter: 8,
      onIteration: (info, x) => {
        expect(f(Float64Array.from(x)).loss, `row ${info.nit}`).toBe(info.loss);
        rows++;
      },
    });
    expect(rows).toBeGreaterThan(3);
  });

  it("'lbfgs' (strong Wolfe) reaches Rosenbrock's minimum", () => {
    const r = minimize(rosenbrock(false), x0, { method: 'lbfgs', gtol: 1e-8, maxIter: 500 });
    expect(r.success).toBe(true);
    r.x.forEach((v) => expect(Math.abs(v - 1)).toBeLessThan(1e-6));
    expect(r.fun).toBeLessThan(1e-12);
  });

  it("'bfgs' (scipy's BFGS, dense inverse Hessian) reaches Rosenbrock's minimum", () => {
    const r = minimize(rosenbrock(false), x0, { method: 'bfgs', gtol: 1e-8 });
    expect(r.success).toBe(true);
    expect(r.status).toBe(0);
    expect(r.message).toBe('Optimization terminated successfully.');
    r.x.forEach((v) => expect(Math.abs(v - 1)).toBeLessThan(1e-7));
    expect(r.gradNorm).toBeLessThanOrEqual(1e-8);
    expect(r.history.length).toBe(r.nit + 1);
    expect(r.njev).toBeLessThanOrEqual(r.nfev);
    // H stays symmetric (to rounding) with a positive diagonal, as the update does in exact arithmetic.
    const n = 6;
    const h = r.hessInv!;
    expect(h.length).toBe(n * n);
    const scale = Math.max(...Array.from(h, Math.abs));
    for (let i = 0; i < n; i++) {
      expect(h[i * n + i]).toBeGreaterThan(0);
      for (let j = 0; j < i; j++) expect(Math.abs(h[i * n + j] - h[j * n + i])).toBeLessThanOrEqual(1e-12 * scale);
    }
    expect(Array.from(x0)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("first-order methods by name ('adam') descend, and maxIter ends the run without success", () => {
    const quad = (x: Float32Array | Float64Array): Evaluation => ({
      loss: x.reduce((s, v, i) => s + (i + 1) * v * v, 0),
      grad: x.map((v, i) => 2 * (i + 1) * v),
    });
    const r = minimize(quad, new Float64Array([1, -1, 2]), { method: 'adam', lr: 0.05, gtol: 1e-6, maxIter: 5000 });
    expect(r.success).toBe(true);
    const capped = minimize(quad, new Float64Array([1, -1, 2]), { method: 'sgd', lr: 1e-3, maxIter: 3 });
    expect(capped.success).toBe(false);
    expect(capped.nit).toBe(3);
    expect(capped.message).toMatch(/Maximum number of iterations/);
  });

  it('onIteration sees every iterate and can stop the run', () => {
    const seen: number[] = [];
    const r = minimize(rosenbrock(true), x0, {
      method: 'newton',
      onIteration: (info) => {
        seen.push(info.nit);
        return info.nit < 2;
      },
    });
    expect(seen).toEqual([0, 1, 2]);
    expect(r.success).toBe(false);
    expect(r.message).toMatch(/onIteration/);
  });

  it('refuses bad arguments with errors naming them', () => {
    expect(() => minimize(rosenbrock(true), [1, 2] as unknown as Float64Array)).toThrow(/x0 must be/);
    expect(() => minimize(rosenbrock(true), x0, { method: 'cg' as never })).toThrow(/method must be 'newton', 'lbfgs', 'bfgs' or one of/);
    expect(() => minimize(rosenbrock(true), x0, { gtl: 1 } as never)).toThrow(/unknown option "gtl"/);
    expect(() => minimize(rosenbrock(false), x0, { method: 'newton' })).toThrow(/needs fun\(x\) to return a hessian/);
  });
});

describe('LBFGS with strong Wolfe line search', () => {
  it('satisfies the strong Wolfe conditions at every accepted step on Rosenbrock', () => {
    const f = rosenbrock(false);
    const p = param(new Float64Array([-1.2, 1]), 'x');
    const opt = new LBFGS([p], { lineSearchFn: 'strong_wolfe', maxIter: 200, toleranceGrad: 1e-10, toleranceChange: 1e-14 });
    opt.step(() => {
      const r = f(p.data);
      p.grad.set(r.grad);
      return r.loss;
    });
    expect(Math.abs(p.data[0] - 1)).toBeLessThan(1e-8);
    expect(Math.abs(p.data[1] - 1)).toBeLessThan(1e-8);
  });
});
