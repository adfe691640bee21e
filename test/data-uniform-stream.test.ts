/**
 * uniformStream(seed) (src/data/random.ts): the one seeded uniform source of the tests, benchmarks
 * and examples. Uniform in [0, 1), reproducible, unrelated between nearby seeds (the first jump of
 * EpochStreams mixes the seed), exported by `optim` and `optim/data`; fillUniform is 2u − 1 of it.
 *
 * Every figure here comes from fixed seeds, so each check passes or fails the same way every run;
 * the bounds are the 99.9% quantiles of the statistics for truly uniform draws.
 */
import { describe, expect, it } from 'vitest';
import * as data from '../src/data/index.js';
import { fillUniform } from '../src/data/random.js';
import * as root from '../src/index.js';
import { OptimRangeError, OptimTypeError, uniformStream } from '../src/index.js';

/** 99.9% quantile of χ² with 9 degrees of freedom (10 equal bins). */
const CHI2_9_999 = 27.88;
/** 99.9% two-sided quantile of the standard normal. */
const Z_999 = 3.29;

/** Pearson's χ² of `xs` (in [0, 1)) over 10 equal bins. */
function chiSquare10(xs: ArrayLike<number>): number {
  const counts = new Array<number>(10).fill(0);
  for (let i = 0; i < xs.length; i++) counts[Math.floor(xs[i] * 10)]++;
  const expected = xs.length / 10;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}

function draws(seed: number, n: number): Float64Array {
  const next = uniformStream(seed);
  return Float64Array.from({ length: n }, () => next());
}

describe('uniformStream', () => {
  it('draws in [0, 1), uniformly: χ² over 10 bins and the mean within their 99.9% bounds', () => {
    const n = 100_000;
    const xs = draws(3, n);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(chiSquare10(xs)).toBeLessThan(CHI2_9_999);
    const mean = xs.reduce((s, x) => s + x, 0) / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(Z_999 / Math.sqrt(12 * n));
  });

  it('is reproducible, and seeds 0..999 give unrelated streams (the first draws are uniform, not nearly equal)', () => {
    expect(draws(42, 50)).toEqual(draws(42, 50));
    expect(draws(43, 50)).not.toEqual(draws(42, 50));
    const first = Float64Array.from({ length: 1000 }, (_, seed) => uniformStream(seed)());
    expect(new Set(first).size).toBe(1000);
    expect(chiSquare10(first)).toBeLessThan(CHI2_9_999);
    // Correlation of two neighbouring seeds' streams: |r| of independent streams is below
    // Z / sqrt(n) 99.9% of the time.
    const n = 10_000;
    const a = draws(0, n), b = draws(1, n);
    let sab = 0, saa = 0, sbb = 0;
    for (let i = 0; i < n; i++) {
      sab += (a[i] - 0.5) * (b[i] - 0.5);
      saa += (a[i] - 0.5) ** 2;
      sbb += (b[i] - 0.5) ** 2;
    }
    expect(Math.abs(sab / Math.sqrt(saa * sbb))).toBeLessThan(Z_999 / Math.sqrt(n));
  });

  it('is the stream fillUniform maps to [-1, 1)', () => {
    const next = uniformStream(9);
    expect(fillUniform(new Float64Array(100), 9)).toEqual(Float64Array.from({ length: 100 }, () => 2 * next() - 1));
  });

  it('is exported by optim and optim/data', () => {
    expect(root.uniformStream).toBe(uniformStream);
    expect(data.uniformStream).toBe(uniformStream);
  });

  it.each([
    [-1, OptimRangeError, /uniformStream\(seed\): seed must be an integer in \[0, 2\^32 - 1\], got -1/],
    [2 ** 32, OptimRangeError, /seed must be an integer in \[0, 2\^32 - 1\], got 4294967296/],
    [1.5, OptimRangeError, /seed must be an integer/],
    ['1', OptimTypeError, /seed must be a number, got string/],
  ])('refuses seed=%o', (seed, cls, pattern) => {
    expect(() => uniformStream(seed as number)).toThrow(cls);
    expect(() => uniformStream(seed as number)).toThrow(pattern);
  });
});
