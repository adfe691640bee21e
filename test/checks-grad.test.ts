import { describe, expect, it } from 'vitest';
import { gradCheck, hessianCheck } from '../src/checks/index.js';
import { OptimRangeError, OptimTypeError } from '../src/errors.js';

/** f(x) = Σ (x_{i+1} − x_i²)² + Σ sin(x_i) x_i: coupled, curved, with every derivative nonzero. */
function value(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    s += Math.sin(x[i]) * x[i];
    if (i + 1 < x.length) s += (x[i + 1] - x[i] * x[i]) ** 2;
  }
  return s;
}

function gradient(x: ArrayLike<number>): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    g[i] += Math.cos(x[i]) * x[i] + Math.sin(x[i]);
    if (i + 1 < x.length) {
      const r = x[i + 1] - x[i] * x[i];
      g[i] += -4 * x[i] * r;
      g[i + 1] += 2 * r;
    }
  }
  return g;
}

function hessian(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const H = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    H[i * n + i] += 2 * Math.cos(x[i]) - x[i] * Math.sin(x[i]);
    if (i + 1 < n) {
      H[i * n + i] += 12 * x[i] * x[i] - 4 * x[i + 1];
      H[i * n + i + 1] += -4 * x[i];
      H[(i + 1) * n + i] += -4 * x[i];
      H[(i + 1) * n + i + 1] += 2;
    }
  }
  return H;
}

const X0 = [0.3, -1.2, 0.8, 2.1, -0.4, 1.5];

describe('gradCheck', () => {
  it('passes a correct gradient, float64 and float32, in both forms of f', () => {
    for (const x of [Float64Array.from(X0), Float32Array.from(X0)]) {
      const r1 = gradCheck((v) => ({ loss: value(v), grad: gradient(v) }), x);
      expect(r1.ok, r1.summary).toBe(true);
      const r2 = gradCheck({ loss: value, grad: gradient }, x);
      expect(r2.ok, r2.summary).toBe(true);
      expect(r2.relError.length).toBe(X0.length);
      expect(r2.summary).toMatch(/^gradCheck \(6 coordinates\): PASS/);
    }
    expect(gradCheck({ loss: value, grad: gradient }, Float64Array.from(X0)).maxRelError).toBeLessThan(1e-8);
  });

  it('finds a wrong coordinate and lists it first, with both values', () => {
    const wrong = (v: ArrayLike<number>) => {
      const g = gradient(v);
      g[3] *= 1.01;
      return g;
    };
    const x = Float64Array.from(X0);
    const r = gradCheck({ loss: value, grad: wrong }, x, { worst: 3 });
    expect(r.ok).toBe(false);
    expect(r.failures).toBe(1);
    expect(r.worst).toHaveLength(3);
    expect(r.worst[0].index).toBe(3);
    expect(r.worst[0].analytic).toBeCloseTo(1.01 * gradient(x)[3], 12);
    expect(r.worst[0].numeric).toBeCloseTo(gradient(x)[3], 6);
    expect(r.worst[0].relError).toBeCloseTo(0.01 / 1.01, 5);
    expect(r.summary).toMatch(/FAIL \(1 of 6 coordinates over rtol\)/);
    expect(r.summary).toMatch(/\n {2}\[3\] /);
  });

  it('judges near-zero coordinates against the floor, not their own size', () => {
    // f = x0² + 1e-9·x1: the second coordinate is tiny but exact; its rounding noise must not fail it.
    const f = { loss: (v: ArrayLike<number>) => v[0] * v[0] + 1e-9 * v[1], grad: (v: ArrayLike<number>) => [2 * v[0], 1e-9] };
    const r = gradCheck(f, Float64Array.from([1.5, 0.2]));
    expect(r.ok, r.summary).toBe(true);
    const strict = gradCheck(f, Float64Array.from([1.5, 0.2]), { floor: 1e-30 });
    expect(strict.relError[1]).toBeGreaterThan(0);
  });

  it('leaves x unchanged and refuses bad arguments', () => {
    const x = Float64Array.from(X0);
    gradCheck({ loss: value, grad: gradient }, x);
    expect(Array.from(x)).toEqual(X0);
    expect(() => gradCheck(42 as never, x)).toThrow(OptimTypeError);
    expect(() => gradCheck({ loss: value, grad: gradient }, [1, 2] as never)).toThrow(/x must be a Float32Array or Float64Array/);
    expect(() => gradCheck({ loss: value, grad: gradient }, Float64Array.from([1, NaN]))).toThrow(/x\[1\] = NaN is not finite/);
    expect(() => gradCheck({ loss: value, grad: () => [1] }, x)).toThrow(/the gradient must have length 6/);
    expect(() => gradCheck({ loss: value, grad: gradient }, x, { eps: 0 })).toThrow(OptimRangeError);
    expect(() => gradCheck({ loss: value, grad: gradient }, x, { step: 1 } as never)).toThrow(/unknown option "step"/);
    expect(() => gradCheck(() => 3 as never, x)).toThrow(/f\(x\) must return \{ loss: number, grad \}/);
  });
});

describe('hessianCheck', () => {
  it('passes a correct Hessian, float64 and float32', () => {
    for (const x of [Float64Array.from(X0), Float32Array.from(X0)]) {
      const r = hessianCheck({ grad: gradient, hessian }, x);
      expect(r.ok, r.summary).toBe(true);
      expect(r.asymmetry).toBe(0);
      expect(r.relError.length).toBe(36);
      const f = hessianCheck((v) => ({ grad: gradient(v), hessian: hessian(v) }), x);
      expect(f.ok).toBe(true);
    }
  });

  it('locates a wrong entry by (row, col) and reports asymmetry', () => {
    const wrong = (v: ArrayLike<number>) => {
      const H = hessian(v);
      H[2 * 6 + 3] += 0.5;
      return H;
    };
    const r = hessianCheck({ grad: gradient, hessian: wrong }, Float64Array.from(X0));
    expect(r.ok).toBe(false);
    expect(r.failures).toBe(1);
    expect(r.worst[0]).toMatchObject({ row: 2, col: 3, index: 15 });
    expect(r.asymmetry).toBeCloseTo(0.5, 12);
    expect(r.summary).toMatch(/\(2, 3\)/);
    expect(r.summary).toMatch(/asymmetry max\|Hij − Hji\| = 5.00e-1/);
  });

  it('refuses a Hessian of the wrong size', () => {
    expect(() => hessianCheck({ grad: gradient, hessian: () => new Float64Array(5) }, Float64Array.from(X0))).toThrow(/the Hessian must have length 36/);
  });
});
