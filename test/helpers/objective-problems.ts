/**
 * Small random problems for the objective tests: data X (rows×cols), targets generated from a
 * hidden parameter vector, and a point w away from zero (so |w| is differentiable there).
 */
import type { FloatArray } from '../../src/backend/types.js';
import { uniformStream } from '../../src/data/random.js';

export type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;

export interface Problem<T extends FloatArray> {
  X: T;
  rows: number;
  cols: number;
  y: Float64Array;
  rnd: () => number;
}

function uniform(Ctor: Ctor, n: number, rnd: () => number, scale = 1): FloatArray {
  const a = new Ctor(n);
  for (let i = 0; i < n; i++) a[i] = scale * (2 * rnd() - 1);
  return a;
}

/** x·w + z0 for a row x of a problem and its hidden weights w (of the same length). */
function dot(x: FloatArray, w: Float64Array, z0: number): number {
  let z = z0;
  for (let j = 0; j < x.length; j++) z += x[j] * w[j];
  return z;
}

/**
 * Draws X uniform in [-1, 1) (rows×cols), then `hidden` weights uniform in [-2, 2), then each
 * row's target, `target(x, weights)` for the row x: the draws of every problem, in that order.
 */
function problem(Ctor: Ctor, rows: number, cols: number, hidden: number, seed: number, target: (x: FloatArray, weights: Float64Array, rnd: () => number) => number): Problem<FloatArray> {
  const rnd = uniformStream(seed);
  const X = uniform(Ctor, rows * cols, rnd);
  const weights = uniform(Float64Array, hidden, rnd, 2) as Float64Array;
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) y[i] = target(X.subarray(i * cols, (i + 1) * cols), weights, rnd);
  return { X, rows, cols, y, rnd };
}

/** Binary labels from a logistic model with a random weight vector. */
export function logisticProblem(Ctor: Ctor, rows: number, cols: number, seed: number): Problem<FloatArray> {
  return problem(Ctor, rows, cols, cols, seed, (x, w, rnd) => (rnd() < 1 / (1 + Math.exp(-dot(x, w, 0.3))) ? 1 : 0));
}

/** Labels 0..K−1: the argmax of random linear scores plus noise. */
export function softmaxProblem(Ctor: Ctor, rows: number, cols: number, K: number, seed: number): Problem<FloatArray> {
  return problem(Ctor, rows, cols, cols * K, seed, (x, W, rnd) => {
    let best = 0;
    let bestScore = -Infinity;
    for (let k = 0; k < K; k++) {
      let z = rnd();
      for (let j = 0; j < x.length; j++) z += x[j] * W[j * K + k];
      if (z > bestScore) {
        bestScore = z;
        best = k;
      }
    }
    return best;
  });
}

/** y = Xw + 0.5 + noise. */
export function linearProblem(Ctor: Ctor, rows: number, cols: number, seed: number): Problem<FloatArray> {
  return problem(Ctor, rows, cols, cols, seed, (x, w, rnd) => dot(x, w, 0.5 + 0.1 * (2 * rnd() - 1)));
}

/** A point with every entry at least 0.1 away from zero. */
export function pointAwayFromZero(Ctor: Ctor, n: number, rnd: () => number): FloatArray {
  const w = new Ctor(n);
  for (let i = 0; i < n; i++) {
    const m = 0.1 + 0.5 * rnd();
    w[i] = rnd() < 0.5 ? -m : m;
  }
  return w;
}
