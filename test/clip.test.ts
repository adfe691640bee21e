import { describe, expect, it } from 'vitest';
import { clipGradNorm, clipGradValue, OptimRangeError, OptimTypeError, param } from '../src/index.js';
import type { Param } from '../src/index.js';

function withGrad(grad: number[], dtype: 'f32' | 'f64' = 'f64', name?: string): Param {
  const p = dtype === 'f32' ? param(new Float32Array(grad.length), name) : param(new Float64Array(grad.length), name);
  p.grad.set(grad);
  return p;
}

function grads(ps: Param[]): number[][] {
  return ps.map((p) => [...p.grad]);
}

/** A plain (Σ|g|^p)^(1/p) over all entries, for comparison. */
function directNorm(values: number[][], p: number): number {
  if (p === Infinity) return Math.max(...values.flat().map(Math.abs));
  return values.flat().reduce((s, v) => s + Math.abs(v) ** p, 0) ** (1 / p);
}

describe('clipGradNorm', () => {
  const G = [
    [0.5, -2, 3.25, 0.125],
    [-1.5, 4],
    [7, -0.75, 0.3],
  ];

  it.each([1, 2, 3, 0.5])('p = %s: one global norm, every grad scaled by maxNorm/(N + 1e-6)', (p) => {
    const ps = [withGrad(G[0]), withGrad(G[1], 'f32'), withGrad(G[2])];
    const before = grads(ps);
    const N = directNorm(before, p);
    const total = clipGradNorm(ps, 2, { normType: p });
    expect(total).toBeCloseTo(N, 12);
    const coef = 2 / (N + 1e-6);
    ps.forEach((q, i) =>
      q.grad.forEach((v, j) => {
        const want = before[i][j] * coef;
        expect(v).toBeCloseTo(q.grad instanceof Float32Array ? Math.fround(want) : want, 12);
      }),
    );
    expect(directNorm(grads(ps), p)).toBeLessThan(2);
    expect(directNorm(grads(ps), p)).toBeGreaterThan(2 * (1 - 1e-5));
  });

  it("'inf' and Infinity: the largest |g| over all grads", () => {
    for (const normType of ['inf', Infinity] as const) {
      const ps = [withGrad([1, -9]), withGrad([4, 2], 'f32')];
      expect(clipGradNorm(ps, 3, { normType })).toBe(9);
      const coef = 3 / (9 + 1e-6);
      expect([...ps[0].grad]).toEqual([coef, -9 * coef]);
      expect([...ps[1].grad]).toEqual([Math.fround(4 * coef), Math.fround(2 * coef)]);
    }
  });

  it('global, not per parameter: norms 3 and 4 make 5', () => {
    const a = withGrad([3, 0]);
    const b = withGrad([0, 4]);
    expect(clipGradNorm([a, b], 1)).toBe(5);
    expect([...a.grad]).toEqual([3 / (5 + 1e-6), 0]);
    expect([...b.grad]).toEqual([0, 4 / (5 + 1e-6)]);
  });

  it('does not scale when maxNorm/(N + 1e-6) >= 1', () => {
    const ps = [withGrad([3, 4]), withGrad([0.1], 'f32')];
    const before = grads(ps);
    const N = clipGradNorm(ps, 10);
    expect(N).toBeCloseTo(Math.sqrt(25 + Math.fround(0.1) ** 2), 14);
    expect(grads(ps)).toEqual(before);
    clipGradNorm(ps, N + 1e-6);
    expect(grads(ps)).toEqual(before);
  });

  it('zero grads and no params give 0', () => {
    const p = withGrad([0, 0, 0]);
    expect(clipGradNorm([p], 1)).toBe(0);
    expect([...p.grad]).toEqual([0, 0, 0]);
    expect(clipGradNorm([], 1)).toBe(0);
  });

  it('a single param is accepted; a grad listed twice counts once', () => {
    const p = withGrad([3, 4]);
    expect(clipGradNorm(p, 100)).toBe(5);
    expect(clipGradNorm([p, p], 1)).toBe(5);
    expect([...p.grad]).toEqual([3 / (5 + 1e-6), 4 / (5 + 1e-6)]);
  });

  it('accumulates in float64 without overflow or underflow', () => {
    expect(clipGradNorm(withGrad([3e200, 4e200]), 1e300) / 5e200).toBeCloseTo(1, 14);
    expect(clipGradNorm(withGrad([3e-200, 4e-200]), 1) / 5e-200).toBeCloseTo(1, 14);
    const big = new Array(1000).fill(3e38);
    expect(clipGradNorm(withGrad(big, 'f32'), 1e300) / (Math.fround(3e38) * Math.sqrt(1000))).toBeCloseTo(1, 12);
  });

  describe('non-finite norms', () => {
    it('errorIfNonfinite: throws for NaN or ∞, changing nothing', () => {
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const normType of [2, 'inf'] as const) {
          const ps = [withGrad([1, 2]), withGrad([bad, 3])];
          const before = grads(ps);
          expect(() => clipGradNorm(ps, 1, { normType, errorIfNonfinite: true })).toThrow(OptimRangeError);
          expect(() => clipGradNorm(ps, 1, { normType, errorIfNonfinite: true })).toThrow(/is (NaN|Infinity), so they cannot be clipped/);
          expect(grads(ps)).toEqual(before);
        }
      }
    });

    it('otherwise N = ∞ scales by 0 (finite entries 0, infinite ones NaN), as torch', () => {
      const p = withGrad([1, Infinity, -2]);
      expect(clipGradNorm(p, 1)).toBe(Infinity);
      expect([...p.grad]).toEqual([0, NaN, -0]);
    });

    it('and N = NaN leaves the grads unchanged and returns NaN', () => {
      for (const normType of [2, 1, 'inf'] as const) {
        const p = withGrad([1, NaN, 50]);
        expect(clipGradNorm(p, 1, { normType })).toBeNaN();
        expect([...p.grad]).toEqual([1, NaN, 50]);
      }
    });
  });

  describe('refuses bad input, changing no grad', () => {
    it.each([
      ['maxNorm < 0', [-1, {}], OptimRangeError, /maxNorm must be a finite number >= 0, got -1/],
      ['maxNorm NaN', [NaN, {}], OptimRangeError, /maxNorm must be a finite number >= 0, got NaN/],
      ['maxNorm ∞', [Infinity, {}], OptimRangeError, /maxNorm must be a finite number >= 0/],
      ['maxNorm a string', ['1', {}], OptimTypeError, /maxNorm must be a number, got string/],
      ['normType 0', [1, { normType: 0 }], OptimRangeError, /options.normType must be a number > 0, Infinity or 'inf', got 0/],
      ['normType −∞', [1, { normType: -Infinity }], OptimRangeError, /options.normType/],
      ['normType NaN', [1, { normType: NaN }], OptimRangeError, /options.normType/],
      ['normType "2"', [1, { normType: '2' }], OptimTypeError, /options.normType must be a number or 'inf', got string/],
      ['errorIfNonfinite 1', [1, { errorIfNonfinite: 1 }], OptimTypeError, /options.errorIfNonfinite must be a boolean/],
      ['an unknown option', [1, { norm_type: 2 }], OptimTypeError, /unknown option "norm_type"/],
      ['options null', [1, null], OptimTypeError, /options must be an object, got null/],
    ])('%s', (_name, args, cls, pattern) => {
      const ps = [withGrad([30, 40])];
      const call = () => (clipGradNorm as (...a: unknown[]) => number)(ps, ...args);
      expect(call).toThrow(cls);
      expect(call).toThrow(pattern);
      expect(grads(ps)).toEqual([[30, 40]]);
    });

    it('a bad param after good ones: nothing is scaled', () => {
      const good = withGrad([30, 40]);
      const cases: Array<[unknown, RegExp]> = [
        [{ name: 'x', data: new Float64Array(1), grad: new Int32Array(1) }, /params\[1\].grad must be a Float32Array or Float64Array, got Int32Array/],
        [{ name: 'x', data: new Float64Array(1) }, /params\[1\].grad must be a Float32Array or Float64Array, got undefined/],
        [null, /params\[1\] must be a param .* got null/],
      ];
      for (const [bad, pattern] of cases) {
        expect(() => clipGradNorm([good, bad as Param], 1)).toThrow(pattern);
        expect([...good.grad]).toEqual([30, 40]);
      }
      expect(() => clipGradNorm(5 as unknown as Param, 1)).toThrow(/clipGradNorm: params must be a param/);
    });
  });
});

