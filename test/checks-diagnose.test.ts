import { describe, expect, it } from 'vitest';
import { diagnose } from '../src/checks/index.js';
import { OptimRangeError, OptimTypeError } from '../src/errors.js';
import { backendRows, useBackend } from './helpers/backends.js';

/** Q·diag(values)·Qᵀ for the rotation Q by angle t in the (0, 1) plane, then (1, 2), so no eigenvector is axis-aligned. */
function rotated(values: number[], Ctor: Float32ArrayConstructor | Float64ArrayConstructor = Float64Array): Float64Array | Float32Array {
  const n = values.length;
  const Q = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  const rotate = (p: number, q: number, t: number) => {
    for (let i = 0; i < n; i++) {
      const a = Q[i][p];
      const b = Q[i][q];
      Q[i][p] = Math.cos(t) * a - Math.sin(t) * b;
      Q[i][q] = Math.sin(t) * a + Math.cos(t) * b;
    }
  };
  for (let p = 0; p + 1 < n; p++) rotate(p, p + 1, 0.4 + 0.3 * p);
  const A = new Ctor(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += Q[i][k] * values[k] * Q[j][k];
      A[i * n + j] = s;
    }
  }
  return A;
}

describe.each(backendRows)('diagnose (%s)', (_name, backend) => {
  useBackend(backend);

  it('a minimum: condition number, largest stable and best gradient-descent steps', () => {
    const d = diagnose(rotated([1, 2, 4]), 3);
    expect(d.kind).toBe('minimum');
    expect(d.positive).toBe(3);
    expect(d.lambdaMin).toBeCloseTo(1, 12);
    expect(d.lambdaMax).toBeCloseTo(4, 12);
    expect(d.conditionNumber).toBeCloseTo(4, 10);
    expect(d.maxStableStep).toBeCloseTo(0.5, 12);
    expect(d.optimalStep).toBeCloseTo(0.4, 12);
    expect(d.summary).toMatch(/^minimum: 3 positive, 0 negative, 0 zero/);
  });

  it('a maximum has no stable gradient-descent step', () => {
    const d = diagnose(rotated([-3, -1, -0.5]), 3);
    expect(d.kind).toBe('maximum');
    expect(d.negative).toBe(3);
    expect(d.conditionNumber).toBeCloseTo(6, 10);
    expect(d.maxStableStep).toBeNull();
    expect(d.optimalStep).toBeNull();
  });

  it('a saddle: eigenvalues of both signs', () => {
    const d = diagnose(rotated([-2, 0.5, 3]), 3);
    expect(d.kind).toBe('saddle');
    expect([d.negative, d.zero, d.positive]).toEqual([1, 0, 2]);
    expect(d.conditionNumber).toBeCloseTo(6, 10);
    expect(d.maxStableStep).toBeCloseTo(2 / 3, 12);
    // A saddle with a flat direction is still a saddle.
    expect(diagnose(rotated([-1, 0, 1]), 3).kind).toBe('saddle');
  });

  it('degenerate: semidefinite with a zero eigenvalue, or zero', () => {
    const d = diagnose(rotated([0, 1, 2]), 3);
    expect(d.kind).toBe('degenerate');
    expect(d.zero).toBe(1);
    expect(d.conditionNumber).toBe(Infinity);
    expect(diagnose(rotated([-1, -2, 0]), 3).kind).toBe('degenerate');
    expect(diagnose(new Float64Array(4), 2).kind).toBe('degenerate');
    // 1e-20 is zero next to 1 in float64 (below n·ε); rtol decides.
    expect(diagnose(Float64Array.from([1, 0, 0, 1e-20]), 2).kind).toBe('degenerate');
    expect(diagnose(Float64Array.from([1, 0, 0, 1e-20]), 2, { rtol: 0 }).kind).toBe('minimum');
  });

  it('float32 Hessians, with the float32 tolerance', () => {
    const d = diagnose(rotated([1, 10, 100], Float32Array), 3);
    expect(d.kind).toBe('minimum');
    expect(d.conditionNumber).toBeCloseTo(100, 2);
    expect(diagnose(rotated([1e-9, 1, 2], Float32Array), 3).kind).toBe('degenerate');
  });

  it('reports whether the point is stationary when given the gradient', () => {
    const H = rotated([1, 2]);
    expect(diagnose(H, 2, { grad: [1e-7, -1e-7] })).toMatchObject({ stationary: true, gradNorm: 1e-7 });
    const moving = diagnose(H, 2, { grad: [0.1, 0], gtol: 1e-3 });
    expect(moving.stationary).toBe(false);
    expect(moving.summary).toMatch(/NOT stationary/);
  });

  it('refuses bad arguments', () => {
    expect(() => diagnose(new Float64Array(3), 2)).toThrow(/H has length 3, expected n\*n = 4/);
    expect(() => diagnose(new Float64Array(0), 0)).toThrow(OptimRangeError);
    expect(() => diagnose([1] as never, 1)).toThrow(OptimTypeError);
    expect(() => diagnose(new Float64Array(4), 2, { grad: [1] })).toThrow(/options.grad must be an array of length n = 2/);
    expect(() => diagnose(new Float64Array(4), 2, { tol: 1 } as never)).toThrow(/unknown option "tol"/);
  });
});
