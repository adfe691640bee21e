/**
 * Small random problems for the objective tests: data X (rows×cols), targets generated from a
 * hidden parameter vector, and a point w away from zero (so |w| is differentiable there).
 */
import type { FloatArray } from '../../src/backend/types.js';
import { mulberry32 } from './linalg.js';

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

/** Binary labels from a logistic model with a random weight vector. */
export function logisticProblem(Ctor: Ctor, rows: number, cols: number, seed: number): Problem<FloatArray> {
  const rnd = mulberry32(seed);
  const X = uniform(Ctor, rows * cols, rnd);
  const wTrue = uniform(Float64Array, cols, rnd, 2);
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let z = 0.3;
    for (let j = 0; j < cols; j++) z += X[i * cols + j] * wTrue[j];
    y[i] = rnd() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { X, rows, cols, y, rnd };
}

/** Labels 0..K−1: the argmax of random linear scores plus noise. */
export function softmaxProblem(Ctor: Ctor, rows: number, cols: number, K: number, seed: number): Problem<FloatArray> {
  const rnd = mulberry32(seed);
  const X = uniform(Ctor, rows * cols, rnd);
  const W = uniform(Float64Array, cols * K, rnd, 2);
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let k = 0; k < K; k++) {
      let z = rnd();
      for (let j = 0; j < cols; j++) z += X[i * cols + j] * W[j * K + k];
      if (z > bestScore) {
        bestScore = z;
        best = k;
      }
    }
    y[i] = best;
  }
  return { X, rows, cols, y, rnd };
}

/** y = Xw + 0.5 + noise. */
export function linearProblem(Ctor: Ctor, rows: number, cols: number, seed: number): Problem<FloatArray> {
  const rnd = mulberry32(seed);
  const X = uniform(Ctor, rows * cols, rnd);
  const w = uniform(Float64Array, cols, rnd, 2);
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let z = 0.5 + 0.1 * (2 * rnd() - 1);
    for (let j = 0; j < cols; j++) z += X[i * cols + j] * w[j];
    y[i] = z;
  }
  return { X, rows, cols, y, rnd };
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