describe('clipGradValue', () => {
  it('clamps every entry to [−c, c], in place; NaN stays NaN', () => {
    const a = withGrad([-3, -0.5, 0, 0.5, 3, NaN, Infinity, -Infinity]);
    const b = withGrad([0.2, -0.7], 'f32');
    clipGradValue([a, b], 0.5);
    expect([...a.grad]).toEqual([-0.5, -0.5, 0, 0.5, 0.5, NaN, 0.5, -0.5]);
    expect([...b.grad]).toEqual([Math.fround(0.2), -0.5]);
    const c = withGrad([-2, 2]);
    clipGradValue(c, 0);
    expect([...c.grad]).toEqual([-0, 0]);
  });

  it.each([
    [-1, OptimRangeError, /clipValue must be a finite number >= 0, got -1/],
    [NaN, OptimRangeError, /clipValue must be a finite number >= 0, got NaN/],
    [Infinity, OptimRangeError, /clipValue/],
    ['1', OptimTypeError, /clipValue must be a number, got string/],
  ])('refuses clipValue %o, changing nothing', (v, cls, pattern) => {
    const p = withGrad([5, -5]);
    expect(() => clipGradValue([p], v as number)).toThrow(cls);
    expect(() => clipGradValue([p], v as number)).toThrow(pattern);
    expect([...p.grad]).toEqual([5, -5]);
  });

  it('refuses a bad param before clamping any', () => {
    const p = withGrad([5, -5]);
    expect(() => clipGradValue([p, { grad: [1] } as unknown as Param], 1)).toThrow(/clipGradValue: params\[1\].grad must be a Float32Array/);
    expect([...p.grad]).toEqual([5, -5]);
  });
});
